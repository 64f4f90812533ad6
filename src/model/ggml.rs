//! The ggml whisper file format as whisper.cpp (v1.8.3, `whisper_model_load`) reads it:
//! its constants, its tensor types and the little-endian writes the importer makes.
//!
//! A file is: the magic, eleven i32 hyper-parameters, the mel filter bank (i32 n_mel,
//! i32 n_fft, n_mel*n_fft f32), the vocabulary (i32 count, then per token a u32 length and
//! the bytes), then tensors up to the end of the file: i32 n_dims, i32 name length, i32
//! type, n_dims i32 sizes (innermost first, the reverse of numpy's shape), the name, the
//! data. Reading and checking a file is `inspect.rs`'s job; nothing here reads.

use std::fmt;
use std::io::{self, Write};

use super::Hparams;

/// "ggml" read as a little-endian u32.
pub const MAGIC: u32 = 0x6767_6d6c;

/// Frequency bins of whisper's 400-point FFT (400 / 2 + 1), the width of the filter bank.
pub const N_FFT_BINS: usize = 201;

/// whisper.cpp's quantizer stores its format version in the thousands of `ftype`.
pub const QNT_VERSION_FACTOR: i32 = 1000;

/// A tensor's element type, as numbered in ggml's `enum ggml_type`.
///
/// Only the types whisper.cpp's quantizer writes for whisper models are known; anything
/// else would make ggml abort the process, so `inspect` refuses it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TensorType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
}

impl TensorType {
    pub fn from_id(id: i32) -> Option<TensorType> {
        Some(match id {
            0 => TensorType::F32,
            1 => TensorType::F16,
            2 => TensorType::Q4_0,
            3 => TensorType::Q4_1,
            6 => TensorType::Q5_0,
            7 => TensorType::Q5_1,
            8 => TensorType::Q8_0,
            _ => return None,
        })
    }

    pub fn id(self) -> i32 {
        match self {
            TensorType::F32 => 0,
            TensorType::F16 => 1,
            TensorType::Q4_0 => 2,
            TensorType::Q4_1 => 3,
            TensorType::Q5_0 => 6,
            TensorType::Q5_1 => 7,
            TensorType::Q8_0 => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TensorType::F32 => "f32",
            TensorType::F16 => "f16",
            TensorType::Q4_0 => "q4_0",
            TensorType::Q4_1 => "q4_1",
            TensorType::Q5_0 => "q5_0",
            TensorType::Q5_1 => "q5_1",
            TensorType::Q8_0 => "q8_0",
        }
    }

    /// The type of a file's big weight matrices for its `ftype` (quantization version
    /// already removed), as ggml's `ggml_ftype_to_ggml_type`; `None` where ggml would abort
    /// or where the type is not one we know.
    pub fn for_ftype(ftype: i32) -> Option<TensorType> {
        Some(match ftype {
            0 => TensorType::F32,
            1 => TensorType::F16,
            2 => TensorType::Q4_0,
            3 => TensorType::Q4_1,
            7 => TensorType::Q8_0,
            8 => TensorType::Q5_0,
            9 => TensorType::Q5_1,
            _ => return None,
        })
    }

    /// Elements per block and bytes per block (ggml's `blck_size` and `type_size`).
    fn block(self) -> (u64, u64) {
        match self {
            TensorType::F32 => (1, 4),
            TensorType::F16 => (1, 2),
            // A block is an f16 scale (plus an f16 minimum for the _1 kinds, plus 32 high
            // bits for q5) followed by 32 packed quants.
            TensorType::Q4_0 => (32, 18),
            TensorType::Q4_1 => (32, 20),
            TensorType::Q5_0 => (32, 22),
            TensorType::Q5_1 => (32, 24),
            TensorType::Q8_0 => (32, 34),
        }
    }

