//! The OpenAI-compatible API, driven by OpenAI's own Python SDK with `base_url` pointed
//! at the appliance, as users' scripts do.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{Appliance, audio, create_key, reference, test_python, wer::wer};
use serde_json::Value;

/// Starts the appliance with authentication on, as it ships, and makes a user key.
fn appliance_with_key() -> (Appliance, String) {
    let state = tempfile::tempdir().unwrap();
    let key = create_key(state.path(), "sdk", "user");
    let mut appliance = Appliance::start_in(state.path(), &["--auth", "true"]);
    appliance.keep(state);
    (appliance, key)
}

fn sdk(appliance: &Appliance, key: &str, file: &std::path::Path, endpoint: &str, format: &str) -> Value {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openai_client.py");
    let output = Command::new(test_python())
        .arg(script)
        .arg(&appliance.url)
        .arg(key)
        .arg(file)
        .arg(endpoint)
        .arg(format)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("not JSON: {stdout}"))
}

#[test]
fn the_openai_sdk_gets_every_response_format() {
    let (appliance, key) = appliance_with_key();
    let jfk = audio("jfk.wav");
    let expected = reference("jfk.wav");

    let json = sdk(&appliance, &key, &jfk, "transcriptions", "json");
    assert!(wer(&expected, json["ok"]["text"].as_str().unwrap()) <= 0.05, "{json}");

    let text = sdk(&appliance, &key, &jfk, "transcriptions", "text");
    assert!(wer(&expected, text["ok"].as_str().unwrap()) <= 0.05, "{text}");

    let verbose = sdk(&appliance, &key, &jfk, "transcriptions", "verbose_json");
    let verbose = &verbose["ok"];
    assert_eq!(verbose["language"], "english", "{verbose}");
    assert!((verbose["duration"].as_f64().unwrap() - 11.0).abs() < 0.1, "{verbose}");
    let segments = verbose["segments"].as_array().unwrap();
    assert!(!segments.is_empty() && segments[0]["start"] == 0.0, "{verbose}");
    assert!(wer(&expected, verbose["text"].as_str().unwrap()) <= 0.05);

    let srt = sdk(&appliance, &key, &jfk, "transcriptions", "srt");
    let srt = srt["ok"].as_str().unwrap();
    assert!(srt.starts_with("1\n00:00:00,000 --> "), "{srt}");

    let vtt = sdk(&appliance, &key, &jfk, "transcriptions", "vtt");
    assert!(vtt["ok"].as_str().unwrap().starts_with("WEBVTT\n\n00:00:00.000 --> "), "{vtt}");

    // Synchronous requests still show up as ordinary jobs of that key, and leave no upload behind.
    let jobs: Value =
        appliance.client().get(format!("{}/api/jobs", appliance.url)).bearer_auth(&key).send().unwrap().json().unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 5);
    appliance.assert_temp_empty();
}

#[test]
fn the_openai_sdk_sees_errors_in_openai_shape() {
    let (appliance, key) = appliance_with_key();
    let scratch = tempfile::tempdir().unwrap();
    let png = scratch.path().join("picture.mp3");
    // A real PNG signature and header, named like audio.
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89").unwrap();
    let error = sdk(&appliance, &key, &png, "transcriptions", "json");
    assert_eq!(error["error"]["status"], 415, "{error}");
    assert_eq!(error["error"]["code"], "unsupported_media_type");
    assert!(error["error"]["message"].as_str().unwrap().contains("an image (PNG)"), "{error}");

    let error = sdk(&appliance, "wa_not-a-real-key", &audio("jfk.wav"), "transcriptions", "json");
    assert_eq!(error["error"]["status"], 401, "{error}");
    assert_eq!(error["error"]["code"], "invalid_api_key");

    // tiny.en cannot translate: a clear 400, not a wrong answer.
    let error = sdk(&appliance, &key, &audio("jfk.wav"), "translations", "json");
    assert_eq!(error["error"]["status"], 400, "{error}");
    assert_eq!(error["error"]["code"], "translation_unavailable");
    appliance.assert_temp_empty();
}

#[test]
fn models_lists_whisper_1_and_the_loaded_model() {
    let appliance = Appliance::start(&[]);
    let models: Value = appliance.client().get(format!("{}/v1/models", appliance.url)).send().unwrap().json().unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["whisper-1", "tiny.en"]);
    assert_eq!(models["object"], "list");
}
