//! Configuration: precedence of flags, environment and file; refusals of unsafe set-ups
//! with the exit code and the message that says the way out.

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};

use crate::common::{Appliance, BINARY};

fn serve(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BINARY);
    command.arg("serve").args(args).envs(env.iter().copied());
    for (name, _) in std::env::vars() {
        if name.starts_with("WHISPER_APPLIANCE_") && !env.iter().any(|(set, _)| *set == name) {
            command.env_remove(name);
        }
    }
    command.output().unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn root_args() -> &'static [&'static str] {
    if nix::unistd::geteuid().is_root() { &["--allow-root"] } else { &[] }
}

#[test]
fn flags_beat_environment_beats_file_beats_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "queue_size = 3\nworkers = 2\nmax_upload_mb = 7\n").unwrap();
    let file = file.to_str().unwrap();
    let print = |args: &[&str], env: &[(&str, &str)]| {
        let mut all = vec!["--config", file, "--print-config"];
        all.extend_from_slice(args);
        let output = serve(&all, env);
        assert!(output.status.success(), "{}", stderr(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    let from_file = print(&[], &[]);
    assert!(from_file.contains("queue_size = 3\n") && from_file.contains("workers = 2\n"), "{from_file}");
    assert!(from_file.contains("listen = \"127.0.0.1:5000\"\n"), "the default bind is loopback: {from_file}");
    assert!(from_file.contains("auth = true\n"), "authentication is on by default: {from_file}");
    let from_env = print(&[], &[("WHISPER_APPLIANCE_QUEUE_SIZE", "4")]);
    assert!(from_env.contains("queue_size = 4\n") && from_env.contains("max_upload_mb = 7\n"), "{from_env}");
    let from_flag = print(&["--queue-size", "5"], &[("WHISPER_APPLIANCE_QUEUE_SIZE", "4")]);
    assert!(from_flag.contains("queue_size = 5\n"), "{from_flag}");
}

#[test]
fn the_session_secret_is_never_printed_or_logged() {
    let secret = "a-session-secret-that-must-never-show-up-0123456789";
    let output = serve(&["--config", "/dev/null", "--print-config"], &[("WHISPER_APPLIANCE_SESSION_SECRET", secret)]);
    assert!(output.status.success());
    assert!(!String::from_utf8_lossy(&output.stdout).contains(secret));

    let state = tempfile::tempdir().unwrap();
    let appliance = Appliance::start_with_env(state.path(), &[], &[("WHISPER_APPLIANCE_SESSION_SECRET", secret)]);
    let logs = appliance.logs();
    assert!(logs.contains("session secret loaded") && logs.contains("Environment"), "{logs}");
    assert!(!logs.contains(secret));
}

#[test]
fn unknown_keys_in_the_file_are_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "max_upload_mbs = 5\n").unwrap();
    let output = serve(&["--config", file.to_str().unwrap(), "--print-config"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("unknown field `max_upload_mbs`"), "{}", stderr(&output));
}

#[test]
fn a_public_bind_without_authentication_is_refused_with_both_ways_out() {
    let state = tempfile::tempdir().unwrap();
    let mut args = vec!["--config", "/dev/null", "--listen", "0.0.0.0:0", "--auth", "false", "--state-dir"];
    args.push(state.path().to_str().unwrap());
    args.extend_from_slice(root_args());
    let output = serve(&args, &[]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("refusing to serve 0.0.0.0:0 without authentication"), "{message}");
    assert!(message.contains("keys create") && message.contains("--insecure-public-bind"), "{message}");
}

#[test]
fn running_as_root_is_refused_unless_allowed() {
    let state = tempfile::tempdir().unwrap();
    let args = ["serve", "--config", "/dev/null", "--state-dir", state.path().to_str().unwrap()];
    // As root here, or as root inside a user namespace for an ordinary user.
    let output = if nix::unistd::geteuid().is_root() {
        Command::new(BINARY).args(args).output().unwrap()
    } else {
        Command::new("unshare").arg("--map-root-user").arg(BINARY).args(args).output().unwrap()
    };
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("refusing to run as root"), "{}", stderr(&output));
}

#[test]
fn a_state_directory_others_can_write_is_refused() {
    let state = tempfile::tempdir().unwrap();
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut args = vec!["--config", "/dev/null", "--state-dir", state.path().to_str().unwrap()];
    args.extend_from_slice(root_args());
    let output = serve(&args, &[]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.contains("is writable by group or others (mode 777)") && message.contains("chmod go-w"),
        "{message}"
    );
}

#[test]
fn a_missing_model_names_the_package_and_the_command() {
    let state = tempfile::tempdir().unwrap();
    let mut args = vec!["--config", "/dev/null", "--state-dir", state.path().to_str().unwrap()];
    args.extend_from_slice(root_args());
    let output = serve(&args, &[]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(message.contains("no model at") && message.contains("whisper-appliance-model-tiny-en"), "{message}");
    assert!(message.contains("model import"), "{message}");
    assert_eq!(message.lines().filter(|line| line.contains("error")).count(), 1, "one clear line: {message}");
}

#[test]
fn bad_values_are_usage_errors_from_a_flag_a_variable_or_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    let refused = |args: &[&str], env: &[(&str, &str)], expected: &str| {
        let mut all = vec!["--config", file.to_str().unwrap(), "--print-config"];
        all.extend_from_slice(args);
        let output = serve(&all, env);
        assert_eq!(output.status.code(), Some(2), "{args:?} {env:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(expected), "{args:?} {env:?}: {}", stderr(&output));
    };
    std::fs::write(&file, "").unwrap();
    refused(&["--listen", "localhost:5000"], &[], "is not ADDRESS:PORT");
    refused(&[], &[("WHISPER_APPLIANCE_LISTEN", "5000")], "is not ADDRESS:PORT");
    refused(&["--workers", "0"], &[], "at least 1");
    std::fs::write(&file, "listen = \"systemd:5000\"\n").unwrap();
    refused(&[], &[], "is not ADDRESS:PORT");
    std::fs::write(&file, "workers = 0\n").unwrap();
    refused(&[], &[], "at least 1");
    std::fs::write(&file, "cors_origins = [\"*\"]\n").unwrap();
    refused(&[], &[], "`*` is never allowed");
    // The file is checked whole, even where a flag overrides it.
    std::fs::write(&file, "workers = 0\n").unwrap();
    refused(&["--workers", "2"], &[], "at least 1");
}

#[test]
fn the_models_directory_is_the_default_models_folder_unless_set() {
    let print = |args: &[&str]| {
        let mut all = vec!["--config", "/dev/null", "--print-config"];
        all.extend_from_slice(args);
        let output = serve(&all, &[]);
        assert!(output.status.success(), "{}", stderr(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    let defaults = print(&[]);
    assert!(defaults.contains("models_dir = \"/usr/share/whisper-appliance/models\"\n"), "{defaults}");
    assert!(defaults.contains("model_memory_mb = 2048\n"), "{defaults}");
    let beside = print(&["--model", "/srv/whisper/ggml-base.bin"]);
    assert!(beside.contains("models_dir = \"/srv/whisper\"\n"), "{beside}");
    let named = print(&["--model", "/srv/whisper/ggml-base.bin", "--models-dir", "/opt/models"]);
    assert!(named.contains("models_dir = \"/opt/models\"\n"), "{named}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, "model_memory_mb = 0\n").unwrap();
    let output = serve(&["--config", file.to_str().unwrap(), "--print-config"], &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}
