//! `serve`: start-up, the accept loop, and shutdown.
//!
//! Start-up order: configuration, temp directory, database (with the keys, moved in from an
//! earlier version's `keys.sled` if one is there), the control socket for the `keys`
//! command, models (the default one loaded), crash recovery,
//! workers, then the listening socket, so `/readyz` is true from the first request.
//! (A socket passed by systemd is taken over before the runtime starts threads, and only
//! accepted from once everything else is ready; see `listen.rs`.)
//! Every request passes [`crate::http::gate`], which authenticates it, gives it a request
//! id, the security headers and an audit log line. SIGTERM or SIGINT: stop accepting, let running jobs finish
//! within the grace period (or put them back in the queue), flush the database, remove the
//! control socket, exit 0. SIGHUP: rescan the models directory (see [`Models::rescan`]);
//! nothing else is re-read, the configuration stays as it was at start-up.
//! Under systemd, readiness, status, watchdog pings and stopping are reported through
//! `NOTIFY_SOCKET`.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use clap::ArgMatches;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use libsystemd::daemon::{self, NotifyState};

use crate::auth::{AuthSettings, Authenticator, KEYS_TREE, KeyStore, RateLimits, Secret, adopt_legacy_database};
use crate::cli::{self, ServeArgs};
use crate::config::Config;
use crate::control::ControlSocket;
use crate::engine::{EngineOptions, Models};
use crate::errors::{Causes, KeyError, ServeError};
use crate::http::connections::{BusyBody, Connections};
use crate::http::{self, AppState};
use crate::jobs::{Jobs, Store, spawn_workers};
use crate::listen::Socket;
use crate::live::{Live, LiveSettings};
use crate::metrics::Metrics;
use crate::spool::TempDir;
use crate::state_dir;
use crate::upload::Limits;

/// A client has this long to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How often expired jobs are deleted.
const RETENTION_SWEEP_EVERY: Duration = Duration::from_secs(600);
/// After jobs have stopped, open connections (progress streams) get this long to close.
const CONNECTION_DRAIN: Duration = Duration::from_secs(3);
/// How often callers whose rate allowance is whole again are forgotten.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(2);
/// Key last-use times are written every this many housekeeping ticks (a minute).
const KEY_USE_FLUSH_EVERY_TICKS: u64 = 30;

pub(super) fn run(args: &ServeArgs, matches: &ArgMatches) -> Result<(), ServeError> {
    cli::warn_unknown_env_vars();
    let config = Config::load(&args.settings, matches, args.config.as_deref())?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    // Before the runtime exists: taking systemd's socket reads and clears LISTEN_* variables,
    // which is sound only while this is the process's one thread.
    let socket = Socket::new(config.listen)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(ServeError::Runtime)?;
    runtime.block_on(serve(config, socket))
}

