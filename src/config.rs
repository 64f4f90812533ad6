//! One validated [`Config`] for `serve`, resolved field by field: flag or
//! `WHISPER_APPLIANCE_*` variable (clap merges those two), then the TOML file, then the default.
//!
//! Every path derives from the state directory unless set on its own. Nothing is read
//! from the working directory implicitly. Unknown keys in the file are refused (a typo in
//! a setting must not silently fall back to a default) and unknown `WHISPER_APPLIANCE_*`
//! variables are warned about.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

use crate::cli::ServeArgs;
use crate::engine::default_threads;
use crate::errors::ConfigError;

/// Where the packaged configuration lives.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/whisper-appliance/config.toml";
const DEFAULT_STATE_DIR: &str = "/var/lib/whisper-appliance";
const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
const DEFAULT_QUEUE_SIZE: usize = 32;
const DEFAULT_MAX_UPLOAD_MB: u64 = 500;
const DEFAULT_RETENTION_HOURS: u64 = 7 * 24;
const DEFAULT_UPLOAD_IDLE_SECS: u64 = 60;
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;
const DEFAULT_RATE_LIMIT_PER_MINUTE: u32 = 100;
const DEFAULT_CONCURRENT_UPLOADS: usize = 4;
const DEFAULT_SESSION_HOURS: u64 = 12;

/// The keys a config file may hold: the long flag names with underscores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    state_dir: Option<PathBuf>,
    temp_dir: Option<PathBuf>,
    model: Option<PathBuf>,
    workers: Option<usize>,
    threads: Option<usize>,
    queue_size: Option<usize>,
    max_upload_mb: Option<u64>,
    upload_idle_timeout_secs: Option<u64>,
    retention_hours: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    auth: Option<bool>,
    insecure_public_bind: Option<bool>,
    allow_root: Option<bool>,
    trusted_proxy: Option<bool>,
    proxy_admins: Option<Vec<String>>,
    cors_origins: Option<Vec<String>>,
    rate_limit_per_minute: Option<u32>,
    max_concurrent_uploads: Option<usize>,
    session_secret_file: Option<PathBuf>,
    session_hours: Option<u64>,
    node: Option<String>,
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

fn parse_listen(text: String) -> Result<Listen, ConfigError> {
    if text == LISTEN_SYSTEMD {
        return Ok(Listen::Systemd);
    }
    text.parse().map(Listen::Address).map_err(|_| ConfigError::BadListen { value: text })
}

/// An appliance's name among several behind one nginx: one byte, written as two lowercase hex
/// digits. The last byte of every job id it mints (see `upload`), so that nginx can tell from a job's
/// URL which appliance holds the job (nginx/cluster.conf.example maps the id's last two digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node(pub u8);

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

/// Exactly two lowercase hex digits: the spelling nginx's map matches, so no other spelling of
/// the same byte can be configured here and missed there.
fn parse_node(text: String) -> Result<Node, ConfigError> {
    let valid = text.len() == 2 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    match u8::from_str_radix(&text, 16) {
        Ok(byte) if valid => Ok(Node(byte)),
        _ => Err(ConfigError::BadNode { value: text }),
    }
}

/// The effective configuration of a running server.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub listen: Listen,
    pub state_dir: PathBuf,
    pub temp_dir: PathBuf,
    pub model: PathBuf,
    pub workers: usize,
    pub threads: usize,
    pub queue_size: usize,
    pub max_upload_mb: u64,
    pub upload_idle_timeout_secs: u64,
    pub retention_hours: u64,
    pub shutdown_grace_secs: u64,
    pub auth: bool,
    pub insecure_public_bind: bool,
    pub allow_root: bool,
    pub trusted_proxy: bool,
    pub proxy_admins: Vec<String>,
    pub cors_origins: Vec<String>,
    pub rate_limit_per_minute: u32,
    pub max_concurrent_uploads: usize,
    /// Only where the secret is read from; the secret itself never enters the config.
    pub session_secret_file: Option<PathBuf>,
    pub session_hours: u64,
    /// Set when this appliance is one of several behind nginx; job ids carry it.
    pub node: Option<Node>,
}

