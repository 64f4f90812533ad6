//! `model import-vad`: the Silero VAD speech detector from the `silero-vad` PyPI wheel,
//! written in the ggml format whisper.cpp's VAD reads, and the check before it loads one.
//!
//! Input: `silero_vad-6.2.x-py3-none-any.whl`, whose `silero_vad/data/silero_vad.jit` is a
//! TorchScript zip: `data.pkl` says which `data/N` file holds each tensor (`pickle.rs`),
//! and those files are the raw little-endian floats. Output: the file whisper.cpp's own
//! `models/convert-silero-vad-to-ggml.py` writes from the same model (the 16 kHz half only),
//! tensor for tensor: the same names, order, ggml shapes, and f16 for convolution weights.
//! The wheel's `silero_vad_16k.safetensors` is not used: its numbers differ from the JIT's,
//! which is the model the ONNX files, faster-whisper and whisper.cpp all carry.
//!
//! whisper.cpp trusts a VAD file as it trusts a Whisper file, so [`inspect_vad`] walks every
//! header field and tensor against [`TENSORS`] before the engine hands a path to it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Cursor, Read, Write};
use std::path::Path;

use half::f16;
use zip::ZipArchive;

use super::ggml::MAGIC;
use super::partial::PartialFile;
use super::pickle;
use crate::errors::ModelError;

/// The only model type whisper.cpp's VAD knows.
const MODEL_TYPE: &str = "silero-16k";
/// Samples per probability and samples of left context (32 ms and 4 ms at 16 kHz).
const WINDOW: i32 = 512;
const CONTEXT: i32 = 64;
/// Encoder layers as (input channels, output channels, kernel size).
const ENCODER: [(i32, i32, i32); 4] = [(129, 128, 3), (128, 64, 3), (64, 64, 3), (64, 128, 3)];
/// LSTM input and hidden size, final convolution input and output.
const DECODER: [i32; 4] = [128, 128, 128, 1];

/// One tensor of the ggml file, in file order: its name (whisper.cpp's), its shape in the
/// TorchScript model, its ggml dimensions (the torch shape without unit axes, reversed, as
/// the converter writes them) and whether it is stored as f16.
struct TensorSpec {
    name: &'static str,
    torch: &'static [u64],
    ggml: &'static [i32],
    f16: bool,
}

const fn spec(name: &'static str, torch: &'static [u64], ggml: &'static [i32], f16: bool) -> TensorSpec {
    TensorSpec { name, torch, ggml, f16 }
}

const TENSORS: [TensorSpec; 15] = [
    spec("_model.encoder.0.reparam_conv.weight", &[128, 129, 3], &[3, 129, 128], true),
    spec("_model.encoder.0.reparam_conv.bias", &[128], &[128], false),
    spec("_model.encoder.1.reparam_conv.weight", &[64, 128, 3], &[3, 128, 64], true),
    spec("_model.encoder.1.reparam_conv.bias", &[64], &[64], false),
    spec("_model.encoder.2.reparam_conv.weight", &[64, 64, 3], &[3, 64, 64], true),
    spec("_model.encoder.2.reparam_conv.bias", &[64], &[64], false),
    spec("_model.encoder.3.reparam_conv.weight", &[128, 64, 3], &[3, 64, 128], true),
    spec("_model.encoder.3.reparam_conv.bias", &[128], &[128], false),
    spec("_model.decoder.rnn.weight_ih", &[512, 128], &[128, 512], false),
    spec("_model.decoder.rnn.weight_hh", &[512, 128], &[128, 512], false),
    spec("_model.decoder.rnn.bias_ih", &[512], &[512], false),
    spec("_model.decoder.rnn.bias_hh", &[512], &[512], false),
    spec("_model.decoder.decoder.2.weight", &[1, 128, 1], &[128], true),
    spec("_model.decoder.decoder.2.bias", &[1], &[], false),
    // The STFT basis keeps its unit axis (whisper.cpp expects 256 x 1 x 258).
    spec("_model.stft.forward_basis_buffer", &[258, 1, 256], &[256, 1, 258], true),
];

impl TensorSpec {
    fn elements(&self) -> u64 {
        self.torch.iter().product()
    }
}

/// What a checked VAD file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VadSummary {
    /// The silero-vad package version the model came from, e.g. "6.2.0".
    pub version: String,
    pub file_size: u64,
}

