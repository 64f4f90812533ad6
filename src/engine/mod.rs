//! whisper.cpp behind a small Rust API: load a model once, transcribe many recordings.
//!
//! Input: a checked ggml model file, the Silero speech detector (`speech.rs`), and 16 kHz
//! mono samples from [`crate::audio`]. Output: a [`Transcript`] of timed segments with
//! their words, how much speech was found, with progress, each new segment and
//! cancellation reported through an [`Observer`] and a [`CancelToken`] while it runs.
//!
//! A quiet recording is raised to full level first (`speech.rs` says why). Only what the
//! detector calls speech is transcribed, packed into one buffer (`timeline.rs`) whose
//! times are mapped back to the recording. Against invented text:
//! whisper.cpp's temperature fallback (on a repetitive or improbable decode), its
//! no-speech probability, markers such as `[BLANK_AUDIO]` dropped, and a segment that only
//! repeats the one before it dropped.
//!
//! One [`Engine`] holds the model weights and is shared by every worker (`&self`
//! methods, `Send + Sync`); each call to [`Engine::transcribe`] makes its own whisper
//! state, so no request's settings can leak into another's. Nothing here knows about
//! HTTP, jobs or files other than the model.

mod device;
mod pool;
mod speech;
mod timeline;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

use crate::audio::SAMPLE_RATE;
use crate::errors::EngineError;
use crate::model::{self, ModelSummary};

pub use pool::{Installed, Models, OPENAI_MODEL, scan};
pub use speech::{STREAM_FRAME, SpeechDetector, SpeechStream, VadSettings, apply_gain, level_gain};

/// A stretch of speech with its text, timed against the original recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
    /// As whisper writes it, usually with a leading space.
    pub text: String,
    /// The segment's words in order, each inside the segment's times.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
}

/// One word and when it is spoken, against the original recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Word {
    pub start_ms: u64,
    pub end_ms: u64,
    /// The word with its punctuation, without surrounding spaces.
    pub text: String,
}

/// The result of one transcription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transcript {
    /// ISO 639-1 code of the spoken language (detected or as requested).
    pub language: String,
    /// Whether the text is an English translation rather than a transcription.
    pub translated: bool,
    /// Length of the original recording.
    pub duration_ms: u64,
    /// How much of the recording the detector found to be speech; `None` when detection
    /// was off.
    #[serde(default)]
    pub speech_ms: Option<u64>,
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// The whole text: trimmed segment texts joined by single spaces.
    pub fn text(&self) -> String {
        let parts: Vec<&str> = self.segments.iter().map(|s| s.text.trim()).filter(|t| !t.is_empty()).collect();
        parts.join(" ")
    }

    /// Whether nothing was said: no segment of text at all.
    pub fn no_speech(&self) -> bool {
        self.segments.is_empty()
    }

    /// The language's English name in lower case, as OpenAI's API writes it ("english").
    pub fn language_name(&self) -> &'static str {
        lang_id(&self.language).and_then(whisper_rs::get_lang_str_full).unwrap_or("unknown")
    }
}

/// What the caller wants from one transcription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// A language code such as `en`, or `None` to detect it.
    pub language: Option<String>,
    /// Translate into English instead of transcribing.
    pub translate: bool,
    /// Text to condition the decoder on (names, spelling), as OpenAI's `prompt`.
    pub prompt: Option<String>,
    /// Sampling temperature to start from (0 to 1); whisper.cpp raises it on failures.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Transcribe only what the speech detector finds (the default); `false` gives whisper
    /// the whole recording.
    #[serde(default = "yes")]
    pub vad: bool,
    /// Time each word. Asked for, not by default: whisper.cpp's token timestamps make some
    /// recordings (repetitive text, temperature fallbacks) several times slower to decode.
    #[serde(default)]
    pub words: bool,
    /// The installed model to run, by name (`tiny.en`, `base`), as [`Models`] resolved it;
    /// `None` in records from before models could be chosen, which ran on the default.
    /// Read by the pool that picks the engine, not by the engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

fn yes() -> bool {
    true
}

