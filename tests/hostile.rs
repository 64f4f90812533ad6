//! Hostile input over HTTP: strange file names, path tricks in ids, thousands of parts,
//! oversized forms, and a client that sends its headers one byte a second. Each gets a
//! 4xx or a closed connection; the server keeps serving others, writes nothing outside its
//! temp directory, never panics, and holds no more memory for a hostile body than for a
//! plain one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{Appliance, assert_error, audio};

const BOUNDARY: &str = "hostile-boundary-41";

/// A multipart body with one file part named `file_name` (raw bytes, unescaped).
fn multipart(file_name: &[u8], content: &[u8]) -> Vec<u8> {
    let mut body = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"").into_bytes();
    body.extend_from_slice(file_name);
    body.extend_from_slice(b"\"\r\nContent-Type: audio/wav\r\n\r\n");
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn post_raw(appliance: &Appliance, body: Vec<u8>) -> reqwest::blocking::Response {
    appliance
        .client()
        .post(format!("{}/api/jobs", appliance.url))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body)
        .send()
        .unwrap()
}

/// Every file under a directory, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { found.extend(files_under(&path)) } else { found.push(path) }
    }
    found
}

#[test]
fn file_names_are_display_text_and_never_paths() {
    let appliance = Appliance::start(&[]);
    let jfk = std::fs::read(audio("jfk.wav")).unwrap();
    let long = "x".repeat(10_000) + ".wav";
    let names: [&[u8]; 6] = [
        b"../../../../tmp/escaped.wav",
        b"..\\..\\windows.wav",
        b"a\0b.wav",
        "\u{202e}vaw.exe".as_bytes(),
        long.as_bytes(),
        b"/etc/passwd",
    ];
    let mut ids = Vec::new();
    for name in names {
        let response = post_raw(&appliance, multipart(name, &jfk));
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().unwrap();
        match status {
            202 => {
                let shown = body["file_name"].as_str().unwrap();
                assert!(!shown.contains('/') && !shown.contains('\\') && !shown.contains('\0'), "{shown:?}");
                assert!(!shown.contains('\u{202e}') && shown.chars().count() <= 200, "{shown:?}");
                ids.push(body["id"].as_str().unwrap().to_owned());
            }
            400..=499 => assert!(body["error"]["message"].is_string(), "{body}"),
            other => panic!("{other} for {name:?}: {body}"),
        }
    }
    assert!(ids.len() >= 4, "most of these are plain uploads with odd names");
    assert!(!std::path::Path::new("/tmp/escaped.wav").exists());
    // On disk, uploads are named by job id only.
    for file in files_under(&appliance.temp_dir()) {
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(name.len() == 32 + ".upload".len() && name.ends_with(".upload"), "{name}");
    }
    for id in &ids {
        let deleted = appliance.client().delete(format!("{}/api/jobs/{id}", appliance.url)).send().unwrap();
        assert_eq!(deleted.status(), 204);
    }
    appliance.assert_temp_empty();
    assert!(!appliance.logs().contains("panicked"));
}

#[test]
fn ids_that_try_to_reach_files_are_not_found() {
    let appliance = Appliance::start(&[]);
    let address = appliance.url.trim_start_matches("http://").to_owned();
    for path in [
        "/api/jobs/..%2F..%2Fetc%2Fpasswd",
        "/api/jobs/%00",
        "/jobs/..%2F..%2Fetc%2Fpasswd",
        "/api/jobs/../../etc/passwd/result",
    ] {
        let mut stream = TcpStream::connect(&address).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status: u16 = answer[9..12].parse().unwrap();
        assert!((400..500).contains(&status), "{path}: {answer}");
        assert!(!answer.contains("root:"), "{path}");
    }
    assert_error(
        appliance.client().get(format!("{}/api/jobs/not-an-id", appliance.url)).send().unwrap(),
        404,
        "not_found",
    );
}

#[test]
fn ten_thousand_parts_and_oversized_forms_are_refused() {
    let appliance = Appliance::start(&[]);
    let mut body = Vec::new();
    for n in 0..10_000 {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"f{n}\"\r\n\r\nx\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    assert_error(post_raw(&appliance, body), 400, "too_many_parts");

    let huge_field = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\n{}\r\n--{BOUNDARY}--\r\n",
        "p".repeat(100_000)
    );
    assert_error(post_raw(&appliance, huge_field.into_bytes()), 400, "field_too_large");

    let login = appliance.client().post(format!("{}/login", appliance.url)).body(vec![b'k'; 100_000]).send().unwrap();
    assert_error(login, 413, "body_too_large");
    appliance.assert_temp_empty();
}

