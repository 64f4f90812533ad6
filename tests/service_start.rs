//! How the packaged service starts: `--listen systemd` serves on the socket systemd passes
//! (socket activation, the .deb's default), and the refusals an admin reads in the journal are
//! one line each: no socket, a socket meant for another process, no model, a database that
//! is in use or damaged.
//!
//! The socket is passed as systemd does it: fd 3 with `LISTEN_FDS=1` and `LISTEN_PID` set to the
//! server's own pid. A shell moves the listener the test bound (given to it as stdin) to fd 3,
//! sets `LISTEN_PID=$$` and execs the binary, so the pid matches; no port is guessed.

use std::io::{BufRead as _, BufReader};
use std::os::fd::OwnedFd;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{BINARY, model};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// `serve` with a fresh state directory and the test model, authentication off.
fn serve(state: &std::path::Path, extra: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .arg("serve")
        .arg("--state-dir")
        .arg(state)
        .arg("--config")
        .arg("/dev/null")
        .args(["--auth", "false"])
        .args(if nix::unistd::geteuid().is_root() { &["--allow-root"][..] } else { &[][..] })
        .args(extra)
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env("RUST_LOG", "info");
    command
}

/// Runs a command that must fail at start; returns its output.
fn refused(mut command: Command) -> Output {
    let output = command.stdin(Stdio::null()).output().expect("cannot run the whisper-appliance binary");
    assert!(!output.status.success(), "it started: {}", String::from_utf8_lossy(&output.stderr));
    output
}

/// The stderr lines that are not the JSON log: what `main` printed as the error.
fn error_lines(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr).lines().filter(|line| !line.starts_with('{')).map(str::to_owned).collect()
}

#[test]
fn serves_on_the_socket_systemd_passes() {
    let state = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let model = model();
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(r#"exec 3<&0 0</dev/null; export LISTEN_FDS=1 LISTEN_PID=$$ LISTEN_FDNAMES=http; exec "$@""#)
        .arg("sh")
        .arg(BINARY)
        .args(serve(state.path(), &["--listen", "systemd", "--model", model.to_str().unwrap()]).get_args())
        .env("RUST_LOG", "info")
        .stdin(Stdio::from(OwnedFd::from(listener)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("cannot run sh");
    // The test's copy of the socket went with the Command; only the server holds it now.
    drop(command);

    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim_end(), format!("listening on http://{address}"), "{}", stderr_of(&mut child));

    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        match reqwest::blocking::get(format!("http://{address}/readyz")) {
            Ok(response) if response.status() == 200 => break true,
            _ if Instant::now() > deadline => break false,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    let logs = stderr_of(&mut child);
    assert!(ready, "/readyz never answered 200 on the passed socket:\n{logs}");
    assert_eq!(status.code(), Some(0), "{logs}");
    assert!(logs.contains(r#""from_systemd":true"#), "{logs}");
}

#[test]
fn refuses_to_start_without_a_socket() {
    let state = tempfile::tempdir().unwrap();
    let output = refused(serve(state.path(), &["--listen", "systemd"]));
    assert_eq!(output.status.code(), Some(1));
    let lines = error_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("error: listen is `systemd` but systemd passed no socket"), "{lines:?}");
    assert!(lines[0].contains("systemctl start whisper-appliance.socket"), "{lines:?}");
    assert!(!state.path().join("jobs.sled").exists(), "nothing may be set up before the refusal");
}

#[test]
fn refuses_a_socket_meant_for_another_process() {
    let state = tempfile::tempdir().unwrap();
    let mut command = serve(state.path(), &["--listen", "systemd"]);
    command.env("LISTEN_FDS", "1").env("LISTEN_PID", "1");
    let lines = error_lines(&refused(command));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains(r#"meant for process "1", not this one"#), "{lines:?}");
}

#[test]
fn without_a_model_one_line_names_the_package() {
    let state = tempfile::tempdir().unwrap();
    let missing = state.path().join("models/ggml-tiny.en.bin");
    let output = refused(serve(state.path(), &["--listen", "127.0.0.1:0", "--model", missing.to_str().unwrap()]));
    assert_eq!(output.status.code(), Some(1));
    let lines = error_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with(&format!("error: no model at {}; ", missing.display())), "{lines:?}");
    assert!(lines[0].contains("install the whisper-appliance-model-tiny-en package"), "{lines:?}");
    assert!(lines[0].contains("whisper-appliance model import"), "{lines:?}");
}

fn stderr_of(child: &mut std::process::Child) -> String {
    let mut text = String::new();
    if let Some(stderr) = child.stderr.as_mut() {
        let _ = std::io::Read::read_to_string(stderr, &mut text);
    }
    text
}

#[test]
fn a_database_in_use_or_damaged_is_named_as_such_and_left_alone() {
    let state = tempfile::tempdir().unwrap();
    let model = model();
    let args = ["--listen", "127.0.0.1:0", "--model", model.to_str().unwrap()];
    let running = crate::common::Appliance::start_in(state.path(), &[]);
    let lines = error_lines(&refused(serve(state.path(), &args)));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("is in use by another process"), "{lines:?}");
    drop(running);

    // Every byte of the database's files garbled (a fixed pseudo-random sequence).
    let database = state.path().join("jobs.sled");
    let mut files = Vec::new();
    let mut pending = vec![database.clone()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            pending.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
        } else {
            files.push(path);
        }
    }
    let mut noise: u64 = 0x9e37_79b9_7f4a_7c15;
    for file in &files {
        let length = std::fs::metadata(file).unwrap().len().max(64) as usize;
        let garbled: Vec<u8> = (0..length)
            .map(|_| {
                noise ^= noise << 13;
                noise ^= noise >> 7;
                noise ^= noise << 17;
                noise as u8
            })
            .collect();
        std::fs::write(file, garbled).unwrap();
    }
    let output = refused(serve(state.path(), &args));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines = error_lines(&output);
    // The sentence, then what sled said, once.
    assert!(lines[1..].iter().all(|line| line.starts_with("caused by: ")), "{lines:?}");
    assert!(lines[0].contains("is damaged"), "{lines:?}");
    assert!(lines[0].contains("Recovering a damaged database"), "{lines:?}");
    for file in &files {
        assert!(file.exists(), "{} was deleted", file.display());
    }
}