impl Config {
    pub fn load(args: &ServeArgs) -> Result<Config, ConfigError> {
        warn_unknown_env_vars();
        let file = read_file(args.config.as_deref())?;
        let state_dir = args
            .state_dir
            .clone()
            .or(file.state_dir)
            .or_else(|| std::env::var_os("STATE_DIRECTORY").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        let state_dir = absolute(&state_dir)?;
        let temp_dir = args
            .temp_dir
            .clone()
            .or(file.temp_dir)
            .or_else(|| std::env::var_os("CACHE_DIRECTORY").map(|cache| PathBuf::from(cache).join("uploads")))
            .unwrap_or_else(|| state_dir.join("uploads"));
        let model = args.model.clone().or(file.model).unwrap_or_else(|| state_dir.join("models/ggml-tiny.en.bin"));
        let listen_text = args.listen.clone().or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = parse_listen(listen_text)?;
        let workers = positive("workers", args.workers.or(file.workers).unwrap_or(1))?;
        let threads = args.threads.or(file.threads).unwrap_or_else(|| (default_threads() / workers).max(1));
        let config = Config {
            listen,
            temp_dir: absolute(&temp_dir)?,
            model: absolute(&model)?,
            state_dir,
            workers,
            threads: positive("threads", threads)?,
            queue_size: positive("queue_size", args.queue_size.or(file.queue_size).unwrap_or(DEFAULT_QUEUE_SIZE))?,
            max_upload_mb: positive(
                "max_upload_mb",
                args.max_upload_mb.or(file.max_upload_mb).unwrap_or(DEFAULT_MAX_UPLOAD_MB),
            )?,
            upload_idle_timeout_secs: positive(
                "upload_idle_timeout_secs",
                args.upload_idle_timeout_secs.or(file.upload_idle_timeout_secs).unwrap_or(DEFAULT_UPLOAD_IDLE_SECS),
            )?,
            retention_hours: positive(
                "retention_hours",
                args.retention_hours.or(file.retention_hours).unwrap_or(DEFAULT_RETENTION_HOURS),
            )?,
            shutdown_grace_secs: args
                .shutdown_grace_secs
                .or(file.shutdown_grace_secs)
                .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS),
            auth: args.auth.or(file.auth).unwrap_or(true),
            insecure_public_bind: args.insecure_public_bind || file.insecure_public_bind.unwrap_or(false),
            allow_root: args.allow_root || file.allow_root.unwrap_or(false),
            trusted_proxy: args.trusted_proxy.or(file.trusted_proxy).unwrap_or(false),
            proxy_admins: non_empty(&args.proxy_admins).or(file.proxy_admins).unwrap_or_default(),
            cors_origins: cors_origins(non_empty(&args.cors_origins).or(file.cors_origins).unwrap_or_default())?,
            rate_limit_per_minute: positive(
                "rate_limit_per_minute",
                args.rate_limit_per_minute.or(file.rate_limit_per_minute).unwrap_or(DEFAULT_RATE_LIMIT_PER_MINUTE),
            )?,
            max_concurrent_uploads: positive(
                "max_concurrent_uploads",
                args.max_concurrent_uploads.or(file.max_concurrent_uploads).unwrap_or(DEFAULT_CONCURRENT_UPLOADS),
            )?,
            session_secret_file: args.session_secret_file.clone().or(file.session_secret_file),
            session_hours: positive(
                "session_hours",
                args.session_hours.or(file.session_hours).unwrap_or(DEFAULT_SESSION_HOURS),
            )?,
            node: args.node.clone().or(file.node).map(parse_node).transpose()?,
        };
        Ok(config)
    }

    /// The state directory `keys` uses: flag, then the config file, then as `serve` would.
    pub fn state_dir_for_keys(state_dir: Option<&Path>, config_file: Option<&Path>) -> Result<PathBuf, ConfigError> {
        let file = read_file(config_file)?;
        let dir = state_dir
            .map(Path::to_owned)
            .or(file.state_dir)
            .or_else(|| std::env::var_os("STATE_DIRECTORY").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        absolute(&dir)
    }

    /// The job database.
    pub fn database_dir(&self) -> PathBuf {
        self.state_dir.join("jobs.sled")
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
        toml::to_string(self).expect("the config holds only strings and numbers")
    }
}

fn read_file(named: Option<&Path>) -> Result<FileConfig, ConfigError> {
    let path = named.unwrap_or(Path::new(DEFAULT_CONFIG_FILE));
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if named.is_none() && error.kind() == std::io::ErrorKind::NotFound => {
            return Ok(FileConfig::default());
        }
        Err(source) => return Err(ConfigError::ReadFile { path: path.to_owned(), source }),
    };
    toml::from_str(&text).map_err(|source| ConfigError::ParseFile { path: path.to_owned(), source })
}

fn non_empty(values: &[String]) -> Option<Vec<String>> {
    (!values.is_empty()).then(|| values.to_vec())
}

/// SECURITY: CORS origins are exact `scheme://host[:port]` values; `*` is refused, since
/// the API is reached with credentials.
fn cors_origins(origins: Vec<String>) -> Result<Vec<String>, ConfigError> {
    origins
        .into_iter()
        .map(|origin| {
            let origin = origin.trim().trim_end_matches('/').to_owned();
            let valid = (origin.starts_with("https://") || origin.starts_with("http://"))
                && !origin.contains('*')
                && origin.splitn(4, '/').count() == 3;
            if valid { Ok(origin) } else { Err(ConfigError::BadOrigin { value: origin }) }
        })
        .collect()
}

fn positive<T: PartialOrd + Default + Copy>(name: &'static str, value: T) -> Result<T, ConfigError> {
    if value > T::default() { Ok(value) } else { Err(ConfigError::NotPositive { name }) }
}

