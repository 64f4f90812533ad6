//! Every `serve` setting, declared once as a field of [`Config`], and the layering that
//! fills it: flag, then `WHISPER_APPLIANCE_*` variable (clap reads both), then the TOML
//! file, then the default.
//!
//! One struct is both the clap argument group and the serde shape of the file, so a setting
//! has one name, one type, one help text and one default; the known environment variables
//! are read off the same definitions. Values are checked as they are parsed (a bad `listen`
//! or a zero `workers` is a usage error, from a flag or from the file alike). Every path is
//! made absolute and derives from the state directory unless set on its own; nothing is
//! read from the working directory implicitly. Unknown keys in the file are refused (a typo
//! must not silently fall back to a default); unknown `WHISPER_APPLIANCE_*` variables are
//! warned about.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::engine::{VadSettings, default_threads, vad_for};
use crate::errors::ConfigError;

/// Where the packaged configuration lives.
const DEFAULT_CONFIG_FILE: &str = "/etc/whisper-appliance/config.toml";
/// The state directory when neither a setting nor systemd's `$STATE_DIRECTORY` names one.
const DEFAULT_STATE_DIR: &str = "/var/lib/whisper-appliance";
/// The model every command uses unless told otherwise: where the model package installs it.
pub(crate) const DEFAULT_MODEL: &str = "/usr/share/whisper-appliance/models/ggml-tiny.en.bin";
/// Where the model packages install their models: the folder of [`DEFAULT_MODEL`].
pub(crate) const DEFAULT_MODELS_DIR: &str = "/usr/share/whisper-appliance/models";

