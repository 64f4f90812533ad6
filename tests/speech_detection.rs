//! The speech detector decides what is transcribed: speech at any level and in noise is,
//! pauses in a meeting are skipped with every time still true to the recording, words are
//! timed, and `vad=false` gives whisper the whole recording.
//!
//! Through the `transcribe` command and both HTTP APIs with tiny.en and the Silero model
//! beside it (`.ci/setup` imports both into models/), on variants that
//! `tests/fixtures/make-audio.sh` makes: jfk.wav 40 dB down, 18 dB up and clipped, over room
//! rumble, over mains hum, and as 8 kHz telephone audio; five sentences of the Columbia
//! address (22.8 s) 40 dB down;
//! and a 44.8 s meeting of jfk.wav and the Columbia address's first five sentences with
//! pauses and pink noise at about -55 dBFS under everything.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::wer::wer;
use crate::common::{Appliance, BINARY, TEST_THREADS, audio, fixture, model, reference};
use serde_json::Value;

/// Where make-audio.sh places speech in meeting.wav: jfk.wav's first word, and the Columbia
/// sentences' first words (their times in the address, less 0.6 s cut, plus 19.0 s).
const MEETING_JFK_MS: u64 = 2_330;
const MEETING_COLUMBIA_MS: u64 = 19_410;
/// The pause between them: jfk.wav's last word ends at about 12.6 s in the meeting.
const MEETING_PAUSE_MS: (u64, u64) = (12_700, 19_400);
/// One WER point: the most the quiet Columbia address (45 words) may lose against the original.
const ONE_POINT: f64 = 0.01;
/// One word of jfk.wav's 22: the most a variant of it may lose against the original. Less
/// would ask for a perfect transcript of 8 kHz telephone audio, where tiny.en hears
/// "America" for "Americans" (the final s lies above the 4 kHz a telephone line carries).
const ONE_JFK_WORD: f64 = 1.0 / 22.0;

/// The Columbia address's first five sentences, as meeting.wav and columbia_part.wav hold them.
fn columbia_part_reference() -> String {
    let text = reference("columbia_address_2003.flac");
    let end = text.find("survivors.").expect("the reference has the fifth sentence") + "survivors.".len();
    text[..end].to_owned()
}

