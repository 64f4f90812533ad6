//! CTranslate2 variable names to whisper.cpp tensor names. Pure string work.
//!
//! CTranslate2 fuses some projections: self-attention's query, key and value are one
//! `linear_0` of 3·D rows, cross-attention's key and value one `linear_1` of 2·D rows. A
//! fused variable maps to several targets, one per equal block of rows, in order. The key
//! projection's bias block maps to nothing: whisper has no key bias, CTranslate2 stores
//! zeros there, and whisper.cpp has no tensor for it.

/// Where one block of rows of a CTranslate2 variable goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    /// Stored as a [D, 1] column, as whisper.cpp wants the conv biases.
    pub column: bool,
}

/// The targets of a CTranslate2 variable, one per block of rows (`None`: drop the block),
/// or `None` for a name a Whisper model does not have.
pub fn ggml_targets(ct2_name: &str) -> Option<Vec<Option<Target>>> {
    let parts: Vec<&str> = ct2_name.split('/').collect();
    let one = |name: String| Some(vec![Some(Target { name, column: false })]);
    match parts.as_slice() {
        ["encoder", conv @ ("conv1" | "conv2"), param @ ("weight" | "bias")] => {
            Some(vec![Some(Target { name: format!("encoder.{conv}.{param}"), column: *param == "bias" })])
        }
        ["encoder", "position_encodings", "encodings"] => one("encoder.positional_embedding".into()),
        ["decoder", "position_encodings", "encodings"] => one("decoder.positional_embedding".into()),
        ["decoder", "embeddings", "weight"] => one("decoder.token_embedding.weight".into()),
        ["encoder", "layer_norm", param] => one(format!("encoder.ln_post.{}", norm_param(param)?)),
        ["decoder", "layer_norm", param] => one(format!("decoder.ln.{}", norm_param(param)?)),
        [side @ ("encoder" | "decoder"), layer, rest @ ..] => {
            let index: u32 = layer.strip_prefix("layer_")?.parse().ok()?;
            let block = format!("{side}.blocks.{index}");
            block_targets(&block, *side == "decoder", rest)
        }
        _ => None,
    }
}

fn block_targets(block: &str, decoder: bool, rest: &[&str]) -> Option<Vec<Option<Target>>> {
    let named = |suffix: &str| Some(Target { name: format!("{block}.{suffix}"), column: false });
    let one = |suffix: String| Some(vec![named(&suffix)]);
    match rest {
        ["self_attention", "layer_norm", param] => one(format!("attn_ln.{}", norm_param(param)?)),
        ["self_attention", "linear_0", param] => {
            let param = linear_param(param)?;
            let key = (param == "weight").then(|| named("attn.key.weight")).flatten();
            Some(vec![named(&format!("attn.query.{param}")), key, named(&format!("attn.value.{param}"))])
        }
        ["self_attention", "linear_1", param] => one(format!("attn.out.{}", linear_param(param)?)),
        ["ffn", "layer_norm", param] => one(format!("mlp_ln.{}", norm_param(param)?)),
        ["ffn", "linear_0", param] => one(format!("mlp.0.{}", linear_param(param)?)),
        ["ffn", "linear_1", param] => one(format!("mlp.2.{}", linear_param(param)?)),
        ["attention", "layer_norm", param] if decoder => one(format!("cross_attn_ln.{}", norm_param(param)?)),
        ["attention", "linear_0", param] if decoder => one(format!("cross_attn.query.{}", linear_param(param)?)),
        ["attention", "linear_1", param] if decoder => {
            let param = linear_param(param)?;
            let key = (param == "weight").then(|| named("cross_attn.key.weight")).flatten();
            Some(vec![key, named(&format!("cross_attn.value.{param}"))])
        }
        ["attention", "linear_2", param] if decoder => one(format!("cross_attn.out.{}", linear_param(param)?)),
        _ => None,
    }
}

/// CTranslate2 calls a layer norm's scale and shift gamma and beta.
fn norm_param(param: &str) -> Option<&'static str> {
    match param {
        "gamma" => Some("weight"),
        "beta" => Some("bias"),
        _ => None,
    }
}