/// The effective configuration of a running server: what clap parsed, with the file and
/// the defaults layered under it by [`Config::load`].
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address and port to listen on, or `systemd` to take the listening socket systemd passes
    /// (socket activation, as the packaged service does).
    #[arg(long, value_name = "ADDR:PORT|systemd", env = "WHISPER_APPLIANCE_LISTEN", default_value = "127.0.0.1:5000")]
    pub listen: Listen,

    /// Directory for the job database, secrets and, unless --temp-dir says otherwise, uploads
    /// [default: $STATE_DIRECTORY from systemd, else /var/lib/whisper-appliance].
    #[arg(long, value_name = "DIR", env = "WHISPER_APPLIANCE_STATE_DIR")]
    state_dir: Option<PathBuf>,

    /// Directory for uploads while their jobs run [default: $CACHE_DIRECTORY/uploads from
    /// systemd, else STATE_DIR/uploads].
    #[arg(long, value_name = "DIR", env = "WHISPER_APPLIANCE_TEMP_DIR")]
    temp_dir: Option<PathBuf>,

    /// The default model: the ggml file that requests naming no model (or `whisper-1`) get.
    #[arg(long, value_name = "FILE", env = "WHISPER_APPLIANCE_MODEL", default_value = DEFAULT_MODEL)]
    pub model: PathBuf,

    /// Directory of ggml whisper models to serve besides the default; each is named by what
    /// `model info` reads (tiny.en, base, base-q8_0), and other files are skipped; read at
    /// start and again on SIGHUP [default: the folder holding --model,
    /// /usr/share/whisper-appliance/models as packaged].
    #[arg(long, value_name = "DIR", env = "WHISPER_APPLIANCE_MODELS_DIR")]
    models_dir: Option<PathBuf>,

    /// Megabytes of model weights kept loaded at once: models load on first use, and the
    /// least recently used idle one is unloaded to make room (never one a job is using).
    #[arg(
        long,
        value_name = "MB",
        env = "WHISPER_APPLIANCE_MODEL_MEMORY_MB",
        default_value_t = 2048,
        value_parser = positive::<u64>
    )]
    #[serde(deserialize_with = "at_least_one")]
    pub model_memory_mb: u64,

    /// The Silero VAD speech detector file, written by `model import-vad`
    /// [default: ggml-silero-v6.2.0.bin beside the model].
    #[arg(long, value_name = "FILE", env = "WHISPER_APPLIANCE_VAD_MODEL")]
    pub vad_model: Option<PathBuf>,

    /// Transcribe only what the speech detector finds; false gives whisper every recording
    /// whole, as a request's `vad=false` does.
    #[arg(long, value_name = "BOOL", env = "WHISPER_APPLIANCE_VAD", default_value_t = true, action = clap::ArgAction::Set)]
    pub vad: bool,

    /// Speech probability (0 to 1) from which audio counts as speech.
    #[arg(long, value_name = "P", env = "WHISPER_APPLIANCE_VAD_THRESHOLD", default_value_t = 0.5, value_parser = probability)]
    #[serde(deserialize_with = "a_probability")]
    pub vad_threshold: f32,

    /// Shortest pause, in milliseconds, that is skipped between stretches of speech.
    #[arg(long, value_name = "MS", env = "WHISPER_APPLIANCE_VAD_MIN_SILENCE_MS", default_value_t = 1000)]
    pub vad_min_silence_ms: u32,

    /// Milliseconds of audio kept before and after each stretch of speech.
    #[arg(long, value_name = "MS", env = "WHISPER_APPLIANCE_VAD_PADDING_MS", default_value_t = 400)]
    pub vad_padding_ms: u32,

    /// Transcriptions run at the same time.
    #[arg(long, value_name = "N", env = "WHISPER_APPLIANCE_WORKERS", default_value_t = 1, value_parser = positive::<usize>)]
    #[serde(deserialize_with = "at_least_one")]
    pub workers: usize,

    /// CPU threads per transcription [default: the cores available divided by --workers].
    #[arg(long, value_name = "N", env = "WHISPER_APPLIANCE_THREADS", value_parser = positive::<usize>)]
    #[serde(default, deserialize_with = "some_at_least_one")]
    threads: Option<usize>,

    /// Jobs that may wait for a worker; more get 503 with Retry-After.
    #[arg(long, value_name = "N", env = "WHISPER_APPLIANCE_QUEUE_SIZE", default_value_t = 32, value_parser = positive::<usize>)]
    #[serde(deserialize_with = "at_least_one")]
    pub queue_size: usize,

    /// Largest accepted upload in megabytes (10^6 bytes).
    #[arg(long, value_name = "MB", env = "WHISPER_APPLIANCE_MAX_UPLOAD_MB", default_value_t = 500, value_parser = positive::<u64>)]
    #[serde(deserialize_with = "at_least_one")]
    pub max_upload_mb: u64,

    /// Seconds an upload may send nothing before it is abandoned with 408.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "WHISPER_APPLIANCE_UPLOAD_IDLE_TIMEOUT_SECS",
        default_value_t = 60,
        value_parser = positive::<u64>
    )]
    #[serde(deserialize_with = "at_least_one")]
    pub upload_idle_timeout_secs: u64,

    /// Hours a finished job and its transcript are kept before deletion (168: 7 days).
    #[arg(
        long,
        value_name = "HOURS",
        env = "WHISPER_APPLIANCE_RETENTION_HOURS",
        default_value_t = 7 * 24,
        value_parser = positive::<u64>
    )]
    #[serde(deserialize_with = "at_least_one")]
    pub retention_hours: u64,

    /// Seconds a running job may take to finish on SIGTERM before it is re-queued.
    #[arg(long, value_name = "SECONDS", env = "WHISPER_APPLIANCE_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Require an API key, a browser session or a trusted proxy's user on every request
    /// but health checks. Off is refused on a non-loopback address unless
    /// --insecure-public-bind is given.
    #[arg(long, value_name = "BOOL", env = "WHISPER_APPLIANCE_AUTH", default_value_t = true, action = clap::ArgAction::Set)]
    pub auth: bool,

    /// Allow listening on a non-loopback address with authentication off (trusted networks only).
    #[arg(long, env = "WHISPER_APPLIANCE_INSECURE_PUBLIC_BIND")]
    pub insecure_public_bind: bool,

    /// Allow running as root (refused by default: run as a service user such as `whisper`).
    #[arg(long, env = "WHISPER_APPLIANCE_ALLOW_ROOT")]
    pub allow_root: bool,

    /// Accept the user name that a proxy on loopback (the shipped nginx with basic auth)
    /// passes in X-Forwarded-User, and its X-Forwarded-For and X-Forwarded-Proto.
    #[arg(
        long,
        value_name = "BOOL",
        env = "WHISPER_APPLIANCE_TRUSTED_PROXY",
        default_value_t = false,
        action = clap::ArgAction::Set
    )]
    pub trusted_proxy: bool,

    /// A proxy user name that gets the admin role; repeat for several.
    #[arg(long = "proxy-admin", value_name = "NAME", env = "WHISPER_APPLIANCE_PROXY_ADMINS", value_delimiter = ',')]
    #[serde(default)]
    pub proxy_admins: Vec<String>,

    /// A host name clients may use to reach the server (the `Host` header, any port); repeat
    /// for several. IP addresses and `localhost` are always allowed; behind `trusted_proxy`,
    /// with none listed, so is any name the proxy passes. Other names get 421.
    #[arg(
        long = "allowed-host",
        value_name = "NAME",
        env = "WHISPER_APPLIANCE_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_parser = allowed_host
    )]
    #[serde(default, deserialize_with = "allowed_hosts")]
    pub allowed_hosts: Vec<String>,

    /// An origin (`https://host:port`) whose pages may call the API with an API key; repeat
    /// for several. CORS is off when none is listed.
    #[arg(
        long = "cors-origin",
        value_name = "ORIGIN",
        env = "WHISPER_APPLIANCE_CORS_ORIGINS",
        value_delimiter = ',',
        value_parser = cors_origin
    )]
    #[serde(default, deserialize_with = "cors_origins")]
    pub cors_origins: Vec<String>,

    /// Requests per minute per API key (per client address without one).
    #[arg(
        long,
        value_name = "N",
        env = "WHISPER_APPLIANCE_RATE_LIMIT_PER_MINUTE",
        default_value_t = 100,
        value_parser = positive::<u32>
    )]
    #[serde(deserialize_with = "at_least_one")]
    pub rate_limit_per_minute: u32,

    /// Uploads in progress at once per API key or client address.
    #[arg(
        long,
        value_name = "N",
        env = "WHISPER_APPLIANCE_MAX_CONCURRENT_UPLOADS",
        default_value_t = 4,
        value_parser = positive::<usize>
    )]
    #[serde(deserialize_with = "at_least_one")]
    pub max_concurrent_uploads: usize,

    /// Jobs one API key (or proxy user) may have waiting in the queue at once; more get 429
    /// [default: a quarter of --queue-size; all of it with --auth false and no trusted proxy,
    /// where every request is the same caller].
    #[arg(long, value_name = "N", env = "WHISPER_APPLIANCE_MAX_QUEUED_PER_KEY", value_parser = positive::<usize>)]
    #[serde(default, deserialize_with = "some_at_least_one")]
    max_queued_per_key: Option<usize>,

    /// Open connections at once; at the cap a new one replaces the longest-idle one, or is
    /// closed if all are busy with requests. The unit's LimitNOFILE is sized to it.
    #[arg(long, value_name = "N", env = "WHISPER_APPLIANCE_MAX_CONNECTIONS", default_value_t = 512, value_parser = positive::<usize>)]
    #[serde(deserialize_with = "at_least_one")]
    pub max_connections: usize,

    /// File holding the secret that signs browser sessions [default: systemd's
    /// $CREDENTIALS_DIRECTORY/session-secret, then $WHISPER_APPLIANCE_SESSION_SECRET, then
    /// STATE_DIR/session-secret, generated on first start].
    #[arg(long, value_name = "FILE", env = "WHISPER_APPLIANCE_SESSION_SECRET_FILE")]
    pub session_secret_file: Option<PathBuf>,

    /// Hours a browser session lasts.
    #[arg(long, value_name = "HOURS", env = "WHISPER_APPLIANCE_SESSION_HOURS", default_value_t = 12, value_parser = positive::<u64>)]
    #[serde(deserialize_with = "at_least_one")]
    pub session_hours: u64,

    /// Live transcription sessions (/v1/realtime) at once; each holds a thread that transcribes
    /// while audio flows, beside the workers.
    #[arg(long, value_name = "N", env = "WHISPER_APPLIANCE_LIVE_SESSIONS", default_value_t = 1, value_parser = positive::<usize>)]
    #[serde(deserialize_with = "at_least_one")]
    pub live_sessions: usize,

    /// Seconds a live transcription session may last.
    #[arg(long, value_name = "SECONDS", env = "WHISPER_APPLIANCE_LIVE_MAX_SESSION_SECS", default_value_t = 3600, value_parser = positive::<u64>)]
    #[serde(deserialize_with = "at_least_one")]
    pub live_max_session_secs: u64,

    /// Seconds a live transcription session may receive no event before it is closed.
    #[arg(long, value_name = "SECONDS", env = "WHISPER_APPLIANCE_LIVE_IDLE_TIMEOUT_SECS", default_value_t = 30, value_parser = positive::<u64>)]
    #[serde(deserialize_with = "at_least_one")]
    pub live_idle_timeout_secs: u64,

    /// This appliance's name among several behind one nginx: two lowercase hex digits, e.g. `a1`,
    /// different on each. Every job id then ends with it, so that nginx routes each request for a
    /// job to the appliance holding it (nginx/cluster.conf.example) [default: none, one appliance].
    #[arg(long, value_name = "HEX2", env = "WHISPER_APPLIANCE_NODE")]
    pub node: Option<Node>,
}

