//! Audio formats over HTTP: every format people upload becomes a job that transcribes to
//! the reference, and every file that is not usable audio gets its own 4xx JSON error from
//! `POST /api/jobs`, with nothing left in the upload folder afterwards.
//!
//! The files are jfk.wav in other containers and codecs, and damaged or wrong files, all
//! made by `tests/fixtures/make-audio.sh`; `tests/transcribe.rs` puts the same files through
//! the command line.

use std::path::PathBuf;
use std::time::Duration;

use crate::common::wer::{wer, words};
use crate::common::{Appliance, assert_error, fixture, jfk_variants, reference};
use serde_json::Value;

/// Long enough for a queue of jfk jobs on a busy two-core machine; not a speed check.
const WAIT: Duration = Duration::from_secs(900);

#[test]
fn every_audio_format_transcribes_through_the_job_api() {
    let files = jfk_variants();
    let appliance = Appliance::start(&[]);
    // All queued at once, as a user dropping a folder on the page would.
    let ids: Vec<(PathBuf, String)> =
        files.into_iter().map(|file| (file.clone(), appliance.submit(&file, &[]))).collect();
    let jfk = reference("jfk.wav");
    for (file, id) in &ids {
        let name = file.file_name().unwrap().to_string_lossy();
        let job = appliance.wait_finished(id, WAIT);
        assert_eq!(job["status"], "done", "{name}: {job}");
        assert_eq!(job["file_name"], name.as_ref(), "{job}");
        assert_eq!(job["language"], "en", "{name}: {job}");
        // 11.0 s; AAC keeps up to 64 ms of encoder priming (see src/audio/mod.rs).
        let seconds = job["duration_seconds"].as_f64().unwrap();
        assert!((seconds - 11.0).abs() < 0.1, "{name}: {seconds} s");
        let text = appliance.result(id, "txt");
        let error = wer(&jfk, &text);
        eprintln!("{name}: WER {:.1}%", error * 100.0);
        assert!(error <= 0.05, "{name}: WER {error:.3}: {text}");
    }
    appliance.assert_temp_empty();
}

#[test]
fn files_that_are_not_usable_audio_get_their_own_4xx() {
    let appliance = Appliance::start(&[]);
    let cases = [
        ("empty.wav", 400, "empty_file", "the file is empty"),
        ("text.wav", 415, "unsupported_media_type", "(looks like plain text)"),
        ("image.mp3", 415, "unsupported_media_type", "(looks like an image (PNG))"),
        ("document.m4a", 415, "unsupported_media_type", "(looks like a document (PDF))"),
        ("video_only.mp4", 415, "unsupported_media_type", "this mp4 file has no audio track"),
        ("ac3.mkv", 415, "unsupported_media_type", "AC-3 (Dolby Digital), which we cannot decode"),
        ("rate_zero.wav", 415, "unsupported_media_type", "claims a sample rate of 0 Hz"),
    ];
    for (name, status, code, says) in cases {
        let message = assert_error(appliance.upload(&fixture(name), &[]), status, code);
        assert!(message.contains(says), "{name}: {message}");
        // Refused before a job exists, and the upload is gone with the refusal.
        appliance.assert_temp_empty();
    }
    let list: Value = appliance.client().get(format!("{}/api/jobs", appliance.url)).send().unwrap().json().unwrap();
    assert_eq!(list["jobs"], Value::Array(Vec::new()), "no refused upload became a job");
}

#[test]
fn damaged_but_audible_files_and_silence_are_accepted() {
    let appliance = Appliance::start(&[]);
    let truncated = appliance.submit(&fixture("truncated.mp3"), &[]);
    let lying = appliance.submit(&fixture("lying_riff_size.wav"), &[]);
    let silence = appliance.submit(&fixture("silence_5s.wav"), &[]);
    for id in [&truncated, &lying, &silence] {
        let job = appliance.wait_finished(id, WAIT);
        assert_eq!(job["status"], "done", "{job}");
    }
    // The first 10 KB of jfk.mp3: about 1.2 s, whose opening words are transcribed.
    let text = words(&appliance.result(&truncated, "txt"));
    assert!(text.len() <= 5 && text.starts_with(&["and".to_owned(), "so".to_owned()]), "{text:?}");
    let seconds = appliance.job(&truncated)["duration_seconds"].as_f64().unwrap();
    assert!((1.0..1.5).contains(&seconds), "the decoded part's length: {seconds} s");
    // A header that claims 2 GB: all 11 s that are there.
    let text = appliance.result(&lying, "txt");
    assert!(wer(&reference("jfk.wav"), &text) <= 0.05, "{text}");
    assert!((appliance.job(&lying)["duration_seconds"].as_f64().unwrap() - 11.0).abs() < 0.01);
    // Silence: done, with an empty transcript in every format.
    assert_eq!(appliance.result(&silence, "txt"), "");
    assert_eq!(appliance.result(&silence, "srt"), "");
    let json: Value = serde_json::from_str(&appliance.result(&silence, "json")).unwrap();
    assert_eq!((&json["text"], &json["segments"]), (&Value::from(""), &Value::Array(Vec::new())), "{json}");
    appliance.assert_temp_empty();
}
