//! The gate every request passes before and after its route: request id, who is calling
//! and whether they may, rate limits, cross-site refusal, CORS, security headers and one
//! audit line.
//!
//! Input: the raw request and the peer address. Output: the response, from the route or
//! from the gate itself. Routes find the [`Caller`] in the request's extensions; a route
//! other than the few public ones is never reached without one.
//!
//! SECURITY: proxy headers (X-Forwarded-For, -Proto, -User) are read only from a loopback
//! peer with `trusted_proxy` on; credentials, cookies and transcript text are never logged.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use warp::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use warp::reply::Response;

use super::{AppState, Caller, Connection, add_security_headers, error_response, route_template};
use crate::auth::{Credentials, Identity, RateInfo, Role, SESSION_COOKIE, UploadPermit};
use crate::errors::{ApiError, AuthError, UploadError};

/// Bytes a multipart form may carry beyond the file itself (boundaries, small fields).
const FORM_OVERHEAD: u64 = 1 << 20;
/// Bodies up to this size are read and discarded before a refusal is sent.
const MAX_DRAIN: u64 = 64 << 20;
/// Longest time spent discarding a refused body.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Routes open to anyone: health checks, assets, and the page (which shows a login form
/// to visitors without a session).
fn is_public(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/static/{asset}" | "/" | "/login" | "/logout")
}

/// Routes that are never rate limited: monitoring and static files.
fn is_unmetered(route: &str) -> bool {
    matches!(route, "/healthz" | "/readyz" | "/static/{asset}")
}

/// Routes that receive an upload, and so hold one of the caller's upload slots.
fn is_upload(method: &Method, route: &str) -> bool {
    method == Method::POST
        && matches!(route, "/api/jobs" | "/jobs" | "/v1/audio/transcriptions" | "/v1/audio/translations")
}

/// HTML pages send visitors without a session to the login form instead of a JSON 401.
fn is_page(method: &Method, route: &str) -> bool {
    method == Method::GET && matches!(route, "/jobs/{id}")
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// What the gate learned about a request, for the route and the audit line.
struct Visit {
    request_id: String,
    client: IpAddr,
    https: bool,
    identity: Option<Identity>,
    /// The identity came from a session cookie rather than a key or the proxy.
    by_session: bool,
    rate: Option<RateInfo>,
}

pub async fn handle<S>(
    mut request: Request<Incoming>,
    peer: SocketAddr,
    mut service: S,
    state: Arc<AppState>,
) -> Result<Response, Infallible>
where
    S: tower_service::Service<Request<Incoming>, Response = Response, Error = Infallible>,
{
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let route = route_template(&path);
    let proxied = state.config.trusted_proxy && peer.ip().is_loopback();
    let headers = request.headers();
    let client = proxied
        .then(|| header_str(headers, "x-forwarded-for"))
        .flatten()
        .and_then(|value| value.split(',').next_back())
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(peer.ip());
    let https = proxied && header_str(headers, "x-forwarded-proto") == Some("https");
    let origin = header_str(headers, header::ORIGIN).map(str::to_owned);
    let mut visit = Visit {
        request_id: uuid::Uuid::now_v7().simple().to_string(),
        client,
        https,
        identity: None,
        by_session: false,
        rate: None,
    };

    let mut response = if method == Method::OPTIONS && origin.is_some() {
        preflight(&state, origin.as_deref())
    } else {
        match admit(&state, &request, proxied, route, &mut visit) {
            Ok(permit) => {
                if let Some(identity) = &visit.identity {
                    request.extensions_mut().insert(Caller::new(identity, visit.by_session));
                }
                request.extensions_mut().insert(Connection { https: visit.https });
                let response = service.call(request).await?;
                drop(permit);
                response
            }
            Err(error) if is_page(&method, route) && matches!(error.reply().status, 401) => redirect_to_login(),
            Err(error) => {
                log_refusal(&visit, route, &error);
                drain(request).await;
                error_response(&error)
            }
        }
    };

    let headers = response.headers_mut();
    add_security_headers(headers);
    if let Ok(value) = HeaderValue::from_str(&visit.request_id) {
        headers.insert("x-request-id", value);
    }
    // Transcripts, jobs and pages are private: no cache anywhere keeps them. Only the
    // static assets (hashed URLs) set their own long-lived policy.
    if route != "/static/{asset}" {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if let Some(rate) = visit.rate {
        headers.insert("ratelimit-limit", HeaderValue::from(rate.limit));
        headers.insert("ratelimit-remaining", HeaderValue::from(rate.remaining));
        headers.insert("ratelimit-reset", HeaderValue::from(rate.reset_seconds));
    }
    if response.status() == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"whisper-appliance\""));
    }
    add_cors(&state, origin.as_deref(), response.headers_mut());
    audit(&state, &visit, &method, (route, &path), &response, started);
    Ok(response)
}