impl Config {
    /// Layers the file under what clap parsed: a key from the file replaces a value only
    /// where neither a flag nor a variable gave one. Then fills in the derived defaults.
    pub(crate) fn load(parsed: &Config, matches: &ArgMatches, file: Option<&Path>) -> Result<Config, ConfigError> {
        let (path, file) = read_file(file)?;
        let mut layered = toml::Table::try_from(parsed).expect("the config holds only strings, numbers and lists");
        // Every value in the file is checked, even one that a flag overrides.
        let mut whole_file = layered.clone();
        whole_file.extend(file.clone());
        if let Err(source) = whole_file.try_into::<Config>() {
            return Err(ConfigError::ParseFile { path, source });
        }
        for (key, value) in file {
            // `read_file` let through only settings' names, which are clap's ids.
            let given = matches!(matches.value_source(&key), Some(ValueSource::CommandLine | ValueSource::EnvVariable));
            if !given {
                layered.insert(key, value);
            }
        }
        let mut config: Config = layered.try_into().map_err(|source| ConfigError::ParseFile { path, source })?;
        let state_dir = resolve_state_dir(config.state_dir.take())?;
        let temp_dir = config
            .temp_dir
            .take()
            .or_else(|| std::env::var_os("CACHE_DIRECTORY").map(|cache| PathBuf::from(cache).join("uploads")))
            .unwrap_or_else(|| state_dir.join("uploads"));
        config.temp_dir = Some(absolute(&temp_dir)?);
        config.state_dir = Some(state_dir);
        config.model = absolute(&config.model)?;
        let models_dir = match config.models_dir.take() {
            Some(dir) => dir,
            None => config.model.parent().map_or_else(|| PathBuf::from("/"), Path::to_owned),
        };
        config.models_dir = Some(absolute(&models_dir)?);
        config.vad_model = config.vad_model.as_deref().map(absolute).transpose()?;
        config.threads = Some(config.threads.unwrap_or_else(|| (default_threads() / config.workers).max(1)));
        // With authentication off and no proxy naming users, every request is the same caller:
        // there is no one to share the queue with.
        let share =
            if config.auth || config.trusted_proxy { (config.queue_size / 4).max(1) } else { config.queue_size };
        config.max_queued_per_key = Some(config.max_queued_per_key.unwrap_or(share));
        Ok(config)
    }

