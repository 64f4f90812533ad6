//! `model import`, `model import-vad`, `model quantize` and `model info`: the conversions live in `crate::model`;
//! these print what was written or read.

use std::path::{Path, PathBuf};

use super::print;
use crate::errors::CommandError;
use crate::model::{self, Quantization};

/// `model import`: convert, then print what was written.
pub(super) fn import(sources: &[PathBuf], out: &Path) -> Result<(), CommandError> {
    let summary = model::import(sources, out)?;
    print(&format!("wrote {} ({}, {} tensors)\n", out.display(), summary.name(), summary.tensor_count))
}

/// `model import-vad`: convert the wheel's speech detector, then print what was written.
pub(super) fn import_vad(wheel: &Path, out: &Path) -> Result<(), CommandError> {
    let summary = model::import_vad(wheel, out)?;
    print(&format!("wrote {} (Silero VAD {}, {} bytes)\n", out.display(), summary.version, summary.file_size))
}

/// `model quantize`: convert, then print what was written.
pub(super) fn quantize(input: &Path, out: &Path, to: Quantization) -> Result<(), CommandError> {
    let summary = model::quantize(input, out, to)?;
    let before = std::fs::metadata(input).map(|m| m.len()).unwrap_or(0);
    print(&format!(
        "wrote {} ({}, {} weights, {:.1} MB from {:.1} MB)\n",
        out.display(),
        summary.name(),
        summary.weights,
        summary.file_size as f64 / 1e6,
        before as f64 / 1e6
    ))
}

/// `model info`: print the header of a ggml file.
pub(super) fn info(file: &Path) -> Result<(), CommandError> {
    let summary = model::inspect(file)?;
    print(&format!("{:<14} {}\n{summary}\n", "file", file.display()))
}