async fn serve(config: Config, socket: Socket) -> Result<(), ServeError> {
    tracing::info!(config = %config.to_toml().replace('\n', "; "), "starting");
    // From here on SIGHUP no longer ends the process (its default), so a package's
    // `systemctl reload` during start-up cannot stop the server.
    let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map_err(ServeError::Runtime)?;
    check_safe_to_start(&config, socket.address()?)?;
    let temp = TempDir::open(config.temp_dir(), config.node)
        .map_err(|source| ServeError::StateDir { path: config.temp_dir().to_owned(), source })?;
    state_dir::check_private(config.state_dir())?;
    state_dir::check_private(config.temp_dir())?;
    let (secret, source) = Secret::load(config.session_secret_file.as_deref(), config.state_dir())?;
    tracing::info!(?source, "session secret loaded");
    let settings = AuthSettings {
        required: config.auth,
        trusted_proxy: config.trusted_proxy,
        proxy_admins: config.proxy_admins.clone(),
        session_seconds: config.session_hours * 3600,
    };
    let store = Store::open(&config.database_dir())?;
    let sessions = store.tree("sessions")?;
    let keys = KeyStore::new(store.tree(KEYS_TREE)?);
    if let Some(moved) = adopt_legacy_database(config.state_dir(), &keys)? {
        tracing::info!(moved, "moved the API keys from keys.sled into the database, and removed keys.sled");
    }
    let auth = Arc::new(Authenticator::new(keys, settings, secret, sessions)?);
    // Removed when this is dropped, once the server has stopped (or failed to start).
    let mut control = ControlSocket::bind(&config.control_socket())?;
    control.serve(Arc::clone(&auth));
    tracing::info!(path = %config.control_socket().display(), "control socket for the keys command listening");
    if config.auth && !auth.has_live_keys() && !config.trusted_proxy {
        tracing::warn!(
            "authentication is on and no API key exists yet: create one with `whisper-appliance keys create --name <you> --role admin`"
        );
    }
    let metrics = Arc::new(Metrics::default());
    let models = Arc::new(Models::open(
        config.models_dir(),
        &config.model,
        EngineOptions { threads: config.threads(), use_gpu: true, vad: config.vad() },
        config.model_memory_bytes(),
        Arc::clone(&metrics),
    )?);
    let jobs = Arc::new(Jobs::new(
        store,
        Arc::clone(&models),
        temp,
        (config.queue_size, config.max_queued_per_key()),
        config.retention(),
        Arc::clone(&metrics),
    ));
    let recovered = jobs.recover()?;
    tracing::info!(?recovered, "recovered jobs from the last run");
    let workers = spawn_workers(&jobs, config.workers);
    tokio::spawn(sweep_expired(Arc::clone(&jobs)));
    tokio::spawn(rescan_on_hangup(Arc::clone(&models), hangup));

    let from_systemd = matches!(socket, Socket::Inherited(_));
    let (listener, address) = socket.listen().await?;
    let upload_limits = Limits {
        max_file_bytes: config.max_upload_bytes(),
        max_parts: 16,
        max_field_bytes: 16 * 1024,
        idle_timeout: Duration::from_secs(config.upload_idle_timeout_secs),
    };
    let limits = RateLimits::new(
        NonZeroU32::new(config.rate_limit_per_minute).expect("the config checked it is positive"),
        config.max_concurrent_uploads,
    );
    let grace = config.shutdown_grace();
    let live = Live::with_models(
        Arc::clone(&models),
        LiveSettings {
            sessions: config.live_sessions,
            max_session: Duration::from_secs(config.live_max_session_secs),
            idle_timeout: Duration::from_secs(config.live_idle_timeout_secs),
        },
    );
    let state = Arc::new(AppState {
        jobs: Arc::clone(&jobs),
        metrics,
        config,
        upload_limits,
        auth,
        limits,
        live,
        started: std::time::Instant::now(),
    });
    tokio::spawn(housekeeping(Arc::clone(&state)));
    let service = warp::service(http::routes(&state));

    // Tests and scripts read this line to learn the port when listening on port 0.
    println!("listening on http://{address}");
    tracing::info!(%address, from_systemd, "listening");
    notify(&[NotifyState::Ready, NotifyState::Status(status_line(&jobs))]);
    tokio::spawn(watchdog(Arc::clone(&jobs)));

    let connections = Connections::new(state.config.max_connections);
    // HTTP/1.1 only, with upgrades: the live transcription WebSocket (/v1/realtime) is one.
    // (hyper-util's graceful shutdown knows upgradeable connections only from this builder.)
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Some(registration) = connections.admit() else {
                    tracing::warn!(%peer, max_connections = state.config.max_connections,
                        "every connection is busy with a request; closing a new one");
                    continue;
                };
                let registration = Arc::new(registration);
                let state = Arc::clone(&state);
                let service = service.clone();
                let serving = Arc::clone(&registration);
                let connection = builder
                    .serve_connection_with_upgrades(
                        TokioIo::new(stream),
                        hyper::service::service_fn(move |request| {
                            let busy = serving.busy();
                            let handled = http::gate::handle(request, peer, service.clone(), Arc::clone(&state));
                            async move { handled.await.map(|response| response.map(|body| BusyBody::new(body, busy))) }
                        }),
                    )
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    tokio::select! {
                        ended = connection => if let Err(error) = ended {
                            tracing::debug!(%error, %peer, "connection ended with an error");
                        },
                        () = registration.closed() => tracing::debug!(%peer, "idle connection closed to make room"),
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }

    drop(listener);
    notify(&[NotifyState::Stopping, NotifyState::Status("stopping: finishing running jobs".to_owned())]);
    tracing::info!(grace_seconds = grace.as_secs(), "stopping: no new connections; finishing running jobs");
    let stopping = Arc::clone(&jobs);
    tokio::task::spawn_blocking(move || stopping.shut_down(grace))
        .await
        .map_err(|join| ServeError::Runtime(std::io::Error::other(join)))??;
    for worker in workers {
        let _ = tokio::task::spawn_blocking(move || worker.join()).await;
    }
    if tokio::time::timeout(CONNECTION_DRAIN, graceful.shutdown()).await.is_err() {
        tracing::info!("closing connections that are still open");
    }
    if let Err(error) = state.auth.flush_uses() {
        tracing::warn!(%error, cause = %Causes(&error), "cannot record when keys were last used");
    }
    drop(control);
    tracing::info!("stopped");
    Ok(())
}