/// Converts the wheel's TorchScript Silero VAD to a ggml file at `out`.
pub fn import_vad(wheel: &Path, out: &Path) -> Result<VadSummary, ModelError> {
    let bad = |what: String| ModelError::VadSource { path: wheel.to_owned(), what };
    let read_error = |source| ModelError::Read { path: wheel.to_owned(), source };
    let file = File::open(wheel).map_err(read_error)?;
    let mut archive =
        ZipArchive::new(file).map_err(|source| ModelError::NotWheelOrFolder { path: wheel.to_owned(), source })?;
    let names: Vec<String> = archive.file_names().filter_map(|name| Some(name.ok()?.into_owned())).collect();
    let read_entry = |archive: &mut ZipArchive<File>, name: &str| -> Result<Vec<u8>, ModelError> {
        let mut entry =
            archive.by_name(name).map_err(|source| ModelError::BadWheelEntry { path: wheel.to_owned(), source })?;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(read_error)?;
        Ok(bytes)
    };
    let metadata = names
        .iter()
        .find(|name| name.ends_with(".dist-info/METADATA"))
        .ok_or_else(|| bad("no .dist-info/METADATA".to_owned()))?;
    let metadata = String::from_utf8_lossy(&read_entry(&mut archive, metadata)?).into_owned();
    let version = metadata
        .lines()
        .find_map(|line| line.strip_prefix("Version: "))
        .and_then(parse_version)
        .ok_or_else(|| bad("no X.Y.Z version in its METADATA".to_owned()))?;
    let jit = names
        .iter()
        .find(|name| name.ends_with("silero_vad/data/silero_vad.jit"))
        .ok_or_else(|| bad("no silero_vad/data/silero_vad.jit".to_owned()))?;
    let jit = read_entry(&mut archive, jit)?;
    let tensors = read_jit(&jit).map_err(bad)?;

    let partial = PartialFile::create(out)?;
    let write_error = |source| ModelError::Write { path: out.to_owned(), source };
    let mut writer = BufWriter::new(partial.file());
    write_vad(&mut writer, version, &tensors).map_err(write_error)?;
    writer.flush().map_err(write_error)?;
    drop(writer);
    let summary = inspect_vad(&partial.path)?;
    partial.commit()?;
    Ok(summary)
}

fn parse_version(text: &str) -> Option<[i32; 3]> {
    let mut parts = text.trim().split('.').map(|part| part.parse::<i32>().ok());
    let version = [parts.next()??, parts.next()??, parts.next()??];
    parts.next().is_none().then_some(version)
}

/// Every tensor of [`TENSORS`] from a TorchScript zip, as f32 values in torch order.
fn read_jit(jit: &[u8]) -> Result<Vec<Vec<f32>>, String> {
    let mut archive = ZipArchive::new(Cursor::new(jit)).map_err(|e| format!("silero_vad.jit is not a zip: {e}"))?;
    let pkl = archive
        .file_names()
        .filter_map(|name| Some(name.ok()?.into_owned()))
        .find(|name| name.ends_with("/data.pkl") && name.matches('/').count() == 1)
        .ok_or("silero_vad.jit has no data.pkl")?;
    let prefix = pkl.trim_end_matches("data.pkl").to_owned();
    let mut read = |name: &str| -> Result<Vec<u8>, String> {
        let mut entry = archive.by_name(name).map_err(|e| format!("silero_vad.jit lacks {name}: {e}"))?;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(|e| format!("cannot read {name} from silero_vad.jit: {e}"))?;
        Ok(bytes)
    };
    let found = pickle::tensors(&read(&pkl)?).map_err(|e| format!("silero_vad.jit's data.pkl: {e}"))?;
    let mut storages: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut out = Vec::with_capacity(TENSORS.len());
    for spec in &TENSORS {
        let tensor = found.get(spec.name).ok_or_else(|| format!("the model has no tensor {}", spec.name))?;
        if tensor.shape != spec.torch {
            return Err(format!("{} is shaped {:?}, not {:?}", spec.name, tensor.shape, spec.torch));
        }
        // Row-major; the stride of a unit axis does not matter (torch writes 0 or anything).
        let contiguous = tensor.strides.len() == spec.torch.len()
            && (0..spec.torch.len())
                .all(|i| spec.torch[i] == 1 || tensor.strides[i] == spec.torch[i + 1..].iter().product::<u64>());
        if tensor.storage_type != "torch FloatStorage" || !contiguous {
            return Err(format!("{} is not a contiguous float32 tensor", spec.name));
        }
        if !storages.contains_key(&tensor.storage_key) {
            let bytes = read(&format!("{prefix}data/{}", tensor.storage_key))?;
            storages.insert(tensor.storage_key.clone(), bytes);
        }
        let storage = &storages[&tensor.storage_key];
        let start = tensor.offset as usize * 4;
        let end = start + spec.elements() as usize * 4;
        let bytes = storage.get(start..end).ok_or_else(|| format!("{}'s storage is too short", spec.name))?;
        out.push(bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect());
    }
    Ok(out)
}

