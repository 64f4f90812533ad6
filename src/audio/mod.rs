//! Turns an uploaded file into what whisper reads: 16 kHz mono `f32` samples in [-1, 1].
//!
//! Input: a path to a file in any container and codec people upload (wav in 8/16/24-bit and
//! float PCM, mp3, flac, ogg with vorbis or opus, m4a/aac, mp4 and mkv/webm video, which may
//! list a video track first). Output: [`Audio`], the samples plus a [`SourceInfo`] to show
//! and log. [`probe`] answers "can we read this, and what is it?" without decoding.
//!
//! Decoding streams: packet by packet through symphonia (`decode.rs`), each packet averaged
//! to mono and resampled chunk by chunk (`resample.rs`), so only the 16 kHz output grows
//! (230 MB per hour), never the source at its own rate and channel count.
//!
//! Damage is forgiven where audio survives it: a header that claims more data than the file
//! holds, a cut-off last frame, or packets that fail to decode (skipped, counted in
//! [`Audio::skipped_packets`], logged) still give the audio that is there. What is not audio,
//! or yields none, is refused with its own [`DecodeError`] variant (`sniff.rs` names what a
//! non-audio file looks like).
//!
//! Known limits, both symphonia's: it ignores mp4 edit lists, so AAC keeps its encoder's
//! priming (1024 to 2112 samples, 21 to 132 ms) at the start; and an mp3 whose LAME tag it
//! cannot read keeps the decoder's 529-sample start delay. Both shift timestamps by less
//! than whisper resolves.
//!
//! This module never writes to disk, runs no external program, and knows nothing of HTTP,
//! jobs or whisper.

mod decode;
mod resample;
mod sniff;

pub(crate) use self::resample::Resampler;
pub use self::sniff::{Sniffed, sniff};

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::Duration;

use crate::errors::DecodeError;

/// whisper.cpp's input rate.
pub const SAMPLE_RATE: u32 = 16_000;

/// The longest audio [`decode_file`] returns (4 hours, 922 MB of samples).
///
/// SECURITY: a few megabytes of FLAC or PCM-in-a-container can claim or hold days of
/// silence; without a bound one upload could exhaust the machine's memory. Callers with
/// their own limit use [`decode_file_with_limit`].
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(4 * 3600);

/// Sample rates outside this range are refused as damaged headers: nothing records below
/// 4 kHz, and 768 kHz is the highest rate any recorder writes.
const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 4_000..=768_000;

/// More channels than this are refused as a damaged header (64 covers 7th-order ambisonics).
const MAX_CHANNELS: usize = 64;

/// Decoded audio, ready for the engine.
#[derive(Debug, Clone)]
pub struct Audio {
    /// 16 kHz mono samples in [-1, 1].
    pub samples: Vec<f32>,
    /// What the file was; after decoding, `sample_rate`, `channels` and `duration` are the
    /// decoded stream's, so they are always `Some`.
    pub source: SourceInfo,
    /// Packets that could not be read or decoded and were left out (0 for a sound file).
    pub skipped_packets: u64,
}

impl Audio {
    /// Length of [`Audio::samples`] as time.
    pub fn duration(&self) -> Duration {
        samples_to_duration(self.samples.len() as u64)
    }
}

/// What a file holds, as far as its container and codec say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// Container format: `wav`, `mp3`, `flac`, `ogg`, `mp4` (also m4a and mov), `matroska`
    /// (also webm), `aiff`, `caf` or `aac` (raw ADTS).
    pub container: &'static str,
    /// Audio codec of the track that is decoded: `pcm_s16le`, `pcm_f32le`, `mp3`, `aac`,
    /// `opus`, `vorbis`, `flac`, `alac`...
    pub codec: &'static str,
    /// Source sample rate in Hz; `None` when the header leaves it to the stream.
    pub sample_rate: Option<u32>,
    /// Source channel count; `None` when the header leaves it to the stream.
    pub channels: Option<u16>,
    /// Length of the audio track; `None` when the header does not say (some mp3 files).
    pub duration: Option<Duration>,
}

/// Decodes `path` to 16 kHz mono, refusing audio longer than [`DEFAULT_MAX_DURATION`].
pub fn decode_file(path: &Path) -> Result<Audio, DecodeError> {
    decode_file_with_limit(path, DEFAULT_MAX_DURATION)
}

/// Decodes `path` to 16 kHz mono, refusing audio longer than `max_duration` as soon as the
/// decoded output passes it.
pub fn decode_file_with_limit(path: &Path, max_duration: Duration) -> Result<Audio, DecodeError> {
    let max_samples = max_duration.as_millis().saturating_mul(u128::from(SAMPLE_RATE)) / 1000;
    let max_samples = usize::try_from(max_samples).unwrap_or(usize::MAX);
    guard_panics(|| decode::decode(path, max_samples))
}

/// Opens `path`, finds its first audio track we can decode and says what it is, without
/// decoding the audio: cheap enough to run on an upload before queueing a job.
pub fn probe(path: &Path) -> Result<SourceInfo, DecodeError> {
    guard_panics(|| decode::open(path).map(|opened| opened.info))
}

/// Runs a decode, turning a panic inside a third-party demuxer or decoder into an error.
///
/// SECURITY: symphonia parses untrusted bytes; a crafted file that trips a panic in it must
/// fail its own job, not take down a worker thread. Our own code returns errors instead of
/// panicking; this guard is for the libraries beneath it.
fn guard_panics<T>(run: impl FnOnce() -> Result<T, DecodeError>) -> Result<T, DecodeError> {
    catch_unwind(AssertUnwindSafe(run)).unwrap_or_else(|_| Err(DecodeError::DecoderPanicked))
}

fn samples_to_duration(samples: u64) -> Duration {
    Duration::from_nanos(samples.saturating_mul(1_000_000_000 / u64::from(SAMPLE_RATE)))
}