/// Authenticates, authorises, refuses cross-site writes and counts the request.
fn admit(
    state: &AppState,
    request: &Request<Incoming>,
    proxied: bool,
    route: &'static str,
    visit: &mut Visit,
) -> Result<Option<UploadPermit>, ApiError> {
    let headers = request.headers();
    let bearer = header_str(headers, header::AUTHORIZATION)
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")));
    // Browsers cannot set headers on a WebSocket; OpenAI's browser clients send the key as a
    // subprotocol instead.
    let api_key =
        bearer.or_else(|| header_str(headers, "x-api-key")).or_else(|| super::realtime::subprotocol_key(headers));
    let credentials = Credentials {
        key: api_key,
        session: cookie(headers, SESSION_COOKIE),
        proxy_user: proxied.then(|| header_str(headers, "x-forwarded-user")).flatten(),
    };
    let identity = state.auth.authenticate(credentials);
    visit.by_session = api_key.is_none() && credentials.proxy_user.is_none() && credentials.session.is_some();
    // Known callers are limited by who they are; everyone else (and everyone, without
    // authentication) by their address.
    let bucket = match &identity {
        Ok(identity) if *identity != Identity::Local => identity.label(),
        _ => format!("ip:{}", visit.client),
    };
    if !is_unmetered(route) {
        visit.rate = Some(state.limits.check(&bucket)?);
    }
    match identity {
        Ok(identity) => visit.identity = Some(identity),
        Err(_) if is_public(route) => {}
        Err(error) => return Err(error.into()),
    }
    if route == "/metrics" && visit.identity.as_ref().is_none_or(|identity| identity.role() != Role::Admin) {
        return Err(AuthError::AdminOnly.into());
    }
    if is_cross_site_write(request, visit.https) && !(api_key.is_some() && allowed_origin(state, headers)) {
        return Err(AuthError::CrossSite.into());
    }
    if is_upload(request.method(), route) {
        // Refused here, before a byte of the upload is stored; the job queue decides again
        // when the upload is complete.
        state.jobs.check_room()?;
        let limit = state.upload_limits.max_file_bytes;
        let length = header_str(headers, header::CONTENT_LENGTH).and_then(|length| length.parse::<u64>().ok());
        if length.is_some_and(|length| length > limit + FORM_OVERHEAD) {
            return Err(UploadError::TooLarge { limit_mb: limit / 1_000_000 }.into());
        }
        return Ok(Some(state.limits.upload_permit(&bucket)?));
    }
    Ok(None)
}

/// Reads and discards a refused request's body, so that clients that send the whole body
/// before reading the answer (browsers, most HTTP libraries) read the error instead of a
/// reset connection. Bounded in size and time; a larger body is cut off.
async fn drain(request: Request<Incoming>) {
    let length = header_str(request.headers(), header::CONTENT_LENGTH).and_then(|length| length.parse::<u64>().ok());
    if length.is_some_and(|length| length > MAX_DRAIN) {
        return;
    }
    let mut body = request.into_body();
    let discard = async {
        let mut seen = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |data| data.len() as u64);
            if seen > MAX_DRAIN {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, discard).await;
}

/// A state-changing request that a browser made from another site. Clients that are not
/// browsers send neither `Sec-Fetch-Site` nor `Origin` and are not affected.
fn is_cross_site_write(request: &Request<Incoming>, https: bool) -> bool {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let headers = request.headers();
    if let Some(site) = header_str(headers, "sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = header_str(headers, header::ORIGIN) else { return false };
    let host = header_str(headers, header::HOST).unwrap_or_default();
    let own = format!("{}://{host}", if https { "https" } else { "http" });
    origin != own
}

fn allowed_origin(state: &AppState, headers: &HeaderMap) -> bool {
    header_str(headers, header::ORIGIN).is_some_and(|origin| state.config.cors_origins.iter().any(|o| o == origin))
}

/// CORS for listed origins only, never `*`, never with credentials other than API keys.
fn add_cors(state: &AppState, origin: Option<&str>, headers: &mut HeaderMap) {
    let Some(origin) = origin.filter(|origin| state.config.cors_origins.iter().any(|listed| listed == origin)) else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("x-request-id, retry-after"));
    }
}

fn preflight(state: &AppState, origin: Option<&str>) -> Response {
    let mut response = Response::new(Default::default());
    *response.status_mut() = StatusCode::NO_CONTENT;
    if origin.is_some_and(|origin| state.config.cors_origins.iter().any(|listed| listed == origin)) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, DELETE"));
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, x-api-key, content-type"),
        );
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    response
}

fn redirect_to_login() -> Response {
    let mut response = Response::new(Default::default());
    *response.status_mut() = StatusCode::SEE_OTHER;
    response.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/"));
    response
}

fn log_refusal(visit: &Visit, route: &str, error: &ApiError) {
    if let ApiError::Auth(reason) = error {
        let key = match reason {
            AuthError::RevokedKey { id } => format!("key:{id}"),
            _ => "-".to_owned(),
        };
        tracing::warn!(
            target: "audit",
            event = "refused",
            request_id = %visit.request_id,
            client = %visit.client,
            route,
            key,
            reason = %reason,
            "request refused"
        );
    }
}

/// The job a request concerns: from the path, or the Location of a job just created.
fn job_of(route: &str, path: &str, response: &Response) -> Option<uuid::Uuid> {
    let from_path = route.contains("{id}").then(|| path.split('/').find_map(|part| uuid::Uuid::try_parse(part).ok()));
    from_path.flatten().or_else(|| {
        header_str(response.headers(), header::LOCATION)
            .and_then(|location| location.rsplit('/').find_map(|part| uuid::Uuid::try_parse(part).ok()))
    })
}

fn audit(
    state: &AppState,
    visit: &Visit,
    method: &Method,
    (route, path): (&'static str, &str),
    response: &Response,
    started: Instant,
) {
    let status = response.status().as_u16();
    state.metrics.http_request(route, method.as_str(), status);
    let bytes = header_str(response.headers(), header::CONTENT_LENGTH).and_then(|length| length.parse::<u64>().ok());
    let job = job_of(route, path, response);
    tracing::info!(
        target: "audit",
        request_id = %visit.request_id,
        client = %visit.client,
        method = %method,
        route,
        status,
        millis = started.elapsed().as_millis() as u64,
        bytes,
        key = visit.identity.as_ref().map_or_else(|| "-".to_owned(), Identity::label),
        job = job.map(|id| id.to_string()),
        "request"
    );
}