    /// Where the job database, keys and secrets live (absolute).
    pub fn state_dir(&self) -> &Path {
        self.state_dir.as_deref().expect("Config::load resolves the state directory")
    }

    /// Where uploads wait for their jobs (absolute).
    pub fn temp_dir(&self) -> &Path {
        self.temp_dir.as_deref().expect("Config::load resolves the temp directory")
    }

    /// The directory of models to serve (absolute).
    pub fn models_dir(&self) -> &Path {
        self.models_dir.as_deref().expect("Config::load resolves the models directory")
    }

    /// The model memory budget in bytes.
    pub fn model_memory_bytes(&self) -> u64 {
        self.model_memory_mb * 1_000_000
    }

    /// CPU threads per transcription.
    pub fn threads(&self) -> usize {
        self.threads.expect("Config::load resolves the thread count")
    }

    /// Jobs one key may have waiting.
    pub fn max_queued_per_key(&self) -> usize {
        self.max_queued_per_key.expect("Config::load resolves the per-key queue share")
    }

    /// The speech detector's file and settings, or `None` when detection is off.
    pub fn vad(&self) -> Option<(PathBuf, VadSettings)> {
        let settings = VadSettings {
            threshold: self.vad_threshold,
            min_silence_ms: self.vad_min_silence_ms,
            padding_ms: self.vad_padding_ms,
        };
        if self.vad { vad_for(&self.model, self.vad_model.as_deref(), settings) } else { None }
    }

    /// The server's database: jobs, transcripts, keys and sessions.
    pub fn database_dir(&self) -> PathBuf {
        database_dir_in(self.state_dir())
    }

