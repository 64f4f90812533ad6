//! Which compute device the appliance reports: `--version` names the backends compiled in,
//! `/readyz` and the start-up log the one really in use. Run with every build: the plain CPU
//! build, and the `vulkan` build on CI (packaging/build-vulkan.sh --test), where there is no
//! GPU, so a GPU build must say it found none and transcribe on the CPU.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Appliance, BINARY, audio, reference, wer::wer};

/// The GPU backend compiled into this test's binary, if any (as `--version` names it).
fn compiled_gpu() -> Option<&'static str> {
    if cfg!(feature = "cuda") {
        Some("cuda")
    } else if cfg!(feature = "vulkan") {
        Some("vulkan")
    } else {
        None
    }
}

/// Device nodes a GPU driver makes; without any, no backend can find a GPU.
fn gpu_device_nodes() -> bool {
    let dri = std::fs::read_dir("/dev/dri")
        .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("renderD")));
    dri.unwrap_or(false) || std::path::Path::new("/dev/nvidia0").exists()
}

#[test]
fn version_names_the_compiled_backends() {
    let output = Command::new(BINARY).arg("--version").output().unwrap();
    let version = String::from_utf8(output.stdout).unwrap();
    let expected = match compiled_gpu() {
        Some(gpu) => format!("backends: {gpu}, cpu)"),
        None => "backends: cpu)".to_owned(),
    };
    assert!(version.contains("whisper.cpp 1.8.3") && version.contains(&expected), "{version}");
}

#[test]
fn the_backend_in_use_is_reported_truthfully_and_jfk_transcribes() {
    let appliance = Appliance::start(&[]);
    let ready: serde_json::Value = reqwest::blocking::get(format!("{}/readyz", appliance.url)).unwrap().json().unwrap();
    let backend = ready["backend"].as_str().unwrap().to_owned();
    let logs = appliance.logs();
    match compiled_gpu() {
        None => assert_eq!(backend, "cpu"),
        Some(_) if backend == "cpu" => {
            assert!(logs.contains("no usable GPU; falling back to the CPU"), "the fallback is logged: {logs}");
        }
        Some(gpu) => {
            assert_eq!(backend, gpu);
            assert!(logs.contains("whisper.cpp runs on the GPU"), "{logs}");
        }
    }
    if !gpu_device_nodes() {
        assert_eq!(backend, "cpu", "no GPU device node exists here, so nothing can run on a GPU");
    }
    let id = appliance.submit(&audio("jfk.wav"), &[]);
    assert_eq!(appliance.wait_finished(&id, Duration::from_secs(120))["status"], "done");
    let text = appliance.result(&id, "txt");
    assert!(wer(&reference("jfk.wav"), &text) <= 0.05, "{text}");
}
