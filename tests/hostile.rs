//! Hostile input over HTTP: strange file names, path tricks in ids, thousands of parts,
//! oversized forms, and a client that sends its headers one byte a second. Each gets a
//! 4xx or a closed connection; the server keeps serving others, writes nothing outside its
//! temp directory, and never panics.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Appliance, assert_error, audio};

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
