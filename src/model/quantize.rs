//! `model quantize`: an f16 (or f32) ggml whisper file in, a q8_0, q5_1 or q4_0 one out.
//!
//! Input: a file that [`inspect`] accepts and whose weights are not quantized yet. Output:
//! the same file with every weight matrix (the tensors `layout.rs` calls [`Kind::Matrix`]:
//! linear weights and the token embedding) in the chosen block format, and `ftype` set to
//! `GGML_QNT_VERSION * 1000 + ftype`, as whisper.cpp v1.8.3's `examples/quantize` writes it.
//! That tool quantizes every 2-D tensor but the positional embeddings and conv biases,
//! which is exactly [`Kind::Matrix`]; convolution kernels stay f16 and vectors f32, as the
//! loader expects. One pass, one row at a time, through `<out>.partial`, checked with
//! [`inspect`] before it replaces `<out>`; memory use does not grow with the model.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use half::f16;

use super::ggml::{self, QNT_VERSION_FACTOR, TensorType};
use super::layout::{self, Kind};
use super::partial::PartialFile;
use super::{ModelSummary, inspect, quants};
use crate::errors::ModelError;

const CHUNK: usize = 64 * 1024;

/// ggml's GGML_QNT_VERSION: the block formats' revision, stored in `ftype`'s thousands.
const QNT_VERSION: i32 = 2;

/// The block formats `model quantize` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// 8-bit, 34 bytes per 32 weights: nearly f16's accuracy at about half the size.
    Q8_0,
    /// 5-bit with a minimum, 24 bytes per 32 weights.
    Q5_1,
    /// 4-bit, 18 bytes per 32 weights: the smallest, and the least accurate.
    Q4_0,
}

impl Quantization {
    pub const ALL: &'static [Quantization] = &[Quantization::Q8_0, Quantization::Q5_1, Quantization::Q4_0];

    pub fn tensor_type(self) -> TensorType {
        match self {
            Quantization::Q8_0 => TensorType::Q8_0,
            Quantization::Q5_1 => TensorType::Q5_1,
            Quantization::Q4_0 => TensorType::Q4_0,
        }
    }

    pub fn name(self) -> &'static str {
        self.tensor_type().name()
    }

    /// ggml's `enum ggml_ftype` value ("mostly q8_0" and so on), before the version is added.
    fn ftype(self) -> i32 {
        match self {
            Quantization::Q8_0 => 7,
            Quantization::Q5_1 => 9,
            Quantization::Q4_0 => 2,
        }
    }

    fn quantize_row(self, row: &[f32], out: &mut Vec<u8>) {
        match self {
            Quantization::Q8_0 => quants::q8_0(row, out),
            Quantization::Q5_1 => quants::q5_1(row, out),
            Quantization::Q4_0 => quants::q4_0(row, out),
        }
    }
}

