//! API keys at rest: the `keys` tree of the server's database (`jobs.sled` in the state
//! directory) holding, per key, its name, role, times and the SHA-256 of the key. The key
//! itself is shown once, when made.
//!
//! sled allows one process at a time: while the server runs it holds the database, and the
//! `keys` command reaches the keys through the server's control socket (`control.rs`); with
//! no server running, the command opens the database itself. Keys from before this layout
//! (a `keys.sled` database of their own, and a `keys.changed` marker the server polled) are
//! moved into the tree by [`adopt_legacy_database`] the first time either opens it.

use std::path::Path;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::errors::{KeyError, OpenTrouble};
use crate::jobs::now_ms;

/// Every key starts with this, so a leaked one is recognisable (and greppable).
pub const KEY_PREFIX: &str = "wa_";
/// The tree of the server's database that holds the keys.
pub const TREE: &str = "keys";
/// Where keys lived before they moved into the server's database: a database of its own.
const LEGACY_DATABASE: &str = "keys.sled";
/// The file the old `keys` command touched so the server would reload; nothing reads it now.
const LEGACY_CHANGED_MARKER: &str = "keys.changed";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema)]
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

/// A key as shown outside the server (`keys list`, `/api/keys`, the control socket): the
/// record without its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// Milliseconds since the Unix epoch, as the other `_ms` fields.
    pub created_ms: u64,
    pub last_used_ms: Option<u64>,
    pub revoked_ms: Option<u64>,
}

impl From<&KeyRecord> for KeyView {
    fn from(record: &KeyRecord) -> KeyView {
        KeyView {
            id: record.id.clone(),
            name: record.name.clone(),
            role: record.role,
            created_ms: record.created_ms,
            last_used_ms: record.last_used_ms,
            revoked_ms: record.revoked_ms,
        }
    }
}

/// The keys tree of the server's database.
#[derive(Debug, Clone)]
pub struct KeyStore {
    tree: sled::Tree,
}

impl KeyStore {
    pub fn new(tree: sled::Tree) -> KeyStore {
        KeyStore { tree }
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
        if all(&self.tree)?.iter().any(|other| other.name == record.name && other.revoked_ms.is_none()) {
            return Err(KeyError::NameTaken { name: record.name.clone() });
        }
        self.put(&record)?;
        self.tree.flush()?;
        Ok((record, key))
    }

    /// Every key, oldest first, revoked ones included.
    pub fn list(&self) -> Result<Vec<KeyRecord>, KeyError> {
        let mut keys = all(&self.tree)?;
        keys.sort_by_key(|key| key.created_ms);
        Ok(keys)
    }

    /// Revokes a key by id or by name; returns it.
    pub fn revoke(&self, id_or_name: &str) -> Result<KeyRecord, KeyError> {
        let mut record = all(&self.tree)?
            .into_iter()
            .find(|key| key.revoked_ms.is_none() && (key.id == id_or_name || key.name == id_or_name))
            .ok_or_else(|| KeyError::NoSuchKey { key: id_or_name.to_owned() })?;
        record.revoked_ms = Some(now_ms());
        self.put(&record)?;
        self.tree.flush()?;
        Ok(record)
    }

    /// Records when keys were last used (the server batches these).
    pub fn record_use(&self, uses: &[(String, u64)]) -> Result<(), KeyError> {
        for (id, at) in uses {
            if let Some(bytes) = self.tree.get(id.as_bytes())? {
                let mut record: KeyRecord = serde_json::from_slice(&bytes).map_err(KeyError::Corrupt)?;
                record.last_used_ms = Some(record.last_used_ms.unwrap_or(0).max(*at));
                self.put(&record)?;
            }
        }
        self.tree.flush()?;
        Ok(())
    }

    fn put(&self, record: &KeyRecord) -> Result<(), KeyError> {
        self.tree.insert(record.id.as_bytes(), serde_json::to_vec(record).expect("a record always serializes"))?;
        Ok(())
    }
}