    /// Where the server listens for the `keys` command.
    pub fn control_socket(&self) -> PathBuf {
        control_socket_in(self.state_dir())
    }

    pub fn max_upload_bytes(&self) -> u64 {
        self.max_upload_mb * 1_000_000
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_hours * 3600)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    /// The configuration as TOML, for `--print-config` and the start-up log.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("the config holds only strings, numbers and lists")
    }
}

/// The state directory of every command (`serve`, `keys`): the setting (flag, variable or
/// file), then systemd's `$STATE_DIRECTORY`, then `/var/lib/whisper-appliance`; absolute.
pub(crate) fn resolve_state_dir(setting: Option<PathBuf>) -> Result<PathBuf, ConfigError> {
    let dir = setting
        .or_else(|| std::env::var_os("STATE_DIRECTORY").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    absolute(&dir)
}

/// The server's database in a state directory (`keys` opens it when no server runs).
pub(crate) fn database_dir_in(state_dir: &Path) -> PathBuf {
    state_dir.join("jobs.sled")
}

/// The control socket in a state directory, where `keys` finds a running server.
pub(crate) fn control_socket_in(state_dir: &Path) -> PathBuf {
    state_dir.join("control.sock")
}

/// The `state_dir` a config file sets, for commands that read only that (`keys`); the file
/// is checked as `serve` would check it.
pub(crate) fn state_dir_in_file(file: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
    let (path, table) = read_file(file)?;
    table
        .get("state_dir")
        .map(|value| value.clone().try_into().map_err(|source| ConfigError::ParseFile { path, source }))
        .transpose()
}

/// The file's keys, or none when the default file does not exist (a named one must); a key
/// that names no setting is refused.
fn read_file(named: Option<&Path>) -> Result<(PathBuf, toml::Table), ConfigError> {
    let path = named.unwrap_or(Path::new(DEFAULT_CONFIG_FILE)).to_owned();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if named.is_none() && error.kind() == std::io::ErrorKind::NotFound => {
            return Ok((path, toml::Table::new()));
        }
        Err(source) => return Err(ConfigError::ReadFile { path, source }),
    };
    let table: toml::Table = match toml::from_str(&text) {
        Ok(table) => table,
        Err(source) => return Err(ConfigError::ParseFile { path, source }),
    };
    let known = setting_names();
    if let Some(unknown) = table.keys().find(|key| !known.contains(key)) {
        return Err(ConfigError::UnknownKey { key: unknown.clone(), path });
    }
    Ok((path, table))
}

/// The settings' names: clap's argument ids, which are the fields' and the file's keys.
fn setting_names() -> Vec<String> {
    Config::augment_args(clap::Command::new("config")).get_arguments().map(|arg| arg.get_id().to_string()).collect()
}

/// Where `serve` gets its listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// Bind this address itself.
    Address(SocketAddr),
    /// Take the socket systemd passes (socket activation: `whisper-appliance.socket`), so
    /// the service can run without a network of its own (`PrivateNetwork=yes`).
    Systemd,
}

/// The value of `listen` that asks for systemd's socket.
const LISTEN_SYSTEMD: &str = "systemd";

impl FromStr for Listen {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Listen, ConfigError> {
        if text == LISTEN_SYSTEMD {
            return Ok(Listen::Systemd);
        }
        text.parse().map(Listen::Address).map_err(|_| ConfigError::BadListen { value: text.to_owned() })
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Address(address) => address.fmt(f),
            Listen::Systemd => f.write_str(LISTEN_SYSTEMD),
        }
    }
}

