//! The bounded queue, fair between keys, and cancellation.

use std::time::Duration;

use crate::common::{Appliance, assert_error, audio, create_key, long_wav};

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let scratch = tempfile::tempdir().unwrap();
    let long = long_wav(scratch.path(), 20);
    let appliance = Appliance::start(&["--queue-size", "2", "--max-queued-per-key", "2"]);
    let running = appliance.submit(&long, &[]);
    appliance.wait_running(&running, Duration::from_secs(60));
    let second = appliance.submit(&audio("jfk.wav"), &[]);
    let third = appliance.submit(&audio("jfk.wav"), &[]);
    assert_eq!(appliance.job(&second)["queue_position"], 1);
    assert_eq!(appliance.job(&third)["queue_position"], 2);

    let response = appliance.upload(&audio("jfk.wav"), &[]);
    assert_eq!(response.headers()["retry-after"], "30");
    let message = assert_error(response, 503, "queue_full");
    assert!(message.contains("queue is full"), "{message}");

    // Cancelling a queued job frees its place and moves the others up.
    let cancelled = appliance.client().post(format!("{}/api/jobs/{second}/cancel", appliance.url)).send().unwrap();
    assert_eq!(cancelled.status(), 200);
    assert_eq!(appliance.job(&second)["status"], "cancelled");
    assert_eq!(appliance.job(&third)["queue_position"], 1);
    appliance.submit(&audio("jfk.wav"), &[]);

    let stop = appliance.client().post(format!("{}/api/jobs/{running}/cancel", appliance.url)).send().unwrap();
    assert_eq!(stop.status(), 200);
}

#[test]
fn cancelling_a_running_job_stops_it_and_removes_its_upload() {
    let scratch = tempfile::tempdir().unwrap();
    let long = long_wav(scratch.path(), 20);
    let appliance = Appliance::start(&[]);
    let id = appliance.submit(&long, &[]);
    appliance.wait_running(&id, Duration::from_secs(60));
    assert_eq!(appliance.temp_files().len(), 1, "the running job's upload is on disk");

    let response = appliance.client().post(format!("{}/api/jobs/{id}/cancel", appliance.url)).send().unwrap();
    assert_eq!(response.status(), 200);
    let job: serde_json::Value = response.json().unwrap();
    // The answer waits for the worker to stop: the job is over when it comes, not later.
    assert_eq!(job["status"], "cancelled", "{job}");
    appliance.assert_temp_empty();

    // A cancelled job has no transcript and cannot be cancelled again.
    let client = appliance.client();
    assert_error(client.get(format!("{}/api/jobs/{id}/result", appliance.url)).send().unwrap(), 409, "job_not_done");
    assert_error(client.post(format!("{}/api/jobs/{id}/cancel", appliance.url)).send().unwrap(), 409, "job_finished");
}

#[test]
fn one_keys_burst_leaves_room_and_the_next_turn_for_another_key() {
    let scratch = tempfile::tempdir().unwrap();
    let long = long_wav(scratch.path(), 20);
    let state = tempfile::tempdir().unwrap();
    let alice = create_key(state.path(), "alice", "user");
    let bob = create_key(state.path(), "bob", "user");
    let admin = create_key(state.path(), "admin", "admin");
    let mut appliance = Appliance::start_in(
        state.path(),
        &["--auth", "true", "--queue-size", "3", "--max-queued-per-key", "2", "--rate-limit-per-minute", "100000"],
    );
    appliance.keep(state);
    // The fixture's own polling sees every job.
    appliance.use_key(&admin);
    let upload = |key: &str, file: &std::path::Path| {
        let form = reqwest::blocking::multipart::Form::new().file("file", file).unwrap();
        appliance.client().post(format!("{}/api/jobs", appliance.url)).bearer_auth(key).multipart(form).send().unwrap()
    };
    let accepted = |response: reqwest::blocking::Response| {
        assert_eq!(response.status(), 202);
        response.json::<serde_json::Value>().unwrap()
    };
    let running = accepted(upload(&alice, &long))["id"].as_str().unwrap().to_owned();
    appliance.wait_running(&running, Duration::from_secs(60));
    // Alice fills her share of the queue; her next upload is refused by her own limit.
    let alice_queued: Vec<String> =
        (0..2).map(|_| accepted(upload(&alice, &audio("jfk.wav")))["id"].as_str().unwrap().to_owned()).collect();
    let message = assert_error(upload(&alice, &audio("jfk.wav")), 429, "too_many_queued");
    assert!(message.contains("2 jobs waiting"), "{message}");
    // Bob still gets in, and runs next: Alice's turn was the running job.
    let bob_job = accepted(upload(&bob, &audio("jfk.wav")));
    assert_eq!(bob_job["queue_position"], 1, "{bob_job}");
    assert_eq!(appliance.job(&alice_queued[0])["queue_position"], 2);
    assert_eq!(appliance.job(&alice_queued[1])["queue_position"], 3);
    // Now the whole queue is full, which is a different refusal.
    let message = assert_error(upload(&bob, &audio("jfk.wav")), 503, "queue_full");
    assert!(message.contains("queue is full"), "{message}");

    let stop = appliance.client().post(format!("{}/api/jobs/{running}/cancel", appliance.url)).send().unwrap();
    assert_eq!(stop.status(), 200);
    let bob_id = bob_job["id"].as_str().unwrap();
    let bob_done = appliance.wait_finished(bob_id, Duration::from_secs(120));
    let alice_first = appliance.wait_finished(&alice_queued[0], Duration::from_secs(120));
    assert!(bob_done["started_at"].as_str() <= alice_first["started_at"].as_str(), "{bob_done} {alice_first}");
}
