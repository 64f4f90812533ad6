//! `keys create|list|revoke`: the key goes to stdout alone (for scripts), everything else
//! to stderr. The state directory is found as `serve` finds it.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use super::print;
use crate::auth::KeyStore;
use crate::cli::{KeysArgs, KeysCommand};
use crate::config;
use crate::errors::CommandError;
use crate::state_dir;

pub(super) fn run(args: &KeysArgs) -> Result<(), CommandError> {
    let from_file = config::state_dir_in_file(args.config.as_deref())?;
    let state_dir = config::resolve_state_dir(args.state_dir.clone().or(from_file))?;
    // As `serve` does: run before the first start, this makes the state directory itself.
    state_dir::private_umask();
    state_dir::check_private(&state_dir)?;
    let store = KeyStore::new(&state_dir);
    match &args.command {
        KeysCommand::Create { name, role } => {
            let (record, key) = store.create(name, *role)?;
            print(&format!("{key}\n"))?;
            eprintln!(
                "created key {} named {:?} with role {}; it is shown only this once, store it now",
                record.id,
                record.name,
                record.role.name()
            );
        }
        KeysCommand::List => {
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
            for key in store.list()? {
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
        KeysCommand::Revoke { key } => {
            let record = store.revoke(key)?;
            eprintln!("revoked key {} named {:?}; a running server refuses it within seconds", record.id, record.name);
        }
    }
    Ok(())
}
