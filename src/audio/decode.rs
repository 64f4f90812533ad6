//! symphonia's side: open a file, pick its first decodable audio track, decode it packet
//! by packet into mono, and feed the resampler.
//!
//! Input: a path. Output: an opened track ([`open`], for probing) or the whole 16 kHz
//! [`Audio`] ([`decode`]). The codec registry is symphonia's codecs plus libopus (through
//! `symphonia-adapter-libopus`) for Opus in ogg and webm; it is built once per process.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use symphonia::core::audio::GenericAudioBufferRef;
use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::well_known as codec;
use symphonia::core::codecs::audio::{AudioCodecId, AudioCodecParameters, AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia_adapter_libopus::OpusDecoder;
use tracing::{debug, warn};

use super::resample::Resampler;
use super::sniff::{Sniffed, sniff};
use super::{Audio, MAX_CHANNELS, SAMPLE_RATE, SAMPLE_RATES, SourceInfo, samples_to_duration};
use crate::errors::DecodeError;

/// Bytes read up front to tell what a file looks like; the `infer` matchers need fewer.
const HEAD_LEN: u64 = 8192;

/// Errors in a row after which a stream is taken to have ended. A damaged stretch costs a
/// few errors before the demuxer finds the next frame; a reader that keeps failing without
/// moving on would otherwise loop for ever.
const MAX_ERRORS_IN_A_ROW: u32 = 1000;

/// Output reserved up front from the header's duration is capped at ten minutes: a header
/// can claim any length, and past that the vector's own doubling costs little.
const MAX_RESERVE: usize = 600 * SAMPLE_RATE as usize;

static CODECS: LazyLock<CodecRegistry> = LazyLock::new(|| {
    let mut registry = CodecRegistry::new();
    symphonia::default::register_enabled_codecs(&mut registry);
    registry.register_audio_decoder::<OpusDecoder>();
    registry
});

/// A file opened at its first decodable audio track, ready for packets.
pub(super) struct Opened {
    format: Box<dyn FormatReader>,
    track_id: u32,
    decoder: Box<dyn AudioDecoder>,
    pub(super) info: SourceInfo,
}

pub(super) fn open(path: &Path) -> Result<Opened, DecodeError> {
    let open_error = |source| DecodeError::Open { path: path.to_owned(), source };
    let mut file = File::open(path).map_err(open_error)?;
    let mut head = Vec::new();
    (&file).take(HEAD_LEN).read_to_end(&mut head).map_err(open_error)?;
    file.seek(SeekFrom::Start(0)).map_err(open_error)?;
    if head.is_empty() {
        return Err(DecodeError::Empty);
    }
    let sniffed = sniff(&head);
    if let Sniffed::NotMedia(found) = sniffed {
        return Err(DecodeError::NotAudio { found });
    }

    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|ext| ext.to_str()) {
        hint.with_extension(ext);
    }
    let stream = MediaSourceStream::new(Box::new(file), Default::default());
    let format = symphonia::default::get_probe()
        .probe(&hint, stream, FormatOptions::default(), MetadataOptions::default())
        .map_err(|error| not_opened(error, sniffed, path))?;
    let container = container_name(format.format_info().short_name);

    let audio_tracks = || {
        format.tracks().iter().filter_map(|track| match &track.codec_params {
            Some(CodecParameters::Audio(params)) => Some((track, params)),
            _ => None,
        })
    };
    let (_, first_params) = audio_tracks().next().ok_or(DecodeError::NoAudioTrack { container })?;
    let (track, params) = audio_tracks()
        .find(|(_, params)| CODECS.get_audio_decoder(params.codec).is_some())
        .ok_or(DecodeError::UnsupportedCodec { container, codec: codec_name(first_params.codec) })?;
    let codec = codec_name(params.codec);
    if let Some(rate) = params.sample_rate {
        check_rate(rate)?;
    }
    let channels = params.channels.as_ref().map(|channels| check_channels(channels.count())).transpose()?;
    let mut duration = duration(track, params);
    // Uncompressed audio takes at least a byte per sample, so a wav or aiff header declaring
    // more than its file can hold lies about its size (a recorder that never wrote it, say):
    // its length is known only by decoding what is there, not believed from the header.
    if matches!(container, "wav" | "aiff")
        && let (Some(declared), Some(rate), Ok(metadata)) = (duration, params.sample_rate, file_length(path))
    {
        let samples = declared.as_secs_f64() * f64::from(rate) * f64::from(channels.unwrap_or(1));
        if samples > metadata as f64 {
            duration = None;
        }
    }
    let info = SourceInfo { container, codec, sample_rate: params.sample_rate, channels, duration };
    let decoder = make_decoder(params).map_err(|error| {
        debug!(%error, codec, "no decoder for this track");
        match error {
            SymphoniaError::Unsupported(_) => DecodeError::UnsupportedCodec { container, codec },
            _ => DecodeError::Corrupt { container },
        }
    })?;
    let track_id = track.id;
    Ok(Opened { format, track_id, decoder, info })
}

