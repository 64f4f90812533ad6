//! Shared test fixtures: the real binary on a free port with the real model, real audio
//! from `../shared/audio`, and the word error rate used to judge transcripts.
//!
//! Each test owns its state directory and port, so tests run in parallel. Paths can be
//! moved with `WHISPER_APPLIANCE_TEST_MODEL` (a ggml file) and `WHISPER_APPLIANCE_TEST_AUDIO`
//! (a directory); when what they name is missing the test fails and says how to get it.

#![allow(dead_code)] // tests/gpu_fallback.rs and benches/compare.rs use only a part of this module.

pub mod browser;
pub mod html;
pub mod models;
pub mod wer;

use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BINARY: &str = env!("CARGO_BIN_EXE_whisper-appliance");

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The tiny.en ggml model the README's set-up command imports.
pub fn model() -> PathBuf {
    let path = std::env::var_os("WHISPER_APPLIANCE_TEST_MODEL")
        .map_or_else(|| repo_root().join("models/ggml-tiny.en.bin"), PathBuf::from);
    assert!(
        path.is_file(),
        "no test model at {}; run the README's test command (it imports tiny.en), or set WHISPER_APPLIANCE_TEST_MODEL",
        path.display()
    );
    path
}

/// The folder of shared speech clips (`$WHISPER_APPLIANCE_TEST_AUDIO`, by default
/// `../shared/audio` beside the repository); without it the test fails rather than pass empty.
pub fn shared_audio() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("WHISPER_APPLIANCE_TEST_AUDIO")
            .map_or_else(|| repo_root().join("../shared/audio"), PathBuf::from);
        assert!(
            dir.join("jfk.wav").is_file(),
            "test audio not found: {} has no jfk.wav; set WHISPER_APPLIANCE_TEST_AUDIO to the folder \
             that holds the shared clips (see its SOURCES.md)",
            dir.display()
        );
        dir
    })
}

/// A clip from the shared test audio (see its SOURCES.md).
pub fn audio(name: &str) -> PathBuf {
    let path = shared_audio().join(name);
    assert!(path.is_file(), "missing test audio {}; set WHISPER_APPLIANCE_TEST_AUDIO", path.display());
    path
}

/// The folder of audio made at test time by `tests/fixtures/make-audio.sh` (jfk.wav in
/// other formats, damaged and non-audio files, noise, a German sentence), made once per
/// test binary. Its name carries a hash of the script, so editing the script makes fresh
/// fixtures instead of reusing stale ones.
pub fn fixtures() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = repo_root().join("tests/fixtures/make-audio.sh");
        let text = std::fs::read(&script).expect("tests/fixtures/make-audio.sh is readable");
        let mut hasher = DefaultHasher::new();
        text.hash(&mut hasher);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("test-audio-{:016x}", hasher.finish()));
        let output = Command::new("bash")
            .arg(&script)
            .arg(shared_audio())
            .arg(&dir)
            .output()
            .expect("bash runs tests/fixtures/make-audio.sh");
        assert!(
            output.status.success(),
            "make-audio.sh failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        dir
    })
}

/// The Python of the test virtual environment (`.ci/setup --test` makes it): the `openai`
/// package, its realtime extra, `websockets`, and `openapi-spec-validator` for the API reference.
pub fn test_python() -> PathBuf {
    let path = std::env::var_os("WHISPER_APPLIANCE_TEST_PYTHON")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python"), PathBuf::from);
    assert!(
        path.is_file(),
        "no Python with the openai SDK at {}; run the README's test command, or \
         `python3 -m venv target/test-venv && target/test-venv/bin/pip install 'openai[realtime]' websockets \
         openapi-spec-validator`",
        path.display()
    );
    path
}

/// Tests run two at a time on CI's two cores, so every whisper.cpp in them gets one thread:
/// ggml's threads spin at a barrier after every layer and, with more threads than cores, wait
/// there for descheduled ones (two each made the suite several times slower). A `--threads`
/// flag still wins over this.
pub const TEST_THREADS: (&str, &str) = ("WHISPER_APPLIANCE_THREADS", "1");

/// Runs the binary with `args` and nothing from the caller's environment that it reads
/// (log filter, model), one whisper thread ([`TEST_THREADS`]), and checks it did not panic,
/// whatever else it did.
pub fn run_binary<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Output {
    let output = Command::new(BINARY)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("WHISPER_APPLIANCE_MODEL")
        .env(TEST_THREADS.0, TEST_THREADS.1)
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "the binary panicked: {stderr}");
    output
}

