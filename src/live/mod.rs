//! Live transcription sessions: a bounded number of streams, each on its own thread.
//!
//! Input: the loaded [`Engine`] and, per session, [`Input`]s from the realtime WebSocket
//! ([`crate::http`]). Output: [`Output`]s back to it. A session holds one of
//! [`LiveSettings::sessions`] slots from [`Live::open`] until its stream has ended; when
//! all are taken, `open` says so at once instead of queueing.
//!
//! Audio lives in memory only, and only while its utterance is transcribed; nothing here
//! writes to disk. Saving a session's transcript is the caller's choice (a job).

mod detector;
mod stream;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

pub use self::stream::{Input, Output, StreamSettings, TurnDetection};
use crate::engine::Engine;

/// Inputs a session may have waiting; a client that sends faster than its stream reads
/// waits on its socket (TCP backpressure) instead of filling memory.
const INPUT_QUEUE: usize = 16;

/// Bounds on live sessions.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// How many sessions may run at once.
    pub sessions: usize,
    /// The longest a session may last.
    pub max_session: Duration,
    /// A session that gets no event for this long is closed.
    pub idle_timeout: Duration,
}

pub struct Live {
    engine: Arc<Engine>,
    settings: LiveSettings,
    active: Arc<Mutex<usize>>,
    started: AtomicUsize,
}

/// Every slot is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy {
    pub sessions: usize,
}

/// A running session's two ends; dropping `input` ends the stream (after the final pass
/// over the utterance in progress), which then frees the slot.
pub struct Session {
    pub input: mpsc::Sender<Input>,
    pub output: mpsc::UnboundedReceiver<Output>,
}

impl Live {
    pub fn new(engine: Arc<Engine>, settings: LiveSettings) -> Live {
        Live { engine, settings, active: Arc::new(Mutex::new(0)), started: AtomicUsize::new(0) }
    }

    pub fn settings(&self) -> &LiveSettings {
        &self.settings
    }

    /// Starts a stream if a slot is free.
    pub fn open(&self, settings: StreamSettings) -> Result<Session, Busy> {
        let slot = Slot::take(&self.active, self.settings.sessions)?;
        let (input, mut inputs) = mpsc::channel(INPUT_QUEUE);
        let (outputs, output) = mpsc::unbounded_channel();
        let engine = Arc::clone(&self.engine);
        let index = self.started.fetch_add(1, Ordering::Relaxed);
        std::thread::Builder::new()
            .name(format!("live-{index}"))
            .spawn(move || {
                let _slot = slot;
                stream::Stream::new(&engine, settings, detector::detector(), outputs).run(&mut inputs);
            })
            .expect("the OS refused to start a live session's thread");
        Ok(Session { input, output })
    }
}

/// One taken session slot, given back when dropped (also when its thread panics).
struct Slot(Arc<Mutex<usize>>);

impl Slot {
    fn take(active: &Arc<Mutex<usize>>, max: usize) -> Result<Slot, Busy> {
        let mut count = active.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *count >= max {
            return Err(Busy { sessions: max });
        }
        *count += 1;
        Ok(Slot(Arc::clone(active)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) -= 1;
    }
}
