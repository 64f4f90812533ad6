//! Where `serve`'s listening socket comes from: the configured address, bound here, or the
//! socket systemd passes when `listen = "systemd"` (socket activation, `whisper-appliance.socket`).
//!
//! systemd's side of the protocol (sd_listen_fds(3)): the socket is fd 3, `LISTEN_FDS` says
//! how many were passed and `LISTEN_PID` names the process they are meant for. [`Socket::new`]
//! reads and removes those variables, so it must run while the process has a single thread
//! (before the async runtime starts). A missing or foreign socket is refused, never replaced
//! by binding the default address: inside the unit's private network namespace
//! (`PrivateNetwork=yes`) such a socket would be unreachable, and the server would look up
//! while nginx gets nothing but errors.

use std::net::SocketAddr;

use crate::config::Listen;
use crate::errors::ServeError;

/// The listening socket, before the runtime exists: an address to bind, or systemd's socket.
#[derive(Debug)]
pub enum Socket {
    Bind(SocketAddr),
    Inherited(std::net::TcpListener),
}

impl Socket {
    /// Takes systemd's socket now when `listen` asks for it; an address is bound later.
    pub fn new(listen: Listen) -> Result<Socket, ServeError> {
        match listen {
            Listen::Address(address) => Ok(Socket::Bind(address)),
            Listen::Systemd => take_systemd_socket().map(Socket::Inherited),
        }
    }

    /// The address clients connect to, for the checks made before anything starts.
    pub fn address(&self) -> Result<SocketAddr, ServeError> {
        match self {
            Socket::Bind(address) => Ok(*address),
            Socket::Inherited(listener) => listener.local_addr().map_err(ServeError::BadSystemdSocket),
        }
    }

    /// Binds, or hands the inherited socket to tokio; returns it with its actual address
    /// (the port, when the configured one was 0). Needs the runtime.
    pub async fn listen(self) -> Result<(tokio::net::TcpListener, SocketAddr), ServeError> {
        match self {
            Socket::Bind(address) => {
                let bind_error = |source| ServeError::Bind { address, source };
                let listener = tokio::net::TcpListener::bind(address).await.map_err(bind_error)?;
                let actual = listener.local_addr().map_err(bind_error)?;
                Ok((listener, actual))
            }
            Socket::Inherited(listener) => {
                let actual = listener.local_addr().map_err(ServeError::BadSystemdSocket)?;
                // systemd passes the socket in blocking mode; tokio needs it non-blocking.
                listener.set_nonblocking(true).map_err(ServeError::BadSystemdSocket)?;
                let listener = tokio::net::TcpListener::from_std(listener).map_err(ServeError::BadSystemdSocket)?;
                Ok((listener, actual))
            }
        }
    }
}

fn take_systemd_socket() -> Result<std::net::TcpListener, ServeError> {
    let Some(count) = std::env::var_os("LISTEN_FDS") else {
        return Err(ServeError::NoSystemdSocket);
    };
    let me = std::process::id();
    let for_pid = std::env::var("LISTEN_PID").unwrap_or_default();
    // listenfd accepts a missing LISTEN_PID (its own extension); systemd always sets it.
    if for_pid.parse::<u32>().ok() != Some(me) {
        return Err(ServeError::SystemdSocketNotOurs { for_pid, me });
    }
    if count != "1" {
        return Err(ServeError::SystemdSocketCount { count: count.to_string_lossy().into_owned() });
    }
    // Checks that fd 3 is a TCP socket, marks it close-on-exec and removes LISTEN_PID/LISTEN_FDS.
    match listenfd::ListenFd::from_env().take_tcp_listener(0) {
        Ok(Some(listener)) => Ok(listener),
        Ok(None) => Err(ServeError::NoSystemdSocket),
        Err(error) => Err(ServeError::BadSystemdSocket(error)),
    }
}
