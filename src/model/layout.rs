//! The tensors whisper.cpp allocates for a set of hyper-parameters: names, sizes, types.
//!
//! This mirrors the "prepare tensors for the weights" block of `whisper_model_load` in
//! whisper.cpp's src/whisper.cpp (v1.8.3). The importer checks its plan against it and
//! `inspect` checks files against it, so a file that passes holds exactly the tensors
//! whisper.cpp looks up, each with the size and byte count it will read. Pure data.

use std::collections::HashSet;

use super::Hparams;
use super::ggml::TensorType;

/// Which of whisper.cpp's three type rules a tensor follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Linear weights and the token embedding: the file's weight type (`ftype`).
    Matrix,
    /// Convolution kernels: f32 in an all-f32 file, else f16 (never quantized).
    Conv,
    /// Vectors, conv biases and positional embeddings: always f32.
    Float,
}

impl Kind {
    /// The type whisper.cpp allocates, given the file's weight type.
    pub fn tensor_type(self, weights: TensorType) -> TensorType {
        match self {
            Kind::Matrix => weights,
            Kind::Conv if weights == TensorType::F32 => TensorType::F32,
            Kind::Conv => TensorType::F16,
            Kind::Float => TensorType::F32,
        }
    }
}

/// One tensor as whisper.cpp expects it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    /// Sizes, innermost first (ggml's `ne`), as the file's header lists them.
    pub ne: Vec<i64>,
    pub kind: Kind,
}

/// Every tensor whisper.cpp needs for these hyper-parameters, encoder first.
pub fn whisper_tensors(hparams: &Hparams) -> Vec<TensorSpec> {
    let audio = i64::from(hparams.n_audio_state);
    let text = i64::from(hparams.n_text_state);
    let mut specs = Vec::new();
    let mut add = |name: String, ne: &[i64], kind: Kind| specs.push(TensorSpec { name, ne: ne.to_vec(), kind });

    add("encoder.positional_embedding".into(), &[audio, hparams.n_audio_ctx.into()], Kind::Float);
    add("encoder.conv1.weight".into(), &[3, hparams.n_mels.into(), audio], Kind::Conv);
    add("encoder.conv1.bias".into(), &[1, audio], Kind::Float);
    add("encoder.conv2.weight".into(), &[3, audio, audio], Kind::Conv);
    add("encoder.conv2.bias".into(), &[1, audio], Kind::Float);
    add("encoder.ln_post.weight".into(), &[audio], Kind::Float);
    add("encoder.ln_post.bias".into(), &[audio], Kind::Float);
    for layer in 0..hparams.n_audio_layer {
        let block = format!("encoder.blocks.{layer}");
        add_mlp(&mut add, &block, audio);
        add_attention(&mut add, &format!("{block}.attn"), &format!("{block}.attn_ln"), audio);
    }

    add("decoder.positional_embedding".into(), &[text, hparams.n_text_ctx.into()], Kind::Float);
    add("decoder.token_embedding.weight".into(), &[text, hparams.n_vocab.into()], Kind::Matrix);
    add("decoder.ln.weight".into(), &[text], Kind::Float);
    add("decoder.ln.bias".into(), &[text], Kind::Float);
    for layer in 0..hparams.n_text_layer {
        let block = format!("decoder.blocks.{layer}");
        add_mlp(&mut add, &block, text);
        add_attention(&mut add, &format!("{block}.attn"), &format!("{block}.attn_ln"), text);
        add_attention(&mut add, &format!("{block}.cross_attn"), &format!("{block}.cross_attn_ln"), text);
    }
    specs
}

/// How many of `specs` are not in `present`, and the first of them; `None` if all are.
pub fn missing<'a>(specs: &'a [TensorSpec], present: &HashSet<String>) -> Option<(usize, &'a str)> {
    let mut missing = specs.iter().filter(|spec| !present.contains(&spec.name));
    let first = missing.next()?;
    Some((1 + missing.count(), &first.name))
}

