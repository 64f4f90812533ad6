//! The control socket: how the `keys` command reaches a running server, which holds the one
//! database the keys live in (sled allows one process).
//!
//! The server listens on `control.sock` in its state directory (mode 0600, in a 0700
//! directory) and serves only its own user and root, checked per connection from the peer's
//! credentials (SO_PEERCRED). A connection carries one JSON request line and gets one JSON
//! answer line:
//!
//! ```text
//! {"op":"list"}                               -> {"keys":[{"id":...,"name":...,"role":...,...}]}
//! {"op":"create","name":"ci","role":"user"}   -> {"created":{"record":{...},"key":"wa_..."}}
//! {"op":"revoke","key":"ci"}                  -> {"revoked":{...}}   (an id or a name)
//! anything refused or failed                  -> {"error":"what happened and what to do"}
//! ```
//!
//! Exactly what the `keys` command offers, done through the same [`Authenticator`]
//! operations as the admin page and `/api/keys`, so a change works at once. Key records
//! travel without their hashes ([`KeyView`]). The server side ([`ControlSocket`]) never
//! touches anything but keys; the client side ([`call`]) is plain blocking I/O for the
//! command.

use std::io::{BufRead as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};

use crate::auth::{Authenticator, KeyView, Role};
use crate::errors::{Causes, ControlError, KeyError, ServeError, report};

/// A request is a name and a role: a few dozen bytes.
const MAX_REQUEST_BYTES: u64 = 4096;
/// How long a client has to send its request; a silent one is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the command waits for the server's answer (a database write and flush).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// What the `keys` command asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    List,
    Create {
        name: String,
        role: Role,
    },
    /// `key` is a key's id or name, as `keys revoke` takes it.
    Revoke {
        key: String,
    },
}

impl Request {
    /// The operation's name, for the log: a revoke's `key` is not logged, in case someone
    /// passed the secret itself instead of its id.
    pub fn op(&self) -> &'static str {
        match self {
            Request::List => "list",
            Request::Create { .. } => "create",
            Request::Revoke { .. } => "revoke",
        }
    }
}

/// What the server answers; the command prints the same whether it asked the server or
/// opened the database itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// Every key, oldest first.
    Keys(Vec<KeyView>),
    /// The new key's record and the key itself, shown only now.
    Created {
        record: KeyView,
        key: String,
    },
    Revoked(KeyView),
    /// Why the request was refused or failed, with its causes.
    Error(String),
}

/// Who may use the socket: the server's own user, and root (who could become it anyway).
///
/// SECURITY: the socket's mode and directory already keep other users out; this check holds
/// even if an administrator loosens them, since keys made here are admin credentials.
fn peer_allowed(peer_uid: u32, server_uid: u32) -> bool {
    peer_uid == server_uid || peer_uid == 0
}

/// Carries out a request with the server's keys, as the admin routes do.
fn carry_out(auth: &Authenticator, request: Request) -> Result<Answer, KeyError> {
    Ok(match request {
        Request::List => {
            // Last-use times are otherwise written once a minute; the list shows them to now.
            auth.flush_uses()?;
            Answer::Keys(auth.keys().iter().map(KeyView::from).collect())
        }
        Request::Create { name, role } => {
            let (record, key) = auth.create_key(&name, role)?;
            tracing::info!(target: "audit", event = "key created", via = "control socket", id = %record.id,
                name = %record.name, role = record.role.name(), "API key created");
            Answer::Created { record: KeyView::from(&record), key }
        }
        Request::Revoke { key } => {
            let record = auth.revoke_key(&key)?;
            tracing::info!(target: "audit", event = "key revoked", via = "control socket", id = %record.id,
                name = %record.name, "API key revoked");
            Answer::Revoked(KeyView::from(&record))
        }
    })
}

/// The listening control socket; its file is removed when this is dropped (on shutdown, or
/// when start-up fails after it was made).
pub struct ControlSocket {
    path: PathBuf,
    listener: Option<UnixListener>,
}

impl ControlSocket {
    /// Listens at `path`, replacing the socket a killed server left there.
    ///
    /// Only a server holding the state directory's database may call this: that lock is
    /// what proves no other server is listening on the socket being replaced.
    pub fn bind(path: &Path) -> Result<ControlSocket, ServeError> {
        let failed = |source| ServeError::ControlSocket { path: path.to_owned(), source };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path).map_err(failed)?,
            // Never delete what is not ours to replace.
            Ok(_) => return Err(failed(std::io::Error::from(std::io::ErrorKind::AlreadyExists))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(failed(error)),
        }
        // SECURITY: the server's umask (077) makes the socket 0700 from the moment it exists,
        // so no other user can connect before it is narrowed to 0600 here.
        let listener = UnixListener::bind(path).map_err(failed)?;
        let socket = ControlSocket { path: path.to_owned(), listener: Some(listener) };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
        Ok(socket)
    }

    /// Answers connections until the runtime stops; the file stays with `self`.
    pub fn serve(&mut self, auth: Arc<Authenticator>) {
        let Some(listener) = self.listener.take() else { return };
        let server_uid = nix::unistd::geteuid().as_raw();
        tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        tracing::warn!(%error, "control socket: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let auth = Arc::clone(&auth);
                tokio::spawn(async move {
                    if let Err(error) = handle(stream, auth, server_uid).await {
                        tracing::warn!(%error, "control socket: a connection failed");
                    }
                });
            }
        });
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, path = %self.path.display(), "cannot remove the control socket");
        }
    }
}

