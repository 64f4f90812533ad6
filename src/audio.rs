//! STUB: replaced by the audio decoding work. Reads 16 kHz mono 16-bit WAV only.

use std::path::Path;

use crate::errors::DecodeError;

/// whisper.cpp's input rate.
pub const SAMPLE_RATE: u32 = 16_000;

/// Decoded audio, ready for the engine.
#[derive(Debug, Clone)]
pub struct Audio {
    /// 16 kHz mono samples in [-1, 1].
    pub samples: Vec<f32>,
}

pub fn decode_file(path: &Path) -> Result<Audio, DecodeError> {
    let bytes = std::fs::read(path).map_err(|source| DecodeError::Open { path: path.to_owned(), source })?;
    let samples = bytes[44..].chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect();
    Ok(Audio { samples })
}

/// What the upload turned out to be (STUB).
#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub codec: String,
}

/// Checks that a file holds a decodable audio track (STUB).
pub fn probe(path: &Path) -> Result<SourceInfo, DecodeError> {
    decode_file(path).map(|_| SourceInfo { codec: "pcm".into() })
}