impl Request {
    /// Checks and normalises a language name: `auto` (or empty) means detect.
    pub fn new(language: &str, translate: bool) -> Result<Self, EngineError> {
        let language = language.trim().to_ascii_lowercase();
        let language = match language.as_str() {
            "" | "auto" => None,
            name => match lang_id(name).and_then(whisper_rs::get_lang_str) {
                Some(code) => Some(code.to_owned()),
                None => return Err(EngineError::UnknownLanguage { language }),
            },
        };
        Ok(Request { language, translate, prompt: None, temperature: None, vad: true, words: false, model: None })
    }
}

/// Refuses what a model with these sizes cannot do: translation or a language other than
/// English with an English-only model. Read from the file's header, so no load is needed.
fn check_request(summary: &ModelSummary, request: &Request) -> Result<(), EngineError> {
    if !summary.is_multilingual() {
        if request.translate {
            return Err(EngineError::TranslateNeedsMultilingual { model: summary.name() });
        }
        if let Some(language) = request.language.as_deref().filter(|l| *l != "en") {
            return Err(EngineError::LanguageNotInModel { language: language.to_owned(), model: summary.name() });
        }
    }
    Ok(())
}

/// whisper.cpp's id for a language code (`de`) or English name (`german`), found in its table
/// without `whisper_lang_id`, which prints to stderr on a name it does not know (and which
/// whisper-rs makes panic on a NUL byte).
fn lang_id(name: &str) -> Option<i32> {
    (0..=whisper_rs::get_lang_max_id())
        .find(|&id| whisper_rs::get_lang_str(id) == Some(name) || whisper_rs::get_lang_str_full(id) == Some(name))
}

/// Asks a running transcription to stop; cheap to clone and share across threads.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Callbacks made from the transcribing thread while whisper.cpp runs.
pub struct Observer {
    /// Percent done, 0 to 100, rising.
    pub on_progress: Box<dyn FnMut(u8)>,
    /// Each segment as soon as whisper.cpp produces it (already timed and filtered).
    pub on_segment: Box<dyn FnMut(&Segment)>,
}

impl Observer {
    /// An observer that ignores everything.
    pub fn none() -> Self {
        Observer { on_progress: Box::new(|_| {}), on_segment: Box::new(|_| {}) }
    }
}

/// Which compute device runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cpu,
    Cuda,
    Vulkan,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::Cuda => "cuda",
            Backend::Vulkan => "vulkan",
        }
    }
}

/// Compute backends compiled into this binary, in order of preference.
pub fn compiled_backends() -> &'static [Backend] {
    if cfg!(feature = "cuda") {
        &[Backend::Cuda, Backend::Cpu]
    } else if cfg!(feature = "vulkan") {
        &[Backend::Vulkan, Backend::Cpu]
    } else {
        &[Backend::Cpu]
    }
}

/// How to load the model.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// CPU threads per transcription.
    pub threads: usize,
    /// Try the compiled-in GPU backend first.
    pub use_gpu: bool,
    /// The Silero VAD model (`model import-vad`) and its settings; `None` transcribes every
    /// recording whole.
    pub vad: Option<(PathBuf, VadSettings)>,
}

/// The speech detector to load for `model`: the file named (which must exist), else
/// `model::VAD_MODEL_FILE` beside the model, where the package and `.ci/setup` put it.
/// Without that file recordings are transcribed whole, with a warning: a model file
/// copied elsewhere still works.
pub fn vad_for(model: &Path, named: Option<&Path>, settings: VadSettings) -> Option<(PathBuf, VadSettings)> {
    if let Some(path) = named {
        return Some((path.to_owned(), settings));
    }
    let beside = model.with_file_name(model::VAD_MODEL_FILE);
    if beside.is_file() {
        return Some((beside, settings));
    }
    // Without the model itself, loading fails with the error that matters; no warning first.
    if model.is_file() {
        tracing::warn!(
            path = %beside.display(),
            "no speech detector beside the model; transcribing whole recordings \
             (write one with `whisper-appliance model import-vad`)"
        );
    }
    None
}