    /// Bytes of data for a tensor with these sizes (innermost first), or `None` when the
    /// sizes are not positive, the rows do not divide into blocks, or the size overflows.
    pub fn data_size(self, ne: &[i64]) -> Option<u64> {
        let (block_elements, block_bytes) = self.block();
        let row = u64::try_from(*ne.first()?).ok().filter(|&n| n > 0)?;
        if row % block_elements != 0 {
            return None;
        }
        let mut blocks = row / block_elements;
        for &n in &ne[1..] {
            blocks = blocks.checked_mul(u64::try_from(n).ok().filter(|&n| n > 0)?)?;
        }
        blocks.checked_mul(block_bytes)
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub fn write_i32(out: &mut impl Write, value: i32) -> io::Result<()> {
    out.write_all(&value.to_le_bytes())
}

/// The magic and the eleven hyper-parameters.
pub fn write_header(out: &mut impl Write, hparams: &Hparams) -> io::Result<()> {
    out.write_all(&MAGIC.to_le_bytes())?;
    for value in hparams.values() {
        write_i32(out, value)?;
    }
    Ok(())
}

/// The mel filter bank, `n_mels` rows of [`N_FFT_BINS`] weights.
pub fn write_mel_filters(out: &mut impl Write, filters: &[f32]) -> io::Result<()> {
    let n_mels = filters.len() / N_FFT_BINS;
    write_i32(out, n_mels as i32)?;
    write_i32(out, N_FFT_BINS as i32)?;
    for weight in filters {
        out.write_all(&weight.to_le_bytes())?;
    }
    Ok(())
}

/// The token count, then each token's byte length and bytes.
pub fn write_vocabulary(out: &mut impl Write, tokens: &[Vec<u8>]) -> io::Result<()> {
    write_i32(out, tokens.len() as i32)?;
    for token in tokens {
        out.write_all(&(token.len() as u32).to_le_bytes())?;
        out.write_all(token)?;
    }
    Ok(())
}

/// Everything of a tensor but its data, which must follow.
pub fn write_tensor_header(out: &mut impl Write, name: &str, ne: &[i64], kind: TensorType) -> io::Result<()> {
    write_i32(out, ne.len() as i32)?;
    write_i32(out, name.len() as i32)?;
    write_i32(out, kind.id())?;
    for &n in ne {
        write_i32(out, n as i32)?;
    }
    out.write_all(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_ids_round_trip_and_unknown_ids_are_refused() {
        for id in -1..40 {
            if let Some(kind) = TensorType::from_id(id) {
                assert_eq!(kind.id(), id);
            }
        }
        for unknown in [4, 5, 9, 10, 12, 30, -1] {
            assert_eq!(TensorType::from_id(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn data_sizes_follow_ggml_block_sizes() {
        // A 384x1536 matrix (tiny's mlp.0.weight): 589824 elements, 18432 blocks of 32.
        let ne = [384, 1536];
        assert_eq!(TensorType::F32.data_size(&ne), Some(589_824 * 4));
        assert_eq!(TensorType::F16.data_size(&ne), Some(589_824 * 2));
        assert_eq!(TensorType::Q4_0.data_size(&ne), Some(18_432 * 18));
        assert_eq!(TensorType::Q4_1.data_size(&ne), Some(18_432 * 20));
        assert_eq!(TensorType::Q5_0.data_size(&ne), Some(18_432 * 22));
        assert_eq!(TensorType::Q5_1.data_size(&ne), Some(18_432 * 24));
        assert_eq!(TensorType::Q8_0.data_size(&ne), Some(18_432 * 34));
        assert_eq!(TensorType::F32.data_size(&[1, 384]), Some(1536));
    }

    #[test]
    fn impossible_sizes_have_no_data_size() {
        assert_eq!(TensorType::Q8_0.data_size(&[48, 2]), None, "rows must divide into blocks");
        assert_eq!(TensorType::F16.data_size(&[0, 2]), None);
        assert_eq!(TensorType::F16.data_size(&[2, -3]), None);
        assert_eq!(TensorType::F16.data_size(&[]), None);
        assert_eq!(TensorType::F32.data_size(&[i64::MAX, i64::MAX]), None);
    }

    #[test]
    fn ftypes_map_to_ggml_types_not_to_equal_numbers() {
        assert_eq!(TensorType::for_ftype(1), Some(TensorType::F16));
        assert_eq!(TensorType::for_ftype(7), Some(TensorType::Q8_0));
        assert_eq!(TensorType::for_ftype(8), Some(TensorType::Q5_0));
        assert_eq!(TensorType::for_ftype(9), Some(TensorType::Q5_1));
        assert_eq!(TensorType::for_ftype(4), None, "ggml aborts on MOSTLY_Q4_1_SOME_F16");
        assert_eq!(TensorType::for_ftype(24), None, "bf16 is not one we check");
    }

    #[test]
    fn tensor_headers_are_written_innermost_size_first() {
        let mut out = Vec::new();
        write_tensor_header(&mut out, "encoder.conv1.bias", &[1, 384], TensorType::F32).unwrap();
        let words: Vec<i32> = out[..20].chunks(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(words, [2, 18, 0, 1, 384]);
        assert_eq!(&out[20..], b"encoder.conv1.bias");
    }
}
