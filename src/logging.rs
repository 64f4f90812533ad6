//! Log output on stderr, filtered by `RUST_LOG`: one JSON object per line for `serve`
//! (the audit log; under systemd stderr is the journal), with the fields of the span it
//! was logged in (`"span": {"request_id": ...}` for every line a request causes), and
//! human-readable lines for the one-shot commands.
//!
//! whisper.cpp's own chatter (model load details, timings) arrives through whisper-rs's
//! tracing hook and is kept to errors unless `RUST_LOG` asks for more; so is symphonia's
//! commentary on the files it reads (junk bytes skipped, bit-reservoir notes).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Commands: our warnings and errors; whisper.cpp's only when they are errors.
const COMMAND_FILTER: &str = "warn,whisper_rs=error,symphonia=error";
/// The server: what it does (start-up, jobs, one audit line per request).
const SERVER_FILTER: &str = "info,whisper_rs=error,symphonia=error";

pub fn init(server: bool) {
    let default = if server { SERVER_FILTER } else { COMMAND_FILTER };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colour only for a person at a terminal; piped or journald stderr gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if server {
        // The current span's fields: a request's lines carry its `request_id`.
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).init();
    } else {
        builder.with_target(false).init();
    }
}
