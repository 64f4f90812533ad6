//! Packing the speech of a recording into one shorter buffer, and the way back.
//!
//! Input: 16 kHz mono samples and the spans to keep (from the speech detector, or the whole
//! recording). Output: those spans joined into one buffer, each followed by [`GAP_MS`] of
//! digital silence so whisper hears a pause where one was cut out, and a [`Timeline`] that
//! maps times in that buffer back to the original recording, so every timestamp (segments
//! and words) stays true to what the user uploaded.

use std::ops::Range;

use crate::audio::SAMPLE_RATE;

/// Silence put between two packed spans: whisper.cpp's own VAD uses the same 100 ms.
pub const GAP_MS: u64 = 100;

fn ms_to_samples(ms: u64) -> usize {
    (ms * SAMPLE_RATE as u64 / 1000) as usize
}

fn samples_to_ms(samples: usize) -> u64 {
    samples as u64 * 1000 / SAMPLE_RATE as u64
}

/// The whole recording as one span (detection off), or none if it is empty.
pub fn whole(samples: &[f32]) -> Vec<Range<usize>> {
    std::iter::once(0..samples.len()).filter(|span| !span.is_empty()).collect()
}

/// Total length of the spans, in milliseconds.
pub fn spans_ms(spans: &[Range<usize>]) -> u64 {
    samples_to_ms(spans.iter().map(ExactSizeIterator::len).sum())
}

/// Maps a time in the packed buffer back to the original recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// `(packed start, original start, length)` in samples, in order.
    pieces: Vec<(usize, usize, usize)>,
}

impl Timeline {
    /// The original time of a packed time. A time in a gap, or on the boundary between two
    /// pieces, belongs to the end of the piece before when `prefer_earlier` (an end time),
    /// else to the start of the piece after (a start time).
    pub fn original_ms(&self, packed_ms: u64, prefer_earlier: bool) -> u64 {
        let packed = ms_to_samples(packed_ms);
        let index = if prefer_earlier {
            self.pieces.iter().rposition(|&(start, _, _)| start < packed).unwrap_or(0)
        } else {
            self.pieces
                .iter()
                .position(|&(start, _, len)| packed < start + len)
                .unwrap_or(self.pieces.len().saturating_sub(1))
        };
        match self.pieces.get(index) {
            Some(&(packed_start, original_start, len)) => {
                samples_to_ms(original_start + packed.saturating_sub(packed_start).min(len))
            }
            None => packed_ms,
        }
    }
}

/// The spans of a recording joined with short gaps, and where each piece came from.
pub fn pack(samples: &[f32], spans: &[Range<usize>]) -> (Vec<f32>, Timeline) {
    let gap = ms_to_samples(GAP_MS);
    let mut packed = Vec::with_capacity(spans.iter().map(|span| span.len() + gap).sum());
    let mut pieces = Vec::with_capacity(spans.len());
    for (index, span) in spans.iter().enumerate() {
        if index > 0 {
            packed.resize(packed.len() + gap, 0.0);
        }
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

    #[test]
    fn the_whole_of_nothing_is_no_span() {
        assert!(whole(&[]).is_empty());
        assert_eq!(whole(&tone(1.0)), vec![0..16_000]);
    }

    #[test]
    fn packed_times_map_back_to_the_original_recording() {
        let audio = tone(100.0);
        // Two pieces: 29.6-32.4 s and 91.6-94.4 s of the original.
        let spans = [ms_to_samples(29_600)..ms_to_samples(32_400), ms_to_samples(91_600)..ms_to_samples(94_400)];
        let (packed, timeline) = pack(&audio, &spans);
        assert_eq!(packed.len(), ms_to_samples(2_800 + GAP_MS + 2_800));
        assert_eq!(spans_ms(&spans), 5_600);
        assert_eq!(timeline.original_ms(0, false), 29_600);
        assert_eq!(timeline.original_ms(400, false), 30_000);
        // The first piece ends at packed 2.8 s; the gap follows, then the second piece.
        assert_eq!(timeline.original_ms(2_800, true), 32_400);
        assert_eq!(timeline.original_ms(2_850, true), 32_400);
        assert_eq!(timeline.original_ms(2_850, false), 91_600);
        assert_eq!(timeline.original_ms(2_900, false), 91_600);
        assert_eq!(timeline.original_ms(2_900 + 400, false), 92_000);
        assert_eq!(timeline.original_ms(60_000, true), 94_400);
    }
}