/// The CPU cores this process may use (honours cgroup and affinity limits).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A loaded model, shared by every transcription.
pub struct Engine {
    context: WhisperContext,
    summary: ModelSummary,
    path: PathBuf,
    threads: usize,
    backend: Backend,
    detector: Option<SpeechDetector>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("path", &self.path)
            .field("model", &self.summary.name())
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Checks the file's ggml header and sizes, then loads it into whisper.cpp.
    ///
    /// The check comes first because whisper.cpp aborts the whole process on some
    /// malformed files instead of returning an error.
    pub fn load(path: &Path, options: &EngineOptions) -> Result<Engine, EngineError> {
        if !path.exists() {
            return Err(EngineError::NoModel { path: path.to_owned() });
        }
        let summary = model::inspect(path)?;
        whisper_rs::install_logging_hooks();
        let compiled = compiled_backends()[0];
        let want_gpu = options.use_gpu && compiled != Backend::Cpu;
        let load = |use_gpu: bool| {
            let mut params = WhisperContextParameters::default();
            params.use_gpu(use_gpu).flash_attn(true);
            // whisper.cpp picks the device when it makes a state, not when it loads the
            // weights: where a GPU is wanted, one made and dropped here says which (seen on
            // an H200: the weights went to CUDA0 and only the first state logged "using
            // CUDA0 backend").
            device::watch(|| {
                WhisperContext::new_with_params(path, params).and_then(|context| {
                    if use_gpu {
                        drop(context.create_state()?);
                    }
                    Ok(context)
                })
            })
        };
        let load_error = |source| EngineError::Load { path: path.to_owned(), source };
        let (context, backend) = match load(want_gpu) {
            (Ok(context), choice) if want_gpu => match choice.device {
                Some(device) => {
                    tracing::info!(backend = compiled.name(), device, "whisper.cpp runs on the GPU");
                    (context, compiled)
                }
                None => {
                    let reason = choice.reason.unwrap_or_else(|| "whisper.cpp named no GPU device".to_owned());
                    tracing::warn!(
                        backend = compiled.name(),
                        reason,
                        "no usable GPU; falling back to the CPU (check the driver and that the service may open the \
                         device, see systemd/gpu.conf)"
                    );
                    (context, Backend::Cpu)
                }
            },
            (Ok(context), _) => (context, Backend::Cpu),
            (Err(error), _) if want_gpu => {
                tracing::warn!(%error, backend = compiled.name(), "the GPU could not be used; falling back to the CPU");
                (load(false).0.map_err(load_error)?, Backend::Cpu)
            }
            (Err(source), _) => return Err(load_error(source)),
        };
        tracing::info!(model = %path.display(), name = summary.name(), backend = backend.name(), threads = options.threads, "model loaded");
        let detector = match &options.vad {
            Some((vad_path, settings)) => Some(SpeechDetector::load(vad_path, *settings)?),
            None => None,
        };
        Ok(Engine { context, summary, path: path.to_owned(), threads: options.threads.max(1), backend, detector })
    }

    pub fn summary(&self) -> &ModelSummary {
        &self.summary
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device transcriptions really run on: the GPU only if whisper.cpp initialised one.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The speech detector, if one was loaded: the live stream runs it on its buffers.
    pub fn speech_detector(&self) -> Option<&SpeechDetector> {
        self.detector.as_ref()
    }

    /// Whether the model knows more languages than English (and can translate).
    pub fn is_multilingual(&self) -> bool {
        self.context.is_multilingual()
    }

    /// Refuses requests this model cannot serve, before any audio is decoded.
    pub fn check(&self, request: &Request) -> Result<(), EngineError> {
        check_request(&self.summary, request)
    }

    /// The settings every pass shares: the request's language, task, prompt and
    /// temperature, and the guards against invented text.
    fn params<'a>(&self, request: &'a Request, strategy: SamplingStrategy) -> FullParams<'a, 'a> {
        let mut params = FullParams::new(strategy);
        params.set_n_threads(self.threads as i32);
        params.set_translate(request.translate);
        params.set_language(Some(request.language.as_deref().unwrap_or(if self.is_multilingual() {
            "auto"
        } else {
            "en"
        })));
        if let Some(prompt) = &request.prompt {
            params.set_initial_prompt(prompt);
        }
        if let Some(temperature) = request.temperature {
            params.set_temperature(temperature);
        }
        // Non-speech tokens are how "[BLANK_AUDIO]", "(music)" and the like get written.
        params.set_suppress_nst(true);
        // The hallucination guards of whisper.cpp's CLI and faster-whisper, stated here so
        // they cannot drift: a window is decoded again 0.2 hotter when its text is too
        // repetitive (entropy, whisper.cpp's compression-ratio test) or too improbable
        // (mean log-probability), and dropped as silence when whisper itself says nobody
        // speaks and the text is improbable.
        params.set_temperature_inc(0.2);
        params.set_entropy_thold(2.4);
        params.set_logprob_thold(-1.0);
        params.set_no_speech_thold(0.6);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        params
    }