async fn handle(stream: UnixStream, auth: Arc<Authenticator>, server_uid: u32) -> std::io::Result<()> {
    let peer = stream.peer_cred()?;
    let (reader, mut writer) = stream.into_split();
    // The request line is read from every peer, refused ones too: answering one before its
    // request arrived and closing would break its pipe instead of telling it why.
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(reader.take(MAX_REQUEST_BYTES));
    let received = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line)).await;
    let answer = if !peer_allowed(peer.uid(), server_uid) {
        tracing::warn!(target: "audit", event = "control refused", uid = peer.uid(), pid = peer.pid(), server_uid,
            "control socket: refused a connection from another user");
        Answer::Error(format!("only uid {server_uid}, which the server runs as, or root may use this socket"))
    } else {
        match received {
            Err(_) => Answer::Error(format!("no request line within {} seconds", REQUEST_TIMEOUT.as_secs())),
            Ok(read) => {
                read?;
                match serde_json::from_str::<Request>(&line) {
                    Ok(request) => {
                        tracing::info!(target: "audit", event = "control request", uid = peer.uid(), pid = peer.pid(),
                            op = request.op(), "control socket request");
                        tokio::task::spawn_blocking(move || carry_out(&auth, request))
                            .await
                            .map_err(std::io::Error::other)?
                            .unwrap_or_else(|error| {
                                tracing::warn!(%error, cause = %Causes(&error), "control socket: request refused");
                                Answer::Error(report(&error))
                            })
                    }
                    Err(error) => Answer::Error(format!(
                        "not a request this server understands ({error}); send one line such as {{\"op\":\"list\"}}"
                    )),
                }
            }
        }
    };
    let mut line = serde_json::to_vec(&answer).expect("an answer holds only strings and numbers");
    line.push(b'\n');
    writer.write_all(&line).await?;
    writer.shutdown().await
}

/// Whether a server answered on the control socket.
#[derive(Debug)]
pub enum Reached {
    Answer(Answer),
    /// No socket file, or a stale one nothing listens on: why connecting failed.
    NoServer(std::io::Error),
}

/// Sends one request to the server listening at `path` and reads its answer.
pub fn call(path: &Path, request: &Request) -> Result<Reached, ControlError> {
    let mut stream = match std::os::unix::net::UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(error) if matches!(error.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused) => {
            return Ok(Reached::NoServer(error));
        }
        Err(source) => return Err(ControlError::Connect { path: path.to_owned(), source }),
    };
    let exchange = |source| ControlError::Exchange { path: path.to_owned(), source };
    stream.set_read_timeout(Some(ANSWER_TIMEOUT)).map_err(exchange)?;
    let mut line = serde_json::to_vec(request).expect("a request holds only strings");
    line.push(b'\n');
    stream.write_all(&line).map_err(exchange)?;
    let mut answer = String::new();
    std::io::BufReader::new(stream).read_line(&mut answer).map_err(exchange)?;
    serde_json::from_str(&answer)
        .map(Reached::Answer)
        .map_err(|source| ControlError::BadAnswer { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_servers_own_user_and_root_are_served() {
        assert!(peer_allowed(998, 998));
        assert!(peer_allowed(0, 998));
        assert!(peer_allowed(0, 0));
        assert!(!peer_allowed(1000, 998));
        assert!(!peer_allowed(998, 0), "root's server serves root alone");
    }

    #[test]
    fn requests_and_answers_are_the_documented_json_lines() {
        let create: Request = serde_json::from_str(r#"{"op":"create","name":"ci","role":"admin"}"#).unwrap();
        assert_eq!(create, Request::Create { name: "ci".into(), role: Role::Admin });
        assert_eq!(serde_json::to_string(&Request::List).unwrap(), r#"{"op":"list"}"#);
        let revoke = serde_json::to_string(&Request::Revoke { key: "ci".into() }).unwrap();
        assert_eq!(revoke, r#"{"op":"revoke","key":"ci"}"#);
        assert_eq!(serde_json::to_string(&Answer::Error("no".into())).unwrap(), r#"{"error":"no"}"#);
        assert!(serde_json::from_str::<Request>(r#"{"op":"drop_tables"}"#).is_err());
    }
}
