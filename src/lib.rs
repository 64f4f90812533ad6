//! whisper-appliance: a self-hosted speech-to-text appliance around whisper.cpp.
//!
//! The data flows one way:
//!
//! ```text
//! file --audio--> 16 kHz mono f32 --engine--> Transcript --formats--> txt/srt/vtt/json/tsv
//!                                      ^
//!                        model (ggml, written by `model import`)
//! ```
//!
//! `audio`, `engine` and `formats` know nothing of HTTP, databases or the command line,
//! so the CLI (`transcribe`) and the server reuse them unchanged.

pub mod audio;
pub mod auth;
pub mod cli;
pub mod config;
pub mod engine;
pub mod errors;
pub mod formats;
pub mod http;
pub mod jobs;
pub mod listen;
pub mod live;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod openai;
pub mod serve;
pub mod transcribe;
pub mod ui;
pub mod upload;

use std::sync::LazyLock;

/// The `--version` line: our version, whisper.cpp's, and the compute backends built in.
pub static VERSION_LINE: LazyLock<String> = LazyLock::new(|| {
    let backends: Vec<&str> = engine::compiled_backends().iter().map(|b| b.name()).collect();
    format!(
        "{} (whisper.cpp {}; backends: {})",
        env!("CARGO_PKG_VERSION"),
        whisper_rs::WHISPER_CPP_VERSION,
        backends.join(", ")
    )
});
