//! Many uploads at once: every one is transcribed, and the jobs beyond the worker wait in the
//! queue, first come first served, instead of sharing the CPU with the running one. (How long that takes against
//! one upload after another is measured in benches/compare.rs, not asserted here.)

use std::time::{Duration, Instant};

use crate::common::{Appliance, audio, reference, wer::wer};

#[test]
fn eight_concurrent_uploads_all_succeed_and_the_ninth_waits_in_the_queue() {
    // Every upload comes from this one client, whose uploads in progress (4) and requests per
    // minute (100) are limited by default; the limits are raised because this test is about
    // the queue, and polls it, not about fairness between clients. Workers stay at their
    // default, one.
    let appliance = Appliance::start(&[
        "--max-concurrent-uploads",
        "9",
        "--max-queued-per-key",
        "9",
        "--rate-limit-per-minute",
        "100000",
    ]);
    let jfk = audio("jfk.wav");
    let submitted: Vec<serde_json::Value> = std::thread::scope(|scope| {
        let uploads: Vec<_> = (0..9)
            .map(|_| {
                scope.spawn(|| {
                    let response = appliance.upload(&jfk, &[]);
                    assert_eq!(response.status(), 202);
                    response.json::<serde_json::Value>().unwrap()
                })
            })
            .collect();
        uploads.into_iter().map(|upload| upload.join().unwrap()).collect()
    });
    let ids: Vec<String> = submitted.iter().map(|job| job["id"].as_str().unwrap().to_owned()).collect();
    let positions: Vec<u64> = submitted.iter().filter_map(|job| job["queue_position"].as_u64()).collect();
    assert!(positions.iter().any(|&p| p >= 1), "some uploads were queued behind others: {positions:?}");

    // Until all are done, the jobs beyond the worker's one wait in the queue.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut most_waiting = 0;
    loop {
        let jobs: Vec<serde_json::Value> = ids.iter().map(|id| appliance.job(id)).collect();
        let count = |status: &str| jobs.iter().filter(|job| job["status"] == status).count();
        assert_eq!(count("failed") + count("cancelled"), 0, "{jobs:?}");
        most_waiting = most_waiting.max(count("queued"));
        if count("done") == ids.len() {
            break;
        }
        assert!(Instant::now() < deadline, "the uploads did not finish: {jobs:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(most_waiting >= 1, "jobs beyond the worker waited in the queue");
    // First come, first served: a job placed further back in the queue did not finish earlier.
    let mut by_place: Vec<(u64, String)> = submitted
        .iter()
        .zip(&ids)
        .map(|(job, id)| {
            (job["queue_position"].as_u64().unwrap_or(0), appliance.job(id)["finished_at"].as_str().unwrap().to_owned())
        })
        .collect();
    by_place.sort();
    assert!(by_place.windows(2).all(|pair| pair[0].1 <= pair[1].1), "{by_place:?}");
    for id in &ids {
        let text = appliance.result(id, "txt");
        assert!(wer(&reference("jfk.wav"), &text) <= 0.05, "{text}");
    }
    appliance.assert_temp_empty();
}
