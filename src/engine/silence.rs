//! An energy gate that keeps whisper.cpp from spending encoder passes on silence.
//!
//! Input: 16 kHz mono samples. Output: the spans worth transcribing, packed into one
//! shorter buffer, and a [`Timeline`] that maps times in that buffer back to the original
//! recording, so timestamps stay true to what the user uploaded.
//!
//! The gate is deliberately conservative: a frame counts as silent only below -50 dBFS,
//! and only stretches of at least [`MIN_SKIPPED_SILENCE_MS`] are cut, with
//! [`PADDING_MS`] of real audio kept on each side. Quiet speech is never dropped;
//! noisy rooms simply gain nothing.

use std::ops::Range;

use crate::audio::SAMPLE_RATE;

/// Frames quieter than this RMS (about -50 dBFS) count as silence.
const SILENCE_RMS: f32 = 0.003_16;
/// Analysis frame: 20 ms.
const FRAME: usize = SAMPLE_RATE as usize / 50;
/// Silence shorter than this is kept: cutting it would save little and could clip words.
pub const MIN_SKIPPED_SILENCE_MS: u64 = 2_000;
/// Audio kept on each side of a speech span so word onsets and endings survive.
pub const PADDING_MS: u64 = 400;

fn ms_to_samples(ms: u64) -> usize {
    (ms * SAMPLE_RATE as u64 / 1000) as usize
}

fn samples_to_ms(samples: usize) -> u64 {
    samples as u64 * 1000 / SAMPLE_RATE as u64
}

/// Sample ranges that hold sound, padded and merged across gaps shorter than the minimum.
pub fn sound_spans(samples: &[f32]) -> Vec<Range<usize>> {
    let padding = ms_to_samples(PADDING_MS);
    let min_gap = ms_to_samples(MIN_SKIPPED_SILENCE_MS);
    let mut spans: Vec<Range<usize>> = Vec::new();
    for (index, frame) in samples.chunks(FRAME).enumerate() {
        let energy = frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32;
        if energy.sqrt() < SILENCE_RMS {
            continue;
        }
        let start = (index * FRAME).saturating_sub(padding);
        let end = (index * FRAME + frame.len() + padding).min(samples.len());
        match spans.last_mut() {
            Some(last) if start <= last.end + min_gap => last.end = end,
            _ => spans.push(start..end),
        }
    }
    spans
}

/// The whole recording as one span (no gate), or none if it is empty.
pub fn whole(samples: &[f32]) -> Vec<Range<usize>> {
    std::iter::once(0..samples.len()).filter(|span| !span.is_empty()).collect()
}

/// Maps a time in the packed buffer back to the original recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// `(packed start, original start, length)` in samples, in order.
    pieces: Vec<(usize, usize, usize)>,
}

impl Timeline {
    /// The original time of a packed time; `prefer_earlier` picks the piece that ends at
    /// a boundary rather than the one that starts there (for segment end times).
    pub fn original_ms(&self, packed_ms: u64, prefer_earlier: bool) -> u64 {
        let packed = ms_to_samples(packed_ms);
        let piece = self
            .pieces
            .iter()
            .find(|(start, _, len)| if prefer_earlier { packed <= start + len } else { packed < start + len })
            .or(self.pieces.last());
        match piece {
            Some(&(packed_start, original_start, len)) => {
                samples_to_ms(original_start + packed.saturating_sub(packed_start).min(len))
            }
            None => packed_ms,
        }
    }
}

/// The sound of a recording with long silences cut out, and where each piece came from.
pub fn pack(samples: &[f32], spans: &[Range<usize>]) -> (Vec<f32>, Timeline) {
    let mut packed = Vec::with_capacity(spans.iter().map(|span| span.len()).sum());
    let mut pieces = Vec::with_capacity(spans.len());
    for span in spans {
        pieces.push((packed.len(), span.start, span.len()));
        packed.extend_from_slice(&samples[span.clone()]);
    }
    (packed, Timeline { pieces })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f32) -> Vec<f32> {
        let n = (seconds * SAMPLE_RATE as f32) as usize;
        (0..n).map(|i| 0.1 * (i as f32 * 0.05).sin()).collect()
    }

    fn silence(seconds: f32) -> Vec<f32> {
        vec![0.0; (seconds * SAMPLE_RATE as f32) as usize]
    }

    #[test]
    fn digital_silence_has_no_spans() {
        assert!(sound_spans(&silence(5.0)).is_empty());
        assert!(sound_spans(&[]).is_empty());
    }

    #[test]
    fn short_pauses_are_kept_whole() {
        let audio = [tone(1.0), silence(1.0), tone(1.0)].concat();
        assert_eq!(sound_spans(&audio), vec![0..audio.len()]);
    }

    #[test]
    fn long_silence_is_cut_with_padding_on_both_sides() {
        let audio = [tone(1.0), silence(60.0), tone(1.0)].concat();
        let spans = sound_spans(&audio);
        let pad = ms_to_samples(PADDING_MS);
        assert_eq!(spans, vec![0..16_000 + pad, 61 * 16_000 - pad..audio.len()]);
    }

    #[test]
    fn packed_times_map_back_to_the_original_recording() {
        let audio = [silence(30.0), tone(2.0), silence(60.0), tone(2.0)].concat();
        let spans = sound_spans(&audio);
        let (packed, timeline) = pack(&audio, &spans);
        assert_eq!(packed.len(), spans.iter().map(|s| s.len()).sum::<usize>());
        // Packed time 0 is 400 ms before the first tone, which starts at 30 s.
        assert_eq!(timeline.original_ms(0, false), 29_600);
        assert_eq!(timeline.original_ms(400, false), 30_000);
        // The first piece is 2.8 s long; its end and the second piece's start differ.
        assert_eq!(timeline.original_ms(2_800, true), 32_400);
        assert_eq!(timeline.original_ms(2_800, false), 91_600);
        assert_eq!(timeline.original_ms(2_800 + 400, false), 92_000);
    }
}