    /// A quick, rough pass over a few seconds of speech, for live tentative text: greedy,
    /// no speech detection (the caller's detector found the speech), no temperature
    /// fallback, and the encoder fitted to the audio instead of whisper's full 30 s
    /// (`audio_ctx`), which makes a pass over 2 s of speech several times cheaper. The
    /// text is rougher than [`Engine::transcribe`]'s; a live session's final text comes
    /// from that.
    pub fn draft(&self, samples: &[f32], request: &Request) -> Result<String, EngineError> {
        self.check(request)?;
        let mut audio = samples.to_vec();
        if let Some(gain) = speech::level_gain(samples) {
            speech::apply_gain(&mut audio, gain);
        }
        let mut state = self.context.create_state().map_err(|source| EngineError::Run { source })?;
        let mut params = self.params(request, SamplingStrategy::Greedy { best_of: 1 });
        params.set_audio_ctx(fitted_audio_ctx(audio.len(), DRAFT_FLOOR));
        params.set_max_tokens(max_tokens(audio.len()));
        params.set_temperature_inc(0.0);
        params.set_single_segment(true);
        state.full(params, &audio).map_err(|source| EngineError::Run { source })?;
        let mut text = String::new();
        for segment in state.as_iter() {
            let segment = segment.to_str_lossy().map_err(|source| EngineError::Run { source })?;
            if !is_non_speech(&segment) {
                text.push_str(&segment);
            }
        }
        Ok(text.trim().to_owned())
    }

    /// Transcribes 16 kHz mono samples. Blocks the calling thread until done.
    pub fn transcribe(
        &self,
        samples: &[f32],
        request: &Request,
        observer: Observer,
        cancel: &CancelToken,
    ) -> Result<Transcript, EngineError> {
        self.run(samples, request, observer, cancel, Encoder::Full)
    }

    /// A live utterance's final pass: as [`Engine::transcribe`], but for speech of up to
    /// 30 s the encoder is fitted to the speech as for a draft, which on a few seconds of
    /// speech is several times quicker. On so short an encoding whisper now and then starts
    /// the utterance over or loops on a phrase; such a text, or one with more words than the
    /// audio can hold, is redone with the full encoder.
    pub fn transcribe_utterance(&self, samples: &[f32], request: &Request) -> Result<Transcript, EngineError> {
        let cancel = CancelToken::default();
        let transcript = self.run(samples, request, Observer::none(), &cancel, Encoder::Fitted)?;
        let text = transcript.text();
        if !repeats_itself(&text) && !too_many_words(&text, samples.len()) {
            return Ok(transcript);
        }
        tracing::debug!(text, "a fitted pass repeated itself or said too much; redone with the full encoder");
        self.run(samples, request, Observer::none(), &cancel, Encoder::Full)
    }

