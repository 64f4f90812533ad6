//! Shutdown and systemd integration: SIGTERM finishes or re-queues the running job and
//! exits 0; readiness, status, watchdog and stopping reach `NOTIFY_SOCKET`.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::common::{Appliance, audio, long_wav, poll};
use nix::sys::signal::Signal;

#[test]
fn sigterm_past_the_grace_period_requeues_the_job_and_exits_0() {
    let scratch = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let long = long_wav(scratch.path(), 8);
    let mut first = Appliance::start_in(state.path(), &["--shutdown-grace-secs", "1"]);
    let id = first.submit(&long, &[]);
    first.wait_running(&id, Duration::from_secs(60));
    let status = first.stop(Signal::SIGTERM, Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", first.logs());
    assert!(first.logs().contains("goes back to the queue"), "{}", first.logs());
    assert_eq!(first.temp_files().len(), 1, "the re-queued job keeps its upload");

    let second = Appliance::start_in(state.path(), &[]);
    let job = second.wait_finished(&id, Duration::from_secs(300));
    assert_eq!(job["status"], "done", "{job}");
    second.assert_temp_empty();
}

#[test]
fn sigterm_within_the_grace_period_lets_the_job_finish() {
    let state = tempfile::tempdir().unwrap();
    let mut first = Appliance::start_in(state.path(), &["--shutdown-grace-secs", "120"]);
    let id = first.submit(&audio("jfk.wav"), &[]);
    first.wait_running(&id, Duration::from_secs(60));
    let status = first.stop(Signal::SIGINT, Duration::from_secs(120));
    assert_eq!(status.code(), Some(0), "{}", first.logs());
    assert!(first.temp_files().is_empty());

    let second = Appliance::start_in(state.path(), &[]);
    assert_eq!(second.job(&id)["status"], "done");
}

#[test]
fn systemd_hears_ready_status_watchdog_and_stopping() {
    let state = tempfile::tempdir().unwrap();
    let socket_path = state.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut appliance = Appliance::start_with_env(
        state.path(),
        &[],
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap()), ("WATCHDOG_USEC", "1000000")],
    );
    let mut messages = Vec::new();
    // Receives until `done` holds for what has arrived, or fails after a generous deadline.
    let mut receive_until = |what: &str, done: &dyn Fn(&[String]) -> bool| {
        let mut buffer = [0u8; 4096];
        poll(what, Duration::from_secs(60), || {
            if let Ok(length) = socket.recv(&mut buffer) {
                messages.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
            }
            done(&messages).then(|| messages.clone())
        })
    };
    // At WATCHDOG_USEC=1 s the server pings every 0.5 s: two pings show it keeps pinging.
    let received = receive_until("two watchdog pings", &|messages: &[String]| {
        messages.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 2
    });
    let all = received.join("\n");
    assert!(received[0].contains("READY=1"), "{all}");
    assert!(all.contains("STATUS=0 running, 0 queued"), "{all}");

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(appliance.pid() as i32), Signal::SIGTERM).unwrap();
    receive_until("STOPPING=1 after SIGTERM", &|messages: &[String]| messages.iter().any(|m| m.contains("STOPPING=1")));
    let status = appliance.stop(Signal::SIGTERM, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}