fn write_vad(writer: &mut impl Write, version: [i32; 3], tensors: &[Vec<f32>]) -> std::io::Result<()> {
    let mut ints = vec![MAGIC as i32, MODEL_TYPE.len() as i32];
    writer.write_all(&to_bytes(&ints))?;
    writer.write_all(MODEL_TYPE.as_bytes())?;
    ints = version.to_vec();
    ints.extend([WINDOW, CONTEXT, ENCODER.len() as i32]);
    ints.extend(ENCODER.iter().flat_map(|&(i, o, k)| [i, o, k]));
    ints.extend(DECODER);
    writer.write_all(&to_bytes(&ints))?;
    for (spec, values) in TENSORS.iter().zip(tensors) {
        let mut header = vec![spec.ggml.len() as i32, spec.name.len() as i32, i32::from(spec.f16)];
        header.extend(spec.ggml);
        writer.write_all(&to_bytes(&header))?;
        writer.write_all(spec.name.as_bytes())?;
        for &value in values {
            if spec.f16 {
                writer.write_all(&f16::from_f32(value).to_le_bytes())?;
            } else {
                writer.write_all(&value.to_le_bytes())?;
            }
        }
    }
    Ok(())
}

fn to_bytes(ints: &[i32]) -> Vec<u8> {
    ints.iter().flat_map(|i| i.to_le_bytes()).collect()
}

/// Reads and checks a ggml Silero VAD file: header, every tensor's name, shape, type and
/// size in file order, and that nothing follows the last one.
pub fn inspect_vad(path: &Path) -> Result<VadSummary, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Read { path: path.to_owned(), source })?;
    let version = check_vad(&bytes).map_err(|what| ModelError::VadFile { path: path.to_owned(), what })?;
    Ok(VadSummary { version, file_size: bytes.len() as u64 })
}

/// The version a well-formed VAD file names, or its first problem.
fn check_vad(bytes: &[u8]) -> Result<String, String> {
    let mut input = Bytes { bytes, at: 0 };
    if input.ints(1)?[0] as u32 != MAGIC {
        return Err("no ggml magic".to_owned());
    }
    if input.ints(1)?[0] != MODEL_TYPE.len() as i32 || input.take(MODEL_TYPE.len())? != MODEL_TYPE.as_bytes() {
        return Err(format!("not a {MODEL_TYPE} model"));
    }
    let version = input.ints(3)?;
    let mut expected = vec![WINDOW, CONTEXT, ENCODER.len() as i32];
    expected.extend(ENCODER.iter().flat_map(|&(i, o, k)| [i, o, k]));
    expected.extend(DECODER);
    let found = input.ints(expected.len())?;
    if found != expected {
        return Err(format!("hyper-parameters {found:?}, expected {expected:?}"));
    }
    for spec in &TENSORS {
        let header = input.ints(3)?;
        let dims = input.ints(spec.ggml.len())?;
        let name = input.take(spec.name.len())?;
        if header != [spec.ggml.len() as i32, spec.name.len() as i32, i32::from(spec.f16)]
            || dims != spec.ggml
            || name != spec.name.as_bytes()
        {
            return Err(format!("tensor {} is not where, or not what, whisper.cpp expects", spec.name));
        }
        input.take(spec.elements() as usize * if spec.f16 { 2 } else { 4 })?;
    }
    if input.at != bytes.len() {
        return Err(format!("{} bytes follow the last tensor", bytes.len() - input.at));
    }
    Ok(version.iter().map(i32::to_string).collect::<Vec<_>>().join("."))
}

struct Bytes<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let slice = self.bytes.get(self.at..self.at + n).ok_or("it ends early")?;
        self.at += n;
        Ok(slice)
    }

    fn ints(&mut self, n: usize) -> Result<Vec<i32>, String> {
        let bytes = self.take(n * 4)?;
        Ok(bytes.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes"))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_three_numbers() {
        assert_eq!(parse_version("6.2.0"), Some([6, 2, 0]));
        assert_eq!(parse_version(" 6.2.3\r"), Some([6, 2, 3]));
        assert_eq!(parse_version("6.2"), None);
        assert_eq!(parse_version("6.2.0rc1"), None);
    }

    #[test]
    fn a_written_file_passes_the_check_and_a_cut_one_does_not() {
        let tensors: Vec<Vec<f32>> = TENSORS.iter().map(|spec| vec![0.5; spec.elements() as usize]).collect();
        let mut bytes = Vec::new();
        write_vad(&mut bytes, [6, 2, 0], &tensors).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vad.bin");
        std::fs::write(&path, &bytes).unwrap();
        let summary = inspect_vad(&path).unwrap();
        assert_eq!(summary.version, "6.2.0");
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(inspect_vad(&path).unwrap_err().to_string().contains("ends early"));
        bytes.push(0);
        std::fs::write(&path, &bytes).unwrap();
        assert!(inspect_vad(&path).unwrap_err().to_string().contains("1 bytes follow"));
    }
}
