//! Log output: human-readable lines on stderr, filtered by `RUST_LOG`.
//!
//! whisper.cpp's own chatter (model load details, timings) arrives through whisper-rs's
//! tracing hook and is shown only at debug level, so commands stay quiet by default.

use tracing_subscriber::EnvFilter;

/// Default filter: our warnings and errors; whisper.cpp's only when they are errors.
const DEFAULT_FILTER: &str = "warn,whisper_rs=error";

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
}
