//! warp routes: the job API, the OpenAI-compatible API, health, metrics and the page.
//!
//! Input: HTTP requests, already wrapped by `commands::serve` with a request id, security
//! headers and the audit log. Output: responses. No business logic lives here: handlers
//! call [`crate::upload`], [`crate::jobs`] and [`crate::formats`], and every error goes
//! through [`ApiError::reply`], the one table that maps errors onto statuses.

mod api;
mod events;
pub mod gate;

use std::convert::Infallible;
use std::sync::Arc;

use serde::Serialize;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Reply};

pub use self::api::{JobView, submit_upload};
pub(crate) use self::api::{bool_field, job_request, parse_id, upload_request};
use crate::auth::{Authenticator, Identity, RateLimits};
use crate::config::Config;
use crate::errors::{ApiError, Causes};
use crate::jobs::{Jobs, Scope};
use crate::metrics::Metrics;
use crate::upload::Limits;

/// What every handler can reach.
pub struct AppState {
    pub jobs: Arc<Jobs>,
    pub metrics: Arc<Metrics>,
    pub config: Config,
    /// Bounds on one upload.
    pub upload_limits: Limits,
    pub auth: Authenticator,
    /// Per-caller request and upload allowances.
    pub limits: RateLimits,
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
    let health = warp::path!("healthz").and(warp::get()).map(|| json(StatusCode::OK, &Status { status: "ok" }));
    let ready = warp::path!("readyz").and(warp::get()).and(with_state(state)).map(|state: Arc<AppState>| ready(&state));
    let metrics = warp::path!("metrics").and(warp::get()).and(with_state(state)).map(|state: Arc<AppState>| {
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
        .or(crate::openai::routes(state))
        .unify()
        .or(crate::ui::routes(state))
        .unify()
        .recover(recover)
        .unify()
        .boxed()
}

#[derive(Serialize)]
struct Status {
    status: &'static str,
}

#[derive(Serialize)]
struct Readiness<'a> {
    status: &'static str,
    model: &'a str,
    backend: &'static str,
    database: bool,
    temp_dir_writable: bool,
}

/// 200 once the model is loaded, the database answers and uploads can be written.
fn ready(state: &AppState) -> Response {
    let engine = state.jobs.engine();
    let database = state.jobs.store().check().is_ok();
    let temp_dir_writable = state.jobs.temp().check_writable().is_ok();
    let ok = database && temp_dir_writable;
    let body = Readiness {
        status: if ok { "ready" } else { "not ready" },
        model: engine.summary().name(),
        backend: engine.backend().name(),
        database,
        temp_dir_writable,
    };
    json(if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &body)
}

pub fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: String,
    #[serde(rename = "type")]
    kind: &'a str,
    code: &'a str,
    param: Option<&'a str>,
}

/// The one way an error becomes a response: `{"error": {"message", "type", "code", "param"}}`.
pub fn error_response(error: &ApiError) -> Response {
    let reply = error.reply();
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

/// The route a path belongs to, with ids replaced, for metrics and the audit log (never
/// the raw path: ids would make unbounded label sets).
pub fn route_template(path: &str) -> &'static str {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        [""] => "/",
        ["healthz"] => "/healthz",
        ["readyz"] => "/readyz",
        ["metrics"] => "/metrics",
        ["api", "jobs"] => "/api/jobs",
        ["api", "jobs", _] => "/api/jobs/{id}",
        ["api", "jobs", _, "result"] => "/api/jobs/{id}/result",
        ["api", "jobs", _, "events"] => "/api/jobs/{id}/events",
        ["api", "jobs", _, "cancel"] => "/api/jobs/{id}/cancel",
        ["v1", "audio", "transcriptions"] => "/v1/audio/transcriptions",
        ["v1", "audio", "translations"] => "/v1/audio/translations",
        ["v1", "models"] => "/v1/models",
        ["jobs"] => "/jobs",
        ["jobs", _] => "/jobs/{id}",
        ["jobs", _, "delete"] => "/jobs/{id}/delete",
        ["static", ..] => "/static/{asset}",
        ["login"] => "/login",
        ["logout"] => "/logout",
        _ => "unmatched",
    }
}

/// The page runs only our own script and style, is never framed, and leaks nothing.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// SECURITY: on every response, errors and assets included, so no path is left out.
pub fn add_security_headers(headers: &mut warp::http::HeaderMap) {
    const HEADERS: [(&str, &str); 7] = [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), \
             midi=(), magnetometer=(), gyroscope=(), accelerometer=(), display-capture=(), interest-cohort=()",
        ),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ];
    for (name, value) in HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
}
