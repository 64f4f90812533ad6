//! The speech detector: Silero VAD, run by whisper.cpp, says where in a recording people speak.
//!
//! Input: 16 kHz mono samples of any level. Output: the sample ranges that hold speech,
//! padded, merged and in order. The engine transcribes only those (`timeline.rs` packs
//! them and maps times back); the live stream can call [`SpeechDetector::detect`] on any
//! buffer of samples. A trained model, not an energy threshold, decides: quiet speech is
//! speech, and steady noise, hum, music or applause is not.
//!
//! Level: Silero's scores depend on the input level, and a recording made 40 dB too quietly
//! scores as silence; whisper's log-mel front end is not level-free either (its scale is
//! absolute: 40 dB down shifts every input value, and tiny.en then hears other words). So
//! [`level_gain`] finds how far to raise a recording for its loudest 20 ms frame to peak
//! near full scale (never more than [`MAX_GAIN_DB`], so that near-digital silence stays
//! silent), and both the detector and whisper are given it raised.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use whisper_rs::{WhisperVadContext, WhisperVadContextParams, WhisperVadParams};

use super::CancelToken;
use crate::audio::SAMPLE_RATE;
use crate::errors::EngineError;
use crate::model;

/// The most the detector's copy of a recording is raised (about 1000x).
const MAX_GAIN_DB: f32 = 60.0;
/// Where the loudest frame's peak is raised to, just under full scale.
const TARGET_PEAK: f32 = 0.9;
/// Speech shorter than this is a click or a cough, not words.
const MIN_SPEECH_MS: i32 = 250;
/// A recording is read in pieces this long: a cancel is noticed between them (Silero takes
/// about 6 s for 20 minutes on two cores, more on a busy machine) and the levelled copy of
/// a quiet recording stays one piece. Silero starts each piece afresh; a minute makes that
/// rare, and the padding joins speech a piece boundary cuts.
const PIECE_SECONDS: usize = 60;

/// The detector's settings, from the config file's `[vad]` table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadSettings {
    /// Speech probability (0 to 1) from which a 32 ms window counts as speech.
    pub threshold: f32,
    /// A pause must last this long to split speech in two (and to be skipped).
    pub min_silence_ms: u32,
    /// Audio kept before and after each stretch of speech so word edges survive.
    pub padding_ms: u32,
}

impl Default for VadSettings {
    /// Silero's own threshold; pauses from one second on are skipped, as faster-whisper's
    /// 2 s would leave the gaps between sentences in; 400 ms of padding, as faster-whisper.
    fn default() -> Self {
        VadSettings { threshold: 0.5, min_silence_ms: 1_000, padding_ms: 400 }
    }
}

/// A loaded Silero model, shared by every transcription (one detection at a time: it is
/// about 1% of a transcription's time, so a lock costs nothing worth a pool).
pub struct SpeechDetector {
    context: Mutex<WhisperVadContext>,
    settings: VadSettings,
    path: PathBuf,
}

impl std::fmt::Debug for SpeechDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeechDetector").field("path", &self.path).field("settings", &self.settings).finish()
    }
}

impl SpeechDetector {
    /// Checks the file (whisper.cpp trusts it blindly), then loads it on the CPU, one thread.
    ///
    /// One thread because Silero is a graph of a few small layers run once per 32 ms: ggml's
    /// threads meet at a spinning barrier after each layer, and on a busy machine (more
    /// threads than cores) every meeting waited for a descheduled thread, so 60 s of audio
    /// took over 15 s instead of 0.2 s.
    pub fn load(path: &Path, settings: VadSettings) -> Result<SpeechDetector, EngineError> {
        if !path.exists() {
            return Err(EngineError::NoVadModel { path: path.to_owned() });
        }
        let summary = model::inspect_vad(path)?;
        let context = open_context(path)?;
        tracing::info!(model = %path.display(), version = summary.version, ?settings, "speech detector loaded");
        Ok(SpeechDetector { context: Mutex::new(context), settings, path: path.to_owned() })
    }

    pub fn settings(&self) -> VadSettings {
        self.settings
    }

