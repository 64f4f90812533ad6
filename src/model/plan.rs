//! Pass one of an import: read every CTranslate2 variable header (skipping the weights),
//! work out the hyper-parameters, and decide which ggml tensor each block of each variable
//! becomes, with its size and type.
//!
//! Everything that can be wrong with the input is found here, before a byte of output is
//! written: a missing or misshapen variable, a quantized or bfloat16 model, an attribute
//! whisper.cpp cannot honour, a tensor whisper.cpp needs that nothing provides. The plan
//! it returns is checked against `layout.rs`, so pass two only copies and converts.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::Path;

use super::Hparams;
use super::ct2::{Ct2Reader, Dtype, Variable};
use super::ggml::TensorType;
use super::layout::{self, TensorSpec};
use super::names::{self, Target};
use crate::errors::ModelError;

/// The type the importer writes big matrices in (ftype 1): whisper's own precision.
pub const WEIGHT_TYPE: TensorType = TensorType::F16;

/// A ggml tensor made from one block of rows of a variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub name: String,
    pub ne: Vec<i64>,
    pub kind: TensorType,
}

/// What pass two does with one variable, in file order.
#[derive(Debug)]
pub struct Step {
    pub variable: Variable,
    /// The variable's rows cut into `pieces.len()` equal blocks; `None` drops a block.
    /// Empty for attributes, whose data is skipped.
    pub pieces: Vec<Option<Piece>>,
}

#[derive(Debug)]
pub struct Plan {
    pub hparams: Hparams,
    pub steps: Vec<Step>,
}

/// Attributes whisper.cpp's graph hard-codes, with the only value it implements.
const FIXED_ATTRIBUTES: [(&str, i64); 4] = [
    // CTranslate2's `Activation::GELU`.
    ("decoder/activation", 3),
    ("decoder/pre_norm", 1),
    ("decoder/alibi", 0),
    ("decoder/scale_embeddings", 0),
];

/// Reads all of `reader` (to its end) and plans the conversion.
pub fn plan<R: Read>(reader: &mut Ct2Reader<R>) -> Result<Plan, ModelError> {
    let (variables, attributes) = read_headers(reader)?;
    let path = reader.path();
    let hparams = hparams(&variables, &attributes, path)?;
    let specs = layout::whisper_tensors(&hparams);
    let by_name: HashMap<&str, &TensorSpec> = specs.iter().map(|spec| (spec.name.as_str(), spec)).collect();
    let mut covered = HashSet::new();
    let steps = variables
        .into_iter()
        .map(|variable| {
            let pieces =
                if variable.dims.is_empty() { Vec::new() } else { pieces(&variable, &by_name, &mut covered, path)? };
            Ok(Step { variable, pieces })
        })
        .collect::<Result<Vec<_>, ModelError>>()?;

    if let Some((missing, first)) = layout::missing(&specs, &covered) {
        let (path, expected, first) = (path.to_owned(), specs.len(), first.to_owned());
        return Err(ModelError::IncompleteModel { path, missing, expected, first });
    }
    Ok(Plan { hparams, steps })
}

/// Every variable's header and every integer attribute's value, refusing as soon as a
/// variable shows a model this importer cannot convert.
fn read_headers<R: Read>(reader: &mut Ct2Reader<R>) -> Result<(Vec<Variable>, HashMap<String, i64>), ModelError> {
    let mut variables = Vec::new();
    let mut attributes = HashMap::new();
    let path = reader.path().to_owned();
    while let Some(variable) = reader.next_variable()? {
        if variable.dims.is_empty() {
            let Some(found) = reader.read_attribute(&variable)? else {
                variables.push(variable);
                continue;
            };
            let fixed = FIXED_ATTRIBUTES.iter().find(|(name, _)| *name == variable.name);
            if let Some(&(_, expected)) = fixed.filter(|(_, expected)| *expected != found) {
                return Err(ModelError::UnsupportedAttribute {
                    path: path.clone(),
                    name: variable.name,
                    found,
                    expected,
                });
            }
            attributes.insert(variable.name.clone(), found);
        } else {
            // CTranslate2 stores quantized weights as integers, with a `weight_scale` beside them.
            if variable.name.ends_with("_scale") || matches!(variable.dtype, Dtype::I8 | Dtype::I16 | Dtype::I32) {
                return Err(ModelError::QuantizedCt2 { path: path.clone(), name: variable.name });
            }
            if !matches!(variable.dtype, Dtype::F32 | Dtype::F16) {
                let dtype = variable.dtype.name();
                return Err(ModelError::UnsupportedDtype { path: path.clone(), name: variable.name, dtype });
            }
            reader.skip_data(&variable, variable.byte_len)?;
        }
        variables.push(variable);
    }
    Ok((variables, attributes))
}

