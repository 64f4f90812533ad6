//! Whisper models: CTranslate2 -> ggml import, and the header check before loading.
//!
//! STUB: replaced by the model import work.

use std::path::{Path, PathBuf};

use crate::errors::ModelError;

/// The eleven hyper-parameters at the head of a ggml whisper file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hparams {
    pub n_vocab: i32,
    pub n_audio_ctx: i32,
    pub n_audio_state: i32,
    pub n_audio_head: i32,
    pub n_audio_layer: i32,
    pub n_text_ctx: i32,
    pub n_text_state: i32,
    pub n_text_head: i32,
    pub n_text_layer: i32,
    pub n_mels: i32,
    pub ftype: i32,
}

/// What `model info` prints and the engine checks.
#[derive(Debug, Clone)]
pub struct ModelSummary {
    pub hparams: Hparams,
    pub tensor_count: usize,
}

impl ModelSummary {
    /// The OpenAI model name these hyper-parameters belong to, such as "tiny.en".
    pub fn name(&self) -> &'static str {
        "tiny.en"
    }
}

/// Reads and checks a ggml file's header, vocabulary and tensor table.
pub fn inspect(path: &Path) -> Result<ModelSummary, ModelError> {
    let _ = std::fs::metadata(path).map_err(|source| ModelError::Read { path: path.to_owned(), source })?;
    Ok(ModelSummary {
        hparams: Hparams {
            n_vocab: 51864,
            n_audio_ctx: 1500,
            n_audio_state: 384,
            n_audio_head: 6,
            n_audio_layer: 4,
            n_text_ctx: 448,
            n_text_state: 384,
            n_text_head: 6,
            n_text_layer: 4,
            n_mels: 80,
            ftype: 1,
        },
        tensor_count: 167,
    })
}

/// Converts a CTranslate2 Whisper model to a ggml file.
pub fn import(sources: &[PathBuf], out: &Path) -> Result<ModelSummary, ModelError> {
    let _ = (sources, out);
    unimplemented!()
}

/// Where the model package installs tiny.en, and so where commands look without `--model`.
pub const DEFAULT_MODEL_PATH: &str = "/usr/share/whisper-appliance/models/ggml-tiny.en.bin";

/// `model import`: convert, then print what was written.
pub fn run_import(sources: &[PathBuf], out: &Path) -> Result<(), ModelError> {
    let summary = import(sources, out)?;
    println!("wrote {} ({} tensors)", out.display(), summary.tensor_count);
    Ok(())
}

/// `model info`: print the header of a ggml file.
pub fn run_info(file: &Path) -> Result<(), ModelError> {
    let summary = inspect(file)?;
    println!("{summary:?}");
    Ok(())
}
