//! Decoding what people upload, through `audio::decode_file` and `audio::probe`.
//!
//! Every good input is the same 11.0 s of speech (`jfk.wav`) in another format, made by
//! `tests/fixtures/make-audio.sh` at test time, so each decode is compared with the
//! original samples; the longer shared clips are checked against ffmpeg's own decode.
//! Bad inputs must each give their own `DecodeError` variant, and a few hundred mutated
//! files must give a result (audio or an error) without a panic or a hang.
//!
//! The shared clips come from `$WHISPER_APPLIANCE_TEST_AUDIO`, by default `../shared/audio`
//! beside the repository; without them these tests fail rather than pass empty.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{fixture, fixtures, shared_audio};
use whisper_appliance::audio::{self, Audio, SAMPLE_RATE, SourceInfo};
use whisper_appliance::errors::DecodeError;

/// jfk.wav: 176,000 samples at 16 kHz.
const JFK_SAMPLES: usize = 176_000;

fn decode(path: &Path) -> Audio {
    audio::decode_file(path).unwrap_or_else(|error| panic!("{} should decode: {error}", path.display()))
}

/// jfk.wav's samples, read by hound (not through symphonia) as the ground truth.
fn reference() -> &'static [f32] {
    static SAMPLES: OnceLock<Vec<f32>> = OnceLock::new();
    SAMPLES.get_or_init(|| read_pcm16_wav(&shared_audio().join("jfk.wav")))
}

/// The samples of a 16-bit mono PCM wav, scaled as symphonia scales them (x / 32768).
fn read_pcm16_wav(path: &Path) -> Vec<f32> {
    let mut wav = hound::WavReader::open(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let spec = wav.spec();
    assert_eq!(
        (spec.sample_format, spec.channels, spec.bits_per_sample),
        (hound::SampleFormat::Int, 1, 16),
        "{} is 16-bit mono PCM",
        path.display()
    );
    wav.samples::<i16>().map(|sample| f32::from(sample.unwrap()) / 32768.0).collect()
}

// ---------------------------------------------------------------------------------------
// Signal comparison
// ---------------------------------------------------------------------------------------

/// Pearson correlation of `a` and `b` with `b` shifted by `lag` samples (`a[i]` against
/// `b[i + lag]`), over the samples both have.
fn correlation_at(a: &[f32], b: &[f32], lag: isize) -> f64 {
    let (a, b) = if lag >= 0 { (a, &b[(lag as usize).min(b.len())..]) } else { (&a[(-lag) as usize..], b) };
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mean = |x: &[f32]| x.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x) - ma, f64::from(y) - mb);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt()
}

/// The shift of `decoded` against `original` (positive: `decoded` is late) that matches
/// best, searched within ±`max_lag` on two seconds of speech, and the correlation of the
/// whole signals at that shift.
fn best_alignment(original: &[f32], decoded: &[f32], max_lag: isize) -> (isize, f64) {
    let window = &original[16_000..24_000];
    let lag = (-max_lag..=max_lag)
        .max_by(|&x, &y| {
            let cx = correlation_at(window, &decoded[16_000..], x);
            let cy = correlation_at(window, &decoded[16_000..], y);
            cx.total_cmp(&cy)
        })
        .unwrap();
    (lag, correlation_at(original, decoded, lag))
}

/// Windowed-sinc low-pass, so a band-limited decode can be compared with the original.
fn low_pass(x: &[f32], cutoff_hz: f64) -> Vec<f32> {
    const TAPS: usize = 255;
    let fc = cutoff_hz / f64::from(SAMPLE_RATE);
    let mid = (TAPS / 2) as f64;
    let kernel: Vec<f64> = (0..TAPS)
        .map(|i| {
            let t = i as f64 - mid;
            let sinc = if t == 0.0 {
                2.0 * fc
            } else {
                (2.0 * std::f64::consts::PI * fc * t).sin() / (std::f64::consts::PI * t)
            };
            let window = 0.54 - 0.46 * (2.0 * std::f64::consts::PI * i as f64 / (TAPS - 1) as f64).cos();
            sinc * window
        })
        .collect();
    (0..x.len())
        .map(|n| {
            let mut acc = 0.0;
            for (k, &h) in kernel.iter().enumerate() {
                if let Some(&v) = (n + k).checked_sub(TAPS / 2).and_then(|i| x.get(i)) {
                    acc += h * f64::from(v);
                }
            }
            acc as f32
        })
        .collect()
}