/// The hyper-parameters, from the sizes of a few variables and the head-count attributes.
fn hparams(variables: &[Variable], attributes: &HashMap<String, i64>, path: &Path) -> Result<Hparams, ModelError> {
    let damaged = |what: String| ModelError::Ct2Damaged { path: path.to_owned(), what };
    let missing = |name: &str| ModelError::MissingVariable { path: path.to_owned(), name: name.to_owned() };
    let dim = |name: &str, axis: usize| {
        let variable = variables.iter().find(|v| v.name == name).ok_or_else(|| missing(name))?;
        let size = variable.dims.get(axis).copied().filter(|_| variable.dims.len() >= 2);
        size.and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| damaged(format!("{name} has the impossible shape {:?}", variable.dims)))
    };
    let heads = |name: &str| {
        let heads = *attributes.get(name).ok_or_else(|| missing(name))?;
        i32::try_from(heads).map_err(|_| damaged(format!("{name} is {heads}")))
    };

    let n_mels = dim("encoder/conv1/weight", 1)?;
    if n_mels != 80 {
        return Err(ModelError::UnsupportedMels { path: path.to_owned(), n_mels: n_mels as u64 });
    }
    let hparams = Hparams {
        n_vocab: dim("decoder/embeddings/weight", 0)?,
        n_audio_ctx: dim("encoder/position_encodings/encodings", 0)?,
        n_audio_state: dim("encoder/position_encodings/encodings", 1)?,
        n_audio_head: heads("encoder/num_heads")?,
        n_audio_layer: layer_count(variables, "encoder/"),
        n_text_ctx: dim("decoder/position_encodings/encodings", 0)?,
        n_text_state: dim("decoder/embeddings/weight", 1)?,
        n_text_head: heads("decoder/num_heads")?,
        n_text_layer: layer_count(variables, "decoder/"),
        n_mels,
        ftype: WEIGHT_TYPE.id(),
    };
    hparams.check().map_err(|problem| {
        damaged(format!("its variables give {} = {}, expected {}", problem.name, problem.found, problem.expected))
    })?;
    Ok(hparams)
}

/// The tensors one weight variable becomes, checked against whisper.cpp's expectations;
/// `covered` collects the tensor names already provided.
fn pieces(
    variable: &Variable,
    by_name: &HashMap<&str, &TensorSpec>,
    covered: &mut HashSet<String>,
    path: &Path,
) -> Result<Vec<Option<Piece>>, ModelError> {
    let unexpected = || ModelError::UnexpectedVariable { path: path.to_owned(), name: variable.name.clone() };
    let targets = names::ggml_targets(&variable.name).ok_or_else(unexpected)?;
    let mut pieces = Vec::with_capacity(targets.len());
    for target in &targets {
        let Some(Target { name, column }) = target else {
            pieces.push(None);
            continue;
        };
        let spec = by_name.get(name.as_str()).ok_or_else(unexpected)?;
        let expected = variable_shape(spec, *column, targets.len());
        if !variable.dims.iter().map(|&d| d as i64).eq(expected.iter().copied()) {
            let (name, found) = (variable.name.clone(), variable.dims.clone());
            return Err(ModelError::VariableShape { path: path.to_owned(), name, found, expected });
        }
        if !covered.insert(name.clone()) {
            return Err(ModelError::Ct2Damaged { path: path.to_owned(), what: format!("two variables hold {name}") });
        }
        let kind = spec.kind.tensor_type(WEIGHT_TYPE);
        pieces.push(Some(Piece { name: name.clone(), ne: spec.ne.clone(), kind }));
    }
    Ok(pieces)
}

/// Layers are `encoder/layer_N/...`; their count is one more than the highest N.
fn layer_count(variables: &[Variable], side: &str) -> i32 {
    let index =
        |v: &Variable| v.name.strip_prefix(side)?.strip_prefix("layer_")?.split('/').next()?.parse::<i32>().ok();
    variables.iter().filter_map(index).max().map_or(0, |highest| highest.saturating_add(1))
}