/// Moves the keys of a `keys.sled` left by an earlier version into `store`, then removes it
/// and its change marker; returns how many keys it held, or `None` when there was none.
///
/// Records keep their ids, hashes and times, so every key goes on working. A record whose id
/// is already in the tree is left as the tree has it: a move interrupted after the copy is
/// simply finished on the next start.
pub fn adopt_legacy_database(state_dir: &Path, store: &KeyStore) -> Result<Option<usize>, KeyError> {
    let path = state_dir.join(LEGACY_DATABASE);
    if !path.exists() {
        return Ok(None);
    }
    let legacy = sled::Config::new().path(&path).open().map_err(|source| match OpenTrouble::of(&source) {
        OpenTrouble::Locked => KeyError::LegacyLocked { path: path.clone() },
        OpenTrouble::NotPermitted | OpenTrouble::Damaged | OpenTrouble::Other => {
            KeyError::LegacyOpen { path: path.clone(), source }
        }
    })?;
    let records = all(&legacy.open_tree(TREE)?)?;
    for record in &records {
        if store.tree.get(record.id.as_bytes())?.is_none() {
            store.put(record)?;
        }
    }
    store.tree.flush()?;
    drop(legacy);
    std::fs::remove_dir_all(&path).map_err(|source| KeyError::LegacyRemove { path: path.clone(), source })?;
    let marker = state_dir.join(LEGACY_CHANGED_MARKER);
    match std::fs::remove_file(&marker) {
        Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
            return Err(KeyError::LegacyRemove { path: marker, source });
        }
        _ => {}
    }
    Ok(Some(records.len()))
}

fn all(tree: &sled::Tree) -> Result<Vec<KeyRecord>, KeyError> {
    tree.iter().values().map(|value| serde_json::from_slice(&value?).map_err(KeyError::Corrupt)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path) -> (sled::Db, KeyStore) {
        let db = sled::Config::new().path(dir.join("jobs.sled")).open().unwrap();
        let store = KeyStore::new(db.open_tree(TREE).unwrap());
        (db, store)
    }

    #[test]
    fn keys_are_prefixed_256_bit_url_safe_and_stored_as_hashes_only() {
        let dir = tempfile::tempdir().unwrap();
        let (db, store) = store(dir.path());
        let (record, key) = store.create("alice", Role::Admin).unwrap();
        assert!(key.starts_with("wa_"));
        assert_eq!(key.len(), 3 + 43);
        assert!(key[3..].chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(record.hash, hash_key(&key));
        assert_eq!(record.id, &record.hash[..12]);
        drop((db, store));
        let raw = std::fs::read_dir(dir.path().join("jobs.sled"))
            .unwrap()
            .filter_map(|entry| std::fs::read(entry.unwrap().path()).ok())
            .any(|bytes| bytes.windows(key.len()).any(|w| w == key.as_bytes()));
        assert!(!raw, "the key itself must never be written");
    }

    #[test]
    fn names_are_unique_among_live_keys_and_revoke_finds_by_name_or_id() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, store) = store(dir.path());
        let (first, _) = store.create("ci", Role::User).unwrap();
        assert!(matches!(store.create("ci", Role::User), Err(KeyError::NameTaken { .. })));
        store.revoke("ci").unwrap();
        let (second, _) = store.create("ci", Role::User).unwrap();
        assert_eq!(store.revoke(&second.id).unwrap().id, second.id);
        let list = store.list().unwrap();
        assert_eq!(list.len(), 2);
        assert!(list.iter().all(|key| key.revoked_ms.is_some()));
        // Both were made within a millisecond or so: the list's order (by creation time) may tie.
        let mut ids: Vec<&str> = list.iter().map(|key| key.id.as_str()).collect();
        ids.sort_unstable();
        let mut made = vec![first.id.as_str(), second.id.as_str()];
        made.sort_unstable();
        assert_eq!(ids, made);
        assert!(matches!(store.revoke("nobody"), Err(KeyError::NoSuchKey { .. })));
    }

    #[test]
    fn a_legacy_key_database_is_moved_in_whole_and_removed_with_its_marker() {
        let dir = tempfile::tempdir().unwrap();
        let legacy = KeyStore::new(
            sled::Config::new().path(dir.path().join(LEGACY_DATABASE)).open().unwrap().open_tree(TREE).unwrap(),
        );
        let (old, _) = legacy.create("old", Role::Admin).unwrap();
        let (revoked, _) = legacy.create("gone", Role::User).unwrap();
        legacy.revoke("gone").unwrap();
        drop(legacy);
        std::fs::write(dir.path().join(LEGACY_CHANGED_MARKER), "1").unwrap();

        let (_db, store) = store(dir.path());
        let (new, _) = store.create("new", Role::User).unwrap();
        assert_eq!(adopt_legacy_database(dir.path(), &store).unwrap(), Some(2));
        let ids: Vec<String> = store.list().unwrap().into_iter().map(|key| key.id).collect();
        assert!(ids.contains(&old.id) && ids.contains(&revoked.id) && ids.contains(&new.id), "{ids:?}");
        assert!(store.list().unwrap().iter().any(|key| key.id == revoked.id && key.revoked_ms.is_some()));
        assert!(!dir.path().join(LEGACY_DATABASE).exists());
        assert!(!dir.path().join(LEGACY_CHANGED_MARKER).exists());
        assert_eq!(adopt_legacy_database(dir.path(), &store).unwrap(), None, "done once");
    }
}