/// RMS per 20 ms frame: what a listener hears as loudness over time.
fn envelope(x: &[f32]) -> Vec<f32> {
    x.chunks(320).map(|f| (f.iter().map(|v| v * v).sum::<f32>() / f.len() as f32).sqrt()).collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn seconds(samples: usize) -> f64 {
    samples as f64 / f64::from(SAMPLE_RATE)
}

// ---------------------------------------------------------------------------------------
// Good inputs: jfk.wav in the formats people upload
// ---------------------------------------------------------------------------------------

/// What one variant of jfk.wav must decode to, and what its header says.
struct Expect {
    name: &'static str,
    container: &'static str,
    codec: &'static str,
    rate: u32,
    channels: u16,
    check: Check,
}

/// How closely a decode must match jfk.wav. Every variant must also have the original's
/// length within 50 ms once a known codec delay (`lag`) is taken off.
enum Check {
    /// Lossless: bit-for-bit the original samples.
    Exact,
    /// Lossless but requantised (8-bit) or resampled by ffmpeg and back by us: same length,
    /// aligned (lag 0), every sample within `max_diff`, correlation at least `min_corr`.
    Close { max_diff: f32, min_corr: f64 },
    /// Telephone band (8 kHz): both signals low-passed to 3.4 kHz, where the 8 kHz file
    /// still has all of the original, then correlated at lag 0.
    Telephone { min_corr: f64 },
    /// Lossy codec: the best shift within ±75 ms is `lag` (±1 sample), correlation there at
    /// least `min_corr`.
    Lossy { lag: isize, min_corr: f64 },
}

const GOOD: &[Expect] = &[
    Expect { name: "jfk.flac", container: "flac", codec: "flac", rate: 16_000, channels: 1, check: Check::Exact },
    Expect { name: "s24.wav", container: "wav", codec: "pcm_s24le", rate: 16_000, channels: 1, check: Check::Exact },
    Expect {
        name: "video_flac.mkv",
        container: "matroska",
        codec: "flac",
        rate: 16_000,
        channels: 1,
        check: Check::Exact,
    },
    Expect {
        name: "u8.wav",
        container: "wav",
        codec: "pcm_u8",
        rate: 16_000,
        channels: 1,
        // 8-bit steps are 1/128 of full scale.
        check: Check::Close { max_diff: 1.0 / 128.0, min_corr: 0.999 },
    },
    Expect {
        name: "stereo_44k.wav",
        container: "wav",
        codec: "pcm_s16le",
        rate: 44_100,
        channels: 2,
        // ffmpeg's mono-to-stereo lowers each channel by 3 dB; the average keeps that, so
        // the sample bound is loose and the correlation tight.
        check: Check::Close { max_diff: 0.25, min_corr: 0.9999 },
    },
    Expect {
        name: "float_48k.wav",
        container: "wav",
        codec: "pcm_f32le",
        rate: 48_000,
        channels: 1,
        check: Check::Close { max_diff: 0.005, min_corr: 0.9999 },
    },
    Expect {
        name: "telephone_8k.wav",
        container: "wav",
        codec: "pcm_s16le",
        rate: 8_000,
        channels: 1,
        check: Check::Telephone { min_corr: 0.9999 },
    },
    Expect {
        name: "telephone_8k_mulaw.wav",
        container: "wav",
        codec: "pcm_mulaw",
        rate: 8_000,
        channels: 1,
        // mu-law keeps about 8 bits.
        check: Check::Telephone { min_corr: 0.999 },
    },
    Expect {
        name: "vorbis.ogg",
        container: "ogg",
        codec: "vorbis",
        rate: 16_000,
        channels: 1,
        check: Check::Lossy { lag: 0, min_corr: 0.99 },
    },
    Expect {
        name: "opus.ogg",
        container: "ogg",
        codec: "opus",
        rate: 48_000,
        channels: 1,
        // Decoded at 48 kHz and resampled; lands about half a 16 kHz sample before
        // ffmpeg's own decode, so the best whole-sample shift is -1 or 0.
        check: Check::Lossy { lag: 0, min_corr: 0.97 },
    },
    Expect {
        name: "opus.webm",
        container: "matroska",
        codec: "opus",
        rate: 16_000,
        channels: 1,
        check: Check::Lossy { lag: 0, min_corr: 0.99 },
    },
    Expect {
        name: "aac.m4a",
        container: "mp4",
        codec: "aac",
        rate: 16_000,
        channels: 1,
        // symphonia ignores mp4 edit lists, so the encoder's 1024 priming samples stay.
        check: Check::Lossy { lag: 1024, min_corr: 0.99 },
    },
    Expect {
        name: "video.mp4",
        container: "mp4",
        codec: "aac",
        rate: 48_000,
        channels: 2,
        // The same 1024 priming samples, at 48 kHz: 341.3 samples at 16 kHz.
        check: Check::Lossy { lag: 341, min_corr: 0.98 },
    },
];

#[test]
fn every_format_variant_decodes_to_the_original_speech() {
    let original = reference();
    assert_eq!(original.len(), JFK_SAMPLES);
    for expect in GOOD {
        let path = fixture(expect.name);
        let audio = decode(&path);
        let name = expect.name;
        let source = &audio.source;
        assert_eq!(
            (source.container, source.codec, source.sample_rate, source.channels),
            (expect.container, expect.codec, Some(expect.rate), Some(expect.channels)),
            "{name}: source info"
        );
        assert_eq!(audio.skipped_packets, 0, "{name}: a sound file has no damaged packets");
        assert_eq!(source.duration, Some(audio.duration()), "{name}: duration is the decoded length");
        assert!(audio.samples.iter().all(|s| (-1.0..=1.0).contains(s)), "{name}: samples in [-1, 1]");

        let decoded = &audio.samples;
        let codec_delay = match expect.check {
            Check::Lossy { lag, .. } => lag,
            _ => 0,
        };
        let content_len = decoded.len() as isize - codec_delay;
        assert!(
            (content_len - JFK_SAMPLES as isize).abs() <= 800,
            "{name}: {} s of audio after a {codec_delay}-sample codec delay, want 11.0 s within 50 ms",
            seconds(content_len.max(0) as usize)
        );
        match expect.check {
            Check::Exact => assert!(decoded == original, "{name}: not bit-for-bit the original"),
            Check::Close { max_diff, min_corr } => {
                assert_eq!(decoded.len(), JFK_SAMPLES, "{name}: length");
                let diff = max_abs_diff(original, decoded);
                assert!(diff <= max_diff, "{name}: a sample is off by {diff}, want at most {max_diff}");
                let corr = correlation_at(original, decoded, 0);
                assert!(corr >= min_corr, "{name}: correlation {corr:.5}, want at least {min_corr}");
            }
            Check::Telephone { min_corr } => {
                assert_eq!(decoded.len(), JFK_SAMPLES, "{name}: length");
                let corr = correlation_at(&low_pass(original, 3_400.0), &low_pass(decoded, 3_400.0), 0);
                assert!(corr >= min_corr, "{name}: correlation below 3.4 kHz {corr:.5}, want at least {min_corr}");
            }
            Check::Lossy { lag, min_corr } => {
                let (found, corr) = best_alignment(original, decoded, 1200);
                assert!((found - lag).abs() <= 1, "{name}: best shift {found} samples, want {lag}");
                assert!(corr >= min_corr, "{name}: correlation {corr:.5} at shift {found}, want at least {min_corr}");
            }
        }
        // Loudness over time, 20 ms at a time, follows the original for every codec.
        let envelope_corr = correlation_at(&envelope(original), &envelope(&decoded[codec_delay as usize..]), 0);
        assert!(envelope_corr >= 0.99, "{name}: loudness envelope correlation {envelope_corr:.4}");
    }
}

#[test]
fn probe_reads_the_header_without_decoding() {
    for expect in GOOD {
        let info = audio::probe(&fixture(expect.name)).unwrap_or_else(|e| panic!("{}: {e}", expect.name));
        assert_eq!(
            (info.container, info.codec, info.sample_rate, info.channels),
            (expect.container, expect.codec, Some(expect.rate), Some(expect.channels)),
            "{}",
            expect.name
        );
    }
    let info = audio::probe(&shared_audio().join("columbia_address_2003.flac")).unwrap();
    let expected = SourceInfo {
        container: "flac",
        codec: "flac",
        sample_rate: Some(16_000),
        channels: Some(1),
        duration: Some(Duration::from_secs_f64(3_180_205.0 / 16_000.0)),
    };
    assert_eq!(info, expected);
}

#[test]
fn shared_speech_clips_decode_like_ffmpeg() {
    let jfk_mp3 = decode(&shared_audio().join("jfk.mp3"));
    assert_eq!(jfk_mp3.samples.len(), JFK_SAMPLES, "jfk.mp3: its LAME tag gives the exact length");
    let (lag, corr) = best_alignment(reference(), &jfk_mp3.samples, 1200);
    assert_eq!(lag, 0, "jfk.mp3: encoder and decoder delay trimmed");
    assert!(corr >= 0.999, "jfk.mp3: correlation {corr:.5}");

    let jfk_wav = decode(&shared_audio().join("jfk.wav"));
    assert!(jfk_wav.samples == reference(), "jfk.wav: 16 kHz input passes through untouched");

    // Lossless 16 kHz FLAC: exactly what ffmpeg decodes.
    let columbia = decode(&shared_audio().join("columbia_address_2003.flac"));
    let ffmpeg = read_pcm16_wav(&fixture("columbia_ffmpeg_16k.wav"));
    assert!(columbia.samples == ffmpeg, "columbia: not bit-for-bit ffmpeg's decode");
    assert!((seconds(columbia.samples.len()) - 198.8).abs() < 0.05);
}

#[test]
fn mp3_at_22khz_resamples_like_ffmpeg() {
    let tale = decode(&shared_audio().join("tale_of_two_cities_ch1.mp3"));
    assert_eq!(tale.source.sample_rate, Some(22_050));
    let ffmpeg = read_pcm16_wav(&fixture("tale_ffmpeg_16k.wav"));
    // This clip was cut without re-encoding and its LAME tag does not parse, so symphonia
    // keeps the mp3 decoder's 529-sample start delay (383.8 samples at 16 kHz) that ffmpeg
    // drops: 24 ms, well under whisper's timestamp resolution.
    let (lag, corr) = best_alignment(&ffmpeg, &tale.samples, 1200);
    assert_eq!(lag, 384, "tale: shift against ffmpeg");
    assert!(corr >= 0.98, "tale: correlation with ffmpeg's decode {corr:.5}");
    let content = tale.samples.len() - 384;
    assert!(content.abs_diff(ffmpeg.len()) <= 800, "tale: {} s, ffmpeg {} s", seconds(content), seconds(ffmpeg.len()));
    assert!((seconds(tale.samples.len()) - 215.35).abs() < 0.05);
}

// ---------------------------------------------------------------------------------------
// Damaged and wrong inputs
// ---------------------------------------------------------------------------------------

#[test]
fn a_lying_riff_size_decodes_all_that_is_there() {
    let audio = decode(&fixture("lying_riff_size.wav"));
    assert!(audio.samples == reference(), "the whole file, bit for bit");
    assert_eq!(audio.skipped_packets, 0);
    // The header claims about 17 hours in 352 kB: probe does not repeat a length the file
    // cannot hold (an upload would otherwise be refused as too long).
    let probed = audio::probe(&fixture("lying_riff_size.wav")).unwrap();
    assert_eq!(probed.duration, None, "{probed:?}");
}

/// A truncated mp3 decodes the frames that are there, not an error.
#[test]
fn a_truncated_mp3_decodes_the_part_that_is_there() {
    let audio = decode(&fixture("truncated.mp3"));
    let len = audio.samples.len();
    // 10 KB of a 55 kb/s file, less its tags: about 1.2 s.
    assert!((16_000..24_000).contains(&len), "{} s decoded", seconds(len));
    let corr = correlation_at(&reference()[..len], &audio.samples, 0);
    assert!(corr >= 0.999, "the start of jfk, aligned: correlation {corr:.5}");
}

#[test]
fn digital_silence_decodes_to_zeros() {
    let audio = decode(&fixture("silence_5s.wav"));
    assert_eq!(audio.samples.len(), 5 * SAMPLE_RATE as usize);
    assert!(audio.samples.iter().all(|&s| s == 0.0));
}

/// A file that must be refused: which variant, and the sentence the user reads.
type Refusal = (&'static str, fn(&DecodeError) -> bool, &'static str);

#[test]
fn each_bad_input_gets_its_own_error() {
    let cases: &[Refusal] = &[
        (
            "empty.wav",
            |e| matches!(e, DecodeError::Empty),
            "the file is empty; the upload or recording may have been cut off, send it again",
        ),
        (
            "text.wav",
            |e| matches!(e, DecodeError::NotAudio { found } if found == "plain text"),
            "this is not audio we can read (looks like plain text); send wav, mp3, flac, ogg, opus, m4a, webm or mp4",
        ),
        (
            "image.mp3",
            |e| matches!(e, DecodeError::NotAudio { found } if found == "an image (PNG)"),
            "this is not audio we can read (looks like an image (PNG)); send wav, mp3, flac, ogg, opus, m4a, webm or mp4",
        ),
        (
            "document.m4a",
            |e| matches!(e, DecodeError::NotAudio { found } if found == "a document (PDF)"),
            "this is not audio we can read (looks like a document (PDF)); send wav, mp3, flac, ogg, opus, m4a, webm or mp4",
        ),
        (
            "video_only.mp4",
            |e| matches!(e, DecodeError::NoAudioTrack { container: "mp4" }),
            "this mp4 file has no audio track; send a recording that has sound",
        ),
        (
            "ac3.mkv",
            |e| matches!(e, DecodeError::UnsupportedCodec { container: "matroska", codec: "AC-3 (Dolby Digital)" }),
            "the audio in this matroska file is AC-3 (Dolby Digital), which we cannot decode; convert it to wav, flac, \
             mp3 or opus",
        ),
        (
            "pcm.avi",
            |e| matches!(e, DecodeError::UnsupportedContainer { container: "avi" }),
            "avi files are not supported; convert it to wav, flac, mp3, ogg, m4a, webm or mp4",
        ),
        (
            "rate_zero.wav",
            |e| matches!(e, DecodeError::ImplausibleFormat { claim } if claim == "a sample rate of 0 Hz"),
            "the file's header claims a sample rate of 0 Hz, which no recording has; the file is damaged, export or \
             convert it again",
        ),
        (
            "rate_10mhz.wav",
            |e| matches!(e, DecodeError::ImplausibleFormat { claim } if claim == "a sample rate of 10000000 Hz"),
            "the file's header claims a sample rate of 10000000 Hz, which no recording has; the file is damaged, export \
             or convert it again",
        ),
        (
            // symphonia refuses a zero channel count while reading the header, before we
            // see it, so this is "damaged" rather than "implausible".
            "channels_zero.wav",
            |e| matches!(e, DecodeError::Corrupt { container: "wav" }),
            "this wav file is damaged: no audio could be decoded from it; export or convert it again",
        ),
        (
            // Found by the mutation test: a size field that makes symphonia seek outside
            // the file gave a disk error (`Read`) before.
            "huge_ebml_size.mkv",
            |e| matches!(e, DecodeError::Corrupt { container: "mkv" }),
            "this mkv file is damaged: no audio could be decoded from it; export or convert it again",
        ),
    ];
    for (name, is_expected, message) in cases {
        let path = fixture(name);
        let error = audio::decode_file(&path).expect_err(name);
        assert!(is_expected(&error), "{name}: got {error:?}");
        assert_eq!(error.to_string(), *message, "{name}: message");
        let probed = audio::probe(&path).expect_err(name);
        assert!(is_expected(&probed), "{name}: probe got {probed:?}");
    }
}

#[test]
fn a_missing_file_is_an_open_error() {
    let path = fixtures().join("no-such-file.wav");
    let error = audio::decode_file(&path).unwrap_err();
    assert!(matches!(&error, DecodeError::Open { path: p, .. } if *p == path), "{error:?}");
    assert!(error.to_string().starts_with("cannot open "), "{error}");
}

#[test]
fn audio_over_the_limit_is_refused() {
    let path = shared_audio().join("columbia_address_2003.flac");
    let error = audio::decode_file_with_limit(&path, Duration::from_secs(120)).unwrap_err();
    assert!(matches!(error, DecodeError::TooLong { limit_minutes: 2 }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "the audio is longer than the 2-minute limit; split the recording and send the parts"
    );
}

// ---------------------------------------------------------------------------------------
// Robustness: mutated files
// ---------------------------------------------------------------------------------------

/// Mutated files to decode. Each takes well under a second in a debug build; raise this
/// for a longer hunt (`WHISPER_APPLIANCE_FUZZ_FILES=5000 cargo test --release --test audio_decode mutated`).
const FUZZ_FILES: usize = 2000;

/// A decode that takes longer than this is taken as a hang.
const FUZZ_TIMEOUT: Duration = Duration::from_secs(20);

/// Seeds: every container and codec, small enough to mutate quickly.
const FUZZ_SEEDS: &[&str] = &[
    "jfk.flac",
    "s24.wav",
    "u8.wav",
    "telephone_8k_mulaw.wav",
    "vorbis.ogg",
    "opus.ogg",
    "opus.webm",
    "aac.m4a",
    "video.mp4",
    "video_flac.mkv",
    "truncated.mp3",
    "ac3.mkv",
];

/// SplitMix64: a fixed seed gives the same files on every run and machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One damaged copy of `data`: bit flips (anywhere or in the headers), a cut, a span of
/// random bytes, or a header field set to an extreme value; sometimes two of these.
fn mutate(data: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = data.to_vec();
    for _ in 0..1 + rng.below(2) {
        match rng.below(5) {
            0 => {
                for _ in 0..1 + rng.below(16) {
                    let at = rng.below(out.len());
                    out[at] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let header = out.len().min(4096);
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(header);
                    out[at] ^= 1 << rng.below(8);
                }
            }
            2 => out.truncate(rng.below(out.len())),
            3 => {
                let at = rng.below(out.len());
                let end = (at + 1 + rng.below(64)).min(out.len());
                for byte in &mut out[at..end] {
                    *byte = rng.next() as u8;
                }
            }
            _ => {
                let at = rng.below(out.len().min(512).saturating_sub(4)) & !3;
                let value: u32 = [0, 1, 0x7fff_ffff, 0xffff_ffff][rng.below(4)];
                if let Some(field) = out.get_mut(at..at + 4) {
                    field.copy_from_slice(&value.to_le_bytes());
                }
            }
        }
        if out.is_empty() {
            break;
        }
    }
    out
}

fn outcome(result: &Result<Audio, DecodeError>) -> &'static str {
    match result {
        Ok(_) => "decoded",
        Err(DecodeError::Open { .. }) => "Open",
        Err(DecodeError::Read { .. }) => "Read",
        Err(DecodeError::Empty) => "Empty",
        Err(DecodeError::NotAudio { .. }) => "NotAudio",
        Err(DecodeError::UnsupportedContainer { .. }) => "UnsupportedContainer",
        Err(DecodeError::NoAudioTrack { .. }) => "NoAudioTrack",
        Err(DecodeError::UnsupportedCodec { .. }) => "UnsupportedCodec",
        Err(DecodeError::ImplausibleFormat { .. }) => "ImplausibleFormat",
        Err(DecodeError::Corrupt { .. }) => "Corrupt",
        Err(DecodeError::TooLong { .. }) => "TooLong",
        Err(DecodeError::DecoderPanicked) => "DecoderPanicked",
        Err(DecodeError::Resample { .. }) => "Resample",
    }
}

#[test]
fn mutated_files_never_panic_or_hang() {
    let count = std::env::var("WHISPER_APPLIANCE_FUZZ_FILES").ok().and_then(|n| n.parse().ok()).unwrap_or(FUZZ_FILES);
    let seeds: Vec<(&str, Vec<u8>)> =
        FUZZ_SEEDS.iter().map(|name| (*name, std::fs::read(fixture(name)).unwrap())).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x5eed_a0d1_0000_0001);
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    let mut slowest = (Duration::ZERO, String::new());
    let started = Instant::now();
    for i in 0..count {
        let (seed, data) = &seeds[i % seeds.len()];
        let path = dir.path().join(format!("{i:05}-{seed}"));
        std::fs::write(&path, mutate(data, &mut rng)).unwrap();

        let (send, receive) = mpsc::channel();
        let to_decode = path.clone();
        let one = Instant::now();
        std::thread::spawn(move || send.send(audio::decode_file(&to_decode)));
        let result = match receive.recv_timeout(FUZZ_TIMEOUT) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("decoding {} hung (over {FUZZ_TIMEOUT:?})", path.display()),
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("decoding {} panicked", path.display()),
        };
        if one.elapsed() > slowest.0 {
            slowest = (one.elapsed(), path.display().to_string());
        }
        let what = outcome(&result);
        // Our own invariants; a crash inside symphonia is caught and reported, but would
        // still be a bug to file upstream.
        assert!(!matches!(what, "Resample" | "DecoderPanicked" | "Open" | "Read"), "{}: {result:?}", path.display());
        if let Ok(audio) = &result {
            assert!(audio.samples.iter().all(|s| (-1.0..=1.0).contains(s)), "{}: samples out of range", path.display());
        }
        *outcomes.entry(what).or_default() += 1;
    }
    println!(
        "{count} mutated files in {:.1?} (slowest {:.1?}: {}): {outcomes:?}",
        started.elapsed(),
        slowest.0,
        slowest.1
    );
}
