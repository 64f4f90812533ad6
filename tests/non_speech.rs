//! Sound that is not speech gives no text, says so (`no_speech`), and never invents words or
//! "[BLANK_AUDIO]" and "(music)" markers.
//!
//! Through the `transcribe` command with tiny.en and the Silero speech detector beside it, on
//! sounds made by `tests/fixtures/make-audio.sh`: digital silence, faint hiss, loud white,
//! pink and brown noise, a steady tone, mains hum, plucked chords from sox, applause-like
//! bursts of noise and 30 s of a wordless melody. Speech at any level is speech_detection.rs's.
//!
//! The detector finds no speech in any of them, so whisper never sees them; with detection
//! off (`--no-vad`) whisper's own guards and the non-speech filter must still hold for the
//! noises, which is what the last test checks.

use std::process::Command;

use crate::common::{BINARY, TEST_THREADS, fixture, model};
use serde_json::Value;

/// `transcribe --model <tiny.en> <args>`: exit code, stdout, stderr.
fn transcribe(args: &[&std::ffi::OsStr], rust_log: Option<&str>) -> (Option<i32>, String, String) {
    let mut command = Command::new(BINARY);
    command.arg("transcribe").arg("--model").arg(model()).args(args).env(TEST_THREADS.0, TEST_THREADS.1);
    match rust_log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    let output = command.output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (output.status.code(), String::from_utf8(output.stdout).unwrap(), stderr)
}

#[test]
fn digital_silence_prints_nothing_and_never_reaches_whisper() {
    // whisper.cpp logs "whisper_init_state" when a transcription makes its state; the
    // speech detector must answer before that, so silence costs no model time.
    let (code, stdout, stderr) =
        transcribe(&[fixture("silence_5s.wav").as_os_str()], Some("whisper_rs=info,whisper_appliance=warn"));
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "", "silence is an empty transcript");
    assert!(stderr.contains("whisper_model_load"), "the log filter shows whisper.cpp: {stderr}");
    assert!(!stderr.contains("whisper_init_state"), "whisper ran on digital silence: {stderr}");

    // The same log on speech does show it, so the check above can fail.
    let (code, _, stderr) =
        transcribe(&[fixture("jfk.flac").as_os_str()], Some("whisper_rs=info,whisper_appliance=warn"));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("whisper_init_state"), "{stderr}");
}

#[test]
fn noise_tones_and_music_give_empty_transcripts_that_say_no_speech() {
    let sounds = [
        "silence_5s",
        "hiss",
        "white_noise",
        "pink_noise",
        "brown_noise",
        "tone_1khz",
        "hum",
        "chords",
        "applause",
        "music",
    ]
    .map(|name| {
        let path = fixture(&format!("{name}.wav"));
        (name, path)
    });
    let scratch = tempfile::tempdir().unwrap();
    let mut args = vec!["--format".as_ref(), "json".as_ref(), "--output-dir".as_ref(), scratch.path().as_os_str()];
    args.extend(sounds.iter().map(|(_, path)| path.as_os_str()));
    let (code, stdout, stderr) = transcribe(&args, None);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""));
    for (name, _) in &sounds {
        let json: Value =
            serde_json::from_str(&std::fs::read_to_string(scratch.path().join(format!("{name}.json"))).unwrap())
                .unwrap();
        // The whole result, so any segment whisper wrote (words or markers) shows in the failure.
        assert_eq!(json["text"], "", "{name}: {json}");
        assert_eq!(json["segments"], Value::Array(Vec::new()), "{name}: {json}");
        assert_eq!(json["no_speech"], true, "{name}: {json}");
        assert!(json["duration"].as_f64().unwrap() >= 5.0, "{name}: the length is still reported: {json}");
    }
}

#[test]
fn without_the_detector_whisper_still_invents_nothing_for_noise() {
    let sounds = ["white_noise", "tone_1khz", "music"].map(|name| fixture(&format!("{name}.wav")));
    let mut args = vec!["--no-vad".as_ref(), "--format".as_ref(), "json".as_ref()];
    for sound in &sounds {
        args.truncate(3);
        args.push(sound.as_os_str());
        let (code, stdout, stderr) = transcribe(&args, Some("whisper_rs=info,whisper_appliance=warn"));
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stderr.contains("whisper_init_state"), "--no-vad gives whisper the recording: {stderr}");
        let json: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!((json["text"].as_str(), &json["speech_duration"]), (Some(""), &Value::Null), "{json}");
    }
}
