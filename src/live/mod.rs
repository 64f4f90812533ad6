//! Live transcription sessions: a bounded number of streams, each on its own thread.
//!
//! Input: the loaded [`Engine`] (or the server's [`Models`], whose default model each session
//! holds, loaded if the pool had unloaded it, while it runs) and, per session, [`Input`]s from the realtime WebSocket
//! (`crate::http`). Output: [`Output`]s back to it. A session holds one of
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
use crate::engine::{Engine, Models};
use crate::errors::EngineError;

/// Audio that may wait for its stream: 5 minutes at 16 kHz (19 MB). A client may send
/// faster than real time (a file, say) up to this far ahead; more is refused. The socket is
/// still read meanwhile, so the client's pings are answered however far behind the stream is.
const MAX_WAITING_SAMPLES: usize = 5 * 60 * crate::audio::SAMPLE_RATE as usize;

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

/// Where sessions get their engine.
enum Source {
    Engine(Arc<Engine>),
    Models(Arc<Models>),
}

pub struct Live {
    source: Source,
    settings: LiveSettings,
    active: Arc<Mutex<usize>>,
    started: AtomicUsize,
}

/// Why no session was opened.
#[derive(Debug)]
pub enum Refused {
    /// Every one of this many slots is taken.
    Busy { sessions: usize },
    /// The default model could not be loaded.
    Model(EngineError),
}

/// A running session's two ends; dropping `input` ends the stream (after the final pass
/// over the utterance in progress), which then frees the slot.
pub struct Session {
    pub input: SessionInput,
    pub output: mpsc::UnboundedReceiver<Output>,
}

/// The sending end of a session, which bounds the audio waiting for the stream.
pub struct SessionInput {
    sender: mpsc::UnboundedSender<Input>,
    waiting: Arc<AtomicUsize>,
}

/// More audio is waiting than `MAX_WAITING_SAMPLES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full {
    pub seconds: u64,
}

impl SessionInput {
    /// Queues audio, unless too much already waits.
    pub fn audio(&self, samples: Vec<f32>) -> Result<(), Full> {
        if self.waiting.load(Ordering::Relaxed) + samples.len() > MAX_WAITING_SAMPLES {
            return Err(Full { seconds: (MAX_WAITING_SAMPLES / crate::audio::SAMPLE_RATE as usize) as u64 });
        }
        self.waiting.fetch_add(samples.len(), Ordering::Relaxed);
        // The stream has ended only if its thread died; then the session's output ends too.
        let _ = self.sender.send(Input::Audio(samples));
        Ok(())
    }

    /// Queues anything but audio.
    pub fn send(&self, input: Input) {
        let _ = self.sender.send(input);
    }
}

impl Live {
    /// Sessions on this one engine.
    pub fn new(engine: Arc<Engine>, settings: LiveSettings) -> Live {
        Live { source: Source::Engine(engine), settings, active: Arc::new(Mutex::new(0)), started: AtomicUsize::new(0) }
    }

    /// Sessions on the default model of a server's models.
    pub fn with_models(models: Arc<Models>, settings: LiveSettings) -> Live {
        Live { source: Source::Models(models), settings, active: Arc::new(Mutex::new(0)), started: AtomicUsize::new(0) }
    }

    pub fn settings(&self) -> &LiveSettings {
        &self.settings
    }

    /// Starts a stream if a slot is free (loading the default model first if it was
    /// unloaded: this may block for as long as that takes).
    pub fn open(&self, settings: StreamSettings) -> Result<Session, Refused> {
        let slot = Slot::take(&self.active, self.settings.sessions)?;
        let engine = match &self.source {
            Source::Engine(engine) => Arc::clone(engine),
            Source::Models(models) => models.get(&models.default_model().name).map_err(Refused::Model)?,
        };
        let (sender, mut inputs) = mpsc::unbounded_channel();
        let (outputs, output) = mpsc::unbounded_channel();
        let waiting = Arc::new(AtomicUsize::new(0));
        let taken = Arc::clone(&waiting);
        let index = self.started.fetch_add(1, Ordering::Relaxed);
        std::thread::Builder::new()
            .name(format!("live-{index}"))
            .spawn(move || {
                let _slot = slot;
                stream::Stream::new(&engine, settings, detector::detector(&engine), outputs).run(&mut inputs, &taken);
            })
            .expect("the OS refused to start a live session's thread");
        Ok(Session { input: SessionInput { sender, waiting }, output })
    }
}

/// One taken session slot, given back when dropped (also when its thread panics).
struct Slot(Arc<Mutex<usize>>);

impl Slot {
    fn take(active: &Arc<Mutex<usize>>, max: usize) -> Result<Slot, Refused> {
        let mut count = active.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *count >= max {
            return Err(Refused::Busy { sessions: max });
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