fn file_length(path: &Path) -> std::io::Result<u64> {
    std::fs::metadata(path).map(|metadata| metadata.len())
}

/// Why symphonia found no format reader, in the user's terms.
fn not_opened(error: SymphoniaError, sniffed: Sniffed, path: &Path) -> DecodeError {
    debug!(%error, path = %path.display(), "no format reader");
    match (error, sniffed) {
        (SymphoniaError::IoError(source), _) if !is_damage(&source) => {
            DecodeError::Read { path: path.to_owned(), source }
        }
        (_, Sniffed::Media(ext)) => match ext {
            "wav" | "mp3" | "flac" | "ogg" | "opus" | "m4a" | "mp4" | "m4v" | "mov" | "mkv" | "webm" | "aac"
            | "aiff" => DecodeError::Corrupt { container: ext },
            _ => DecodeError::UnsupportedContainer { container: ext },
        },
        _ => DecodeError::NotAudio { found: "data of a kind we do not know".to_owned() },
    }
}

pub(super) fn decode(path: &Path, max_samples: usize) -> Result<Audio, DecodeError> {
    let Opened { mut format, mut track_id, mut decoder, mut info } = open(path)?;
    let container = info.container;
    // A header that declares more than the limit is believed: refused before decoding.
    if info.duration.is_some_and(|declared| declared.as_secs_f64() * f64::from(SAMPLE_RATE) > max_samples as f64) {
        return Err(too_long(max_samples));
    }
    let estimate = info.duration.map_or(0, |d| d.as_secs().saturating_add(1).saturating_mul(u64::from(SAMPLE_RATE)));
    let mut out = Output::with_capacity(usize::try_from(estimate).unwrap_or(usize::MAX).min(MAX_RESERVE));
    let mut decoded_frames = 0u64;
    let mut skipped = 0u64;
    let mut errors_in_a_row = 0u32;
    // Why the last packet was dropped: the error to give if no packet decodes at all.
    let mut last_problem: Option<DecodeError> = None;

    while errors_in_a_row < MAX_ERRORS_IN_A_ROW {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(error)) if is_damage(&error) => {
                debug!(%error, path = %path.display(), "the file ends early or points outside itself; keeping what came before");
                break;
            }
            Err(SymphoniaError::IoError(source)) => return Err(DecodeError::Read { path: path.to_owned(), source }),
            Err(SymphoniaError::ResetRequired) => {
                // A chained stream (ogg) starts anew, possibly with other tracks; if none
                // of them is audio we can decode, keep what came before.
                let Some((next_track, next_decoder)) = first_decodable(&*format) else {
                    debug!(path = %path.display(), "a chained stream has no audio we can decode; stopping there");
                    break;
                };
                track_id = next_track;
                decoder = next_decoder;
                errors_in_a_row += 1;
                continue;
            }
            Err(error) => {
                debug!(%error, path = %path.display(), "skipping unreadable data");
                skipped += 1;
                errors_in_a_row += 1;
                continue;
            }
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            Err(error) => {
                debug!(%error, path = %path.display(), "skipping a packet that does not decode");
                if let SymphoniaError::Unsupported(_) = error {
                    last_problem = Some(DecodeError::UnsupportedCodec { container, codec: info.codec });
                }
                skipped += 1;
                errors_in_a_row += 1;
                continue;
            }
        };
        let frames = buffer.frames();
        if frames == 0 {
            // Normal for a codec's first packet; endless only in a broken stream.
            errors_in_a_row += 1;
            continue;
        }
        let rate = buffer.spec().rate();
        let channels = buffer.spec().channels().count();
        if let Err(problem) = check_rate(rate).and(check_channels(channels)) {
            debug!(rate, channels, path = %path.display(), "skipping a packet with an implausible format");
            last_problem = Some(problem);
            skipped += 1;
            errors_in_a_row += 1;
            continue;
        }
        errors_in_a_row = 0;
        if decoded_frames == 0 {
            // The stream itself is the truth where it and the header disagree.
            info.sample_rate = Some(rate);
            info.channels = u16::try_from(channels).ok();
        }
        out.reserve_up_to(max_samples);
        out.add(&buffer, rate)?;
        decoded_frames += frames as u64;
        if out.samples.len() > max_samples {
            return Err(too_long(max_samples));
        }
    }
    if errors_in_a_row >= MAX_ERRORS_IN_A_ROW {
        warn!(path = %path.display(), "stopped after {MAX_ERRORS_IN_A_ROW} unreadable packets in a row");
    }
    if decoded_frames == 0 {
        return Err(last_problem.unwrap_or(DecodeError::Corrupt { container }));
    }
    let samples = out.finish()?;
    if samples.len() > max_samples {
        return Err(too_long(max_samples));
    }
    if skipped > 0 {
        warn!(path = %path.display(), skipped, "left out damaged packets");
    }
    info.duration = Some(samples_to_duration(samples.len() as u64));
    Ok(Audio { samples, source: info, skipped_packets: skipped })
}