/// Paths are made absolute once so that logs and `--print-config` say exactly what is used.
fn absolute(path: &Path) -> Result<PathBuf, ConfigError> {
    std::path::absolute(path).map_err(|source| ConfigError::ReadFile { path: path.to_owned(), source })
}

/// The variables clap reads, so that a misspelt one is reported instead of ignored.
const KNOWN_ENV_VARS: &[&str] = &[
    "WHISPER_APPLIANCE_CONFIG",
    "WHISPER_APPLIANCE_LISTEN",
    "WHISPER_APPLIANCE_STATE_DIR",
    "WHISPER_APPLIANCE_TEMP_DIR",
    "WHISPER_APPLIANCE_MODEL",
    "WHISPER_APPLIANCE_WORKERS",
    "WHISPER_APPLIANCE_THREADS",
    "WHISPER_APPLIANCE_QUEUE_SIZE",
    "WHISPER_APPLIANCE_MAX_UPLOAD_MB",
    "WHISPER_APPLIANCE_UPLOAD_IDLE_TIMEOUT_SECS",
    "WHISPER_APPLIANCE_RETENTION_HOURS",
    "WHISPER_APPLIANCE_SHUTDOWN_GRACE_SECS",
    "WHISPER_APPLIANCE_AUTH",
    "WHISPER_APPLIANCE_INSECURE_PUBLIC_BIND",
    "WHISPER_APPLIANCE_ALLOW_ROOT",
    "WHISPER_APPLIANCE_TRUSTED_PROXY",
    "WHISPER_APPLIANCE_PROXY_ADMINS",
    "WHISPER_APPLIANCE_CORS_ORIGINS",
    "WHISPER_APPLIANCE_RATE_LIMIT_PER_MINUTE",
    "WHISPER_APPLIANCE_MAX_CONCURRENT_UPLOADS",
    "WHISPER_APPLIANCE_SESSION_SECRET_FILE",
    "WHISPER_APPLIANCE_SESSION_HOURS",
    "WHISPER_APPLIANCE_NODE",
    // Read by auth::Secret, not by clap.
    "WHISPER_APPLIANCE_SESSION_SECRET",
];

fn warn_unknown_env_vars() {
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("WHISPER_APPLIANCE_")
            && !KNOWN_ENV_VARS.contains(&name.as_ref())
            && !name.starts_with("WHISPER_APPLIANCE_TEST_")
        {
            tracing::warn!(variable = %name, "unknown WHISPER_APPLIANCE_ variable ignored; see `whisper-appliance serve --help`");
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::cli::Cli;

    #[test]
    fn every_env_var_has_the_prefix_and_is_known() {
        fn walk(command: &clap::Command, seen: &mut Vec<String>) {
            for arg in command.get_arguments() {
                if let Some(env) = arg.get_env() {
                    seen.push(env.to_string_lossy().into_owned());
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, seen);
            }
        }
        let mut seen = Vec::new();
        walk(&Cli::command(), &mut seen);
        assert!(!seen.is_empty());
        for name in seen {
            assert!(name.starts_with("WHISPER_APPLIANCE_"), "{name}");
            assert!(KNOWN_ENV_VARS.contains(&name.as_str()), "{name} is missing from KNOWN_ENV_VARS");
        }
    }

    #[test]
    fn cors_origins_must_be_exact() {
        assert_eq!(cors_origins(vec!["https://a.example/".into()]).unwrap(), vec!["https://a.example"]);
        for bad in ["*", "https://*.example", "a.example", "https://a.example/path"] {
            assert!(cors_origins(vec![bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_is_an_address_or_systemd() {
        assert_eq!(parse_listen("systemd".into()).unwrap(), Listen::Systemd);
        let address = parse_listen("127.0.0.1:5000".into()).unwrap();
        assert_eq!(address, Listen::Address(([127, 0, 0, 1], 5000).into()));
        assert_eq!(address.to_string(), "127.0.0.1:5000");
        for bad in ["Systemd", "systemd:5000", "localhost:5000", ""] {
            assert!(matches!(parse_listen(bad.into()), Err(ConfigError::BadListen { .. })), "{bad}");
        }
    }

    #[test]
    fn a_node_is_exactly_two_lowercase_hex_digits() {
        assert_eq!(parse_node("a1".into()).unwrap(), Node(0xa1));
        assert_eq!(parse_node("00".into()).unwrap().to_string(), "00");
        for bad in ["A1", "a", "a1b", "g1", "+1", " a1", ""] {
            assert!(matches!(parse_node(bad.into()), Err(ConfigError::BadNode { .. })), "{bad}");
        }
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let error = toml::from_str::<FileConfig>("max_upload_mbs = 5").unwrap_err();
        assert!(error.to_string().contains("unknown field `max_upload_mbs`"), "{error}");
    }
}