impl Serialize for Listen {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Listen, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// An appliance's name among several behind one nginx: one byte, written as two lowercase hex
/// digits. The last byte of every job id it mints (see `spool`), so that nginx can tell from a
/// job's URL which appliance holds the job (nginx/cluster.conf.example maps the id's last two digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node(pub u8);

/// Exactly two lowercase hex digits: the spelling nginx's map matches, so no other spelling of
/// the same byte can be configured here and missed there.
impl FromStr for Node {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Node, ConfigError> {
        let valid = text.len() == 2 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        match u8::from_str_radix(text, 16) {
            Ok(byte) if valid => Ok(Node(byte)),
            _ => Err(ConfigError::BadNode { value: text.to_owned() }),
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}", self.0)
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// clap's check of a probability, 0 to 1.
fn probability(text: &str) -> Result<f32, String> {
    text.parse::<f32>()
        .ok()
        .filter(|p| (0.0..=1.0).contains(p))
        .ok_or_else(|| "must be a number from 0 to 1".to_owned())
}

/// The file's check of a probability.
fn a_probability<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f32, D::Error> {
    let value = f32::deserialize(deserializer)?;
    if (0.0..=1.0).contains(&value) { Ok(value) } else { Err(serde::de::Error::custom("must be from 0 to 1")) }
}

/// clap's check of a count that must be at least 1.
fn positive<T: FromStr + PartialOrd + Default>(text: &str) -> Result<T, String> {
    match text.parse::<T>() {
        Ok(value) if value > T::default() => Ok(value),
        _ => Err("must be a whole number, at least 1".to_owned()),
    }
}

/// The file's check of a count that must be at least 1.
fn at_least_one<'de, D: Deserializer<'de>, T: Deserialize<'de> + PartialOrd + Default>(
    deserializer: D,
) -> Result<T, D::Error> {
    let value = T::deserialize(deserializer)?;
    if value > T::default() { Ok(value) } else { Err(serde::de::Error::custom("must be at least 1")) }
}

fn some_at_least_one<'de, D: Deserializer<'de>, T: Deserialize<'de> + PartialOrd + Default>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    at_least_one(deserializer).map(Some)
}

/// SECURITY: CORS origins are exact `scheme://host[:port]` values; `*` is refused, since
/// the API is reached with credentials.
fn cors_origin(text: &str) -> Result<String, ConfigError> {
    let origin = text.trim().trim_end_matches('/').to_owned();
    let valid = (origin.starts_with("https://") || origin.starts_with("http://"))
        && !origin.contains('*')
        && origin.splitn(4, '/').count() == 3;
    if valid { Ok(origin) } else { Err(ConfigError::BadOrigin { value: origin }) }
}

fn cors_origins<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|origin| cors_origin(origin).map_err(serde::de::Error::custom))
        .collect()
}

/// Host names as the `Host` header carries them, without a port: `*` and anything with a
/// scheme, path or port are refused, so a typo cannot open the check up.
fn allowed_host(text: &str) -> Result<String, ConfigError> {
    let name = text.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if valid { Ok(name) } else { Err(ConfigError::BadHost { value: name }) }
}

fn allowed_hosts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|name| allowed_host(name).map_err(serde::de::Error::custom))
        .collect()
}

/// Paths are made absolute once so that logs and `--print-config` say exactly what is used.
fn absolute(path: &Path) -> Result<PathBuf, ConfigError> {
    std::path::absolute(path).map_err(|source| ConfigError::Absolute { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_must_be_exact() {
        assert_eq!(cors_origin("https://a.example/").unwrap(), "https://a.example");
        for bad in ["*", "https://*.example", "a.example", "https://a.example/path"] {
            assert!(cors_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allowed_hosts_are_plain_names() {
        assert_eq!(allowed_host("Whisper.Example.org.").unwrap(), "whisper.example.org");
        for bad in ["*", "*.example.org", "https://a.example", "a.example:443", "a..example", ""] {
            assert!(allowed_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_is_an_address_or_systemd() {
        assert_eq!("systemd".parse::<Listen>().unwrap(), Listen::Systemd);
        let address: Listen = "127.0.0.1:5000".parse().unwrap();
        assert_eq!(address, Listen::Address(([127, 0, 0, 1], 5000).into()));
        assert_eq!(address.to_string(), "127.0.0.1:5000");
        for bad in ["Systemd", "systemd:5000", "localhost:5000", ""] {
            assert!(matches!(bad.parse::<Listen>(), Err(ConfigError::BadListen { .. })), "{bad}");
        }
    }

    #[test]
    fn a_node_is_exactly_two_lowercase_hex_digits() {
        assert_eq!("a1".parse::<Node>().unwrap(), Node(0xa1));
        assert_eq!("00".parse::<Node>().unwrap().to_string(), "00");
        for bad in ["A1", "a", "a1b", "g1", "+1", " a1", ""] {
            assert!(matches!(bad.parse::<Node>(), Err(ConfigError::BadNode { .. })), "{bad}");
        }
    }

    #[test]
    fn counts_must_be_positive() {
        assert_eq!(positive::<usize>("3"), Ok(3));
        assert!(positive::<usize>("0").is_err() && positive::<u64>("-1").is_err() && positive::<u32>("x").is_err());
    }
}
