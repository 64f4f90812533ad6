//! The HTTP surface: the job API, the OpenAI-compatible API (`openai`), health, metrics,
//! the page (`ui`) and the API reference (`openapi`), all declared in one route table
//! (`routes`) that the gate (`gate`) guards and warp dispatches on.
//!
//! Input: HTTP requests, already resolved and admitted by the gate, which also gives them
//! a request id, security headers and the audit log. Output: responses. No business logic
//! lives here: handlers call [`crate::upload`], [`crate::jobs`] and [`crate::formats`], and
//! every error goes through [`ApiError::reply`], the one table that maps errors onto statuses.

mod api;
pub mod connections;
mod events;
pub mod gate;
mod job_view;
mod keys;
mod openai;
mod openapi;
mod realtime;
pub mod routes;
mod ui;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Buf;
use futures_util::{Stream, StreamExt as _};

use serde::Serialize;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Reply};

pub use self::api::submit_upload;
pub(crate) use self::api::{bool_field, job_request, percent_encode, upload_request};
pub use self::job_view::JobView;
pub(crate) use self::job_view::parse_id;
use self::routes::{Endpoint, at};
use crate::auth::{Authenticator, Identity, RateLimits};
use crate::config::Config;
use crate::engine::Backend;
use crate::errors::{ApiError, Causes};
use crate::jobs::{Jobs, Scope};
use crate::live::Live;
use crate::metrics::Metrics;
use crate::upload::Limits;

/// What every handler can reach.
pub struct AppState {
    pub jobs: Arc<Jobs>,
    pub metrics: Arc<Metrics>,
    pub config: Config,
    /// Bounds on one upload.
    pub upload_limits: Limits,
    /// Shared with the control socket, where the `keys` command makes and revokes keys.
    pub auth: Arc<Authenticator>,
    /// Per-caller request and upload allowances.
    pub limits: RateLimits,
    /// Live transcription sessions.
    pub live: Live,
    /// When the server started, for the admin page's uptime.
    pub started: std::time::Instant,
}

/// Who is making a request, and so whose jobs they may see; put on the request by the gate.
#[derive(Debug, Clone)]
pub struct Caller {
    pub identity: Identity,
    /// Recorded as the owner of jobs this caller creates.
    pub owner: String,
    pub scope: Scope,
    /// Authenticated by a browser session cookie (so the page offers to log out).
    pub by_session: bool,
}

impl Caller {
    pub fn new(identity: &Identity, by_session: bool) -> Caller {
        Caller { identity: identity.clone(), owner: identity.owner(), scope: identity.scope(), by_session }
    }
}

/// Facts about how a request arrived, put on every request by the gate.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    /// Over HTTPS, as the trusted proxy in front says.
    pub https: bool,
}

/// The caller the gate admitted. Routes that use this are never reached without one.
pub(crate) fn caller() -> impl Filter<Extract = (Caller,), Error = warp::Rejection> + Clone {
    warp::ext::get::<Caller>()
}

pub(crate) fn with_state(
    state: &Arc<AppState>,
) -> impl Filter<Extract = (Arc<AppState>,), Error = Infallible> + Clone + use<> {
    let state = Arc::clone(state);
    warp::any().map(move || Arc::clone(&state))
}

/// All routes, with warp's own rejections turned into the same JSON errors.
pub fn routes(state: &Arc<AppState>) -> BoxedFilter<(Response,)> {
    let health = at(Endpoint::Health).map(|| json(StatusCode::OK, &Health { status: "ok" }));
    let ready = at(Endpoint::Ready).and(with_state(state)).map(|state: Arc<AppState>| ready(&state));
    let metrics = at(Endpoint::Metrics).and(with_state(state)).map(|state: Arc<AppState>| {
        let body = state.metrics.render(&state.jobs.count_by_status(), state.jobs.queue_depth());
        let mut response = body.into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(crate::metrics::CONTENT_TYPE));
        response
    });
    health
        .or(ready)
        .unify()
        .or(metrics)
        .unify()
        .or(api::routes(state))
        .unify()
        .or(openai::routes(state))
        .unify()
        .or(keys::routes(state))
        .unify()
        .or(openapi::route())
        .unify()
        .or(realtime::routes(state))
        .unify()
        .or(ui::routes(state))
        .unify()
        .recover(recover)
        .unify()
        .boxed()
}

