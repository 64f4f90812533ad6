//! The gate every request passes before and after its route: request id, which route it
//! is (from the one route table, [`super::routes`]), who is calling and whether they may,
//! rate limits, cross-site refusal, CORS, security headers and one audit line.
//!
//! Input: the raw request and the peer address. Output: the response, from the route or
//! from the gate itself. Routes find the [`Caller`] and the [`Matched`] route in the
//! request's extensions; a route other than the public ones is never reached without a
//! caller, and a path no route has never reaches warp.
//!
//! SECURITY: proxy headers (X-Forwarded-For, -Proto, -User) are read only from a loopback
//! peer with `trusted_proxy` on; credentials, cookies and transcript text are never logged.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;

use http_body_util::BodyExt as _;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tracing::Instrument as _;
use warp::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use warp::reply::Response;

use super::routes::{Access, Kind, Matched, resolve};
use super::{AppState, Caller, Connection, add_security_headers, error_response};
use crate::auth::{Credentials, Identity, RateInfo, Role, SESSION_COOKIE, UploadPermit};
use crate::config::Config;
use crate::errors::{ApiError, AuthError, UploadError};
use crate::upload::FORM_OVERHEAD;

/// The metrics and audit label of a request no route has.
const UNMATCHED: &str = "unmatched";
/// Bodies up to this size are read and discarded before a refusal is sent.
const MAX_DRAIN: u64 = 64 << 20;
/// Longest time spent discarding a refused body, and longest wait for its next chunk: a
/// refused client holds its connection for seconds at most, not for its whole body.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
const DRAIN_IDLE: Duration = Duration::from_secs(1);

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// Every value of the cookie `name` the request carries.
pub(super) fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(key, _)| *key == name)
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

/// Handles one request inside a `request` span carrying its id, so every line logged
/// while it is served (the audit line, errors, warnings) names the request.
pub async fn handle<S>(
    request: Request<Incoming>,
    peer: SocketAddr,
    service: S,
    state: Arc<AppState>,
) -> Result<Response, Infallible>
where
    S: tower_service::Service<Request<RequestBody>, Response = Response, Error = Infallible>,
{
    let declared = header_str(request.headers(), header::CONTENT_LENGTH).and_then(|length| length.parse().ok());
    let request = request.map(|body| RequestBody::new(body, declared));
    let request_id = uuid::Uuid::now_v7().simple().to_string();
    let span = tracing::info_span!("request", request_id = %request_id);
    serve(request, peer, service, state, request_id).instrument(span).await
}

