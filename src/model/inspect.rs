//! The check a ggml whisper file must pass before whisper.cpp may load it.
//!
//! whisper.cpp trusts its input: a bad tensor type or rank, a negative length or a
//! shape it did not expect can abort the whole process (ggml asserts) or write past a
//! buffer. So this walks everything `whisper_model_load` will read, in the same order,
//! and refuses the file at the first problem, naming it: magic, hyper-parameters, the mel
//! filter bank's size, every vocabulary entry's length, every tensor header (rank, name,
//! type, sizes) against `layout.rs`, each tensor's data size against the bytes left, and
//! that the file ends right after the last tensor. Tensor data is seeked over, never read,
//! so checking a gigabyte model costs a few hundred small reads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use super::ggml::{MAGIC, N_FFT_BINS, TensorType};
use super::layout::{self, TensorSpec};
use super::{Hparams, ModelSummary};
use crate::errors::ModelError;

/// Longer than any whisper tensor name ("decoder.blocks.31.cross_attn.value.weight").
const MAX_NAME_LEN: i32 = 255;

/// Reads and checks a ggml file's header, vocabulary and tensor table.
pub fn inspect(path: &Path) -> Result<ModelSummary, ModelError> {
    let read_error = |source| ModelError::Read { path: path.to_owned(), source };
    let file = File::open(path).map_err(read_error)?;
    let file_size = file.metadata().map_err(read_error)?.len();
    let mut input = Input { reader: BufReader::new(file), pos: 0, len: file_size, path };

    let magic = u32::from_le_bytes(input.bytes("the header")?);
    if magic != MAGIC {
        return Err(ModelError::NotGgml { path: path.to_owned(), found: magic });
    }
    let mut values = [0i32; 11];
    for value in &mut values {
        *value = input.i32("the header")?;
    }
    let hparams = Hparams::from_values(values);
    let weights = hparams.check().map_err(|problem| ModelError::BadHparam {
        path: path.to_owned(),
        name: problem.name,
        found: problem.found,
        expected: problem.expected,
    })?;

    let (n_mel, n_fft) = (input.i32("the mel filters")?, input.i32("the mel filters")?);
    if n_mel != hparams.n_mels || n_fft != N_FFT_BINS as i32 {
        return Err(ModelError::BadMelFilters { path: path.to_owned(), n_mel, n_fft, expected_mel: hparams.n_mels });
    }
    input.skip(n_mel as u64 * n_fft as u64 * 4, "the mel filters")?;

    let token_count = input.i32("the vocabulary")?;
    if !(1..=hparams.n_vocab).contains(&token_count) {
        return Err(ModelError::BadTokenCount { path: path.to_owned(), found: token_count, n_vocab: hparams.n_vocab });
    }
    for id in 0..token_count {
        let what = || format!("token {id}");
        let len = u32::from_le_bytes(input.bytes(&what())?);
        input.skip(u64::from(len), &what())?;
    }

    let specs = layout::whisper_tensors(&hparams);
    let expected = Expected {
        by_name: specs.iter().map(|spec| (spec.name.as_str(), spec)).collect(),
        weights,
        model: hparams.model_name(),
    };
    let mut seen = HashSet::new();
    let mut types = BTreeMap::new();
    while input.remaining() > 0 {
        if seen.len() == specs.len() {
            return Err(ModelError::TrailingBytes { path: path.to_owned(), extra: input.remaining() });
        }
        let (name, kind) = input.tensor(seen.len(), &expected, &seen)?;
        *types.entry(kind).or_insert(0) += 1;
        seen.insert(name);
    }

    if let Some((missing, first)) = layout::missing(&specs, &seen) {
        let (path, expected, first) = (path.to_owned(), specs.len(), first.to_owned());
        return Err(ModelError::MissingTensors { path, missing, expected, first });
    }
    Ok(ModelSummary {
        hparams,
        tensor_count: seen.len(),
        weights,
        tensor_types: types.into_iter().collect(),
        token_count: token_count as usize,
        file_size,
    })
}