    fn run(
        &self,
        samples: &[f32],
        request: &Request,
        observer: Observer,
        cancel: &CancelToken,
        encoder: Encoder,
    ) -> Result<Transcript, EngineError> {
        self.check(request)?;
        let duration_ms = samples.len() as u64 * 1000 / SAMPLE_RATE as u64;
        let gain = speech::level_gain(samples);
        let detected = match &self.detector {
            Some(detector) if request.vad => Some(detector.detect(samples, gain, cancel)?),
            _ => None,
        };
        let mut transcript = Transcript {
            language: request.language.clone().unwrap_or_else(|| "en".to_owned()),
            translated: request.translate,
            duration_ms,
            speech_ms: detected.as_deref().map(timeline::spans_ms),
            segments: Vec::new(),
        };
        // Shared with whisper.cpp's callback, which must own what it calls.
        let on_progress = Rc::new(RefCell::new(observer.on_progress));
        let spans = detected.unwrap_or_else(|| timeline::whole(samples));
        if spans.is_empty() {
            (on_progress.borrow_mut())(100);
            return Ok(transcript);
        }
        let (mut packed, timeline) = timeline::pack(samples, &spans);
        if let Some(gain) = gain {
            speech::apply_gain(&mut packed, gain);
        }
        let timeline = Arc::new(timeline);

        let mut state = self.context.create_state().map_err(|source| EngineError::Run { source })?;
        let mut params = self.params(request, SamplingStrategy::BeamSearch { beam_size: 5, patience: -1.0 });
        // Measured on tiny.en: conditioning on the previous window's text makes long
        // recordings fall into repetition loops (34-57% WER instead of 12-19%).
        if packed.len() > 30 * SAMPLE_RATE as usize {
            params.set_n_max_text_ctx(0);
        } else if encoder == Encoder::Fitted {
            params.set_audio_ctx(fitted_audio_ctx(packed.len(), FINAL_FLOOR));
            params.set_max_tokens(max_tokens(packed.len()));
        }
        // Token times, from which words are timed, only when asked (see `Request::words`).
        params.set_token_timestamps(request.words);

        let whisper_progress = Rc::clone(&on_progress);
        params.set_progress_callback_safe(move |percent: i32| {
            (whisper_progress.borrow_mut())(percent.clamp(0, 99) as u8);
        });
        let cancel_flag = cancel.clone();
        // whisper-rs 0.16's trampoline reads its user data as `F` although it stores a
        // `Box<dyn FnMut>`; with `F` itself a `Box<dyn FnMut>` both agree. A plain closure
        // here makes whisper.cpp read garbage and abort every encode.
        let abort: Box<dyn FnMut() -> bool> = Box::new(move || cancel_flag.is_cancelled());
        params.set_abort_callback_safe::<_, Box<dyn FnMut() -> bool>>(abort);
        let mut on_segment = observer.on_segment;
        let mut live = Segments::new(Arc::clone(&timeline));
        params.set_segment_callback_safe_lossy(move |data: whisper_rs::SegmentCallbackData| {
            if let Some(segment) = live.accept(data.start_timestamp, data.end_timestamp, &data.text) {
                on_segment(&segment);
            }
        });

        let outcome = state.full(params, &packed);
        if cancel.is_cancelled() {
            return Err(EngineError::Cancelled);
        }
        outcome.map_err(|source| EngineError::Run { source })?;

        if request.language.is_none() && self.is_multilingual() {
            let id = state.full_lang_id_from_state();
            if let Some(code) = whisper_rs::get_lang_str(id) {
                code.clone_into(&mut transcript.language);
            }
        }
        let mut done = Segments::new(timeline);
        let first_special = self.context.token_eot();
        for segment in state.as_iter() {
            let text = segment.to_str_lossy().map_err(|source| EngineError::Run { source })?;
            let Some(mut kept) = done.accept(segment.start_timestamp(), segment.end_timestamp(), &text) else {
                continue;
            };
            // Without token timestamps whisper.cpp leaves every token at 0: no words then.
            if request.words {
                let mut tokens = Vec::new();
                for index in 0..segment.n_tokens() {
                    let Some(token) = segment.get_token(index) else { continue };
                    if token.token_id() >= first_special {
                        continue;
                    }
                    let data = token.token_data();
                    let bytes = token.to_bytes().map_err(|source| EngineError::Run { source })?.to_vec();
                    tokens.push((data.t0, data.t1, bytes));
                }
                kept.words = done.words(&kept, &tokens);
            }
            transcript.segments.push(kept);
        }
        (on_progress.borrow_mut())(100);
        Ok(transcript)
    }
}

/// How much of whisper's encoder a pass runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoder {
    /// Whisper's whole 30 s window, however short the audio: what it was trained on.
    Full,
    /// [`fitted_audio_ctx`]'s positions for audio under 30 s, at least [`FINAL_FLOOR`].
    Fitted,
}

/// The fewest encoder positions of a draft (3.8 s) and of a fitted final pass (7.7 s). On
/// the shared clips a final pass encoded down to 3.8 s misheard a word in ten more often
/// than whisper's full window; from 7.7 s it reads as well (jfk.wav, the Columbia address).
const DRAFT_FLOOR: usize = 192;
const FINAL_FLOOR: usize = 384;

/// The encoder positions a fitted pass gives `samples` of audio: whisper's 1,500 cover 30 s
/// (50 a second), plus 64 (1.3 s) past the end and `floor` at least, since whisper tends
/// to repeat or invent words on an encoding cut right where the speech ends. In steps of
/// 64, so that whisper.cpp's graphs see few sizes.
fn fitted_audio_ctx(samples: usize, floor: usize) -> i32 {
    const PER_SECOND: usize = 50;
    let positions = samples * PER_SECOND / SAMPLE_RATE as usize + 64;
    (positions.div_ceil(64) * 64).clamp(floor, 1500) as i32
}