    /// The sample ranges of `samples` that hold speech, padded, in order, not overlapping;
    /// `gain` is `level_gain`'s for them. Stops with [`EngineError::Cancelled`] between
    /// pieces once `cancel` is set.
    pub fn detect(
        &self,
        samples: &[f32],
        gain: Option<f32>,
        cancel: &CancelToken,
    ) -> Result<Vec<Range<usize>>, EngineError> {
        let mut context = self.context.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut levelled = Vec::new();
        let mut spans: Vec<Range<usize>> = Vec::new();
        for piece in pieces(samples.len()) {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            let offset = piece.start;
            let mut piece = &samples[piece];
            if let Some(gain) = gain {
                levelled.clear();
                levelled.extend_from_slice(piece);
                apply_gain(&mut levelled, gain);
                piece = &levelled;
            }
            let mut params = WhisperVadParams::new();
            params.set_threshold(self.settings.threshold);
            params.set_min_silence_duration(self.settings.min_silence_ms as i32);
            params.set_speech_pad(self.settings.padding_ms as i32);
            params.set_min_speech_duration(MIN_SPEECH_MS);
            let segments =
                context.segments_from_samples(params, piece).map_err(|source| EngineError::Run { source })?;
            let to_sample = |cs: f32| {
                offset + ((cs.max(0.0) as f64 / 100.0 * f64::from(SAMPLE_RATE)).round() as usize).min(piece.len())
            };
            for segment in segments {
                let span = to_sample(segment.start)..to_sample(segment.end);
                match spans.last_mut() {
                    _ if span.is_empty() => {}
                    // Padding makes speech cut by a piece's end overlap its other half.
                    Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
                    _ => spans.push(span),
                }
            }
        }
        Ok(spans)
    }
}

/// Silero for a live stream, which hears its audio a few frames at a time: each session has
/// its own (a model of under a megabyte), so it never waits on a file's detection.
///
/// whisper.cpp starts Silero afresh on every call; each call therefore gets the last
/// half second (`STREAM_HISTORY`) again before the new frames, enough for its state to settle.
/// The level is raised as for a recording, by the loudest frame heard so far.
pub struct SpeechStream {
    context: WhisperVadContext,
    /// The samples before the next frame, as they came.
    history: Vec<f32>,
    /// The loudest frame's peak so far (as [`level_gain`] measures it).
    peak: f32,
    levelled: Vec<f32>,
}

/// Samples of what came before that each call reads again: 0.5 s.
const STREAM_HISTORY: usize = SAMPLE_RATE as usize / 2;
/// Silero's frame at 16 kHz.
pub const STREAM_FRAME: usize = 512;

impl SpeechDetector {
    /// A detector for one live stream, from the same model file.
    pub fn stream(&self) -> Result<SpeechStream, EngineError> {
        let context = open_context(&self.path)?;
        Ok(SpeechStream { context, history: Vec::new(), peak: 0.0, levelled: Vec::new() })
    }
}

/// Loads a checked Silero file on the CPU, one thread (see [`SpeechDetector::load`]).
fn open_context(path: &Path) -> Result<WhisperVadContext, EngineError> {
    let text_path = path.to_str().ok_or_else(|| EngineError::VadLoad { path: path.to_owned() })?;
    let mut params = WhisperVadContextParams::new();
    params.set_n_threads(1);
    params.set_use_gpu(false);
    WhisperVadContext::new(text_path, params).map_err(|_| EngineError::VadLoad { path: path.to_owned() })
}

impl SpeechStream {
    /// The speech probability of each whole [`STREAM_FRAME`] of `frames`, which continue
    /// those of the calls before.
    pub fn probabilities(&mut self, frames: &[f32]) -> Result<Vec<f32>, EngineError> {
        let count = frames.len() / STREAM_FRAME;
        if count == 0 {
            return Ok(Vec::new());
        }
        let frames = &frames[..count * STREAM_FRAME];
        let history = self.history.len() / STREAM_FRAME * STREAM_FRAME;
        let history = &self.history[self.history.len() - history..];
        self.peak = self.peak.max(loudest_peak(frames));
        self.levelled.clear();
        self.levelled.extend_from_slice(history);
        self.levelled.extend_from_slice(frames);
        if let Some(gain) = gain_for_peak(self.peak) {
            apply_gain(&mut self.levelled, gain);
        }
        self.context.detect_speech(&self.levelled).map_err(|source| EngineError::Run { source })?;
        let probabilities = self.context.probabilities();
        let new = probabilities.len().saturating_sub(count);
        let result = probabilities[new..].to_vec();
        self.history.extend_from_slice(frames);
        let excess = self.history.len().saturating_sub(STREAM_HISTORY);
        self.history.drain(..excess);
        Ok(result)
    }
}