#[test]
fn a_client_sending_headers_one_byte_a_second_is_cut_off_while_others_are_served() {
    let appliance = Appliance::start(&[]);
    let address = appliance.url.trim_start_matches("http://").to_owned();
    let slow_address = address.clone();
    let slow = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(slow_address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let started = Instant::now();
        for byte in
            b"GET /healthz HTTP/1.1\r\nHost: slow.example\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"
        {
            if stream.write_all(&[*byte]).is_err() {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_secs(1));
            let mut probe = [0u8; 1];
            stream.set_nonblocking(true).unwrap();
            let closed = matches!(stream.read(&mut probe), Ok(0));
            stream.set_nonblocking(false).unwrap();
            if closed {
                return started.elapsed();
            }
        }
        panic!("the server waited for a whole minute of slow headers");
    });
    // Meanwhile the server answers everyone else.
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        let response = appliance.client().get(format!("{}/healthz", appliance.url)).send().unwrap();
        assert_eq!(response.status(), 200);
    }
    let cut_after = slow.join().unwrap();
    assert!(cut_after < Duration::from_secs(30), "cut off after {cut_after:?}");
}

#[test]
fn an_upload_that_stalls_is_abandoned_and_leaves_nothing() {
    let appliance = Appliance::start(&["--upload-idle-timeout-secs", "2"]);
    let address = appliance.url.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let body = multipart(b"stalled.wav", &vec![0u8; 1_000_000]);
    write!(
        stream,
        "POST /api/jobs HTTP/1.1\r\nHost: {address}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    // Half the body, then nothing.
    stream.write_all(&body[..body.len() / 2]).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"upload_stalled\""), "{answer}");
    appliance.assert_temp_empty();
}

/// The server's resident memory now, and its peak since [`reset_peak_memory`], in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        let line = status.lines().find(|line| line.starts_with(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Makes the kernel's peak-RSS mark start again from the current RSS (proc(5), clear_refs).
fn reset_peak_memory(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}

/// Sends a chunked upload of `head` followed by up to 300 MiB of `filler`, while reading
/// the answer; returns the answer.
fn chunked_flood(appliance: &Appliance, head: &[u8], filler: u8) -> String {
    let address = appliance.url.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        stream,
        "POST /api/jobs HTTP/1.1\r\nHost: {address}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    )
    .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let head = head.to_vec();
    let sender = std::thread::spawn(move || {
        let chunk = |data: &[u8]| [format!("{:x}\r\n", data.len()).as_bytes(), data, b"\r\n"].concat();
        // An empty chunk would end the body.
        if !head.is_empty() && writer.write_all(&chunk(&head)).is_err() {
            return;
        }
        let filler = chunk(&[filler; 64 * 1024]);
        for _ in 0..(300 * 16) {
            if writer.write_all(&filler).is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    sender.join().unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn chunked_uploads_without_a_boundary_or_with_endless_headers_get_413_and_cost_no_memory() {
    let appliance = Appliance::start(&["--max-upload-mb", "5"]);
    let pid = appliance.pid();
    let (start, _) = memory(pid);
    reset_peak_memory(pid);
    let shapes: [(&str, Vec<u8>, u8, &str); 3] = [
        ("no boundary ever", Vec::new(), b'a', "form_too_large"),
        (
            "a part header that never ends",
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.wav\"\r\nX-Pad: ")
                .into_bytes(),
            b'a',
            "form_too_large",
        ),
        (
            "a file part over the limit, chunked (no Content-Length to refuse early)",
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.wav\"\r\n\r\n")
                .into_bytes(),
            0,
            "file_too_large",
        ),
    ];
    for (shape, head, filler, code) in shapes {
        let answer = chunked_flood(&appliance, &head, filler);
        assert!(answer.starts_with("HTTP/1.1 413"), "{shape}: {answer}");
        assert!(answer.contains(&format!("\"{code}\"")), "{shape}: {answer}");
        let (_, peak) = memory(pid);
        assert!(peak < start + (64 << 20), "{shape}: RSS rose from {start} to {peak} bytes");
    }
    appliance.assert_temp_empty();
    assert_eq!(appliance.client().get(format!("{}/healthz", appliance.url)).send().unwrap().status(), 200);
}

#[test]
fn a_small_file_declaring_five_hours_is_refused_before_it_becomes_a_job() {
    // The Columbia address, with its FLAC header claiming five hours: STREAMINFO's 36-bit
    // sample count is the low bits of the big-endian u64 at byte 18 (after "fLaC", the
    // block header and 10 bytes of block sizes).
    let mut flac = std::fs::read(crate::common::audio("columbia_address_2003.flac")).unwrap();
    assert_eq!(&flac[..4], b"fLaC");
    let packed = u64::from_be_bytes(flac[18..26].try_into().unwrap());
    let rate = packed >> 44;
    let five_hours = rate * 5 * 3600;
    flac[18..26].copy_from_slice(&((packed & !((1 << 36) - 1)) | five_hours).to_be_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("five-hours.flac");
    std::fs::write(&path, &flac).unwrap();

    let appliance = Appliance::start(&[]);
    let message = assert_error(appliance.upload(&path, &[]), 413, "audio_too_long");
    assert!(message.contains("240-minute"), "{message}");
    appliance.assert_temp_empty();
    let jobs: serde_json::Value =
        appliance.client().get(format!("{}/api/jobs", appliance.url)).send().unwrap().json().unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 0, "{jobs}");
}

#[test]
fn three_hundred_stalled_connections_leave_health_checks_answering() {
    let appliance = Appliance::start(&["--max-connections", "100"]);
    // As few descriptors as the attack run had: without the cap, 300 connections use them up.
    let limited = std::process::Command::new("prlimit")
        .args(["--nofile=256:256", "--pid", &appliance.pid().to_string()])
        .status()
        .unwrap();
    assert!(limited.success());
    let address = appliance.url.trim_start_matches("http://").to_owned();
    let mut stalled = Vec::new();
    let mut logins = Vec::new();
    // Silent connections and endless headers first, then logins whose body never comes:
    // those are busy until the login's own timeout, and the newest, so the cap closes the
    // idle ones before them.
    for n in 0..250 {
        let mut stream = TcpStream::connect(&address).unwrap();
        if n % 2 == 0 {
            write!(stream, "GET /healthz HTTP/1.1\r\nHost: {address}\r\n").unwrap();
        }
        stalled.push(stream);
    }
    for _ in 0..50 {
        let mut stream = TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "POST /login HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: 100\r\n\r\nkey=wa_"
        )
        .unwrap();
        logins.push(stream);
    }
    let quick = reqwest::blocking::Client::builder().timeout(Duration::from_secs(1)).build().unwrap();
    for _ in 0..5 {
        let response = quick.get(format!("{}/healthz", appliance.url)).send();
        assert!(response.is_ok_and(|response| response.status() == 200), "/healthz did not answer within 1 s");
    }
    // The stalled logins end with their timeout's answer, not a 500 two minutes later.
    for mut login in logins.into_iter().take(3) {
        login.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut answer = String::new();
        let _ = login.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"body_stalled\""), "{answer}");
    }
    drop(stalled);
    assert!(!appliance.logs().contains("panicked"));
}

