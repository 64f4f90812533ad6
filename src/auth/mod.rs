//! Who is calling, and whether they may: API keys, browser sessions, a trusted proxy's
//! user name, roles, and per-caller rate limits.
//!
//! Input: the credentials a request carries. Output: an [`Identity`] or an [`AuthError`].
//! Nothing here knows HTTP; [`crate::http::gate`] extracts credentials and turns the
//! outcome into responses. Keys live in a tree of the server's database and are held in
//! memory as hashes; every change goes through [`Authenticator::create_key`] and
//! [`Authenticator::revoke_key`] (the admin routes and the control socket the `keys` command
//! uses), so it works at once. Their last use is written back in batches. Browser
//! sessions are recorded in another tree of that database (which only the server opens): a
//! session is live while its record is there, its cookie verifies and its key is live, so
//! logging out (the record goes) and revoking the key end it at once.

mod keys;
mod limits;
mod session;

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use subtle::ConstantTimeEq as _;

pub use self::keys::{KeyRecord, KeyStore, KeyView, Role, TREE as KEYS_TREE, adopt_legacy_database, hash_key};
pub use self::limits::{RateInfo, RateLimits, UploadPermit};
pub(crate) use self::session::ENV_SECRET;
pub use self::session::{COOKIE as SESSION_COOKIE, Secret};
use crate::errors::{AuthError, KeyError};
use crate::jobs::{Scope, now_ms};

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Authentication is off: the local administrator.
    Local,
    /// An API key, presented directly or through a session cookie.
    Key { id: String, name: String, role: Role },
    /// A user name from the trusted proxy in front (nginx basic auth).
    Proxy { user: String, role: Role },
}

impl Identity {
    pub fn role(&self) -> Role {
        match self {
            Identity::Local => Role::Admin,
            Identity::Key { role, .. } | Identity::Proxy { role, .. } => *role,
        }
    }

    /// The owner recorded on jobs this identity creates.
    pub fn owner(&self) -> String {
        match self {
            Identity::Local => "local".to_owned(),
            Identity::Key { id, .. } => format!("key:{id}"),
            Identity::Proxy { user, .. } => format!("user:{user}"),
        }
    }

    /// Whose jobs it may see and change.
    pub fn scope(&self) -> Scope {
        match self.role() {
            Role::Admin => Scope::All,
            Role::User => Scope::Owner(self.owner()),
        }
    }

    /// What the audit log and the rate limiter know it by: never a secret.
    pub fn label(&self) -> String {
        self.owner()
    }
}

/// The credentials a request carried.
#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    /// From `Authorization: Bearer` or `X-API-Key`.
    pub key: Option<&'a str>,
    /// The session cookie's value.
    pub session: Option<&'a str>,
    /// `X-Forwarded-User`, only when the peer is a trusted proxy.
    pub proxy_user: Option<&'a str>,
}

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Off only on loopback or by explicit choice: every caller is then the local admin.
    pub required: bool,
    /// Accept the user name a loopback proxy passes in `X-Forwarded-User`.
    pub trusted_proxy: bool,
    /// Proxy users who are administrators.
    pub proxy_admins: Vec<String>,
    /// How long a browser session lasts.
    pub session_seconds: u64,
}

pub struct Authenticator {
    store: KeyStore,
    settings: AuthSettings,
    secret: Secret,
    /// Live sessions: session id -> the key id that logged in.
    sessions: sled::Tree,
    keys: RwLock<Vec<KeyRecord>>,
    uses: Mutex<HashMap<String, u64>>,
}

impl Authenticator {
    pub fn new(
        store: KeyStore,
        settings: AuthSettings,
        secret: Secret,
        sessions: sled::Tree,
    ) -> Result<Authenticator, KeyError> {
        let authenticator = Authenticator {
            store,
            settings,
            secret,
            sessions,
            keys: RwLock::new(Vec::new()),
            uses: Mutex::new(HashMap::new()),
        };
        authenticator.reload()?;
        Ok(authenticator)
    }

    /// Reads the keys from the database after a change, and ends the sessions of keys no
    /// longer live.
    fn reload(&self) -> Result<(), KeyError> {
        let keys = self.store.list()?;
        *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = keys;
        self.forget_sessions(|key_id, _| self.live_key(key_id).is_none());
        Ok(())
    }

    /// Forgets expired sessions (run now and then; an expired one is refused anyway).
    pub fn forget_expired_sessions(&self) {
        let now = now_ms() / 1000;
        self.forget_sessions(|_, expires| expires <= now);
    }