/// The numpy shape a variable must have for `blocks` equal blocks of rows to be `spec`.
fn variable_shape(spec: &TensorSpec, column: bool, blocks: usize) -> Vec<i64> {
    let mut shape: Vec<i64> = spec.ne.iter().rev().copied().collect();
    if column {
        shape.pop();
    }
    shape[0] *= blocks as i64;
    shape
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ct2::testing::encode;
    use crate::model::layout::Kind;

    fn plan_of(variables: &[(&str, &[u32], u8, &[u8])]) -> Result<Plan, String> {
        let bytes = encode(variables, &[]);
        let mut reader = Ct2Reader::open(&bytes[..], Path::new("m.bin")).unwrap();
        plan(&mut reader).map_err(|error| error.to_string())
    }

    #[test]
    fn attributes_whisper_cpp_cannot_honour_are_refused() {
        assert_eq!(
            plan_of(&[("decoder/activation", &[], 1, &[1])]).unwrap_err(),
            "m.bin sets decoder/activation to 1, but whisper.cpp only implements 3; this model cannot be converted"
        );
        let error = plan_of(&[("decoder/pre_norm", &[], 1, &[0])]).unwrap_err();
        assert!(error.starts_with("m.bin sets decoder/pre_norm to 0"), "{error}");
    }

    #[test]
    fn quantized_and_bfloat16_models_are_refused() {
        assert_eq!(
            plan_of(&[("decoder/embeddings/weight", &[2, 2], 1, &[0; 4])]).unwrap_err(),
            "m.bin is an int8/int16-quantized model (decoder/embeddings/weight); import a float16 or float32 \
             CTranslate2 model (ct2-transformers-converter --quantization float16) and quantize the ggml file \
             afterwards"
        );
        let error = plan_of(&[("encoder/conv1/weight_scale", &[2], 0, &[0; 8])]).unwrap_err();
        assert!(error.starts_with("m.bin is an int8/int16-quantized model (encoder/conv1/weight_scale)"), "{error}");
        assert_eq!(
            plan_of(&[("encoder/conv1/bias", &[2], 5, &[0; 4])]).unwrap_err(),
            "m.bin stores encoder/conv1/bias as bfloat16; only float32 and float16 models can be imported"
        );
    }

    #[test]
    fn missing_variables_are_named() {
        assert_eq!(
            plan_of(&[("encoder/conv1/bias", &[2], 4, &[0; 4])]).unwrap_err(),
            "m.bin has no variable encoder/conv1/weight, so it is not a complete Whisper model; download the wheel again"
        );
    }

    #[test]
    fn only_80_mel_bands_are_imported() {
        let error = plan_of(&[("encoder/conv1/weight", &[1, 128, 1], 4, &[0; 256])]).unwrap_err();
        assert!(error.starts_with("m.bin uses 128 mel bands; only 80-band models"), "{error}");
    }

    #[test]
    fn fused_and_column_variables_have_whole_shapes() {
        let query = TensorSpec { name: "q".into(), ne: vec![384, 384], kind: Kind::Matrix };
        assert_eq!(variable_shape(&query, false, 3), [1152, 384]);
        let bias = TensorSpec { name: "b".into(), ne: vec![1, 384], kind: Kind::Float };
        assert_eq!(variable_shape(&bias, true, 1), [384]);
        let conv = TensorSpec { name: "c".into(), ne: vec![3, 80, 384], kind: Kind::Conv };
        assert_eq!(variable_shape(&conv, false, 1), [384, 80, 3]);
    }

    #[test]
    fn layers_are_counted_from_the_highest_index() {
        let variable = |name: &str| Variable { name: name.into(), dims: vec![1], dtype: Dtype::F32, byte_len: 4 };
        let variables = [
            variable("encoder/layer_0/ffn/linear_0/bias"),
            variable("encoder/layer_11/ffn/linear_0/bias"),
            variable("encoder/layer_norm/gamma"),
            variable("decoder/layer_1/ffn/linear_0/bias"),
        ];
        assert_eq!(layer_count(&variables, "encoder/"), 12);
        assert_eq!(layer_count(&variables, "decoder/"), 2);
        assert_eq!(layer_count(&variables[2..3], "encoder/"), 0);
    }
}