/// The most tokens a segment of a fitted pass may hold: 16 and 6 a second, well above
/// the 3 to 4 a second of fast speech, so a pass caught in a loop ends soon.
fn max_tokens(samples: usize) -> i32 {
    (16 + samples * 6 / SAMPLE_RATE as usize) as i32
}

/// Whether `text` holds more words than anyone says in `samples` of audio: two and 4.5 a
/// second (fast speech is about 4). A loop that does not repeat exactly still says too much.
fn too_many_words(text: &str, samples: usize) -> bool {
    let seconds = samples as f64 / f64::from(SAMPLE_RATE);
    text.split_whitespace().count() as f64 > 2.0 + 4.5 * seconds
}

/// Whether whisper started the text over or looped: the words from some point on repeat
/// its opening (to the end, and three words of it or the whole of a two-word opening), or
/// its last words are one phrase (of up to eight words) three times. Case and punctuation
/// are ignored, and a last word cut short. A speaker who says a phrase again is rarely that
/// exact.
fn repeats_itself(text: &str) -> bool {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|word| word.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect())
        .filter(|word: &String| !word.is_empty())
        .collect();
    let n = words.len();
    // A pass cut off by its token limit may end in part of a word.
    let same = |i: usize, j: usize| words[i] == words[j] || (i == n - 1 && words[j].starts_with(&words[i]));
    let periodic_from = |start: usize, period: usize| (start..n).all(|i| same(i, i - period));
    let starts_over = (2..n).any(|k| n - k >= 3.min(k) && periodic_from(k, k));
    let loops = (1..=8).any(|unit| n >= 3 * unit && periodic_from(n - 2 * unit, unit));
    starts_over || loops
}

/// Turns whisper's segments (centisecond times in the packed audio) into the user's: times
/// of the recording, non-speech markers and repeats of the segment before dropped. The
/// live callback and the final pass each run one, so they keep the same segments.
struct Segments {
    timeline: Arc<timeline::Timeline>,
    previous: Option<String>,
}

impl Segments {
    fn new(timeline: Arc<timeline::Timeline>) -> Segments {
        Segments { timeline, previous: None }
    }

    fn accept(&mut self, start_cs: i64, end_cs: i64, text: &str) -> Option<Segment> {
        if is_non_speech(text) {
            tracing::debug!(text, "dropped a segment that describes no speech");
            return None;
        }
        let normalised: String = text.trim().to_lowercase();
        if self.previous.as_deref() == Some(normalised.as_str()) {
            tracing::debug!(text, "dropped a segment that repeats the one before");
            return None;
        }
        self.previous = Some(normalised);
        let start_ms = self.original_ms(start_cs, false);
        let end_ms = self.original_ms(end_cs, true).max(start_ms);
        Some(Segment { start_ms, end_ms, text: text.to_owned(), words: Vec::new() })
    }

    fn original_ms(&self, cs: i64, prefer_earlier: bool) -> u64 {
        self.timeline.original_ms(cs.max(0) as u64 * 10, prefer_earlier)
    }

    /// A segment's words from its text tokens `(t0, t1, bytes)`: a token that starts with a
    /// space starts a word; the bytes are joined before decoding, since one character can
    /// span two tokens. Times are kept in order and inside the segment.
    fn words(&self, segment: &Segment, tokens: &[(i64, i64, Vec<u8>)]) -> Vec<Word> {
        let mut pieces: Vec<(i64, i64, Vec<u8>)> = Vec::new();
        for (t0, t1, bytes) in tokens {
            match pieces.last_mut() {
                Some(last) if !bytes.starts_with(b" ") => {
                    last.1 = *t1;
                    last.2.extend_from_slice(bytes);
                }
                _ => pieces.push((*t0, *t1, bytes.clone())),
            }
        }
        let mut floor = segment.start_ms;
        pieces
            .into_iter()
            .filter_map(|(t0, t1, bytes)| {
                let text = String::from_utf8_lossy(&bytes).trim().to_owned();
                if text.is_empty() {
                    return None;
                }
                let start_ms = self.original_ms(t0, false).clamp(floor, segment.end_ms);
                let end_ms = self.original_ms(t1, true).clamp(start_ms, segment.end_ms);
                floor = end_ms;
                Some(Word { start_ms, end_ms, text })
            })
            .collect()
    }
}