    /// Removes the session records `stale(key id, expires)` picks.
    fn forget_sessions(&self, stale: impl Fn(&str, u64) -> bool) {
        for entry in self.sessions.iter() {
            let Ok((id, value)) = entry else { continue };
            let record = String::from_utf8_lossy(&value);
            let (key_id, expires) = record.split_once('.').unwrap_or((&record, "0"));
            if stale(key_id, expires.parse().unwrap_or(0))
                && let Err(error) = self.sessions.remove(id)
            {
                tracing::warn!(%error, "cannot forget a session");
            }
        }
    }

    /// Writes keys' last-use times gathered since the previous call, and shows them in
    /// [`Authenticator::keys`].
    pub fn flush_uses(&self) -> Result<(), KeyError> {
        let uses: Vec<(String, u64)> =
            self.uses.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).drain().collect();
        if uses.is_empty() {
            return Ok(());
        }
        self.store.record_use(&uses)?;
        let mut keys = self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (id, at) in uses {
            if let Some(key) = keys.iter_mut().find(|key| key.id == id) {
                key.last_used_ms = Some(key.last_used_ms.unwrap_or(0).max(at));
            }
        }
        Ok(())
    }

    /// Every key, oldest first, revoked ones included (records hold hashes, never keys).
    pub fn keys(&self) -> Vec<KeyRecord> {
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Makes a key, usable at once; returns its record and the key, shown only now.
    pub fn create_key(&self, name: &str, role: Role) -> Result<(KeyRecord, String), KeyError> {
        let made = self.store.create(name, role)?;
        self.reload()?;
        Ok(made)
    }

    /// Revokes a key by id or name; requests with it and its sessions are refused at once.
    pub fn revoke_key(&self, id_or_name: &str) -> Result<KeyRecord, KeyError> {
        let revoked = self.store.revoke(id_or_name)?;
        self.reload()?;
        Ok(revoked)
    }

    /// Whether any key could log in.
    pub fn has_live_keys(&self) -> bool {
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().any(|key| key.revoked_ms.is_none())
    }

    /// The live key a presented key belongs to. Every stored hash is compared, in constant
    /// time and without stopping at a match, so timing says nothing about the keys.
    fn verify_key(&self, presented: &str) -> Result<KeyRecord, AuthError> {
        let hash = hash_key(presented);
        let keys = self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut found = None;
        for key in keys.iter() {
            if bool::from(key.hash.as_bytes().ct_eq(hash.as_bytes())) {
                found = Some(key);
            }
        }
        match found {
            Some(key) if key.revoked_ms.is_some() => Err(AuthError::RevokedKey { id: key.id.clone() }),
            Some(key) => Ok(key.clone()),
            None => Err(AuthError::InvalidKey),
        }
    }

    fn live_key(&self, id: &str) -> Option<KeyRecord> {
        let keys = self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        keys.iter().find(|key| key.id == id && key.revoked_ms.is_none()).cloned()
    }

    fn identity_of(&self, key: KeyRecord) -> Identity {
        self.uses.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(key.id.clone(), now_ms());
        Identity::Key { id: key.id, name: key.name, role: key.role }
    }

    /// Decides who a request is from. With authentication off, a valid key still names its
    /// owner, and anything else (OpenAI's SDK insists on sending some key) is the local admin.
    pub fn authenticate(&self, credentials: Credentials<'_>) -> Result<Identity, AuthError> {
        if let Some(key) = credentials.key {
            return match self.verify_key(key.trim()) {
                Ok(key) => Ok(self.identity_of(key)),
                Err(_) if !self.settings.required => Ok(Identity::Local),
                Err(error) => Err(error),
            };
        }
        if let Some(user) = credentials.proxy_user.map(str::trim).filter(|user| !user.is_empty())
            && self.settings.trusted_proxy
        {
            let role =
                if self.settings.proxy_admins.iter().any(|admin| admin == user) { Role::Admin } else { Role::User };
            return Ok(Identity::Proxy { user: user.to_owned(), role });
        }
        if let Some(cookie) = credentials.session {
            let now = now_ms() / 1000;
            let live = self
                .secret
                .verify_session(cookie, now)
                .filter(|session| self.sessions.contains_key(session.session_id.as_bytes()).unwrap_or(false));
            return match live.and_then(|session| self.live_key(&session.key_id)) {
                Some(key) => Ok(self.identity_of(key)),
                None if !self.settings.required => Ok(Identity::Local),
                None => Err(AuthError::SessionExpired),
            };
        }
        if self.settings.required { Err(AuthError::Missing) } else { Ok(Identity::Local) }
    }

    /// Trades a key for a new session: its cookie value and lifetime in seconds.
    pub fn login(&self, key: &str) -> Result<(Identity, String, u64), AuthError> {
        let key = self.verify_key(key.trim())?;
        let lifetime = self.settings.session_seconds;
        let expires = now_ms() / 1000 + lifetime;
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|_| AuthError::SessionStore)?;
        let session_id: String = id.iter().map(|byte| format!("{byte:02x}")).collect();
        let record = format!("{}.{expires}", key.id);
        self.sessions
            .insert(session_id.as_bytes(), record.as_bytes())
            .and_then(|_| self.sessions.flush().map(drop))
            .map_err(|error| {
                tracing::error!(%error, "cannot record a session");
                AuthError::SessionStore
            })?;
        let cookie = self.secret.sign_session(&session_id, &key.id, expires);
        Ok((self.identity_of(key), cookie, lifetime))
    }

    /// Ends the session a cookie names, if it names one.
    pub fn logout(&self, cookie: &str) {
        let Some(session) = self.secret.verify_session(cookie, now_ms() / 1000) else { return };
        if let Err(error) = self.sessions.remove(session.session_id.as_bytes()).and_then(|_| self.sessions.flush()) {
            tracing::error!(%error, "cannot end a session");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator(required: bool) -> Authenticator {
        let settings = AuthSettings {
            required,
            trusted_proxy: true,
            proxy_admins: vec!["root-of-trust".into()],
            session_seconds: 60,
        };
        let db = sled::Config::new().temporary(true).open().unwrap();
        let (keys, sessions) = (db.open_tree(KEYS_TREE).unwrap(), db.open_tree("sessions").unwrap());
        Authenticator::new(KeyStore::new(keys), settings, Secret::for_tests(&[1; 32]), sessions).unwrap()
    }

    #[test]
    fn keys_sessions_and_proxy_users_are_told_apart() {
        let auth = authenticator(true);
        let (record, key) = auth.create_key("ops", Role::Admin).unwrap();
        let credentials = Credentials { key: Some(&key), ..Credentials::default() };
        assert_eq!(auth.authenticate(credentials).unwrap().role(), Role::Admin);

        let (_, cookie, _) = auth.login(&key).unwrap();
        let by_cookie = auth.authenticate(Credentials { session: Some(&cookie), ..Credentials::default() }).unwrap();
        assert_eq!(by_cookie.owner(), format!("key:{}", record.id));
        let (_, ended, _) = auth.login(&key).unwrap();
        auth.logout(&ended);
        let logged_out = Credentials { session: Some(&ended), ..Credentials::default() };
        assert!(matches!(auth.authenticate(logged_out), Err(AuthError::SessionExpired)));

        let wrong = Credentials { key: Some("wa_nope"), ..Credentials::default() };
        assert!(matches!(auth.authenticate(wrong), Err(AuthError::InvalidKey)));
        assert!(matches!(auth.authenticate(Credentials::default()), Err(AuthError::Missing)));

        let proxied = Credentials { proxy_user: Some("bob"), ..Credentials::default() };
        assert_eq!(auth.authenticate(proxied).unwrap().scope(), Scope::Owner("user:bob".into()));
        let admin = Credentials { proxy_user: Some("root-of-trust"), ..Credentials::default() };
        assert_eq!(auth.authenticate(admin).unwrap().scope(), Scope::All);

        auth.revoke_key("ops").unwrap();
        assert!(matches!(auth.authenticate(credentials), Err(AuthError::RevokedKey { .. })));
        let session = Credentials { session: Some(&cookie), ..Credentials::default() };
        assert!(matches!(auth.authenticate(session), Err(AuthError::SessionExpired)));
    }

    #[test]
    fn without_required_auth_unknown_keys_are_the_local_admin_and_real_ones_keep_their_owner() {
        let auth = authenticator(false);
        assert_eq!(auth.authenticate(Credentials::default()).unwrap(), Identity::Local);
        let dummy = Credentials { key: Some("sk-anything"), ..Credentials::default() };
        assert_eq!(auth.authenticate(dummy).unwrap(), Identity::Local);
        let stale = Credentials { session: Some("0123456789ab.1.AAAA"), ..Credentials::default() };
        assert_eq!(auth.authenticate(stale).unwrap(), Identity::Local);
        let (record, key) = auth.create_key("ci", Role::User).unwrap();
        let real = Credentials { key: Some(&key), ..Credentials::default() };
        assert_eq!(auth.authenticate(real).unwrap().owner(), format!("key:{}", record.id));
    }
}
