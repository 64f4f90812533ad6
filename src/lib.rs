//! whisper-appliance: a self-hosted speech-to-text appliance around whisper.cpp.
//!
//! The data flows one way. On the command line (`commands::transcribe`):
//!
//! ```text
//! file --audio--> 16 kHz mono f32 --engine--> Transcript --formats--> txt/srt/vtt/json/tsv
//!                                      ^
//!                        model (ggml, written by `model import`)
//! ```
//!
//! In the server (`commands::serve`), a request passes the gate (`http::gate`: auth, limits,
//! request id) to a route; an upload streams into the spool and becomes a queued job, which
//! a worker decodes and transcribes like the command line does:
//!
//! ```text
//! request --http::gate--> route --upload--> spool file --jobs (queue, sled)--> worker
//! worker --audio--> samples --engine--> Transcript --jobs (store)--> http --formats--> response
//! ```
//!
//! `audio`, `engine` and `formats` know nothing of HTTP, databases or the command line, so
//! both paths reuse them unchanged. A module imports only modules below it: errors; audio,
//! model, metrics; engine, spool; formats, config; jobs; auth, upload, listen; http, control; cli;
//! commands (`tests/layers.rs` holds the code to this order).

// What other programs use: the binary (`cli`, `commands`, `errors`), the tests (`audio`,
// `errors`) and the benches (`audio`, `engine`, `live`). Everything else is private, so the
// compiler reports what nothing uses.
pub mod audio;
pub mod cli;
pub mod commands;
pub mod engine;
pub mod errors;
pub mod live;

mod auth;
mod config;
mod control;
mod formats;
mod http;
mod jobs;
mod listen;
mod logging;
mod metrics;
mod model;
mod spool;
mod state_dir;
mod upload;

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