/// `transcribe --format json` of several files in one run (one model load): their JSON.
fn transcribe_json(files: &[PathBuf], extra: &[&str]) -> Vec<Value> {
    let out = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(BINARY)
        .arg("transcribe")
        .arg("--model")
        .arg(model())
        .args(["--format", "json", "--output-dir"])
        .arg(out.path())
        .args(extra)
        .args(files)
        .env(TEST_THREADS.0, TEST_THREADS.1)
        .env_remove("RUST_LOG")
        .env_remove("WHISPER_APPLIANCE_THREADS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    files
        .iter()
        .map(|file| {
            let stem = file.file_stem().unwrap().to_string_lossy();
            let text = std::fs::read_to_string(out.path().join(format!("{stem}.json"))).unwrap();
            serde_json::from_str(&text).unwrap()
        })
        .collect()
}

fn text(json: &Value) -> &str {
    json["text"].as_str().unwrap()
}

#[test]
fn speech_at_any_level_and_in_noise_is_transcribed_by_the_command() {
    let jfk = reference("jfk.wav");
    let columbia = columbia_part_reference();
    let variants = ["quiet_40db.wav", "loud_clipped.wav", "room_noise.wav", "with_hum.wav", "telephone_8k.wav"];
    let mut files = vec![audio("jfk.wav"), fixture("columbia_part.wav"), fixture("columbia_part_quiet_40db.wav")];
    files.extend(variants.iter().map(|name| fixture(name)));
    let results = transcribe_json(&files, &[]);

    let original = wer(&jfk, text(&results[0]));
    let long_original = wer(&columbia, text(&results[1]));
    let long_quiet = wer(&columbia, text(&results[2]));
    eprintln!(
        "jfk.wav: WER {:.1}%; Columbia {:.1}%, 40 dB down {:.1}%",
        original * 100.0,
        long_original * 100.0,
        long_quiet * 100.0
    );
    assert!(long_quiet <= long_original + ONE_POINT, "the quiet Columbia address: {}", text(&results[2]));
    for (name, result) in variants.iter().zip(&results[3..]) {
        let error = wer(&jfk, text(result));
        eprintln!("{name}: WER {:.1}%", error * 100.0);
        assert!(error <= original + ONE_JFK_WORD, "{name}: WER {error:.3} against {original:.3}: {result}");
        assert_eq!(result["no_speech"], false, "{name}");
        let speech = result["speech_duration"].as_f64().unwrap();
        assert!((8.0..=11.0).contains(&speech), "{name}: {speech} s of speech found in 11 s: {result}");
    }
}

/// `POST /v1/audio/transcriptions` with form fields; the response body.
fn openai(appliance: &Appliance, file: &Path, fields: &[(&str, &str)]) -> String {
    let mut form = reqwest::blocking::multipart::Form::new().file("file", file).unwrap();
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    let response =
        appliance.client().post(format!("{}/v1/audio/transcriptions", appliance.url)).multipart(form).send().unwrap();
    let status = response.status();
    let body = response.text().unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// A job through the job API: its JSON once finished, and its `json` result.
fn job(appliance: &Appliance, file: &Path, fields: &[(&str, &str)]) -> (Value, Value) {
    let id = appliance.submit(file, fields);
    let job = appliance.wait_finished(&id, Duration::from_secs(600));
    assert_eq!(job["status"], "done", "{job}");
    (job, serde_json::from_str(&appliance.result(&id, "json")).unwrap())
}

#[test]
fn both_apis_transcribe_quiet_speech_and_say_when_nothing_was_said() {
    let appliance = Appliance::start(&[]);
    let jfk = reference("jfk.wav");
    let (_, original) = job(&appliance, &audio("jfk.wav"), &[]);
    let original = wer(&jfk, text(&original));

    let (quiet_job, quiet) = job(&appliance, &fixture("quiet_40db.wav"), &[]);
    assert!(wer(&jfk, text(&quiet)) <= original + ONE_JFK_WORD, "{quiet}");
    assert_eq!(quiet_job["no_speech"], false, "{quiet_job}");
    assert!(quiet_job["speech_seconds"].as_f64().unwrap() > 8.0, "{quiet_job}");
    let telephone: Value =
        serde_json::from_str(&openai(&appliance, &fixture("telephone_8k.wav"), &[("response_format", "verbose_json")]))
            .unwrap();
    assert!(wer(&jfk, text(&telephone)) <= original + ONE_JFK_WORD, "{telephone}");
    let loud = openai(&appliance, &fixture("loud_clipped.wav"), &[("response_format", "text")]);
    assert!(wer(&jfk, &loud) <= original + ONE_JFK_WORD, "{loud}");

    // Nothing said: an empty text that says so, in the job, its result and OpenAI's shape.
    for name in ["hum.wav", "applause.wav"] {
        let (job, result) = job(&appliance, &fixture(name), &[]);
        assert_eq!((job["no_speech"].clone(), result["no_speech"].clone()), (Value::Bool(true), Value::Bool(true)));
        assert_eq!((text(&result), result["segments"].as_array().unwrap().len()), ("", 0), "{name}: {result}");
        let page = appliance.client().get(format!("{}{}", appliance.url, job["links"]["page"].as_str().unwrap()));
        let page = page.send().unwrap().text().unwrap();
        assert!(page.contains("No speech found in 00:10 of audio"), "{name}: the page says so: {page}");
    }
    let silence: Value =
        serde_json::from_str(&openai(&appliance, &fixture("silence_5s.wav"), &[("response_format", "verbose_json")]))
            .unwrap();
    assert_eq!(
        (text(&silence), &silence["no_speech"], &silence["speech_duration"]),
        ("", &Value::Bool(true), &0.0.into())
    );
}

/// Every word of a `json` result, checked to be in order and inside its segment.
fn checked_words(result: &Value) -> Vec<(f64, f64, String)> {
    let mut words = Vec::new();
    let mut last_end = 0.0;
    for segment in result["segments"].as_array().unwrap() {
        let (start, end) = (segment["start"].as_f64().unwrap(), segment["end"].as_f64().unwrap());
        for word in segment["words"].as_array().unwrap() {
            let (w_start, w_end) = (word["start"].as_f64().unwrap(), word["end"].as_f64().unwrap());
            assert!(start <= w_start && w_start <= w_end && w_end <= end, "{word} outside {segment}");
            assert!(w_start >= last_end, "{word} starts before the word before it ends ({last_end})");
            last_end = w_end;
            words.push((w_start, w_end, word["word"].as_str().unwrap().to_owned()));
        }
    }
    words
}

#[test]
fn a_meeting_keeps_its_words_and_times_and_vad_false_turns_detection_off() {
    let appliance = Appliance::start(&[]);
    let meeting = fixture("meeting.wav");
    let expected = format!("{} {}", reference("jfk.wav"), columbia_part_reference());
    let (_, jfk_alone) = job(&appliance, &audio("jfk.wav"), &[]);
    let (_, columbia_alone) = job(&appliance, &fixture("columbia_part.wav"), &[]);
    let parts = wer(&expected, &format!("{} {}", text(&jfk_alone), text(&columbia_alone)));

    let (job_view, result) = job(&appliance, &meeting, &[("words", "true")]);
    let together = wer(&expected, text(&result));
    eprintln!("meeting: WER {:.1}%, its parts alone {:.1}%; {job_view}", together * 100.0, parts * 100.0);
    assert!(together <= parts + ONE_POINT, "{result}");
    let speech = job_view["speech_seconds"].as_f64().unwrap();
    assert!(speech < 40.0, "the pauses were skipped: {speech} s of speech in 44.8 s");

    // Each part's first segment starts where it was placed, on the original timeline.
    let starts: Vec<u64> =
        result["segments"].as_array().unwrap().iter().map(|s| (s["start"].as_f64().unwrap() * 1000.0) as u64).collect();
    for placed in [MEETING_JFK_MS, MEETING_COLUMBIA_MS] {
        let first = starts.iter().copied().find(|&start| start + 1_000 >= placed).unwrap();
        assert!(first.abs_diff(placed) <= 500, "placed at {placed} ms, first segment at {first} ms: {starts:?}");
    }

    // Words: in order, inside their segments, and the pause between the parts is a gap.
    let words = checked_words(&result);
    let before = words.iter().rfind(|w| w.1 * 1000.0 <= MEETING_PAUSE_MS.0 as f64 + 500.0).unwrap();
    let after = words.iter().find(|w| w.0 * 1000.0 >= MEETING_PAUSE_MS.0 as f64 + 500.0).unwrap();
    assert!(after.0 - before.1 >= 5.0, "no gap for the pause between {before:?} and {after:?}");

    // OpenAI's word list: the same words, in one list.
    let openai: Value = serde_json::from_str(&openai(
        &appliance,
        &meeting,
        &[("response_format", "verbose_json"), ("timestamp_granularities[]", "word")],
    ))
    .unwrap();
    let listed: Vec<&str> = openai["words"].as_array().unwrap().iter().map(|w| w["word"].as_str().unwrap()).collect();
    assert_eq!(listed, checked_words(&openai).iter().map(|w| w.2.as_str()).collect::<Vec<_>>());
    assert!(listed.len() >= 60, "{openai}");

    // vad=false: whisper gets the whole recording; nothing is reported as detected, and the
    // transcript spans the pause as whisper places it.
    let (off_view, off) = job(&appliance, &meeting, &[("vad", "false")]);
    assert_eq!(
        (&off_view["vad"], &off_view["speech_seconds"], &off["speech_duration"]),
        (&Value::Bool(false), &Value::Null, &Value::Null)
    );
    let segments = off["segments"].as_array().unwrap();
    let (first, last) = (segments.first().unwrap(), segments.last().unwrap());
    assert!(first["start"].as_f64().unwrap() * 1000.0 < MEETING_PAUSE_MS.0 as f64, "{off}");
    assert!(last["end"].as_f64().unwrap() * 1000.0 > MEETING_PAUSE_MS.1 as f64, "{off}");
    let bad = appliance.upload(&meeting, &[("vad", "maybe")]);
    crate::common::assert_error(bad, 400, "invalid_request");
}