#[test]
fn every_line_a_failed_request_logs_carries_its_request_id() {
    let appliance = Appliance::start(&[]);
    // The upload directory vanishes under the running server: the next upload fails inside.
    std::fs::remove_dir_all(appliance.temp_dir()).unwrap();
    let response = appliance.upload(&audio("jfk.wav"), &[]);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let message = assert_error(response, 500, "internal_error");
    assert!(message.contains("X-Request-Id"), "{message}");
    let logs = appliance.logs();
    let lines: Vec<&str> = logs.lines().filter(|line| line.contains(&request_id)).collect();
    assert!(lines.iter().any(|line| line.contains("\"level\":\"ERROR\"")), "no error line names the request: {logs}");
    assert!(lines.iter().any(|line| line.contains("\"status\":500")), "the audit line names it: {logs}");
    for line in logs.lines().filter(|line| line.contains("\"level\":\"ERROR\"")) {
        assert!(line.contains(&format!("\"request_id\":\"{request_id}\"")), "{line}");
    }
}

#[test]
fn an_upload_into_a_full_temp_dir_gets_507_and_leaves_nothing() {
    // The server runs in a mount namespace of its own (as an unprivileged user too, through a
    // user namespace), where its temp dir is a 1 MB tmpfs; the test reads it through
    // /proc/PID/root.
    let temp = tempfile::tempdir().unwrap();
    let uploads = temp.path().join("uploads");
    std::fs::create_dir(&uploads).unwrap();
    let script = r#"mount -t tmpfs -o size=1m,mode=0700 none "$0" && exec "$@""#;
    let wrapper = ["unshare", "--map-root-user", "--mount", "sh", "-c", script, uploads.to_str().unwrap()];
    // Inside the user namespace the server is uid 0.
    let mut args = vec!["--temp-dir", uploads.to_str().unwrap()];
    if !nix::unistd::geteuid().is_root() {
        args.push("--allow-root");
    }
    let appliance = Appliance::start_under(&wrapper, &args);
    let inside = std::path::PathBuf::from(format!("/proc/{}/root{}", appliance.pid(), uploads.display()));
    let scratch = tempfile::tempdir().unwrap();
    let big = crate::common::long_wav(scratch.path(), 9);
    assert!(std::fs::metadata(&big).unwrap().len() > 2_000_000);

    let response = appliance.upload(&big, &[]);
    assert!(response.headers().contains_key("retry-after"));
    let message = assert_error(response, 507, "insufficient_storage");
    assert!(message.contains("temp_dir"), "{message}");
    assert_eq!(std::fs::read_dir(&inside).unwrap().count(), 0, "the partial upload was left behind");
    assert!(appliance.logs().contains("refused for lack of disk space"), "{}", appliance.logs());
    // A recording that fits still goes through.
    let id = appliance.submit(&audio("jfk.wav"), &[]);
    let job = appliance.wait_finished(&id, Duration::from_secs(120));
    assert_eq!(job["status"], "done", "{job}");
}
