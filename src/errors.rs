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
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
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
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {path} failed part way: {source}; check the disk, then try again")]
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