/// What whisper.cpp will allocate for this file's hyper-parameters.
struct Expected<'a> {
    by_name: HashMap<&'a str, &'a TensorSpec>,
    /// The type of the big matrices, from `ftype`.
    weights: TensorType,
    model: &'static str,
}

/// The file, read forward, with the count of bytes left so that no read or seek can
/// run past the end unnoticed.
struct Input<'a> {
    reader: BufReader<File>,
    pos: u64,
    len: u64,
    path: &'a Path,
}

impl Input<'_> {
    fn remaining(&self) -> u64 {
        self.len - self.pos
    }

    fn need(&self, bytes: u64, what: &str) -> Result<(), ModelError> {
        if bytes > self.remaining() {
            return Err(ModelError::Truncated {
                path: self.path.to_owned(),
                what: what.to_owned(),
                expected: bytes,
                found: self.remaining(),
            });
        }
        Ok(())
    }

    fn bytes<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ModelError> {
        let mut bytes = [0u8; N];
        self.fill(&mut bytes, what)?;
        Ok(bytes)
    }

    fn i32(&mut self, what: &str) -> Result<i32, ModelError> {
        Ok(i32::from_le_bytes(self.bytes(what)?))
    }

    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<(), ModelError> {
        self.need(buf.len() as u64, what)?;
        self.reader.read_exact(buf).map_err(|source| ModelError::Read { path: self.path.to_owned(), source })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn skip(&mut self, bytes: u64, what: &str) -> Result<(), ModelError> {
        self.need(bytes, what)?;
        let read_error = |source| ModelError::Read { path: self.path.to_owned(), source };
        let offset = i64::try_from(bytes).map_err(|_| read_error(io::ErrorKind::FileTooLarge.into()))?;
        self.reader.seek_relative(offset).map_err(read_error)?;
        self.pos += bytes;
        Ok(())
    }

    /// Checks the tensor header at the current position and seeks past its data.
    fn tensor(
        &mut self,
        index: usize,
        expected: &Expected<'_>,
        seen: &HashSet<String>,
    ) -> Result<(String, TensorType), ModelError> {
        let offset = self.pos;
        let path = self.path.to_owned();
        let bad = |what: String| ModelError::BadTensorHeader { path: path.clone(), index, offset, what };
        let what = format!("the header of tensor #{index}");
        let (n_dims, name_len, type_id) = (self.i32(&what)?, self.i32(&what)?, self.i32(&what)?);
        if !(1..=4).contains(&n_dims) {
            return Err(bad(format!("{n_dims} dimensions (whisper.cpp reads 1 to 4)")));
        }
        if !(1..=MAX_NAME_LEN).contains(&name_len) {
            return Err(bad(format!("a name of {name_len} bytes")));
        }
        let kind = TensorType::from_id(type_id).ok_or_else(|| bad(format!("unknown tensor type {type_id}")))?;
        let ne = (0..n_dims).map(|_| self.i32(&what).map(i64::from)).collect::<Result<Vec<_>, _>>()?;
        let mut raw_name = vec![0u8; name_len as usize];
        self.fill(&mut raw_name, &what)?;
        let name = String::from_utf8_lossy(&raw_name).into_owned();

        let Some(spec) = expected.by_name.get(name.as_str()) else {
            return Err(ModelError::UnknownTensor { path, name, model: expected.model });
        };
        if seen.contains(&name) {
            return Err(ModelError::DuplicateTensor { path, name });
        }
        // whisper.cpp compares all sizes, counting missing trailing ones as 1.
        let padded = |ne: &[i64]| {
            let mut four = [1i64; 4];
            four[..ne.len()].copy_from_slice(ne);
            four
        };
        if padded(&ne) != padded(&spec.ne) {
            return Err(ModelError::TensorShape { path, name, found: ne, expected: spec.ne.clone() });
        }
        let wanted = spec.kind.tensor_type(expected.weights);
        if kind != wanted {
            return Err(ModelError::TensorType { path, name, found: kind.name(), expected: wanted.name() });
        }
        let size = kind.data_size(&ne).ok_or_else(|| bad(format!("{name} sized {ne:?} cannot be {kind}")))?;
        self.skip(size, &format!("tensor {name}"))?;
        Ok((name, kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ggml;

    /// A whisper-shaped model as small as `Hparams::check` allows (3.4 MB, mostly the
    /// token embedding), with zeros for weights.
    fn small(ftype: i32) -> Hparams {
        Hparams::from_values([51864, 1, 32, 1, 1, 1, 32, 1, 1, 80, ftype])
    }

    /// (name, sizes, type id) per tensor.
    type Table = Vec<(String, Vec<i64>, i32)>;

    /// The tensors as whisper.cpp expects them.
    fn tensors(hparams: &Hparams) -> Table {
        let weights = hparams.check().unwrap();
        let specs = layout::whisper_tensors(hparams);
        specs.into_iter().map(|spec| (spec.name, spec.ne, spec.kind.tensor_type(weights).id())).collect()
    }

    fn file(hparams: &Hparams, tensors: &Table) -> Vec<u8> {
        let mut out = Vec::new();
        ggml::write_header(&mut out, hparams).unwrap();
        ggml::write_mel_filters(&mut out, &vec![0.0; 80 * N_FFT_BINS]).unwrap();
        ggml::write_vocabulary(&mut out, &[b"!".to_vec()]).unwrap();
        for (name, ne, type_id) in tensors {
            for value in [ne.len() as i32, name.len() as i32, *type_id].into_iter().chain(ne.iter().map(|&n| n as i32))
            {
                ggml::write_i32(&mut out, value).unwrap();
            }
            out.extend_from_slice(name.as_bytes());
            let size = TensorType::from_id(*type_id).and_then(|kind| kind.data_size(ne)).unwrap_or(0);
            out.resize(out.len() + size as usize, 0);
        }
        out
    }

    /// `inspect` on these bytes, with the temporary folder cut from any message.
    fn inspect_bytes(bytes: &[u8]) -> Result<ModelSummary, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.bin");
        std::fs::write(&path, bytes).unwrap();
        inspect(&path).map_err(|error| error.to_string().replace(&dir.path().display().to_string(), ""))
    }

    fn refusal(bytes: &[u8]) -> String {
        inspect_bytes(bytes).expect_err("the file is refused")
    }

    #[test]
    fn a_well_formed_file_passes() {
        let hparams = small(1);
        let bytes = file(&hparams, &tensors(&hparams));
        let summary = inspect_bytes(&bytes).unwrap();
        assert_eq!(summary.hparams, hparams);
        assert_eq!(summary.tensor_count, 50, "7 + 15 encoder, 4 + 24 decoder tensors");
        assert_eq!(summary.tensor_types, [(TensorType::F32, 31), (TensorType::F16, 19)]);
        assert_eq!((summary.token_count, summary.file_size), (1, bytes.len() as u64));
    }

    #[test]
    fn quantized_files_pass_with_their_block_sizes() {
        for (ftype, kind) in [(2002, TensorType::Q4_0), (2003, TensorType::Q4_1), (2007, TensorType::Q8_0)] {
            let hparams = small(ftype);
            let summary = inspect_bytes(&file(&hparams, &tensors(&hparams))).unwrap();
            assert_eq!(summary.tensor_types, [(TensorType::F32, 31), (TensorType::F16, 2), (kind, 17)]);
        }
        for (ftype, kind) in [(2008, TensorType::Q5_0), (2009, TensorType::Q5_1)] {
            let hparams = small(ftype);
            assert!(inspect_bytes(&file(&hparams, &tensors(&hparams))).unwrap().tensor_types.contains(&(kind, 17)));
        }
    }

    #[test]
    fn header_problems_are_named() {
        let hparams = small(1);
        let good = file(&hparams, &tensors(&hparams));
        let patched = |offset: usize, value: i32| {
            let mut bytes = good.clone();
            bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
            bytes
        };
        assert!(refusal(&patched(0, 0x6767_6d6d)).starts_with("/m.bin is not a ggml whisper model (magic 0x67676d6d"));
        assert_eq!(
            refusal(&patched(4 + 4 * 3, 5)),
            "/m.bin has n_audio_head = 5, expected a divisor of 32; the file is damaged or not a whisper model, \
             re-run `whisper-appliance model import`"
        );
        assert!(refusal(&patched(52, 200)).starts_with("/m.bin has a 80x200 mel filter bank, expected 80x201"));
        let vocabulary = 56 + 80 * 201 * 4;
        assert!(
            refusal(&patched(vocabulary, 0)).starts_with("/m.bin declares 0 vocabulary tokens, expected 1 to 51864")
        );
        assert!(
            refusal(&patched(vocabulary + 4, -1))
                .starts_with("/m.bin is truncated: expected 4294967295 bytes of token 0, found")
        );
        assert!(refusal(&good[..10]).starts_with("/m.bin is truncated: expected 4 bytes of the header, found 2"));
    }

    #[test]
    fn tensor_problems_are_named() {
        let hparams = small(1);
        let good = tensors(&hparams);
        let with = |edit: &dyn Fn(&mut Table)| {
            let mut tensors = good.clone();
            edit(&mut tensors);
            refusal(&file(&hparams, &tensors))
        };
        let at = 48 + 8 + 80 * 201 * 4 + 4 + 4 + 1; // after header, mel filters and the one token
        assert_eq!(
            with(&|t| t[0].1 = vec![32, 1, 1, 1, 1]),
            format!(
                "/m.bin is damaged at tensor #0 (byte {at}): 5 dimensions (whisper.cpp reads 1 to 4); \
                 re-run `whisper-appliance model import`"
            )
        );
        assert!(with(&|t| t[0].0 = String::new()).contains("a name of 0 bytes"));
        assert!(with(&|t| t[0].2 = 4).contains("unknown tensor type 4"));
        assert!(
            with(&|t| t[1].2 = 8).contains("stores tensor encoder.conv1.weight as q8_0 where whisper.cpp expects f16")
        );
        // Rows of 48 do not divide into q8_0's blocks of 32.
        let odd = Hparams { n_audio_state: 48, n_text_state: 48, ..small(2007) };
        assert!(
            refusal(&file(&odd, &tensors(&odd)))
                .contains("encoder.blocks.0.mlp.0.weight sized [48, 192] cannot be q8_0")
        );
        assert!(with(&|t| t[0].0 = "encoder.blocks.1.mlp.0.weight".into()).starts_with(
            "/m.bin has a tensor \"encoder.blocks.1.mlp.0.weight\" that whisper.cpp does not know for a custom \
             English-only model"
        ));
        assert!(with(&|t| t[5] = t[0].clone()).starts_with("/m.bin holds tensor encoder.positional_embedding twice"));
        assert!(with(&|t| t[0].1 = vec![1, 32]).starts_with(
            "/m.bin has tensor encoder.positional_embedding shaped [1, 32] where whisper.cpp expects [32, 1]"
        ));
        assert!(
            with(&|t| t[0].2 = 1)
                .starts_with("/m.bin stores tensor encoder.positional_embedding as f16 where whisper.cpp expects f32")
        );
        assert!(
            with(&|t| {
                t.remove(3);
            })
            .starts_with("/m.bin lacks 1 of the 50 tensors whisper.cpp needs (first: encoder.conv2.weight)")
        );
    }

    #[test]
    fn the_file_must_end_after_the_last_tensor() {
        let hparams = small(1);
        let mut bytes = file(&hparams, &tensors(&hparams));
        bytes.extend_from_slice(&[0; 3]);
        assert_eq!(
            refusal(&bytes),
            "/m.bin has 3 bytes after its last tensor; the file is damaged, re-run `whisper-appliance model import`"
        );
        bytes.truncate(bytes.len() - 3 - 1);
        assert!(refusal(&bytes).starts_with(
            "/m.bin is truncated: expected 128 bytes of tensor decoder.blocks.0.cross_attn.out.bias, found 127"
        ));
    }
}