/// The 16 kHz mono output, growing packet by packet, and the scratch space to make it.
struct Output {
    samples: Vec<f32>,
    planes: Vec<Vec<f32>>,
    mono: Vec<f32>,
    /// For the rate of the packets so far; `None` before the first.
    resampler: Option<Resampler>,
}

impl Output {
    fn with_capacity(samples: usize) -> Self {
        Self { samples: Vec::with_capacity(samples), planes: Vec::new(), mono: Vec::new(), resampler: None }
    }

    /// Grows the output ahead of the next packet as a `Vec` would (doubling), but never past
    /// the limit and a second more: audio that runs over the limit is refused holding about
    /// the limit's worth of samples, not twice that.
    fn reserve_up_to(&mut self, max_samples: usize) {
        const SLACK: usize = SAMPLE_RATE as usize;
        let (len, capacity) = (self.samples.len(), self.samples.capacity());
        if capacity - len < SLACK {
            let wanted = capacity.max(SLACK).saturating_mul(2).min(max_samples.saturating_add(SLACK));
            self.samples.reserve_exact(wanted.saturating_sub(len));
        }
    }

    /// Mixes a decoded packet at `rate` (already checked) to mono and resamples it.
    fn add(&mut self, buffer: &GenericAudioBufferRef<'_>, rate: u32) -> Result<(), DecodeError> {
        buffer.copy_to_vecs_planar::<f32>(&mut self.planes);
        downmix(&self.planes, buffer.frames(), &mut self.mono);
        match &mut self.resampler {
            Some(current) if current.source_rate() == rate => current.push(&self.mono, &mut self.samples),
            _ => {
                // A stream may change rate part way (mp3 allows it): finish the stretch
                // before at its own rate, then go on at the new one.
                if let Some(previous) = self.resampler.take() {
                    previous.finish(&mut self.samples)?;
                }
                let mut fresh = Resampler::new(rate)?;
                fresh.push(&self.mono, &mut self.samples)?;
                self.resampler = Some(fresh);
                Ok(())
            }
        }
    }