fn add_mlp(add: &mut impl FnMut(String, &[i64], Kind), block: &str, state: i64) {
    add(format!("{block}.mlp_ln.weight"), &[state], Kind::Float);
    add(format!("{block}.mlp_ln.bias"), &[state], Kind::Float);
    add(format!("{block}.mlp.0.weight"), &[state, 4 * state], Kind::Matrix);
    add(format!("{block}.mlp.0.bias"), &[4 * state], Kind::Float);
    add(format!("{block}.mlp.2.weight"), &[4 * state, state], Kind::Matrix);
    add(format!("{block}.mlp.2.bias"), &[state], Kind::Float);
}

/// Whisper's key projection has no bias, so there is no `key.bias`.
fn add_attention(add: &mut impl FnMut(String, &[i64], Kind), attn: &str, norm: &str, state: i64) {
    add(format!("{norm}.weight"), &[state], Kind::Float);
    add(format!("{norm}.bias"), &[state], Kind::Float);
    add(format!("{attn}.query.weight"), &[state, state], Kind::Matrix);
    add(format!("{attn}.query.bias"), &[state], Kind::Float);
    add(format!("{attn}.key.weight"), &[state, state], Kind::Matrix);
    add(format!("{attn}.value.weight"), &[state, state], Kind::Matrix);
    add(format!("{attn}.value.bias"), &[state], Kind::Float);
    add(format!("{attn}.out.weight"), &[state, state], Kind::Matrix);
    add(format!("{attn}.out.bias"), &[state], Kind::Float);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_en() -> Hparams {
        Hparams::from_values([51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1])
    }

    #[test]
    fn counts_match_whisper_cpp_formula() {
        // whisper.cpp: 7 encoder globals + 15 per encoder block, 4 decoder globals + 24 per decoder block.
        let specs = whisper_tensors(&tiny_en());
        assert_eq!(specs.len(), 167);
        let base = Hparams::from_values([51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1]);
        assert_eq!(whisper_tensors(&base).len(), 7 + 15 * 6 + 4 + 24 * 6);
        let names: HashSet<_> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names.len(), specs.len(), "names are unique");
    }

    #[test]
    fn tiny_en_types_split_67_f16_and_100_f32() {
        let specs = whisper_tensors(&tiny_en());
        let f16 = specs.iter().filter(|s| s.kind.tensor_type(TensorType::F16) == TensorType::F16).count();
        assert_eq!((f16, specs.len() - f16), (67, 100));
        let q8 = specs.iter().filter(|s| s.kind.tensor_type(TensorType::Q8_0) == TensorType::Q8_0).count();
        assert_eq!(q8, 65, "the conv kernels stay f16 in a quantized file");
    }

    #[test]
    fn missing_tensors_are_counted_in_layout_order() {
        let specs = whisper_tensors(&tiny_en());
        let mut present: HashSet<String> = specs.iter().map(|s| s.name.clone()).collect();
        assert_eq!(missing(&specs, &present), None);
        present.remove("decoder.ln.bias");
        present.remove("encoder.conv2.bias");
        assert_eq!(missing(&specs, &present), Some((2, "encoder.conv2.bias")));
    }

    #[test]
    fn sizes_are_listed_innermost_first() {
        let specs = whisper_tensors(&tiny_en());
        let find = |name: &str| specs.iter().find(|s| s.name == name).unwrap().ne.clone();
        assert_eq!(find("encoder.conv1.weight"), [3, 80, 384]);
        assert_eq!(find("encoder.conv1.bias"), [1, 384]);
        assert_eq!(find("decoder.token_embedding.weight"), [384, 51864]);
        assert_eq!(find("decoder.blocks.3.mlp.2.weight"), [1536, 384]);
        assert_eq!(find("decoder.blocks.0.cross_attn.value.bias"), [384]);
    }
}