/// Writes `input`'s weights quantized to `out`, and returns what `out` now holds.
pub fn quantize(input: &Path, out: &Path, to: Quantization) -> Result<ModelSummary, ModelError> {
    let summary = inspect(input)?;
    if !matches!(summary.weights, TensorType::F16 | TensorType::F32) {
        return Err(ModelError::AlreadyQuantized { path: input.to_owned(), found: summary.weights.name() });
    }
    let specs = layout::whisper_tensors(&summary.hparams);
    if let Some(spec) =
        specs.iter().find(|spec| spec.kind == Kind::Matrix && !(spec.ne[0] as usize).is_multiple_of(quants::BLOCK))
    {
        let (path, name, row) = (input.to_owned(), spec.name.clone(), spec.ne[0]);
        return Err(ModelError::RowsNotInBlocks { path, name, row, kind: to.name() });
    }
    tracing::info!(input = %input.display(), name = summary.name(), to = to.name(), "quantizing");

    let read_error = |source| ModelError::Read { path: input.to_owned(), source };
    let write_error = |source| ModelError::Write { path: out.to_owned(), source };
    let mut reader = BufReader::with_capacity(CHUNK, File::open(input).map_err(read_error)?);
    let partial = PartialFile::create(out)?;
    let mut writer = BufWriter::with_capacity(CHUNK, partial.file());

    let mut hparams = summary.hparams;
    hparams.ftype = QNT_VERSION * QNT_VERSION_FACTOR + to.ftype();
    let mut header = [0u8; 48];
    reader.read_exact(&mut header).map_err(read_error)?;
    ggml::write_header(&mut writer, &hparams).map_err(write_error)?;

    // The mel filter bank and the vocabulary are copied byte for byte; `inspect` has
    // already checked their sizes.
    let mut copy = Copy { reader: &mut reader, writer: &mut writer, input, out };
    let [n_mel, n_fft] = copy.i32s::<2>()?;
    copy.bytes(n_mel as u64 * n_fft as u64 * 4)?;
    let [token_count] = copy.i32s::<1>()?;
    for _ in 0..token_count {
        let [len] = copy.i32s::<1>()?;
        copy.bytes(u64::from(len as u32))?;
    }

    let kinds: std::collections::HashMap<&str, Kind> =
        specs.iter().map(|spec| (spec.name.as_str(), spec.kind)).collect();
    let mut row_f32 = Vec::new();
    let mut row_bytes = Vec::new();
    let mut block_out = Vec::new();
    for _ in 0..summary.tensor_count {
        let [n_dims, name_len, type_id] = read_i32s::<3>(&mut reader).map_err(read_error)?;
        let mut ne = vec![0i64; n_dims as usize];
        for n in &mut ne {
            *n = i64::from(read_i32s::<1>(&mut reader).map_err(read_error)?[0]);
        }
        let mut name = vec![0u8; name_len as usize];
        reader.read_exact(&mut name).map_err(read_error)?;
        let name = String::from_utf8_lossy(&name).into_owned();
        // `inspect` has matched every name and type against the layout.
        let (Some(&kind), Some(from)) = (kinds.get(name.as_str()), TensorType::from_id(type_id)) else {
            return Err(read_error(std::io::ErrorKind::InvalidData.into()));
        };
        let target = kind.tensor_type(to.tensor_type());
        ggml::write_tensor_header(&mut writer, &name, &ne, target).map_err(write_error)?;

        let row_len = ne[0] as usize;
        let rows: usize = ne[1..].iter().map(|&n| n as usize).product();
        let element = if from == TensorType::F32 { 4 } else { 2 };
        row_bytes.resize(row_len * element, 0);
        for _ in 0..rows {
            reader.read_exact(&mut row_bytes).map_err(read_error)?;
            row_f32.clear();
            if from == TensorType::F32 {
                row_f32.extend(row_bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            } else {
                row_f32.extend(row_bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()));
            }
            block_out.clear();
            match target {
                _ if target == from => block_out.extend_from_slice(&row_bytes),
                TensorType::F32 => block_out.extend(row_f32.iter().flat_map(|v| v.to_le_bytes())),
                TensorType::F16 => block_out.extend(row_f32.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes())),
                _ => to.quantize_row(&row_f32, &mut block_out),
            }
            writer.write_all(&block_out).map_err(write_error)?;
        }
    }
    writer.flush().map_err(write_error)?;
    drop(writer);

    let written = inspect(&partial.path)?;
    partial.commit()?;
    Ok(written)
}

/// Copies the parts of the file that do not change, and reads what says how long they are.
struct Copy<'a, R, W> {
    reader: &'a mut R,
    writer: &'a mut W,
    input: &'a Path,
    out: &'a Path,
}

impl<R: Read, W: Write> Copy<'_, R, W> {
    fn i32s<const N: usize>(&mut self) -> Result<[i32; N], ModelError> {
        let values =
            read_i32s::<N>(self.reader).map_err(|source| ModelError::Read { path: self.input.to_owned(), source })?;
        for value in values {
            ggml::write_i32(self.writer, value)
                .map_err(|source| ModelError::Write { path: self.out.to_owned(), source })?;
        }
        Ok(values)
    }

    fn bytes(&mut self, mut len: u64) -> Result<(), ModelError> {
        let mut buffer = [0u8; 4096];
        while len > 0 {
            let chunk = &mut buffer[..len.min(4096) as usize];
            self.reader.read_exact(chunk).map_err(|source| ModelError::Read { path: self.input.to_owned(), source })?;
            self.writer.write_all(chunk).map_err(|source| ModelError::Write { path: self.out.to_owned(), source })?;
            len -= chunk.len() as u64;
        }
        Ok(())
    }
}

fn read_i32s<const N: usize>(reader: &mut impl Read) -> std::io::Result<[i32; N]> {
    let mut values = [0i32; N];
    for value in &mut values {
        let mut bytes = [0u8; 4];
        reader.read_exact(&mut bytes)?;
        *value = i32::from_le_bytes(bytes);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Hparams;

    #[test]
    fn ftypes_are_ggml_ftypes_and_map_back_to_their_types() {
        for &to in Quantization::ALL {
            assert_eq!(TensorType::for_ftype(to.ftype()), Some(to.tensor_type()), "{}", to.name());
            let hparams = Hparams::from_values([51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 2000 + to.ftype()]);
            assert_eq!(hparams.check(), Ok(to.tensor_type()));
        }
    }

    /// whisper.cpp's examples/quantize: every 2-D tensor except these names (regexes there).
    #[test]
    fn the_quantized_tensors_are_whisper_quantize_s() {
        let hparams = Hparams::from_values([51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1]);
        let skipped = [
            "encoder.conv1.bias",
            "encoder.conv2.bias",
            "encoder.positional_embedding",
            "decoder.positional_embedding",
        ];
        for spec in layout::whisper_tensors(&hparams) {
            let by_whisper_quantize = spec.ne.len() == 2 && !skipped.contains(&spec.name.as_str());
            assert_eq!(spec.kind == Kind::Matrix, by_whisper_quantize, "{}", spec.name);
        }
    }
}
