//! Browser sessions and the secret that signs them.
//!
//! The page trades an API key for a cookie once; the cookie says which key logged in and
//! until when, signed with HMAC-SHA256 under a server secret, so nothing about sessions is
//! stored and revoking the key ends its sessions. The secret comes from systemd's
//! credentials, a file named in the config, or the environment; failing those it is
//! generated once into the state directory (mode 0600). It is never logged or printed.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

use crate::errors::SecretError;

pub const COOKIE: &str = "wa_session";
/// The shortest secret accepted: 256 bits.
const MIN_SECRET_BYTES: usize = 32;
/// Read here rather than by clap; `cli` lists it among the known variables.
pub(crate) const ENV_SECRET: &str = "WHISPER_APPLIANCE_SESSION_SECRET";
const CREDENTIAL_NAME: &str = "session-secret";

/// Key material whose `Debug` shows nothing.
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where the secret came from, for the start-up log (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Credential(PathBuf),
    File(PathBuf),
    Environment,
    Generated(PathBuf),
    Existing(PathBuf),
}

impl Secret {
    /// Finds the secret: `$CREDENTIALS_DIRECTORY/session-secret`, the configured file,
    /// `WHISPER_APPLIANCE_SESSION_SECRET`, else `<state>/session-secret`, made if missing.
    pub fn load(configured_file: Option<&Path>, state_dir: &Path) -> Result<(Secret, SecretSource), SecretError> {
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let path = PathBuf::from(dir).join(CREDENTIAL_NAME);
            if path.exists() {
                return Ok((read(&path)?, SecretSource::Credential(path)));
            }
        }
        if let Some(path) = configured_file {
            return Ok((read(path)?, SecretSource::File(path.to_owned())));
        }
        if let Ok(value) = std::env::var(ENV_SECRET) {
            return Ok((checked(value.trim().as_bytes().to_vec(), Path::new(ENV_SECRET))?, SecretSource::Environment));
        }
        let path = state_dir.join(CREDENTIAL_NAME);
        if path.exists() {
            return Ok((read(&path)?, SecretSource::Existing(path)));
        }
        let mut bytes = [0u8; 48];
        getrandom::fill(&mut bytes).map_err(|error| SecretError::Random(error.to_string()))?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut file| file.write_all(encoded.as_bytes()).and_then(|()| file.sync_all()))
            .map_err(|source| SecretError::Write { path: path.clone(), source })?;
        Ok((Secret(encoded.into_bytes()), SecretSource::Generated(path)))
    }

    #[cfg(test)]
    pub fn for_tests(bytes: &[u8]) -> Secret {
        Secret(bytes.to_vec())
    }

    fn mac(&self, message: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(message.as_bytes());
        mac
    }

    /// A cookie value naming a key until `expires` (Unix seconds).
    pub fn sign_session(&self, key_id: &str, expires: u64) -> String {
        let message = format!("{key_id}.{expires}");
        let tag = self.mac(&message).finalize().into_bytes();
        format!("{message}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag))
    }

    /// The key id a cookie names, if its signature holds and it has not expired.
    pub fn verify_session(&self, cookie: &str, now: u64) -> Option<String> {
        let (message, tag) = cookie.rsplit_once('.')?;
        let (key_id, expires) = message.split_once('.')?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag).ok()?;
        // SECURITY: verify_slice compares in constant time.
        self.mac(message).verify_slice(&tag).ok()?;
        let expires: u64 = expires.parse().ok()?;
        (now < expires).then(|| key_id.to_owned())
    }
}

fn read(path: &Path) -> Result<Secret, SecretError> {
    let bytes = std::fs::read(path).map_err(|source| SecretError::Read { path: path.to_owned(), source })?;
    checked(String::from_utf8_lossy(&bytes).trim().as_bytes().to_vec(), path)
}

fn checked(bytes: Vec<u8>, origin: &Path) -> Result<Secret, SecretError> {
    if bytes.len() < MIN_SECRET_BYTES {
        return Err(SecretError::TooShort { origin: origin.to_owned(), min: MIN_SECRET_BYTES });
    }
    Ok(Secret(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_verify_until_they_expire_and_not_after_tampering() {
        let secret = Secret::for_tests(&[7; 32]);
        let cookie = secret.sign_session("0123456789ab", 1_000);
        assert_eq!(secret.verify_session(&cookie, 999).as_deref(), Some("0123456789ab"));
        assert_eq!(secret.verify_session(&cookie, 1_000), None);
        let forged = cookie.replacen("0123456789ab", "ba9876543210", 1);
        assert_eq!(secret.verify_session(&forged, 10), None);
        let extended = cookie.replacen(".1000.", ".9999.", 1);
        assert_eq!(secret.verify_session(&extended, 10), None);
        assert_eq!(Secret::for_tests(&[8; 32]).verify_session(&cookie, 10), None);
        assert_eq!(secret.verify_session("garbage", 10), None);
    }

    #[test]
    fn a_generated_secret_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = Secret::load(None, dir.path()).unwrap();
        let path = dir.path().join("session-secret");
        assert_eq!(source, SecretSource::Generated(path.clone()));
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let (second, source) = Secret::load(None, dir.path()).unwrap();
        assert_eq!(source, SecretSource::Existing(path));
        assert_eq!(first.0, second.0);
        assert_eq!(format!("{first:?}"), "Secret(***)");
    }

    #[test]
    fn short_secrets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("short");
        std::fs::write(&file, "tooshort").unwrap();
        assert!(matches!(Secret::load(Some(&file), dir.path()), Err(SecretError::TooShort { .. })));
    }
}
