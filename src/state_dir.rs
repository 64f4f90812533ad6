//! The state and temp directories hold recordings, transcripts and keys, so they are
//! private to the user the service runs as. Every command that writes there (`serve`,
//! `keys`) sets a private umask first, so what it creates is 0700/0600 even on a fresh
//! directory, and refuses a directory another user owns or may write in.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use crate::errors::ServeError;

/// Files and directories made from now on are the user's alone.
pub fn private_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// Creates `path` if missing (0700 under [`private_umask`]) and checks it.
///
/// SECURITY: another user must not be able to write (and so replace) anything in it.
pub fn check_private(path: &Path) -> Result<(), ServeError> {
    std::fs::create_dir_all(path).map_err(|source| ServeError::StateDir { path: path.to_owned(), source })?;
    let meta = std::fs::metadata(path).map_err(|source| ServeError::StateDir { path: path.to_owned(), source })?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(ServeError::NotOwned { path: path.to_owned(), owner: meta.uid(), me });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(ServeError::WritableByOthers { path: path.to_owned(), mode: meta.mode() & 0o777 });
    }
    Ok(())
}