/// Refuses combinations that would expose recordings: root, or a public address without
/// authentication. Sets a private umask for everything the server writes.
fn check_safe_to_start(config: &Config, address: SocketAddr) -> Result<(), ServeError> {
    state_dir::private_umask();
    if nix::unistd::geteuid().is_root() && !config.allow_root {
        return Err(ServeError::RunningAsRoot);
    }
    if !address.ip().is_loopback() && !config.auth && !config.insecure_public_bind {
        return Err(ServeError::PublicWithoutAuth { address });
    }
    Ok(())
}

/// Forgets idle callers and expired sessions, and records key use.
async fn housekeeping(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    let mut ticks: u64 = 0;
    loop {
        tick.tick().await;
        ticks += 1;
        let fresh = Arc::clone(&state);
        let flush = ticks.is_multiple_of(KEY_USE_FLUSH_EVERY_TICKS);
        let outcome = tokio::task::spawn_blocking(move || {
            fresh.limits.forget_idle();
            if flush {
                fresh.auth.forget_expired_sessions();
                fresh.auth.flush_uses()?;
            }
            Ok::<_, KeyError>(())
        })
        .await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, cause = %Causes(&error), "cannot record when keys were last used"),
            Err(error) => tracing::error!(%error, "housekeeping panicked"),
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut interrupt)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT; stop the server with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = interrupt.recv() => tracing::info!("SIGINT received"),
    }
}

/// Rescans the models directory on each SIGHUP (`systemctl reload`, run by the model
/// packages), so an installed or removed model is offered or dropped without a restart that
/// would interrupt running jobs.
async fn rescan_on_hangup(models: Arc<Models>, mut hangup: tokio::signal::unix::Signal) {
    while hangup.recv().await.is_some() {
        tracing::info!("SIGHUP received: rescanning the models directory");
        let rescanning = Arc::clone(&models);
        match tokio::task::spawn_blocking(move || rescanning.rescan()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(
                %error,
                cause = %Causes(&error),
                "cannot rescan the models directory; the models offered stay as they were"
            ),
            Err(error) => tracing::error!(%error, "the models rescan panicked"),
        }
    }
}

async fn sweep_expired(jobs: Arc<Jobs>) {
    let mut every = tokio::time::interval(RETENTION_SWEEP_EVERY);
    loop {
        every.tick().await;
        let sweeping = Arc::clone(&jobs);
        match tokio::task::spawn_blocking(move || sweeping.sweep_expired()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::info!(removed, "deleted expired jobs"),
            Ok(Err(error)) => tracing::error!(%error, cause = %Causes(&error), "cannot delete expired jobs"),
            Err(error) => tracing::error!(%error, "the retention sweep panicked"),
        }
    }
}

fn status_line(jobs: &Jobs) -> String {
    format!("{} running, {} queued", jobs.running_count(), jobs.queue_depth())
}

/// Pings systemd's watchdog at half its interval, with a fresh STATUS= line.
async fn watchdog(jobs: Arc<Jobs>) {
    let every = daemon::watchdog_enabled(false).map_or(Duration::from_secs(10), |timeout| timeout / 2);
    let watchdog = daemon::watchdog_enabled(false).is_some();
    loop {
        tokio::time::sleep(every).await;
        let status = NotifyState::Status(status_line(&jobs));
        if watchdog { notify(&[NotifyState::Watchdog, status]) } else { notify(&[status]) }
    }
}

/// Tells systemd about our state when it asked to be told (`NOTIFY_SOCKET` is set).
fn notify(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(error) = daemon::notify(false, states) {
        tracing::warn!(%error, "cannot notify systemd");
    }
}
