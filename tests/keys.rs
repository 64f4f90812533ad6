//! The `keys` command against the real binary: through a running server's control socket
//! (a change works at once, with no wait), on the database itself when no server runs, and
//! the move of an earlier version's `keys.sled` into the server's database.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{Appliance, BINARY, assert_error, create_key, poll};
use serde_json::json;
use sha2::{Digest as _, Sha256};

/// Runs `whisper-appliance keys ARGS` on a state directory.
fn keys(state_dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(BINARY)
        .arg("keys")
        .args(args)
        .args(["--config", "/dev/null", "--state-dir"])
        .arg(state_dir)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"), "{output:?}");
    output
}

fn jobs_status(appliance: &Appliance, key: &str) -> u16 {
    let response = appliance.client().get(format!("{}/api/jobs", appliance.url)).bearer_auth(key).send().unwrap();
    response.status().as_u16()
}

/// Waits for a line of the server's log (its output is read on another thread).
fn wait_for_log(appliance: &Appliance, text: &str) {
    poll(&format!("the log says {text}"), Duration::from_secs(10), || appliance.logs().contains(text).then_some(()));
}

#[test]
fn keys_made_listed_and_revoked_while_the_server_runs_go_through_its_socket_and_work_at_once() {
    let state = tempfile::tempdir().unwrap();
    // No server yet: the command opens the database itself.
    let ops = create_key(state.path(), "ops", "admin");
    let mut appliance = Appliance::start_in(state.path(), &["--auth", "true"]);
    assert_eq!(jobs_status(&appliance, &ops), 200, "a key made with the server stopped works once it starts");

    let socket = state.path().join("control.sock");
    let meta = std::fs::metadata(&socket).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "the socket is its owner's alone");
    assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());

    // Made through the server: it works on the very next request.
    let alice = create_key(state.path(), "alice", "user");
    assert_eq!(jobs_status(&appliance, &alice), 200);
    wait_for_log(&appliance, "\"event\":\"control request\"");
    wait_for_log(&appliance, "\"via\":\"control socket\"");

    let listed = keys(state.path(), &["list"]);
    assert!(listed.status.success(), "{listed:?}");
    let table = String::from_utf8(listed.stdout).unwrap();
    let names: Vec<&str> = table.lines().skip(1).filter_map(|line| line.split_whitespace().nth(1)).collect();
    assert_eq!(names, ["ops", "alice"], "{table}");
    assert!(!table.contains(&alice) && !table.contains(&ops), "never the keys themselves");
    let used = table.lines().find(|line| line.contains(" alice ")).unwrap();
    assert_eq!(used.split_whitespace().nth(4).map(|last| last != "-"), Some(true), "last use shown: {table}");

    // The server's refusals come back as the command's error.
    let taken = keys(state.path(), &["create", "--name", "alice"]);
    assert!(!taken.status.success());
    let stderr = String::from_utf8_lossy(&taken.stderr);
    assert!(stderr.contains("already named \"alice\""), "{stderr}");
    assert!(taken.stdout.is_empty());

    // Revoked through the server: refused on the very next request.
    let revoked = keys(state.path(), &["revoke", "alice"]);
    assert!(revoked.status.success(), "{revoked:?}");
    assert!(String::from_utf8_lossy(&revoked.stderr).contains("refused from now on"));
    assert_error(
        appliance.client().get(format!("{}/api/jobs", appliance.url)).bearer_auth(&alice).send().unwrap(),
        401,
        "revoked_api_key",
    );
    wait_for_log(&appliance, "\"event\":\"key revoked\"");

    // A clean stop removes the socket; the command then works on the database itself.
    assert!(appliance.stop(nix::sys::signal::SIGTERM, Duration::from_secs(30)).success());
    assert!(!socket.exists(), "the socket is removed on a clean stop");
    let bob = create_key(state.path(), "bob", "user");
    let offline = String::from_utf8(keys(state.path(), &["list"]).stdout).unwrap();
    assert!(offline.contains(" bob "), "{offline}");

    let mut again = Appliance::start_in(state.path(), &["--auth", "true"]);
    assert_eq!(jobs_status(&again, &bob), 200);
    assert_eq!(jobs_status(&again, &alice), 401, "still revoked after a restart");
    again.keep(state);
}

#[test]
fn a_socket_left_by_a_killed_server_is_replaced_at_start() {
    let state = tempfile::tempdir().unwrap();
    let mut killed = Appliance::start_in(state.path(), &["--auth", "true"]);
    killed.stop(nix::sys::signal::SIGKILL, Duration::from_secs(30));
    let socket = state.path().join("control.sock");
    assert!(socket.exists(), "SIGKILL leaves the socket file behind");
    // Nothing listens on it (ECONNREFUSED): the command opens the database itself.
    let offline = create_key(state.path(), "while-down", "user");

    let mut appliance = Appliance::start_in(state.path(), &["--auth", "true"]);
    assert_eq!(jobs_status(&appliance, &offline), 200);
    let key = create_key(state.path(), "after-crash", "user");
    assert_eq!(jobs_status(&appliance, &key), 200);
    wait_for_log(&appliance, "\"event\":\"control request\"");
    appliance.keep(state);
}