async fn serve<S>(
    mut request: Request<RequestBody>,
    peer: SocketAddr,
    mut service: S,
    state: Arc<AppState>,
    request_id: String,
) -> Result<Response, Infallible>
where
    S: tower_service::Service<Request<RequestBody>, Response = Response, Error = Infallible>,
{
    let started = Instant::now();
    let method = request.method().clone();
    let resolved = resolve(&method, request.uri().path());
    let route = resolved.as_ref().map_or(UNMATCHED, |matched| matched.route.template);
    let kind = resolved.as_ref().ok().map(|matched| matched.route.kind);
    // Where a page asked for without a session comes back to after the login form.
    let page_path =
        resolved.as_ref().ok().filter(|matched| matched.route.kind == Kind::Page).map(Matched::canonical_path);
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
    let mut visit = Visit { request_id, client, https, identity: None, by_session: false, rate: None };

    let mut job = None;
    let mut response = if let Err(error) = check_host(&state.config, request.headers(), proxied) {
        let error = ApiError::from(error);
        log_refusal(&visit, route, &error);
        drop(request);
        error_response(&error)
    } else if method == Method::OPTIONS && origin.is_some() {
        preflight(&state, origin.as_deref())
    } else {
        let admitted = admit(&state, &request, proxied, resolved.as_ref().ok(), &mut visit)
            .and_then(|permit| resolved.map(|matched| (matched, permit)));
        match admitted {
            Ok((matched, permit)) => {
                if let Some(identity) = &visit.identity {
                    request.extensions_mut().insert(Caller::new(identity, visit.by_session));
                }
                request.extensions_mut().insert(Connection { https: visit.https });
                request.extensions_mut().insert(matched.clone());
                let response = service.call(request).await?;
                drop(permit);
                job = job_of(&matched, &response);
                response
            }
            Err(error) if kind == Some(Kind::Page) && matches!(error.reply().status, 401) => {
                redirect_to_login(page_path.as_deref().unwrap_or("/"), request.uri().query())
            }
            Err(error) => {
                log_refusal(&visit, route, &error);
                drop(request);
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
    if kind != Some(Kind::Asset) {
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
    audit(&state, &visit, &method, (route, job), &response, started);
    Ok(response)
}

/// SECURITY: DNS rebinding. A page on any site can point its own name at this machine's
/// address; the browser then treats the appliance as that site and sends that name as
/// `Host`. Only names the appliance is known by are answered: IP addresses (a page cannot
/// rebind an address), `localhost`, the configured `allowed_hosts`, and, with none
/// configured, whatever a trusted proxy passes (it has checked the name itself). Checked
/// before routing, with authentication on or off.
fn check_host(config: &Config, headers: &HeaderMap, proxied: bool) -> Result<(), AuthError> {
    let Some(value) = headers.get(header::HOST) else { return Ok(()) };
    let value = value.to_str().unwrap_or_default().trim();
    let name = match value.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => value.rsplit_once(':').map_or(value, |(name, _port)| name),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let known = name.parse::<IpAddr>().is_ok()
        || name == "localhost"
        || config.allowed_hosts.contains(&name)
        || (proxied && config.allowed_hosts.is_empty());
    if known { Ok(()) } else { Err(AuthError::UnknownHost { host: value.to_owned() }) }
}

/// Authenticates, authorises, refuses cross-site writes and counts the request.
fn admit(
    state: &AppState,
    request: &Request<RequestBody>,
    proxied: bool,
    matched: Option<&Matched>,
    visit: &mut Visit,
) -> Result<Option<UploadPermit>, ApiError> {
    // A path no route has is guarded like an ordinary route, and answered 404 once admitted.
    let (access, metered, kind) = matched.map_or((Access::Caller, true, Kind::Api), |matched| {
        (matched.route.access, matched.route.metered, matched.route.kind)
    });
    let headers = request.headers();
    let bearer = header_str(headers, header::AUTHORIZATION)
        .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")));
    // Browsers cannot set headers on a WebSocket; OpenAI's browser clients send the key as a
    // subprotocol instead.
    let api_key =
        bearer.or_else(|| header_str(headers, "x-api-key")).or_else(|| super::realtime::subprotocol_key(headers));
    // SECURITY: a second session cookie can be planted from a sibling subdomain; which one
    // counts would then be up to the browser's ordering. Neither does.
    let mut sessions = cookies(headers, SESSION_COOKIE);
    let session = sessions.next();
    if sessions.next().is_some() {
        return Err(AuthError::SeveralSessions.into());
    }
    let credentials = Credentials {
        key: api_key,
        session,
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
    if metered {
        visit.rate = Some(state.limits.check(&bucket)?);
    }
    match identity {
        Ok(identity) => visit.identity = Some(identity),
        Err(_) if access == Access::Public => {}
        Err(error) => return Err(error.into()),
    }
    if access == Access::Admin && visit.identity.as_ref().is_none_or(|identity| identity.role() != Role::Admin) {
        return Err(AuthError::AdminOnly.into());
    }
    if is_cross_site_write(request, visit.https) && !(api_key.is_some() && allowed_origin(state, headers)) {
        return Err(AuthError::CrossSite.into());
    }
    if kind == Kind::Upload {
        // Refused here, before a byte of the upload is stored; the job queue decides again
        // when the upload is complete.
        let owner = visit.identity.as_ref().map_or_else(|| Identity::Local.owner(), Identity::owner);
        state.jobs.check_room(&owner)?;
        let limit = state.upload_limits.max_file_bytes;
        let length = header_str(headers, header::CONTENT_LENGTH).and_then(|length| length.parse::<u64>().ok());
        if length.is_some_and(|length| length > limit + FORM_OVERHEAD) {
            return Err(UploadError::TooLarge { limit_mb: limit / 1_000_000 }.into());
        }
        return Ok(Some(state.limits.upload_permit(&bucket)?));
    }
    Ok(None)
}

/// A request's body. Dropped before its end (refused by the gate, or answered early by a
/// handler: a wrong field, a full disk), the rest is read and discarded in the background,
/// so that clients that send the whole body before reading the answer (browsers, most
/// HTTP libraries) read it instead of a reset connection. Bounded in size, in time and in
/// silence; a body declared larger than that is cut off at once.
pub struct RequestBody {
    inner: Option<Incoming>,
    drain: bool,
}

impl RequestBody {
    fn new(body: Incoming, declared_length: Option<u64>) -> RequestBody {
        RequestBody { inner: Some(body), drain: declared_length.is_none_or(|length| length <= MAX_DRAIN) }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.inner.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let Some(mut body) = self.inner.take() else { return };
        if !self.drain || body.is_end_stream() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let discard = async {
                let mut seen = 0u64;
                while let Ok(Some(Ok(frame))) = tokio::time::timeout(DRAIN_IDLE, body.frame()).await {
                    seen += frame.data_ref().map_or(0, |data| data.len() as u64);
                    if seen > MAX_DRAIN {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, discard).await;
        });
    }
}

/// A state-changing request that a browser made from another site. Clients that are not
/// browsers send neither `Sec-Fetch-Site` nor `Origin` and are not affected.
fn is_cross_site_write(request: &Request<RequestBody>, https: bool) -> bool {
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

/// A page asked for without a session: the login form, which comes back here afterwards.
fn redirect_to_login(path: &str, query: Option<&str>) -> Response {
    let here = match query {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
    let mut response = Response::new(Default::default());
    *response.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(location) = HeaderValue::from_str(&format!("/?next={next}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
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
            client = %visit.client,
            route,
            key,
            reason = %reason,
            "request refused"
        );
    }
}

/// The job a request concerns: from the path, or the Location of a job just created.
fn job_of(matched: &Matched, response: &Response) -> Option<uuid::Uuid> {
    let from_path = matched.route.template.contains("{id}").then(|| uuid::Uuid::try_parse(&matched.params[0]).ok());
    from_path.flatten().or_else(|| {
        header_str(response.headers(), header::LOCATION)
            .and_then(|location| location.rsplit('/').find_map(|part| uuid::Uuid::try_parse(part).ok()))
    })
}

fn audit(
    state: &AppState,
    visit: &Visit,
    method: &Method,
    (route, job): (&'static str, Option<uuid::Uuid>),
    response: &Response,
    started: Instant,
) {
    let status = response.status().as_u16();
    state.metrics.http_request(route, method.as_str(), status);
    let bytes = header_str(response.headers(), header::CONTENT_LENGTH).and_then(|length| length.parse::<u64>().ok());
    tracing::info!(
        target: "audit",
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