/// Whisper describes what it hears when nobody speaks: "[BLANK_AUDIO]", "(music)",
/// "* sighs *", "♪". Such a segment is not a transcript of speech.
fn is_non_speech(text: &str) -> bool {
    let text = text.trim();
    let bracketed = [('[', ']'), ('(', ')'), ('*', '*')]
        .iter()
        .any(|&(open, close)| text.len() >= 2 && text.starts_with(open) && text.ends_with(close));
    bracketed || !text.chars().any(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_passes_encode_their_audio_and_a_margin_not_30_seconds() {
        let seconds = |s: usize| s * SAMPLE_RATE as usize;
        assert_eq!(fitted_audio_ctx(seconds(1), DRAFT_FLOOR), 192, "a draft's floor of 3.8 s");
        assert_eq!(fitted_audio_ctx(seconds(1), FINAL_FLOOR), 384, "a final pass's floor of 7.7 s");
        assert_eq!(fitted_audio_ctx(seconds(10), FINAL_FLOOR), 576, "500 positions and 64 more, in steps of 64");
        assert_eq!(fitted_audio_ctx(seconds(40), DRAFT_FLOOR), 1500, "never more than whisper's window");
    }

    #[test]
    fn a_text_that_starts_over_loops_or_says_too_much_is_caught_and_a_sentence_that_echoes_is_not() {
        for looped in [
            "Ask what you can do for your country. Ask what you can do for your",
            "Ask not. Ask not.",
            "And so, my fellow Americans. And so, my fellow Americans.",
            "friends. friends. France. France. France.",
            "had wrapped out theirs wrapped out theirs wrapped out theirs",
            "had already set apart to be his tumbrils, had already set apart to be his tumb",
        ] {
            assert!(repeats_itself(looped), "{looped:?}");
        }
        // Two and a half seconds cannot hold this, though it repeats no phrase three times.
        let rambling = "And so am I fell in my records. I fell in my records. And so am I fell in America.";
        assert!(too_many_words(rambling, 5 * SAMPLE_RATE as usize / 2) && !repeats_itself(rambling));
        assert!(!too_many_words("And so, my fellow Americans,", 5 * SAMPLE_RATE as usize / 2));
        for speech in [
            "It was the best of times. It was the worst of times.",
            "Ask not what your country can do for you, ask what you can do for your country.",
            "No, no.",
            "",
        ] {
            assert!(!repeats_itself(speech), "{speech:?}");
        }
    }

    #[test]
    fn non_speech_markers_are_recognised() {
        for marker in ["[BLANK_AUDIO]", " (music)", "* sighs *", "♪", " ...", ""] {
            assert!(is_non_speech(marker), "{marker:?}");
        }
        for speech in [" Hello.", " (laughs) Hello", " 42"] {
            assert!(!is_non_speech(speech), "{speech:?}");
        }
    }

    #[test]
    fn language_auto_means_detect_and_codes_are_checked() {
        assert_eq!(Request::new("auto", false).unwrap().language, None);
        assert_eq!(Request::new(" DE ", true).unwrap().language.as_deref(), Some("de"));
        assert_eq!(Request::new("German", false).unwrap().language.as_deref(), Some("de"));
        assert!(Request::new("e\0n", false).is_err());
        assert_eq!(
            Request::new("klingon", false).unwrap_err().to_string(),
            "unknown language \"klingon\"; use a code such as en, de or fr, or auto to detect it"
        );
    }

    #[test]
    fn transcript_text_joins_trimmed_segments() {
        let transcript = Transcript {
            language: "en".into(),
            translated: false,
            duration_ms: 2_000,
            speech_ms: None,
            segments: vec![
                Segment { start_ms: 0, end_ms: 1_000, text: " Hello,".into(), words: vec![] },
                Segment { start_ms: 1_000, end_ms: 2_000, text: " world.".into(), words: vec![] },
            ],
        };
        assert_eq!(transcript.text(), "Hello, world.");
        assert_eq!(transcript.language_name(), "english");
    }
}
