//! Uploads: streamed to disk within limits, refused with a JSON error when they cannot
//! become a job, and never left behind.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::common::{Appliance, assert_error, audio, long_wav};

/// Resident memory of a process in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

/// A multipart body around a WAV file of `audio_bytes` of silence (48 kHz stereo 16-bit),
/// generated while it is read so the test never holds it.
struct GeneratedUpload {
    prefix: std::io::Cursor<Vec<u8>>,
    silence_left: u64,
    suffix: std::io::Cursor<Vec<u8>>,
}

const BOUNDARY: &str = "generated-boundary-7f3a";

impl GeneratedUpload {
    fn new(audio_bytes: u32) -> (GeneratedUpload, u64) {
        // The header is written here rather than by hound: hound states a file's sizes only
        // after its last sample (it seeks back to them), while a streamed body must state them
        // first, and sending 300 MB of samples through hound takes over a minute in a test build.
        // hound reads it back below, so it is the file it says it is.
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let frame_bytes = spec.channels * spec.bits_per_sample / 8;
        let mut wav = Vec::new();
        wav.extend_from_slice(b"RIFF");
        wav.extend_from_slice(&(36 + audio_bytes).to_le_bytes());
        wav.extend_from_slice(b"WAVEfmt ");
        wav.extend_from_slice(&16u32.to_le_bytes());
        wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
        wav.extend_from_slice(&spec.channels.to_le_bytes());
        wav.extend_from_slice(&spec.sample_rate.to_le_bytes());
        wav.extend_from_slice(&(spec.sample_rate * u32::from(frame_bytes)).to_le_bytes());
        wav.extend_from_slice(&frame_bytes.to_le_bytes());
        wav.extend_from_slice(&spec.bits_per_sample.to_le_bytes());
        wav.extend_from_slice(b"data");
        wav.extend_from_slice(&audio_bytes.to_le_bytes());
        let read_back = hound::WavReader::new(wav.as_slice()).unwrap();
        assert_eq!((read_back.spec(), read_back.len()), (spec, audio_bytes / 2), "the generated header");
        let mut prefix = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"long.wav\"\r\n\
             Content-Type: audio/wav\r\n\r\n"
        )
        .into_bytes();
        prefix.extend_from_slice(&wav);
        let suffix = format!("\r\n--{BOUNDARY}--\r\n").into_bytes();
        let length = prefix.len() as u64 + u64::from(audio_bytes) + suffix.len() as u64;
        let body = GeneratedUpload {
            prefix: std::io::Cursor::new(prefix),
            silence_left: u64::from(audio_bytes),
            suffix: std::io::Cursor::new(suffix),
        };
        (body, length)
    }
}

impl Read for GeneratedUpload {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.prefix.read(buf)?;
        if n > 0 {
            return Ok(n);
        }
        if self.silence_left > 0 {
            let n = buf.len().min(self.silence_left as usize);
            buf[..n].fill(0);
            self.silence_left -= n as u64;
            return Ok(n);
        }
        self.suffix.read(buf)
    }
}

fn post_generated(appliance: &Appliance, audio_bytes: u32) -> reqwest::blocking::Response {
    let (body, length) = GeneratedUpload::new(audio_bytes);
    appliance
        .client()
        .post(format!("{}/api/jobs", appliance.url))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(reqwest::blocking::Body::sized(body, length))
        .send()
        .unwrap()
}

#[test]
fn a_300_mb_upload_streams_to_disk_with_flat_memory() {
    let scratch = tempfile::tempdir().unwrap();
    let appliance = Appliance::start(&[]);
    // Keep the one worker busy, so the big upload waits in the queue and what is measured
    // is the upload, not the decoding of its 26 minutes of audio.
    let busy = appliance.submit(&long_wav(scratch.path(), 20), &[]);
    appliance.wait_running(&busy, Duration::from_secs(60));
    // whisper.cpp allocates its buffers after speech detection, as decoding starts: measure
    // from when the busy job has shown progress (a window decoded) and its memory settled.
    crate::common::poll("the busy job decoding its first window", Duration::from_secs(120), || {
        appliance.job(&busy)["progress"].as_u64().filter(|&percent| percent > 0)
    });
    let pid = appliance.pid();
    let mut baseline = rss(pid);
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let now = rss(pid);
        if now.abs_diff(baseline) < 1 << 20 {
            break;
        }
        baseline = now;
    }
    let peak = Arc::new(AtomicU64::new(baseline));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let response = post_generated(&appliance, 300_000_000);
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let status = response.status();
    let job: serde_json::Value = response.json().unwrap();
    assert_eq!(status, 202, "{job}");
    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    eprintln!("RSS grew by {} MB during a 300 MB upload", growth / 1_000_000);
    assert!(growth < 64 << 20, "RSS grew by {growth} bytes");
    assert_eq!(job["size_bytes"].as_u64().unwrap(), 300_000_044);

    assert_eq!(job["status"], "queued", "{job}");
    for id in [job["id"].as_str().unwrap(), busy.as_str()] {
        let deleted = appliance.client().delete(format!("{}/api/jobs/{id}", appliance.url)).send().unwrap();
        assert_eq!(deleted.status(), 204);
    }
    appliance.assert_temp_empty();
}

#[test]
fn over_the_size_limit_is_413_and_leaves_nothing() {
    let appliance = Appliance::start(&["--max-upload-mb", "1"]);
    // Announced by Content-Length: refused before it is stored.
    let message = assert_error(post_generated(&appliance, 5_000_000), 413, "file_too_large");
    assert!(message.contains("1 MB limit"), "{message}");
    appliance.assert_temp_empty();

    // Sent in chunks without a length: refused as soon as the limit is crossed.
    let (body, _) = GeneratedUpload::new(5_000_000);
    let chunked = appliance
        .client()
        .post(format!("{}/api/jobs", appliance.url))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(reqwest::blocking::Body::new(body))
        .send();
    // The server answers and closes mid-body; a client may see the 413 or a reset.
    if let Ok(response) = chunked {
        assert_error(response, 413, "file_too_large");
    }
    appliance.assert_temp_empty();
    // The server still serves.
    assert_eq!(appliance.client().get(format!("{}/healthz", appliance.url)).send().unwrap().status(), 200);
}

#[test]
fn forms_without_a_usable_file_get_400() {
    let appliance = Appliance::start(&[]);
    let client = appliance.client();
    let url = format!("{}/api/jobs", appliance.url);

    let response = client.post(&url).body("just text").header("content-type", "text/plain").send().unwrap();
    assert_error(response, 400, "not_multipart");

    let form = reqwest::blocking::multipart::Form::new().text("language", "en");
    assert_error(client.post(&url).multipart(form).send().unwrap(), 400, "missing_file");

    let form = reqwest::blocking::multipart::Form::new()
        .part("file", reqwest::blocking::multipart::Part::bytes(Vec::new()).file_name("empty.wav"));
    assert_error(client.post(&url).multipart(form).send().unwrap(), 400, "empty_file");

    let message = assert_error(appliance.upload(&audio("jfk.wav"), &[("language", "xx")]), 400, "unsupported_language");
    assert!(message.contains("\"xx\""), "{message}");

    let message = assert_error(appliance.upload(&audio("jfk.wav"), &[("language", "de")]), 400, "unsupported_language");
    assert!(message.contains("only understands English"), "{message}");

    let message = assert_error(appliance.upload(&audio("jfk.wav"), &[("translate", "maybe")]), 400, "invalid_request");
    assert!(message.contains("translate must be true or false"), "{message}");
    appliance.assert_temp_empty();
}
