//! Whisper's mel filter bank, computed rather than copied: the triangular Slaney-scale
//! filters of `librosa.filters.mel(sr=16000, n_fft=400, n_mels=N)`, which is how
//! openai-whisper made its mel_filters.npz and what a ggml file carries after its header.
//!
//! The arithmetic follows librosa step for step in f64, including its one rounding to
//! f32 before the Slaney normalisation: all 16080 values agree with those librosa 0.11.0
//! wrote into the test's reference file to within a ten-millionth of the largest weight.

use super::ggml::N_FFT_BINS;

const SAMPLE_RATE: f64 = 16_000.0;

/// Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
const HZ_PER_MEL: f64 = 200.0 / 3.0;
const LOG_START_HZ: f64 = 1_000.0;
const LOG_START_MEL: f64 = LOG_START_HZ / HZ_PER_MEL;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= LOG_START_HZ { LOG_START_MEL + (hz / LOG_START_HZ).ln() / log_step() } else { hz / HZ_PER_MEL }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= LOG_START_MEL { LOG_START_HZ * (log_step() * (mel - LOG_START_MEL)).exp() } else { HZ_PER_MEL * mel }
}

/// `n_mels` rows of [`N_FFT_BINS`] weights, row after row.
pub fn filter_bank(n_mels: usize) -> Vec<f32> {
    // Band edges: n_mels + 2 points evenly spaced in mel from 0 Hz to Nyquist.
    let top = hz_to_mel(SAMPLE_RATE / 2.0);
    let steps = (n_mels + 1) as f64;
    // numpy's linspace: start + i * step, with the last point exactly the stop.
    let edges: Vec<f64> =
        (0..n_mels + 2).map(|i| if i == n_mels + 1 { top } else { i as f64 * (top / steps) }).map(mel_to_hz).collect();
    // numpy's rfftfreq(400, 1 / 16000), written as numpy computes it.
    let bin_width = 1.0 / (400.0 * (1.0 / SAMPLE_RATE));
    let bin_hz = |k: usize| k as f64 * bin_width;

    let mut filters = Vec::with_capacity(n_mels * N_FFT_BINS);
    for band in 0..n_mels {
        let (low, centre, high) = (edges[band], edges[band + 1], edges[band + 2]);
        let norm = 2.0 / (high - low);
        for k in 0..N_FFT_BINS {
            let rising = -(low - bin_hz(k)) / (centre - low);
            let falling = (high - bin_hz(k)) / (high - centre);
            // librosa stores the triangle in its f32 array before scaling it.
            let weight = f64::from(rising.min(falling).max(0.0) as f32);
            filters.push((weight * norm) as f32);
        }
    }
    filters
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by tests/fixtures/mel_reference.py with librosa.
    const LIBROSA_80: &[u8] = include_bytes!("../../tests/fixtures/mel_filters_80x201.f32");

    #[test]
    fn matches_librosa_for_80_bands() {
        let reference: Vec<f32> =
            LIBROSA_80.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        let ours = filter_bank(80);
        assert_eq!(ours.len(), reference.len());
        assert_eq!(ours.len(), 80 * 201);
        let mut worst = (0.0f32, 0usize);
        for (i, (&a, &b)) in ours.iter().zip(&reference).enumerate() {
            let diff = (a - b).abs();
            // Relative to the largest weight (about 0.026), so that near-zero values count too.
            assert!(diff <= 1e-7 * 0.03, "value {i} (band {}, bin {}): ours {a}, librosa {b}", i / 201, i % 201);
            if diff > worst.0 {
                worst = (diff, i);
            }
        }
        println!("largest difference from librosa: {} at value {}", worst.0, worst.1);
    }

    #[test]
    fn every_band_is_a_nonempty_triangle() {
        let filters = filter_bank(80);
        for band in filters.chunks(N_FFT_BINS) {
            let peak = band.iter().cloned().fold(0.0f32, f32::max);
            assert!(peak > 0.0);
            assert!(band.iter().all(|&w| w >= 0.0));
        }
    }

    #[test]
    fn the_scale_is_linear_to_1_khz_then_logarithmic() {
        assert!((hz_to_mel(1_000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-12);
        assert!((hz_to_mel(6_400.0) - 42.0).abs() < 1e-12);
        for hz in [0.0, 440.0, 999.0, 1_000.0, 4_321.0, 8_000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-9, "{hz}");
        }
    }
}