/// The pieces a recording of `len` samples is read in: [`PIECE_SECONDS`] each, the last one
/// no shorter than a second (it joins the one before).
fn pieces(len: usize) -> Vec<Range<usize>> {
    let piece = PIECE_SECONDS * SAMPLE_RATE as usize;
    let mut pieces: Vec<Range<usize>> = (0..len).step_by(piece).map(|start| start..(start + piece).min(len)).collect();
    if pieces.len() > 1 && pieces.last().is_some_and(|last| last.len() < SAMPLE_RATE as usize) {
        let last = pieces.pop().expect("more than one piece");
        pieces.last_mut().expect("more than one piece").end = last.end;
    }
    pieces
}

/// How much to raise `samples` for their loudest 20 ms frame to peak at 0.9 of full scale
/// (at most 60 dB up); `None` when they are loud enough already (or digital silence).
pub fn level_gain(samples: &[f32]) -> Option<f32> {
    gain_for_peak(loudest_peak(samples))
}

/// The loudest 20 ms frame's peak, ignoring single-sample clicks: the median of each frame's
/// ten largest magnitudes would be exact, the frame's 2nd-largest magnitude is enough.
fn loudest_peak(samples: &[f32]) -> f32 {
    samples
        .chunks(SAMPLE_RATE as usize / 50)
        .map(|frame| {
            let (mut first, mut second) = (0f32, 0f32);
            for &s in frame {
                let s = s.abs();
                if s > first {
                    second = first;
                    first = s;
                } else if s > second {
                    second = s;
                }
            }
            second
        })
        .fold(0f32, f32::max)
}

/// The gain that raises `peak` to [`TARGET_PEAK`], at most [`MAX_GAIN_DB`]; `None` for none.
fn gain_for_peak(peak: f32) -> Option<f32> {
    if peak <= 0.0 {
        return None;
    }
    let gain = (TARGET_PEAK / peak).min(10f32.powf(MAX_GAIN_DB / 20.0));
    (gain > 1.0).then_some(gain)
}

/// Raises `samples` in place by `gain`, clipping at full scale (the odd click above the
/// second-loudest sample of its frame).
pub fn apply_gain(samples: &mut [f32], gain: f32) {
    for sample in samples {
        *sample = (*sample * gain).clamp(-1.0, 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recordings_are_read_in_minutes_with_no_short_tail() {
        let minute = 60 * SAMPLE_RATE as usize;
        assert_eq!(pieces(0), Vec::<Range<usize>>::new());
        assert_eq!(pieces(100), vec![0..100]);
        assert_eq!(pieces(2 * minute + 10), vec![0..minute, minute..2 * minute + 10]);
        assert_eq!(pieces(2 * minute + 16_000), vec![0..minute, minute..2 * minute, 2 * minute..2 * minute + 16_000]);
    }

    #[test]
    fn quiet_audio_is_raised_and_loud_audio_is_left_alone() {
        let quiet: Vec<f32> = (0..16_000).map(|i| 0.01 * (i as f32 * 0.05).sin()).collect();
        let mut raised = quiet.clone();
        apply_gain(&mut raised, level_gain(&quiet).unwrap());
        let peak = raised.iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!((peak - TARGET_PEAK).abs() < 0.01, "{peak}");
        let loud: Vec<f32> = quiet.iter().map(|s| s * 95.0).collect();
        assert!(level_gain(&loud).is_none());
        assert!(level_gain(&[0.0; 1000]).is_none());
        // Near-digital silence is raised by 60 dB at most.
        let faint = vec![1e-6f32; 1000];
        assert!(level_gain(&faint).unwrap() * 1e-6 < 1.1e-3);
    }
}
