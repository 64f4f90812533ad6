//! Which device whisper.cpp really chose while loading a model, read from whisper.cpp itself.
//!
//! Asking for the GPU is only a wish: with a GPU backend compiled in but no usable device
//! (no driver, no card, a container without /dev/dri or /dev/nvidia*), whisper.cpp's
//! `whisper_backend_init_gpu` logs "no GPU found" (or "failed to initialize ...") and
//! carries on with the CPU, and `whisper_init` succeeds all the same. The log line is the
//! only place that decision shows through whisper-rs's safe API, so [`watch`] runs the
//! load with a tracing dispatcher that forwards every event to the one in force and notes
//! the GPU lines whisper.cpp (through whisper-rs's `tracing_backend`) emits on this thread.

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Dispatch, Event, Metadata, Subscriber};

/// What whisper.cpp said about the GPU during one load.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuChoice {
    /// The ggml device whisper.cpp initialised (such as "Vulkan0" or "CUDA0"), if any.
    pub device: Option<String>,
    /// whisper.cpp's own words when it used no GPU ("no GPU found", "failed to initialize ...").
    pub reason: Option<String>,
}

impl GpuChoice {
    /// Reads one whisper.cpp log line; lines about other things are ignored.
    fn note(&mut self, line: &str) {
        let Some(said) = line.trim().strip_prefix("whisper_backend_init_gpu: ") else {
            return;
        };
        if let Some(device) = said.strip_prefix("using ").and_then(|rest| rest.strip_suffix(" backend")) {
            self.device = Some(device.to_owned());
        } else if said.starts_with("no GPU found") || said.starts_with("failed to initialize") {
            self.device = None;
            self.reason = Some(said.to_owned());
        }
    }
}

/// Runs `load` (on this thread) and returns its result with the GPU choice whisper.cpp logged.
pub fn watch<T>(load: impl FnOnce() -> T) -> (T, GpuChoice) {
    let choice = Arc::new(Mutex::new(GpuChoice::default()));
    let inner = tracing::dispatcher::get_default(Dispatch::clone);
    let watcher = Dispatch::new(Watcher { inner, choice: Arc::clone(&choice) });
    let result = tracing::dispatcher::with_default(&watcher, load);
    let choice = choice.lock().map(|choice| choice.clone()).unwrap_or_default();
    (result, choice)
}

/// A subscriber that hands everything to `inner` and reads the messages of events.
struct Watcher {
    inner: Dispatch,
    choice: Arc<Mutex<GpuChoice>>,
}

struct Message<'a>(&'a mut GpuChoice);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.note(&format!("{value:?}"));
        }
    }
}

impl Subscriber for Watcher {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        // Every event must reach `event` below, whatever the inner filter thinks of it.
        let _ = self.inner.register_callsite(metadata);
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.is_event() || self.inner.enabled(metadata)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        self.inner.new_span(span)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        self.inner.record(span, values);
    }

    fn record_follows_from(&self, span: &Id, follows: &Id) {
        self.inner.record_follows_from(span, follows);
    }

    fn event(&self, event: &Event<'_>) {
        if let Ok(mut choice) = self.choice.lock() {
            event.record(&mut Message(&mut choice));
        }
        if self.inner.enabled(event.metadata()) {
            self.inner.event(event);
        }
    }

    fn enter(&self, span: &Id) {
        self.inner.enter(span);
    }

    fn exit(&self, span: &Id) {
        self.inner.exit(span);
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.inner.clone_span(id)
    }

    fn try_close(&self, id: Id) -> bool {
        self.inner.try_close(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whisper_cpp_s_gpu_lines_are_read() {
        let mut choice = GpuChoice::default();
        choice.note("whisper_backend_init_gpu: device 0: CPU (type: 0)");
        assert_eq!(choice, GpuChoice::default());
        choice.note("whisper_backend_init_gpu: using Vulkan0 backend\n");
        assert_eq!(choice.device.as_deref(), Some("Vulkan0"));
        choice.note("whisper_backend_init_gpu: failed to initialize Vulkan0 backend");
        assert_eq!(choice.device, None);
        assert_eq!(choice.reason.as_deref(), Some("failed to initialize Vulkan0 backend"));
        let mut none = GpuChoice::default();
        none.note("whisper_backend_init_gpu: no GPU found");
        assert_eq!(none, GpuChoice { device: None, reason: Some("no GPU found".into()) });
    }

    #[test]
    fn events_are_seen_and_passed_on() {
        let ((), choice) = watch(|| tracing::info!("whisper_backend_init_gpu: using CUDA0 backend"));
        assert_eq!(choice.device.as_deref(), Some("CUDA0"));
    }
}