/// `GET /healthz`: the process answers.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// `GET /readyz`: whether the appliance can take jobs, and what it has loaded.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Readiness<'a> {
    status: &'static str,
    /// The default model's name.
    model: &'a str,
    /// Whether the default model is in memory now (it may have been unloaded for the memory
    /// budget, and is then loaded again by the next job that needs it).
    model_loaded: bool,
    /// Every installed model's name, and those in memory now.
    models: Vec<String>,
    loaded: Vec<String>,
    backend: &'static str,
    database: bool,
    temp_dir_writable: bool,
}

/// 200 once the default model has loaded (start-up does that before listening), the
/// database answers and uploads can be written.
fn ready(state: &AppState) -> Response {
    let models = state.jobs.models();
    let database = state.jobs.store().check().is_ok();
    let temp_dir_writable = state.jobs.temp().check_writable().is_ok();
    let ok = database && temp_dir_writable;
    let loaded = models.loaded();
    let model = models.default_model().name.as_str();
    let body = Readiness {
        status: if ok { "ready" } else { "not ready" },
        model,
        model_loaded: loaded.iter().any(|name| name == model),
        models: models.names(),
        loaded,
        backend: models.backend().map_or("cpu", Backend::name),
        database,
        temp_dir_writable,
    };
    json(if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &body)
}

pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

/// Every error's body, OpenAI's shape.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErrorDetail<'a> {
    /// A sentence for people.
    message: String,
    /// The class of error (`invalid_request_error`, `authentication_error`, ...).
    #[serde(rename = "type")]
    kind: &'a str,
    /// What went wrong, for programs: `not_found`, `file_too_large`, `rate_limited`...
    code: &'a str,
    /// The request field at fault, if one is.
    param: Option<&'a str>,
}

/// The one way an error becomes a response: `{"error": {"message", "type", "code", "param"}}`.
pub fn error_response(error: &ApiError) -> Response {
    let reply = error.reply();
    if reply.status == 507 {
        tracing::warn!(error = %error, "refused for lack of disk space");
    }
    if error.is_internal() {
        tracing::error!(error = %error, cause = %Causes(error), "request failed");
    }
    let body = ErrorBody {
        error: ErrorDetail { message: error.client_message(), kind: reply.kind, code: reply.code, param: reply.param },
    };
    let mut response = json(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &body);
    if let Some(seconds) = reply.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// Reads a small request body whole: at most `max` bytes, all of it within `timeout`.
pub(crate) async fn read_small_body<S, B>(body: S, max: usize, timeout: Duration) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let read = async {
        let mut body = std::pin::pin!(body);
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let mut chunk = chunk.map_err(|_| ApiError::BadBody)?;
            if bytes.len() + chunk.remaining() > max {
                return Err(ApiError::BodyTooLarge);
            }
            bytes.extend_from_slice(&chunk.copy_to_bytes(chunk.remaining()));
        }
        Ok(bytes)
    };
    tokio::time::timeout(timeout, read).await.map_err(|_| ApiError::BodyStalled { seconds: timeout.as_secs() })?
}

/// Turns a handler's result into a response.
pub fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|error| error_response(&error))
}

/// warp's own rejections (no route, wrong method, bad query) in the same JSON shape.
async fn recover(rejection: warp::Rejection) -> Result<Response, Infallible> {
    let error = if rejection.is_not_found() {
        ApiError::NoRoute
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::BodyTooLarge
    } else if rejection.find::<warp::reject::LengthRequired>().is_some()
        || rejection.find::<warp::reject::UnsupportedMediaType>().is_some()
        || rejection.find::<warp::filters::body::BodyDeserializeError>().is_some()
    {
        ApiError::BadBody
    } else if rejection.find::<warp::filters::ws::MissingConnectionUpgrade>().is_some() {
        ApiError::NotWebSocket
    } else if let Some(query) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::BadQuery { detail: query.to_string() }
    } else if rejection.find::<warp::reject::InvalidHeader>().is_some()
        || rejection.find::<warp::reject::MissingHeader>().is_some()
    {
        ApiError::BadHeader
    } else {
        ApiError::Internal(format!("unhandled rejection: {rejection:?}").into())
    };
    Ok(error_response(&error))
}

/// The page runs only our own script and style, is never framed, and leaks nothing.
/// `media-src blob:` lets the page play a file the user chose from an object URL, in the
/// browser, without uploading it again.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// SECURITY: on every response, errors and assets included, so no path is left out.
pub fn add_security_headers(headers: &mut warp::http::HeaderMap) {
    const HEADERS: [(&str, &str); 7] = [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "permissions-policy",
            "camera=(), microphone=(self), geolocation=(), payment=(), usb=(), serial=(), \
             midi=(), magnetometer=(), gyroscope=(), accelerometer=(), display-capture=()",
        ),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ];
    for (name, value) in HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
}