    /// Flushes the resampler's tail and gives back the samples, trimmed of spare capacity.
    fn finish(mut self) -> Result<Vec<f32>, DecodeError> {
        if let Some(last) = self.resampler.take() {
            last.finish(&mut self.samples)?;
        }
        if self.samples.capacity() - self.samples.len() > SAMPLE_RATE as usize {
            self.samples.shrink_to_fit();
        }
        Ok(self.samples)
    }
}

/// An I/O error caused by the file's contents rather than the disk: reading past its end
/// (a cut-off file, a size field larger than the file) or seeking to an offset the system
/// refuses (a size field near 2^64).
fn is_damage(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::UnexpectedEof | ErrorKind::InvalidInput | ErrorKind::InvalidData)
}

fn too_long(max_samples: usize) -> DecodeError {
    DecodeError::TooLong { limit_minutes: max_samples as u64 / (60 * u64::from(SAMPLE_RATE)) }
}

fn make_decoder(params: &AudioCodecParameters) -> symphonia::core::errors::Result<Box<dyn AudioDecoder>> {
    let options = AudioDecoderOptions::default();
    let opus_rates = [8_000, 12_000, 16_000, 24_000, 48_000];
    match params.sample_rate {
        // libopus decodes only at these rates. Opus runs at 48 kHz inside, but Matroska
        // muxers may state the encoder's input rate (44.1 kHz) instead.
        Some(rate) if params.codec == codec::CODEC_ID_OPUS && !opus_rates.contains(&rate) => {
            let mut at_48k = params.clone();
            at_48k.with_sample_rate(48_000);
            CODECS.make_audio_decoder(&at_48k, &options)
        }
        _ => CODECS.make_audio_decoder(params, &options),
    }
}

/// After a chained stream restarts: its first audio track we can decode, and a decoder.
fn first_decodable(format: &dyn FormatReader) -> Option<(u32, Box<dyn AudioDecoder>)> {
    format.tracks().iter().find_map(|track| match &track.codec_params {
        Some(CodecParameters::Audio(params)) => make_decoder(params).ok().map(|decoder| (track.id, decoder)),
        _ => None,
    })
}

/// Averages the first `frames` samples of each plane into `mono`, replacing non-finite
/// samples (from damaged float PCM) with silence so they cannot poison the resampler.
pub(super) fn downmix(planes: &[Vec<f32>], frames: usize, mono: &mut Vec<f32>) {
    mono.clear();
    let Some((first, rest)) = planes.split_first() else {
        return;
    };
    mono.extend_from_slice(&first[..frames.min(first.len())]);
    mono.resize(frames, 0.0);
    for plane in rest {
        for (sum, sample) in mono.iter_mut().zip(plane) {
            *sum += sample;
        }
    }
    let scale = 1.0 / planes.len() as f32;
    for sample in mono.iter_mut() {
        *sample = if sample.is_finite() { *sample * scale } else { 0.0 };
    }
}

fn check_rate(rate: u32) -> Result<(), DecodeError> {
    if SAMPLE_RATES.contains(&rate) {
        Ok(())
    } else {
        Err(DecodeError::ImplausibleFormat { claim: format!("a sample rate of {rate} Hz") })
    }
}

fn check_channels(count: usize) -> Result<u16, DecodeError> {
    match u16::try_from(count) {
        Ok(channels) if (1..=MAX_CHANNELS).contains(&count) => Ok(channels),
        _ => Err(DecodeError::ImplausibleFormat { claim: format!("{count} audio channels") }),
    }
}