/// `model info`'s `name value` lines, as a map.
pub fn model_info(model: &Path) -> std::collections::HashMap<String, String> {
    let output = run_binary(&["model".as_ref(), "info".as_ref(), model.as_os_str()]);
    assert!(output.status.success(), "model info failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once(' ').map(|(name, rest)| (name.to_owned(), rest.trim().to_owned())))
        .collect()
}

/// One file made by `tests/fixtures/make-audio.sh`.
pub fn fixture(name: &str) -> PathBuf {
    let path = fixtures().join(name);
    assert!(path.is_file(), "make-audio.sh made no {}", path.display());
    path
}

/// jfk.wav in every format of the issue, from the shared clips and make-audio.sh.
pub fn jfk_variants() -> Vec<PathBuf> {
    let mut files = vec![audio("jfk.wav"), audio("jfk.mp3")];
    for name in [
        "stereo_44k.wav",
        "float_48k.wav",
        "telephone_8k.wav",
        "jfk.flac",
        "vorbis.ogg",
        "opus.ogg",
        "opus.webm",
        "aac.m4a",
        "video.mp4",
    ] {
        files.push(fixture(name));
    }
    files
}

/// The reference text of a shared clip (`jfk.wav` -> `jfk.txt`).
pub fn reference(clip: &str) -> String {
    let stem = Path::new(clip).file_stem().unwrap().to_string_lossy().into_owned();
    std::fs::read_to_string(audio(&format!("{stem}.txt"))).unwrap()
}

/// Calls `check` until it returns something, every 20 ms at first and at most every 500 ms,
/// and fails the test naming `what` if `within` passes first. Tests wait with this, never
/// with a fixed sleep or a window: a slow, loaded machine only makes them take longer.
pub fn poll<T>(what: &str, within: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    let mut interval = Duration::from_millis(20);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(500));
    }
}

/// A running `whisper-appliance serve`, stopped with SIGTERM when dropped.
pub struct Appliance {
    child: Option<Child>,
    pub url: String,
    pub state_dir: PathBuf,
    /// Keeps the state directory alive for the fixture's lifetime.
    _state: Option<tempfile::TempDir>,
    /// An empty models directory, so that only the test's model is served whatever else lies
    /// beside it (README's commands import base into models/); tests of several models pass
    /// their own --models-dir.
    _models: Option<tempfile::TempDir>,
    output: Arc<Mutex<String>>,
    /// Sent as a Bearer token by [`Appliance::client`] when authentication is on.
    key: Option<String>,
}

impl Appliance {
    /// Starts on a free port with a fresh state directory and the test model.
    pub fn start(args: &[&str]) -> Appliance {
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().to_owned();
        let mut appliance = Appliance::start_in(&dir, args);
        appliance._state = Some(state);
        appliance
    }

    /// Starts with a given state directory (for restart tests), which the caller keeps.
    pub fn start_in(state_dir: &Path, args: &[&str]) -> Appliance {
        Appliance::start_with_env(state_dir, args, &[])
    }

    /// As [`Appliance::start`], with another ggml model than the test model.
    pub fn start_with_model(model: &Path, args: &[&str]) -> Appliance {
        let state = tempfile::tempdir().unwrap();
        let mut appliance = Appliance::launch(&[], state.path(), model, args, &[]);
        appliance._state = Some(state);
        appliance
    }

    /// As [`Appliance::start_with_model`], with extra environment variables (benches/compare.rs
    /// runs its server this way).
    pub fn start_with_model_env(model: &Path, args: &[&str], env: &[(&str, &str)]) -> Appliance {
        let state = tempfile::tempdir().unwrap();
        let mut appliance = Appliance::launch(&[], state.path(), model, args, env);
        appliance._state = Some(state);
        appliance
    }

