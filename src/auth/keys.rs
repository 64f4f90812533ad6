//! API keys at rest: a `keys.sled` database in the state directory holding, per key, its
//! name, role, times and the SHA-256 of the key. The key itself is shown once, when made.
//!
//! sled allows one process at a time, and both the server and the `keys` command need
//! the keys, so neither keeps this database open: each opens it for one operation
//! (waiting briefly if the other holds it), and the command touches a marker file after a
//! change so the running server reloads within seconds.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::errors::KeyError;
use crate::jobs::now_ms;

/// Every key starts with this, so a leaked one is recognisable (and greppable).
pub const KEY_PREFIX: &str = "wa_";
const DATABASE: &str = "keys.sled";
const CHANGED_MARKER: &str = "keys.changed";
/// How long to wait for the other process to let go of the database.
const OPEN_PATIENCE: Duration = Duration::from_secs(10);

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees and manages only its own jobs.
    User,
    /// Also sees every job, `/metrics` and the admin routes.
    Admin,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

/// A key as stored: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The first 12 hex digits of the key's SHA-256: safe to log, enough to tell keys apart.
    pub id: String,
    pub name: String,
    pub role: Role,
    /// SHA-256 of the whole key, hex.
    pub hash: String,
    pub created_ms: u64,
    pub last_used_ms: Option<u64>,
    pub revoked_ms: Option<u64>,
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stored hash of a presented key.
pub fn hash_key(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// A new key: the prefix and 256 random bits, URL-safe base64.
fn generate() -> Result<String, KeyError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| KeyError::Random(error.to_string()))?;
    Ok(format!("{KEY_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// The key database of a state directory.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    pub fn new(state_dir: &Path) -> KeyStore {
        KeyStore { dir: state_dir.to_owned() }
    }

    fn with_tree<T>(&self, work: impl FnOnce(&sled::Tree) -> Result<T, KeyError>) -> Result<T, KeyError> {
        let path = self.dir.join(DATABASE);
        let started = Instant::now();
        let db = loop {
            match sled::Config::new().path(&path).mode(sled::Mode::LowSpace).open() {
                Ok(db) => break db,
                // The lock is held by the other process for one short operation.
                Err(sled::Error::Io(error))
                    if error.kind() == std::io::ErrorKind::WouldBlock && started.elapsed() < OPEN_PATIENCE =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(source) => return Err(KeyError::Open { path, source }),
            }
        };
        let tree = db.open_tree("keys")?;
        let result = work(&tree)?;
        db.flush()?;
        Ok(result)
    }

    /// Makes a key; returns its record and the key, which is never stored.
    pub fn create(&self, name: &str, role: Role) -> Result<(KeyRecord, String), KeyError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
            return Err(KeyError::BadName);
        }
        let key = generate()?;
        let hash = hash_key(&key);
        let record = KeyRecord {
            id: hash[..12].to_owned(),
            name: name.to_owned(),
            role,
            hash,
            created_ms: now_ms(),
            last_used_ms: None,
            revoked_ms: None,
        };
        self.with_tree(|tree| {
            if all(tree)?.iter().any(|other| other.name == record.name && other.revoked_ms.is_none()) {
                return Err(KeyError::NameTaken { name: record.name.clone() });
            }
            tree.insert(record.id.as_bytes(), serde_json::to_vec(&record).expect("a record always serializes"))?;
            Ok(())
        })?;
        self.mark_changed();
        Ok((record, key))
    }

    /// Every key, oldest first, revoked ones included.
    pub fn list(&self) -> Result<Vec<KeyRecord>, KeyError> {
        let mut keys = self.with_tree(all)?;
        keys.sort_by_key(|key| key.created_ms);
        Ok(keys)
    }

    /// Revokes a key by id or by name; returns it.
    pub fn revoke(&self, id_or_name: &str) -> Result<KeyRecord, KeyError> {
        let record = self.with_tree(|tree| {
            let mut record = all(tree)?
                .into_iter()
                .find(|key| key.revoked_ms.is_none() && (key.id == id_or_name || key.name == id_or_name))
                .ok_or_else(|| KeyError::NoSuchKey { key: id_or_name.to_owned() })?;
            record.revoked_ms = Some(now_ms());
            tree.insert(record.id.as_bytes(), serde_json::to_vec(&record).expect("a record always serializes"))?;
            Ok(record)
        })?;
        self.mark_changed();
        Ok(record)
    }

    /// Records when keys were last used (the server batches these).
    pub fn record_use(&self, uses: &[(String, u64)]) -> Result<(), KeyError> {
        self.with_tree(|tree| {
            for (id, at) in uses {
                if let Some(bytes) = tree.get(id.as_bytes())? {
                    let mut record: KeyRecord = serde_json::from_slice(&bytes).map_err(KeyError::Corrupt)?;
                    record.last_used_ms = Some(record.last_used_ms.unwrap_or(0).max(*at));
                    tree.insert(id.as_bytes(), serde_json::to_vec(&record).expect("a record always serializes"))?;
                }
            }
            Ok(())
        })
    }

    /// When the keys last changed, as the marker file's modification time.
    pub fn changed_at(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(self.dir.join(CHANGED_MARKER)).and_then(|meta| meta.modified()).ok()
    }

    fn mark_changed(&self) {
        if let Err(error) = std::fs::write(self.dir.join(CHANGED_MARKER), now_ms().to_string()) {
            tracing::warn!(%error, "cannot touch the key change marker; a running server sees the change on restart");
        }
    }
}

fn all(tree: &sled::Tree) -> Result<Vec<KeyRecord>, KeyError> {
    tree.iter().values().map(|value| serde_json::from_slice(&value?).map_err(KeyError::Corrupt)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_256_bit_url_safe_and_stored_as_hashes_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let (record, key) = store.create("alice", Role::Admin).unwrap();
        assert!(key.starts_with("wa_"));
        assert_eq!(key.len(), 3 + 43);
        assert!(key[3..].chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(record.hash, hash_key(&key));
        assert_eq!(record.id, &record.hash[..12]);
        let raw = std::fs::read_dir(dir.path().join(DATABASE))
            .unwrap()
            .filter_map(|entry| std::fs::read(entry.unwrap().path()).ok())
            .any(|bytes| bytes.windows(key.len()).any(|w| w == key.as_bytes()));
        assert!(!raw, "the key itself must never be written");
    }

    #[test]
    fn names_are_unique_among_live_keys_and_revoke_finds_by_name_or_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::new(dir.path());
        let (first, _) = store.create("ci", Role::User).unwrap();
        assert!(matches!(store.create("ci", Role::User), Err(KeyError::NameTaken { .. })));
        store.revoke("ci").unwrap();
        let (second, _) = store.create("ci", Role::User).unwrap();
        assert_eq!(store.revoke(&second.id).unwrap().id, second.id);
        let list = store.list().unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|key| key.revoked_ms.is_some()));
        assert_eq!(list[0].id, first.id);
        assert!(matches!(store.revoke("nobody"), Err(KeyError::NoSuchKey { .. })));
    }
}
