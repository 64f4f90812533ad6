//! The bounded queue and cancellation.

mod common;

use std::time::Duration;

use common::{Appliance, assert_error, audio, long_wav};

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let scratch = tempfile::tempdir().unwrap();
    let long = long_wav(scratch.path(), 20);
    let appliance = Appliance::start(&["--queue-size", "2"]);
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