    /// As [`Appliance::start_in`], with extra environment variables.
    pub fn start_with_env(state_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Appliance {
        Appliance::launch(&[], state_dir, &model(), args, env)
    }

    /// As [`Appliance::start`], run by a wrapper command (`wrapper... BINARY serve ...`),
    /// such as `unshare` to give it a mount of its own.
    pub fn start_under(wrapper: &[&str], args: &[&str]) -> Appliance {
        let state = tempfile::tempdir().unwrap();
        let mut appliance = Appliance::launch(wrapper, state.path(), &model(), args, &[]);
        appliance._state = Some(state);
        appliance
    }

    fn launch(wrapper: &[&str], state_dir: &Path, model: &Path, args: &[&str], env: &[(&str, &str)]) -> Appliance {
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(BINARY);
                command
            }
            None => Command::new(BINARY),
        };
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--state-dir")
            .arg(state_dir)
            .arg("--model")
            .arg(model)
            .arg("--config")
            .arg("/dev/null")
            .args(args)
            // Most tests are about jobs, not keys: authentication is off unless a test turns it on.
            .args(if args.contains(&"--auth") { &[][..] } else { &["--auth", "false"][..] })
            // Polling a job is many requests a minute; limits are tested where they are on.
            .args(if args.contains(&"--auth") || args.contains(&"--rate-limit-per-minute") {
                &[][..]
            } else {
                &["--rate-limit-per-minute", "100000"][..]
            })
            // One whisper thread each: TEST_THREADS says why.
            .args(if args.contains(&"--threads") { &[][..] } else { &["--threads", TEST_THREADS.1][..] })
            // CI runs as root; the refusal to run as root has its own test.
            .args(if nix::unistd::geteuid().is_root() { &["--allow-root"][..] } else { &[][..] })
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let models = (!args.contains(&"--models-dir")).then(|| tempfile::tempdir().unwrap());
        if let Some(models) = &models {
            command.arg("--models-dir").arg(models.path());
        }
        let mut child = command.spawn().expect("cannot start the whisper-appliance binary");
        let output = Arc::new(Mutex::new(String::new()));
        let (address_tx, address_rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let captured = Arc::clone(&output);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = address_tx.send(url.to_owned());
                }
                eprintln!("[appliance stdout] {line}");
                captured.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let captured = Arc::clone(&output);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[appliance] {line}");
                captured.lock().unwrap().push_str(&format!("{line}\n"));
            }
        });
        let url = match address_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("the appliance did not start listening:\n{}", output.lock().unwrap());
            }
        };
        let appliance = Appliance {
            child: Some(child),
            url,
            state_dir: state_dir.to_owned(),
            _state: None,
            _models: models,
            output,
            key: None,
        };
        appliance.wait_ready();
        appliance
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(response) = reqwest::blocking::get(format!("{}/readyz", self.url))
                && response.status() == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("/readyz never answered 200:\n{}", self.logs());
    }

    /// Keeps a state directory alive as long as the appliance.
    pub fn keep(&mut self, state: tempfile::TempDir) {
        self._state = Some(state);
    }

    /// Everything the server printed so far.
    pub fn logs(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The upload directory.
    pub fn temp_dir(&self) -> PathBuf {
        self.state_dir.join("uploads")
    }

    /// Files in the upload directory.
    pub fn temp_files(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.temp_dir()) {
            Ok(entries) => entries.map(|entry| entry.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Polls until the upload directory is empty (a job's file goes when its job ends).
    pub fn assert_temp_empty(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.temp_files().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(self.temp_files(), Vec::<PathBuf>::new(), "temp files were left behind");
    }

    /// Waits for every job to end, then checks that no upload is left behind.
    pub fn assert_temp_empty_after_jobs(&self) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while !self.temp_files().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.assert_temp_empty();
    }

    /// Sends a signal and waits for the process to exit; returns its exit status.
    pub fn stop(&mut self, signal: nix::sys::signal::Signal, within: Duration) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("already stopped");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the appliance did not exit within {within:?} of {signal}:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Makes the fixture's own requests (upload, job, result...) with this key.
    pub fn use_key(&mut self, key: &str) {
        self.key = Some(key.to_owned());
    }

    pub fn client(&self) -> reqwest::blocking::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(key) = &self.key {
            headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
        }
        reqwest::blocking::Client::builder().timeout(Duration::from_secs(300)).default_headers(headers).build().unwrap()
    }

    /// `POST /api/jobs` with a file and extra form fields.
    pub fn upload(&self, file: &Path, fields: &[(&str, &str)]) -> reqwest::blocking::Response {
        let mut form = reqwest::blocking::multipart::Form::new().file("file", file).unwrap();
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        self.client().post(format!("{}/api/jobs", self.url)).multipart(form).send().unwrap()
    }

    /// Uploads and returns the job id, asserting 202.
    pub fn submit(&self, file: &Path, fields: &[(&str, &str)]) -> String {
        let response = self.upload(file, fields);
        let status = response.status();
        let body: Value = response.json().unwrap();
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    pub fn job(&self, id: &str) -> Value {
        self.client().get(format!("{}/api/jobs/{id}", self.url)).send().unwrap().json().unwrap()
    }

    /// Polls a job until it has ended; returns it.
    ///
    /// The interval grows from 100 ms to 1 s, as a polite client's would: the server allows
    /// 100 requests a minute per client (one every 0.6 s once the burst is spent), and a
    /// long job or a queue of jobs on a busy machine would otherwise use it up and make the
    /// test's next request a 429.
    pub fn wait_finished(&self, id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        let mut interval = Duration::from_millis(100);
        loop {
            let job = self.job(id);
            if matches!(job["status"].as_str(), Some("done" | "failed" | "cancelled")) {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} did not finish within {within:?}: {job}");
            std::thread::sleep(interval);
            interval = (interval * 2).min(Duration::from_secs(1));
        }
    }

    /// A finished job's transcript in a format.
    pub fn result(&self, id: &str, format: &str) -> String {
        let response = self.client().get(format!("{}/api/jobs/{id}/result?format={format}", self.url)).send().unwrap();
        assert_eq!(response.status(), 200);
        response.text().unwrap()
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Asserts that an error response has the status and code, and returns its message.
pub fn assert_error(response: reqwest::blocking::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().expect("error bodies are JSON");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().expect("errors carry a message").to_owned();
    assert!(!message.is_empty());
    message
}

/// Makes an API key with the `keys` command, as an administrator would; returns the key.
pub fn create_key(state_dir: &Path, name: &str, role: &str) -> String {
    let output = Command::new(BINARY)
        .args(["keys", "create", "--name", name, "--role", role, "--config", "/dev/null", "--state-dir"])
        .arg(state_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("wa_"), "{key}");
    key
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: Value,
}

impl Appliance {
    /// Reads a job's event stream until the server ends it.
    pub fn events(&self, id: &str) -> Vec<Event> {
        let response = self.client().get(format!("{}/api/jobs/{id}/events", self.url)).send().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut events = Vec::new();
        let (mut name, mut data) = (String::new(), String::new());
        for line in BufReader::new(response).lines() {
            let line = line.unwrap();
            if let Some(value) = line.strip_prefix("event:") {
                name = value.trim().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim());
            } else if line.is_empty() && !name.is_empty() {
                events.push(Event { name: std::mem::take(&mut name), data: serde_json::from_str(&data).unwrap() });
                data.clear();
            }
        }
        events
    }
}

/// 16 kHz mono 16-bit PCM: what whisper takes, and what the WAVs the tests and the bench
/// make are.
pub const WAV_16K_MONO: hound::WavSpec =
    hound::WavSpec { channels: 1, sample_rate: 16_000, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };

/// A long recording made at test time: jfk.wav's samples `repeats` times over, as a
/// 16 kHz mono 16-bit WAV (about 11 s each), so tests can catch a job mid-way.
pub fn long_wav(dir: &Path, repeats: usize) -> PathBuf {
    let spec = WAV_16K_MONO;
    let mut jfk = hound::WavReader::open(audio("jfk.wav")).unwrap();
    assert_eq!(jfk.spec(), spec, "jfk.wav is 16 kHz mono 16-bit");
    let samples: Vec<i16> = jfk.samples().collect::<Result<_, _>>().unwrap();
    let path = dir.join(format!("jfk-x{repeats}.wav"));
    let mut wav = hound::WavWriter::create(&path, spec).unwrap();
    for _ in 0..repeats {
        for &sample in &samples {
            wav.write_sample(sample).unwrap();
        }
    }
    wav.finalize().unwrap();
    path
}

impl Appliance {
    /// Waits until a job is running and has made some progress (or produced a segment).
    pub fn wait_running(&self, id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let job = self.job(id);
            if job["status"] == "running" && job["duration_seconds"].is_number() {
                return job;
            }
            assert!(job["status"] == "queued" || job["status"] == "running", "{job}");
            assert!(Instant::now() < deadline, "job {id} did not start within {within:?}: {job}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
