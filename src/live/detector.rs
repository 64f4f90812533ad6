//! Speech detection for live sessions: how likely each short frame of audio is speech.
//!
//! Input: consecutive frames of [`FRAME`] samples at 16 kHz, a few at a time. Output: a
//! probability in [0, 1] per frame. The turn logic (threshold, padding, silence length)
//! lives in `stream.rs` and reads only this interface.
//!
//! The detector is Silero, as for files (`engine/speech.rs`): a trained model hears quiet
//! speech and the soft ends of sentences as speech, and steady noise as none. Where no
//! Silero model is installed, an energy detector stands in: it compares each frame's
//! loudness with the room's noise floor, the quiet between words over the last few seconds.
//! It tells speech from silence, not from music or noise of the same loudness, and in a
//! continuous reading it hears the quieter last words of a sentence as the floor.

use crate::engine::{Engine, STREAM_FRAME, SpeechStream};

/// Samples per frame: 32 ms, the frame Silero VAD reads at 16 kHz.
pub const FRAME: usize = STREAM_FRAME;

/// Judges frames one after another; keeps whatever state it needs between them.
pub trait Detector: Send {
    /// One probability for each whole [`FRAME`] of `frames`.
    fn speech_probabilities(&mut self, frames: &[f32]) -> Vec<f32>;
}

/// The detector a session on `engine` uses: the engine's Silero model, else energy.
pub fn detector(engine: &Engine) -> Box<dyn Detector> {
    let silero = engine.speech_detector().map(|detector| detector.stream());
    match silero {
        Some(Ok(stream)) => Box::new(Silero(stream)),
        Some(Err(error)) => {
            tracing::warn!(%error, "the speech detector could not be loaded for a live session; using loudness");
            Box::new(EnergyDetector::default())
        }
        None => Box::new(EnergyDetector::default()),
    }
}

struct Silero(SpeechStream);

impl Detector for Silero {
    fn speech_probabilities(&mut self, frames: &[f32]) -> Vec<f32> {
        self.0.probabilities(frames).unwrap_or_else(|error| {
            // Not expected once loaded; silence is the answer that invents no text.
            tracing::warn!(%error, "the live speech detector failed on some frames");
            vec![0.0; frames.len() / FRAME]
        })
    }
}

/// Quieter than this is never speech (-50 dBFS), however quiet the room.
const ABSOLUTE_FLOOR_DB: f32 = -50.0;
/// Speech stands at least this far above the noise floor.
const MARGIN_DB: f32 = 12.0;
/// The noise floor is the 10th percentile of the levels of the last 150 frames (4.8 s):
/// the pauses between words and phrases, however long someone speaks without stopping.
const WINDOW: usize = 150;
const FLOOR_PERCENTILE: usize = WINDOW / 10;

struct EnergyDetector {
    /// Levels (dBFS) of the last [`WINDOW`] frames; at first the absolute floor, so a session
    /// that starts with speech has a floor to stand on.
    levels: std::collections::VecDeque<f32>,
}

impl Default for EnergyDetector {
    fn default() -> Self {
        EnergyDetector { levels: std::iter::repeat_n(ABSOLUTE_FLOOR_DB, WINDOW).collect() }
    }
}

impl Detector for EnergyDetector {
    fn speech_probabilities(&mut self, frames: &[f32]) -> Vec<f32> {
        frames.chunks_exact(FRAME).map(|frame| self.speech_probability(frame)).collect()
    }
}

impl EnergyDetector {
    fn speech_probability(&mut self, frame: &[f32]) -> f32 {
        let power = frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32;
        let db = 10.0 * power.max(1e-12).log10();
        self.levels.pop_front();
        self.levels.push_back(db);
        let mut sorted: Vec<f32> = self.levels.iter().copied().collect();
        sorted.sort_by(f32::total_cmp);
        let onset = (sorted[FLOOR_PERCENTILE] + MARGIN_DB).max(ABSOLUTE_FLOOR_DB);
        // A soft step 3 dB wide around the onset: 0.5 at the onset itself.
        1.0 / (1.0 + (-(db - onset) / 3.0).exp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(amplitude: f32) -> Vec<f32> {
        (0..FRAME).map(|i| amplitude * (i as f32 * 0.2).sin()).collect()
    }

    #[test]
    fn loud_frames_after_quiet_ones_are_speech_and_silence_is_not() {
        let mut detector = EnergyDetector::default();
        for _ in 0..20 {
            assert!(detector.speech_probability(&tone(0.001)) < 0.5);
        }
        assert!(detector.speech_probability(&tone(0.2)) > 0.9);
        assert!(detector.speech_probability(&[0.0; FRAME]) < 0.01);
    }

    #[test]
    fn steady_noise_becomes_the_floor() {
        let mut detector = EnergyDetector::default();
        // -40 dBFS hum for a minute: at first above the floor, in the end part of it.
        let hum = tone(0.014);
        let last = (0..2_000).map(|_| detector.speech_probability(&hum)).last().unwrap();
        assert!(last < 0.5, "{last}");
    }
}