/// The track's length as its header states it, if it does.
fn duration(track: &Track, params: &AudioCodecParameters) -> Option<Duration> {
    if let (Some(frames), Some(rate)) = (track.num_frames, params.sample_rate.filter(|rate| *rate > 0)) {
        return Duration::try_from_secs_f64(frames as f64 / f64::from(rate)).ok();
    }
    let time = track.time_base?.calc_duration(track.duration?)?;
    Some(Duration::from_nanos(u64::try_from(time.as_nanos()).ok()?))
}

fn container_name(short_name: &'static str) -> &'static str {
    match short_name {
        "wave" => "wav",
        "isomp4" => "mp4",
        other => other,
    }
}

/// Our decoder's short name for a codec, or a plain name for the codecs we cannot decode.
fn codec_name(id: AudioCodecId) -> &'static str {
    if let Some(registered) = CODECS.get_audio_decoder(id) {
        return registered.codec.info.short_name;
    }
    match id {
        codec::CODEC_ID_AC3 => "AC-3 (Dolby Digital)",
        codec::CODEC_ID_EAC3 => "E-AC-3 (Dolby Digital Plus)",
        codec::CODEC_ID_AC4 => "AC-4",
        codec::CODEC_ID_TRUEHD => "Dolby TrueHD",
        codec::CODEC_ID_DCA => "DTS",
        codec::CODEC_ID_WMA => "WMA",
        codec::CODEC_ID_SPEEX => "Speex",
        codec::CODEC_ID_MUSEPACK => "Musepack",
        codec::CODEC_ID_WAVPACK => "WavPack",
        codec::CODEC_ID_MONKEYS_AUDIO => "Monkey's Audio",
        codec::CODEC_ID_TTA => "TTA",
        codec::CODEC_ID_ATRAC1 | codec::CODEC_ID_ATRAC3 | codec::CODEC_ID_ATRAC3PLUS | codec::CODEC_ID_ATRAC9 => {
            "ATRAC"
        }
        codec::CODEC_ID_RA10
        | codec::CODEC_ID_RA20
        | codec::CODEC_ID_SIPR
        | codec::CODEC_ID_COOK
        | codec::CODEC_ID_RALF => "RealAudio",
        codec::CODEC_ID_ADPCM_G722 | codec::CODEC_ID_ADPCM_G726 | codec::CODEC_ID_ADPCM_G726LE => "G.72x ADPCM",
        _ => "a codec we do not know",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downmix_averages_the_channels() {
        let mut mono = vec![9.0];
        downmix(&[vec![1.0, 0.5, -1.0], vec![0.0, 0.5, 1.0]], 3, &mut mono);
        assert_eq!(mono, [0.5, 0.5, 0.0]);
        downmix(&[vec![0.25, -0.75]], 2, &mut mono);
        assert_eq!(mono, [0.25, -0.75], "mono stays as it is");
        let planes = [vec![0.3; 4], vec![0.6; 4], vec![-0.3; 4]];
        downmix(&planes, 2, &mut mono);
        assert_eq!(mono.len(), 2, "only the frames decoded");
        assert!((mono[0] - 0.2).abs() < 1e-6);
    }

    #[test]
    fn downmix_silences_non_finite_samples() {
        let mut mono = Vec::new();
        downmix(&[vec![f32::NAN, f32::INFINITY, 0.5], vec![0.0, f32::NEG_INFINITY, 0.5]], 3, &mut mono);
        assert_eq!(mono, [0.0, 0.0, 0.5]);
    }

    #[test]
    fn implausible_formats_are_named() {
        assert!(check_rate(8_000).is_ok() && check_rate(768_000).is_ok());
        let error = check_rate(0).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the file's header claims a sample rate of 0 Hz, which no recording has; the file is damaged, export or \
             convert it again"
        );
        assert!(matches!(check_rate(10_000_000), Err(DecodeError::ImplausibleFormat { .. })));
        assert_eq!(check_channels(2).unwrap(), 2);
        assert!(
            matches!(check_channels(0), Err(DecodeError::ImplausibleFormat { claim }) if claim == "0 audio channels")
        );
        assert!(check_channels(65).is_err());
    }
}