#[test]
fn a_database_held_with_no_server_answering_is_an_error_naming_the_state_dir() {
    let state = tempfile::tempdir().unwrap();
    // This test's process holds the database, and no control socket exists.
    let held = sled::open(state.path().join("jobs.sled")).unwrap();
    let output = keys(state.path(), &["create", "--name", "nobody-home"]);
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("cannot reach the keys in {}", state.path().display())), "{stderr}");
    assert!(stderr.contains("no server answers on its control socket"), "{stderr}");
    assert!(stderr.contains("caused by: No such file or directory"), "the socket's side of it: {stderr}");
    drop(held);
}

/// A key record as versions before the control socket stored it in `keys.sled`.
fn legacy_record(name: &str, key: &str, revoked: bool) -> (String, Vec<u8>) {
    let hash: String = Sha256::digest(key.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let id = hash[..12].to_owned();
    let record = json!({
        "id": id, "name": name, "role": "user", "hash": hash,
        "created_ms": now, "last_used_ms": null, "revoked_ms": if revoked { Some(now) } else { None },
    });
    (id, serde_json::to_vec(&record).unwrap())
}

#[test]
fn keys_in_an_old_keys_sled_are_moved_into_the_database_at_start_and_keep_working() {
    let state = tempfile::tempdir().unwrap();
    let (kept, dropped) =
        ("wa_kept-from-the-old-layout-000000000000000000000", "wa_revoked-in-the-old-layout-00000000000000000");
    {
        let legacy = sled::open(state.path().join("keys.sled")).unwrap();
        let tree = legacy.open_tree("keys").unwrap();
        for (name, key, revoked) in [("kept", kept, false), ("dropped", dropped, true)] {
            let (id, record) = legacy_record(name, key, revoked);
            tree.insert(id.as_bytes(), record).unwrap();
        }
        legacy.flush().unwrap();
    }
    std::fs::write(state.path().join("keys.changed"), "1").unwrap();

    let mut appliance = Appliance::start_in(state.path(), &["--auth", "true"]);
    assert_eq!(jobs_status(&appliance, kept), 200);
    assert_error(
        appliance.client().get(format!("{}/api/jobs", appliance.url)).bearer_auth(dropped).send().unwrap(),
        401,
        "revoked_api_key",
    );
    assert!(!state.path().join("keys.sled").exists(), "the old database is gone");
    assert!(!state.path().join("keys.changed").exists(), "and so is its marker");
    wait_for_log(&appliance, "moved the API keys from keys.sled");
    assert_eq!(appliance.logs().matches("moved the API keys from keys.sled").count(), 1, "logged once");

    // The moved keys are the server's: listed and revoked like any other.
    let table = String::from_utf8(keys(state.path(), &["list"]).stdout).unwrap();
    assert!(table.contains(" kept ") && table.contains(" dropped "), "{table}");
    assert!(keys(state.path(), &["revoke", "kept"]).status.success());
    assert_eq!(jobs_status(&appliance, kept), 401);
    appliance.keep(state);
}

/// Connects to a control socket, sends a request line and prints the answer line.
const SOCKET_CLIENT: &str = "import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b'\\n')
print(s.makefile().readline(), end='')";

#[test]
fn a_connection_from_another_user_is_refused_and_logged() {
    // Connecting as another user needs root to become one; CI runs as root. The check itself
    // also has a unit test (control.rs), which runs everywhere.
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: the peer check is covered by control.rs's unit test only");
        return;
    }
    let state = tempfile::tempdir().unwrap();
    let mut appliance = Appliance::start_in(state.path(), &["--auth", "true"]);
    // Loosen what keeps other users out, as a careless administrator might: the uid check holds.
    let socket = state.path().join("control.sock");
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let nobody = 65534;
    let output = Command::new("python3")
        .args(["-c", SOCKET_CLIENT])
        .arg(&socket)
        .arg(r#"{"op":"create","name":"intruder","role":"admin"}"#)
        .uid(nobody)
        .gid(nobody)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let refusal = answer["error"].as_str().unwrap_or_else(|| panic!("{answer}"));
    assert!(refusal.contains("only uid 0"), "{refusal}");
    wait_for_log(&appliance, "\"event\":\"control refused\"");
    assert!(appliance.logs().contains(&format!("\"uid\":{nobody}")), "the log names the peer");
    let table = String::from_utf8(keys(state.path(), &["list"]).stdout).unwrap();
    assert!(!table.contains("intruder"), "{table}");
    appliance.keep(state);
}
