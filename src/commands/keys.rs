//! `keys create|list|revoke`: the key goes to stdout alone (for scripts), everything else
//! to stderr. The state directory is found as `serve` finds it.
//!
//! The keys live in the server's database, which one process at a time may open. So the
//! command first asks a running server, through its control socket (`control.rs`), and the
//! change works at once; when no server listens there, it opens the database itself. Either
//! way it prints the same. A server that is starting or stopping holds the database without
//! answering on the socket for a moment: the command tries both again for a few seconds
//! before it says it can reach neither.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant, UNIX_EPOCH};

use super::print;
use crate::auth::{KEYS_TREE, KeyStore, KeyView, adopt_legacy_database};
use crate::cli::{KeysArgs, KeysCommand};
use crate::config;
use crate::control::{self, Answer, Reached, Request};
use crate::errors::{CommandError, ControlError, StoreError};
use crate::jobs::Store;
use crate::state_dir;

/// How long to keep trying while the database is held but the socket does not answer.
const PATIENCE: Duration = Duration::from_secs(10);
const RETRY_EVERY: Duration = Duration::from_millis(100);

pub(super) fn run(args: &KeysArgs) -> Result<(), CommandError> {
    let from_file = config::state_dir_in_file(args.config.as_deref())?;
    let state_dir = config::resolve_state_dir(args.state_dir.clone().or(from_file))?;
    // As `serve` does: run before the first start, this makes the state directory itself.
    state_dir::private_umask();
    state_dir::check_private(&state_dir)?;
    let request = match &args.command {
        KeysCommand::Create { name, role } => Request::Create { name: name.clone(), role: *role },
        KeysCommand::List => Request::List,
        KeysCommand::Revoke { key } => Request::Revoke { key: key.clone() },
    };
    let socket = config::control_socket_in(&state_dir);
    let started = Instant::now();
    let answer = loop {
        let no_server = match control::call(&socket, &request)? {
            Reached::Answer(answer) => break answer,
            Reached::NoServer(why) => why,
        };
        match answer_here(&state_dir, request.clone()) {
            Err(CommandError::Store(StoreError::Locked { .. })) if started.elapsed() < PATIENCE => {
                std::thread::sleep(RETRY_EVERY);
            }
            Err(CommandError::Store(StoreError::Locked { .. })) => {
                return Err(ControlError::Unreachable { state_dir, source: no_server }.into());
            }
            answered => break answered?,
        }
    };
    show(answer)
}

/// Carries out the request on the database itself: no server is running.
fn answer_here(state_dir: &Path, request: Request) -> Result<Answer, CommandError> {
    let store = Store::open(&config::database_dir_in(state_dir))?;
    let keys = KeyStore::new(store.tree(KEYS_TREE)?);
    if let Some(moved) = adopt_legacy_database(state_dir, &keys)? {
        eprintln!("moved {moved} API keys from keys.sled into the server's database, and removed keys.sled");
    }
    Ok(match request {
        Request::List => Answer::Keys(keys.list()?.iter().map(KeyView::from).collect()),
        Request::Create { name, role } => {
            let (record, key) = keys.create(&name, role)?;
            Answer::Created { record: KeyView::from(&record), key }
        }
        Request::Revoke { key } => Answer::Revoked(KeyView::from(&keys.revoke(&key)?)),
    })
}

fn show(answer: Answer) -> Result<(), CommandError> {
    match answer {
        Answer::Created { record, key } => {
            print(&format!("{key}\n"))?;
            eprintln!(
                "created key {} named {:?} with role {}; it is shown only this once, store it now",
                record.id,
                record.name,
                record.role.name()
            );
        }
        Answer::Keys(keys) => {
            let when = |ms: Option<u64>| {
                ms.map_or_else(
                    || "-".to_owned(),
                    |ms| humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string(),
                )
            };
            let mut table = format!(
                "{:<12}  {:<20}  {:<5}  {:<20}  {:<20}  REVOKED\n",
                "ID", "NAME", "ROLE", "CREATED", "LAST USED"
            );
            for key in keys {
                let _ = writeln!(
                    table,
                    "{:<12}  {:<20}  {:<5}  {:<20}  {:<20}  {}",
                    key.id,
                    key.name,
                    key.role.name(),
                    when(Some(key.created_ms)),
                    when(key.last_used_ms),
                    when(key.revoked_ms)
                );
            }
            print(&table)?;
        }
        Answer::Revoked(record) => {
            eprintln!("revoked key {} named {:?}; requests with it are refused from now on", record.id, record.name);
        }
        Answer::Error(message) => return Err(ControlError::Refused { message }.into()),
    }
    Ok(())
}
