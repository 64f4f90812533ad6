//! Nothing is lost and nothing is left: `kill -9` mid-job, then start again.

use std::time::Duration;

use crate::common::{Appliance, audio, long_wav, reference, wer::wer};
use nix::sys::signal::Signal;

#[test]
fn a_job_interrupted_by_kill_9_is_requeued_and_finishes_after_restart() {
    let scratch = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let long = long_wav(scratch.path(), 12);

    let mut first = Appliance::start_in(state.path(), &[]);
    let interrupted = first.submit(&long, &[]);
    let waiting = first.submit(&audio("jfk.wav"), &[]);
    first.wait_running(&interrupted, Duration::from_secs(60));
    // A half-received upload of a client that the crash cut off.
    std::fs::write(first.temp_dir().join("0193aaaa0000700080000000000000aa.partial"), b"half").unwrap();
    first.stop(Signal::SIGKILL, Duration::from_secs(5));

    let second = Appliance::start_in(state.path(), &[]);
    let job = second.wait_finished(&interrupted, Duration::from_secs(300));
    assert_eq!(job["status"], "done", "{job}");
    let text = second.result(&interrupted, "txt");
    assert!(wer(&reference("jfk.wav").repeat(12), &text) < 0.15, "{text}");
    let job = second.wait_finished(&waiting, Duration::from_secs(60));
    assert_eq!(job["status"], "done", "{job}");
    second.assert_temp_empty();
}

#[test]
fn a_job_whose_upload_vanished_fails_with_the_reason() {
    let scratch = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let long = long_wav(scratch.path(), 12);
    let mut first = Appliance::start_in(state.path(), &[]);
    let id = first.submit(&long, &[]);
    first.wait_running(&id, Duration::from_secs(60));
    first.stop(Signal::SIGKILL, Duration::from_secs(5));
    for file in std::fs::read_dir(state.path().join("uploads")).unwrap() {
        std::fs::remove_file(file.unwrap().path()).unwrap();
    }

    let second = Appliance::start_in(state.path(), &[]);
    let job = second.job(&id);
    assert_eq!(job["status"], "failed", "{job}");
    assert!(job["error"].as_str().unwrap().contains("upload was lost"), "{job}");
}
