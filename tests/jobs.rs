//! The job API end to end: upload, follow progress, fetch every format, list, cancel,
//! delete, and the queue's limits.

use std::time::Duration;

use crate::common::{Appliance, assert_error, audio, reference, wer::wer};
use serde_json::Value;

#[test]
fn jfk_through_the_job_api_with_live_events_and_every_format() {
    let appliance = Appliance::start(&[]);
    let id = appliance.submit(&audio("jfk.wav"), &[]);
    let events = appliance.events(&id);

    // In order: queued or running first, the segments, and a final done.
    let names: Vec<&str> = events.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names.first(), Some(&"job"), "{names:?}");
    assert_eq!(names.last(), Some(&"job"), "{names:?}");
    let last = &events.last().unwrap().data;
    assert_eq!(last["status"], "done", "{last}");
    let first_segment = names.iter().position(|n| *n == "segment").expect("segments were streamed");
    let running = events.iter().position(|e| e.name == "job" && e.data["status"] == "running");
    assert!(running.is_none_or(|r| r < first_segment), "{names:?}");
    let streamed: Vec<&str> =
        events.iter().filter(|e| e.name == "segment").map(|e| e.data["text"].as_str().unwrap()).collect();
    assert!(wer(&reference("jfk.wav"), &streamed.join(" ")) <= 0.05, "{streamed:?}");

    let txt = appliance.result(&id, "txt");
    assert!(wer(&reference("jfk.wav"), &txt) <= 0.05, "{txt}");

    let srt = appliance.result(&id, "srt");
    let cue: Vec<&str> = srt.lines().take(3).collect();
    assert_eq!(cue[0], "1");
    assert!(cue[1].starts_with("00:00:00,") && cue[1].contains(" --> 00:00:1"), "{srt}");

    let vtt = appliance.result(&id, "vtt");
    assert!(vtt.starts_with("WEBVTT\n\n00:00:0"), "{vtt}");

    let json: Value = serde_json::from_str(&appliance.result(&id, "json")).unwrap();
    assert_eq!(json["language"], "english");
    assert!((json["duration"].as_f64().unwrap() - 11.0).abs() < 0.1, "{json}");
    assert!(wer(&reference("jfk.wav"), json["text"].as_str().unwrap()) <= 0.05);

    let tsv = appliance.result(&id, "tsv");
    assert!(tsv.starts_with("start\tend\ttext\n0\t"), "{tsv}");

    let response = appliance.client().get(format!("{}/api/jobs/{id}/result?format=srt", appliance.url)).send().unwrap();
    assert_eq!(response.headers()["content-disposition"], "attachment; filename=\"jfk.srt\"; filename*=UTF-8''jfk.srt");
    assert_eq!(response.headers()["cache-control"], "no-store");

    let list: Value = appliance.client().get(format!("{}/api/jobs", appliance.url)).send().unwrap().json().unwrap();
    assert_eq!(list["jobs"][0]["id"], id.as_str());
    appliance.assert_temp_empty();
}

#[test]
fn delete_removes_the_job_and_its_result() {
    let appliance = Appliance::start(&[]);
    let id = appliance.submit(&audio("jfk.wav"), &[]);
    appliance.wait_finished(&id, Duration::from_secs(120));
    let client = appliance.client();
    let deleted = client.delete(format!("{}/api/jobs/{id}", appliance.url)).send().unwrap();
    assert_eq!(deleted.status(), 204);
    assert_error(client.get(format!("{}/api/jobs/{id}", appliance.url)).send().unwrap(), 404, "not_found");
    assert_error(client.get(format!("{}/api/jobs/{id}/result", appliance.url)).send().unwrap(), 404, "not_found");
    appliance.assert_temp_empty();
}

#[test]
fn ids_that_do_not_parse_are_not_found() {
    let appliance = Appliance::start(&[]);
    let client = appliance.client();
    for id in ["nope", "..%2F..%2Fetc%2Fpasswd", "00000000-0000-0000-0000-000000000000"] {
        let response = client.get(format!("{}/api/jobs/{id}", appliance.url)).send().unwrap();
        assert_error(response, 404, "not_found");
    }
}
