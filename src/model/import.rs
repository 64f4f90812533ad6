//! `model import`: a CTranslate2 Whisper model in, a ggml file for whisper.cpp out.
//!
//! Two passes over model.bin, both streamed: pass one (`plan.rs`) reads the variable
//! headers and finds every problem before anything is written; pass two re-opens the
//! input and converts one block of rows at a time through a 64 KiB buffer, so memory use
//! does not grow with the model. Output goes to `<out>.partial` beside `<out>`, is checked
//! with [`inspect`](super::inspect), synced, and only then renamed over `<out>`; on any
//! error (or panic) the partial file is removed, so `<out>` is either the old file or a
//! complete new one.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use half::f16;

use super::ct2::{Ct2Reader, Dtype, Variable};
use super::ggml::{self, TensorType};
use super::partial::PartialFile;
use super::plan::{self, Piece, Step};
use super::source::ModelSource;
use super::{ModelSummary, inspect, mel, vocab};
use crate::errors::ModelError;

const CHUNK: usize = 64 * 1024;

/// Converts a CTranslate2 Whisper model to a ggml file at `out`.
pub fn import(sources: &[PathBuf], out: &Path) -> Result<ModelSummary, ModelError> {
    let source = ModelSource::find(sources)?;
    let model_path = source.model_path();
    let plan = {
        let mut parts = source.open()?;
        let mut reader = Ct2Reader::open(BufReader::with_capacity(CHUNK, parts.reader()?), &model_path)?;
        let plan = plan::plan(&mut reader)?;
        reader.finish()?;
        plan
    };
    let tokens = vocab::decode(&source.read_vocabulary()?, &source.vocabulary_path(), plan.hparams.n_vocab as usize)?;
    tracing::info!(model = %model_path.display(), name = plan.hparams.model_name(), "converting");

    let partial = PartialFile::create(out)?;
    let write_error = |source| ModelError::Write { path: out.to_owned(), source };
    let mut writer = BufWriter::with_capacity(CHUNK, partial.file());
    ggml::write_header(&mut writer, &plan.hparams).map_err(write_error)?;
    ggml::write_mel_filters(&mut writer, &mel::filter_bank(plan.hparams.n_mels as usize)).map_err(write_error)?;
    ggml::write_vocabulary(&mut writer, &tokens).map_err(write_error)?;

    let mut parts = source.open()?;
    let mut reader = Ct2Reader::open(BufReader::with_capacity(CHUNK, parts.reader()?), &model_path)?;
    for step in &plan.steps {
        if reader.next_variable()?.as_ref() != Some(&step.variable) {
            let what = format!("{} changed while it was being read", step.variable.name);
            return Err(ModelError::Ct2Damaged { path: model_path, what });
        }
        convert_variable(&mut reader, step, &mut writer, out)?;
    }
    reader.finish()?;
    writer.flush().map_err(write_error)?;
    drop(writer);

    let summary = inspect(&partial.path)?;
    partial.commit()?;
    Ok(summary)
}

/// Writes the tensors one variable becomes, reading its data exactly once.
fn convert_variable<R: Read>(
    reader: &mut Ct2Reader<R>,
    step: &Step,
    writer: &mut impl Write,
    out: &Path,
) -> Result<(), ModelError> {
    let variable = &step.variable;
    if step.pieces.is_empty() {
        return reader.skip_data(variable, variable.byte_len);
    }
    let block_len = variable.byte_len / step.pieces.len() as u64;
    for piece in &step.pieces {
        match piece {
            None => reader.skip_data(variable, block_len)?,
            Some(piece) => copy_piece(reader, variable, block_len, piece, writer, out)?,
        }
    }
    Ok(())
}

fn copy_piece<R: Read>(
    reader: &mut Ct2Reader<R>,
    variable: &Variable,
    block_len: u64,
    piece: &Piece,
    writer: &mut impl Write,
    out: &Path,
) -> Result<(), ModelError> {
    let write_error = |source| ModelError::Write { path: out.to_owned(), source };
    let unsupported = || ModelError::UnsupportedDtype {
        path: reader.path().to_owned(),
        name: variable.name.clone(),
        dtype: variable.dtype.name(),
    };
    let conversion = Conversion::between(variable.dtype, piece.kind).ok_or_else(unsupported)?;
    ggml::write_tensor_header(writer, &piece.name, &piece.ne, piece.kind).map_err(write_error)?;
    let mut input = vec![0u8; CHUNK];
    let mut output = Vec::with_capacity(CHUNK * 2);
    let mut left = block_len;
    while left > 0 {
        // CHUNK is a multiple of every element size, so no element is cut in two.
        let len = left.min(CHUNK as u64) as usize;
        reader.read_data(variable, &mut input[..len])?;
        conversion.apply(&input[..len], &mut output);
        writer.write_all(&output).map_err(write_error)?;
        left -= len as u64;
    }
    Ok(())
}

/// How CTranslate2 elements become ggml elements (little-endian both sides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conversion {
    Copy,
    F16ToF32,
    F32ToF16,
}

impl Conversion {
    fn between(from: Dtype, to: TensorType) -> Option<Conversion> {
        match (from, to) {
            (Dtype::F16, TensorType::F16) | (Dtype::F32, TensorType::F32) => Some(Conversion::Copy),
            (Dtype::F16, TensorType::F32) => Some(Conversion::F16ToF32),
            (Dtype::F32, TensorType::F16) => Some(Conversion::F32ToF16),
            _ => None,
        }
    }

    /// Replaces `output` with `input` converted.
    fn apply(self, input: &[u8], output: &mut Vec<u8>) {
        output.clear();
        match self {
            Conversion::Copy => output.extend_from_slice(input),
            Conversion::F16ToF32 => {
                for bytes in input.chunks_exact(2) {
                    let value = f16::from_le_bytes([bytes[0], bytes[1]]).to_f32();
                    output.extend_from_slice(&value.to_le_bytes());
                }
            }
            Conversion::F32ToF16 => {
                for bytes in input.chunks_exact(4) {
                    let value = f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                    output.extend_from_slice(&f16::from_f32(value).to_le_bytes());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_keep_values() {
        let values = [0.0f32, 1.0, -2.5, 65504.0, 1e-3];
        let f32_bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut f16_bytes = Vec::new();
        Conversion::F32ToF16.apply(&f32_bytes, &mut f16_bytes);
        assert_eq!(f16_bytes.len(), values.len() * 2);
        let mut back = Vec::new();
        Conversion::F16ToF32.apply(&f16_bytes, &mut back);
        let back: Vec<f32> = back.chunks(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect();
        for (a, b) in values.iter().zip(&back) {
            assert!((a - b).abs() <= a.abs() * 1e-3, "{a} became {b}");
        }
        let mut copied = vec![7u8];
        Conversion::Copy.apply(&f32_bytes, &mut copied);
        assert_eq!(copied, f32_bytes);
    }

    #[test]
    fn only_float_conversions_exist() {
        assert_eq!(Conversion::between(Dtype::F16, TensorType::F16), Some(Conversion::Copy));
        assert_eq!(Conversion::between(Dtype::F32, TensorType::F16), Some(Conversion::F32ToF16));
        assert_eq!(Conversion::between(Dtype::I8, TensorType::F16), None);
        assert_eq!(Conversion::between(Dtype::Bf16, TensorType::F32), None);
        assert_eq!(Conversion::between(Dtype::F16, TensorType::Q8_0), None);
    }
}