fn linear_param(param: &str) -> Option<&'static str> {
    match param {
        "weight" => Some("weight"),
        "bias" => Some("bias"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ct2: &str) -> Vec<Option<String>> {
        ggml_targets(ct2)
            .unwrap_or_else(|| panic!("{ct2} has no targets"))
            .into_iter()
            .map(|t| t.map(|t| t.name))
            .collect()
    }

    fn single(ct2: &str) -> String {
        match names(ct2).as_slice() {
            [Some(name)] => name.clone(),
            other => panic!("{ct2}: {other:?}"),
        }
    }

    #[test]
    fn globals_map_one_to_one() {
        assert_eq!(single("encoder/conv2/weight"), "encoder.conv2.weight");
        assert_eq!(single("encoder/position_encodings/encodings"), "encoder.positional_embedding");
        assert_eq!(single("encoder/layer_norm/gamma"), "encoder.ln_post.weight");
        assert_eq!(single("decoder/layer_norm/beta"), "decoder.ln.bias");
        assert_eq!(single("decoder/embeddings/weight"), "decoder.token_embedding.weight");
        assert_eq!(single("decoder/position_encodings/encodings"), "decoder.positional_embedding");
    }

    #[test]
    fn only_conv_biases_become_columns() {
        let bias = ggml_targets("encoder/conv1/bias").unwrap();
        assert_eq!(bias, vec![Some(Target { name: "encoder.conv1.bias".into(), column: true })]);
        assert!(!ggml_targets("encoder/conv1/weight").unwrap()[0].as_ref().unwrap().column);
        assert!(!ggml_targets("decoder/layer_norm/beta").unwrap()[0].as_ref().unwrap().column);
    }

    #[test]
    fn block_layers_map_by_index() {
        assert_eq!(single("encoder/layer_3/self_attention/layer_norm/gamma"), "encoder.blocks.3.attn_ln.weight");
        assert_eq!(single("encoder/layer_0/self_attention/linear_1/bias"), "encoder.blocks.0.attn.out.bias");
        assert_eq!(single("decoder/layer_11/ffn/layer_norm/beta"), "decoder.blocks.11.mlp_ln.bias");
        assert_eq!(single("decoder/layer_1/ffn/linear_0/weight"), "decoder.blocks.1.mlp.0.weight");
        assert_eq!(single("encoder/layer_1/ffn/linear_1/bias"), "encoder.blocks.1.mlp.2.bias");
        assert_eq!(single("decoder/layer_2/attention/layer_norm/gamma"), "decoder.blocks.2.cross_attn_ln.weight");
        assert_eq!(single("decoder/layer_2/attention/linear_0/bias"), "decoder.blocks.2.cross_attn.query.bias");
        assert_eq!(single("decoder/layer_2/attention/linear_2/weight"), "decoder.blocks.2.cross_attn.out.weight");
    }

    #[test]
    fn fused_projections_split_and_drop_the_key_bias() {
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(
            names("encoder/layer_0/self_attention/linear_0/weight"),
            [
                s("encoder.blocks.0.attn.query.weight"),
                s("encoder.blocks.0.attn.key.weight"),
                s("encoder.blocks.0.attn.value.weight")
            ]
        );
        assert_eq!(
            names("decoder/layer_1/self_attention/linear_0/bias"),
            [s("decoder.blocks.1.attn.query.bias"), None, s("decoder.blocks.1.attn.value.bias")]
        );
        assert_eq!(
            names("decoder/layer_0/attention/linear_1/weight"),
            [s("decoder.blocks.0.cross_attn.key.weight"), s("decoder.blocks.0.cross_attn.value.weight")]
        );
        assert_eq!(
            names("decoder/layer_0/attention/linear_1/bias"),
            [None, s("decoder.blocks.0.cross_attn.value.bias")]
        );
    }

    #[test]
    fn names_outside_whisper_have_no_targets() {
        for name in [
            "encoder/layer_0/attention/linear_0/weight", // the encoder has no cross-attention
            "decoder/layer_0/ffn/linear_0/weight_scale",
            "decoder/layer_x/ffn/linear_0/weight",
            "decoder/layer_norm/gamma2",
            "decoder/projection/weight",
            "encoder/conv3/weight",
            "",
        ] {
            assert_eq!(ggml_targets(name), None, "{name}");
        }
    }
}
