//! The route table: every route the server answers, declared once with what the gate needs
//! to guard it (who may call it, whether it is metered, whether it receives an upload or
//! renders a page). The gate resolves each request against this table before anything
//! else looks at it, and warp's filters dispatch on the resolved [`Endpoint`] ([`at`],
//! [`at_id`]) instead of matching paths themselves, so no spelling of a path can reach a
//! handler under another route's guard.
//!
//! How a path is read: its segments, each percent-decoded, with empty segments ignored.
//! So `/metrics/`, `//metrics` and `/%6detrics` are `/metrics`, and get exactly its answer,
//! guard included (rather than a redirect, which would re-send upload bodies, or a 404 that
//! differs from the plain spelling for no reason). A segment that decodes to `.`, `..`, or
//! something holding `/`, NUL or invalid UTF-8 names no route.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use warp::Filter;
use warp::http::Method;

use crate::errors::ApiError;

/// What a route does, for dispatch; each has exactly one row in [`ROUTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Index,
    Health,
    Ready,
    Metrics,
    JobCreate,
    JobList,
    JobGet,
    JobDelete,
    JobResult,
    JobEvents,
    JobCancel,
    Transcriptions,
    Translations,
    Models,
    Realtime,
    FormSubmit,
    FormBack,
    JobPage,
    JobPageDelete,
    Login,
    Logout,
    Asset,
    Admin,
    AdminKeyCreate,
    AdminKeyRevoke,
    KeyList,
    KeyCreate,
    KeyRevoke,
    OpenApi,
    Reference,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health checks, assets, the page (a login form without a session), login.
    Public,
    /// An authenticated caller (everyone, with authentication off).
    Caller,
    /// An administrator.
    Admin,
}

/// How the gate treats a route's request and answer beyond who may call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// JSON in, JSON (or a transcript) out.
    Api,
    /// Receives an upload: holds one of the caller's upload slots and is refused early when
    /// the queue is full or the declared length is over the limit.
    Upload,
    /// An HTML page: a visitor without a session is sent to the login form instead of a 401.
    Page,
    /// A static asset under a hashed URL: it sets its own long-lived cache policy.
    Asset,
}

/// One route.
#[derive(Debug)]
pub struct Route {
    pub endpoint: Endpoint,
    pub method: Method,
    /// The path with parameters as `{name}`; also the label in metrics and the audit log.
    pub template: &'static str,
    pub access: Access,
    /// Counted against the caller's requests per minute.
    pub metered: bool,
    pub kind: Kind,
}

const fn route(
    endpoint: Endpoint,
    method: Method,
    template: &'static str,
    access: Access,
    metered: bool,
    kind: Kind,
) -> Route {
    Route { endpoint, method, template, access, metered, kind }
}

use Access::{Admin, Caller, Public};
use Endpoint as E;
use Kind::{Api, Asset, Page, Upload};

/// Every route. The no-JS form (`/jobs...`) and the API (`/api/jobs...`) are separate
/// routes with the same guards; `/static` is unmetered so a page load never costs requests.
pub static ROUTES: &[Route] = &[
    route(E::Index, Method::GET, "/", Public, true, Page),
    route(E::Health, Method::GET, "/healthz", Public, false, Api),
    route(E::Ready, Method::GET, "/readyz", Public, false, Api),
    route(E::Metrics, Method::GET, "/metrics", Admin, true, Api),
    route(E::JobCreate, Method::POST, "/api/jobs", Caller, true, Upload),
    route(E::JobList, Method::GET, "/api/jobs", Caller, true, Api),
    route(E::JobGet, Method::GET, "/api/jobs/{id}", Caller, true, Api),
    route(E::JobDelete, Method::DELETE, "/api/jobs/{id}", Caller, true, Api),
    route(E::JobResult, Method::GET, "/api/jobs/{id}/result", Caller, true, Api),
    route(E::JobEvents, Method::GET, "/api/jobs/{id}/events", Caller, true, Api),
    route(E::JobCancel, Method::POST, "/api/jobs/{id}/cancel", Caller, true, Api),
    route(E::Transcriptions, Method::POST, "/v1/audio/transcriptions", Caller, true, Upload),
    route(E::Translations, Method::POST, "/v1/audio/translations", Caller, true, Upload),
    route(E::Models, Method::GET, "/v1/models", Caller, true, Api),
    // Live transcription: a WebSocket; the session's audio is limited by the live settings.
    route(E::Realtime, Method::GET, "/v1/realtime", Caller, true, Api),
    route(E::FormSubmit, Method::POST, "/jobs", Caller, true, Upload),
    route(E::FormBack, Method::GET, "/jobs", Caller, true, Page),
    route(E::JobPage, Method::GET, "/jobs/{id}", Caller, true, Page),
    route(E::JobPageDelete, Method::POST, "/jobs/{id}/delete", Caller, true, Api),
    route(E::Login, Method::POST, "/login", Public, true, Api),
    route(E::Logout, Method::POST, "/logout", Public, true, Api),
    route(E::Asset, Method::GET, "/static/{hash}/{file}", Public, false, Asset),
    // The operator's page, and its key forms (no-JS posts, 303 back to the page).
    route(E::Admin, Method::GET, "/admin", Admin, true, Page),
    route(E::AdminKeyCreate, Method::POST, "/admin/keys", Admin, true, Api),
    route(E::AdminKeyRevoke, Method::POST, "/admin/keys/{id}/revoke", Admin, true, Api),
    // Keys for scripts: the same operations as the `keys` command, through the server.
    route(E::KeyList, Method::GET, "/api/keys", Admin, true, Api),
    route(E::KeyCreate, Method::POST, "/api/keys", Admin, true, Api),
    route(E::KeyRevoke, Method::DELETE, "/api/keys/{id}", Admin, true, Api),
    // The API reference, guarded as the page is: with authentication on, only callers see
    // what the API offers (a visitor to /api is sent to the login form).
    route(E::OpenApi, Method::GET, "/openapi.json", Caller, true, Api),
    route(E::Reference, Method::GET, "/api", Caller, true, Page),
];

/// A request's route and its path parameters, decoded; put on the request by the gate.
#[derive(Debug, Clone)]
pub struct Matched {
    pub route: &'static Route,
    pub params: Vec<String>,
}

impl Matched {
    /// The path in its one canonical spelling: the template with the parameters filled in.
    pub fn canonical_path(&self) -> String {
        let mut params = self.params.iter();
        let mut path = String::new();
        for segment in self.route.template.split('/').filter(|segment| !segment.is_empty()) {
            path.push('/');
            match segment.starts_with('{').then(|| params.next()).flatten() {
                Some(param) => path.extend(utf8_percent_encode(param, SEGMENT)),
                None => path.push_str(segment),
            }
        }
        if path.is_empty() { "/".to_owned() } else { path }
    }
}

/// What a path segment may hold unescaped: unreserved characters (RFC 3986).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The route a request names: 404 when no route has its path, 405 when one has it with
/// another method.
pub fn resolve(method: &Method, path: &str) -> Result<Matched, ApiError> {
    let segments = segments(path).ok_or(ApiError::NoRoute)?;
    let mut other_method = false;
    for route in ROUTES {
        if let Some(params) = match_template(route.template, &segments) {
            if route.method == method {
                return Ok(Matched { route, params });
            }
            other_method = true;
        }
    }
    Err(if other_method { ApiError::MethodNotAllowed } else { ApiError::NoRoute })
}

/// The path's non-empty segments, percent-decoded; `None` if one cannot name anything.
fn segments(path: &str) -> Option<Vec<String>> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let decoded = percent_decode_str(segment).decode_utf8().ok()?;
            let bad = decoded == "." || decoded == ".." || decoded.contains(['/', '\0']);
            (!bad).then(|| decoded.into_owned())
        })
        .collect()
}

fn match_template(template: &str, segments: &[String]) -> Option<Vec<String>> {
    let pattern: Vec<&str> = template.split('/').filter(|segment| !segment.is_empty()).collect();
    if pattern.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (want, got) in pattern.iter().zip(segments) {
        if want.starts_with('{') {
            params.push(got.clone());
        } else if want != got {
            return None;
        }
    }
    Some(params)
}

/// Passes requests the gate resolved to `endpoint`.
pub(crate) fn at(endpoint: Endpoint) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    params(endpoint).map(|_| ()).untuple_one()
}

/// As [`at`], extracting the route's first parameter (a job id).
pub(crate) fn at_id(endpoint: Endpoint) -> impl Filter<Extract = (String,), Error = warp::Rejection> + Clone {
    params(endpoint).map(|mut params: Vec<String>| params.swap_remove(0))
}

/// As [`at`], extracting every parameter in template order.
pub(crate) fn params(endpoint: Endpoint) -> impl Filter<Extract = (Vec<String>,), Error = warp::Rejection> + Clone {
    warp::ext::get::<Matched>().and_then(move |matched: Matched| async move {
        if matched.route.endpoint == endpoint { Ok(matched.params) } else { Err(warp::reject::not_found()) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_has_one_route() {
        for route in ROUTES {
            assert_eq!(ROUTES.iter().filter(|other| other.endpoint == route.endpoint).count(), 1, "{route:?}");
            let same = ROUTES.iter().filter(|o| o.template == route.template && o.method == route.method).count();
            assert_eq!(same, 1, "{route:?}");
        }
    }

    #[test]
    fn spellings_of_a_path_resolve_alike() {
        for path in ["/metrics", "/metrics/", "//metrics", "/%6detrics", "/%6D%65trics//"] {
            assert_eq!(resolve(&Method::GET, path).unwrap().route.endpoint, Endpoint::Metrics, "{path}");
        }
        let id = "0190f5b2-1c3e-7a4b-9c2d-3e4f5a6b7c8d";
        let matched = resolve(&Method::GET, &format!("/api//jobs/%30{}/result/", &id[1..])).unwrap();
        assert_eq!(matched.canonical_path(), format!("/api/jobs/{id}/result"));
        assert_eq!((matched.route.endpoint, matched.params), (Endpoint::JobResult, vec![id.to_owned()]));
    }

    #[test]
    fn unknown_paths_dot_segments_and_wrong_methods_are_refused() {
        for path in ["/nope", "/api/jobs/../../etc/passwd", "/api/jobs/%2e%2e", "/api/jobs/a%2Fb", "/jobs/%00", "/%ff"]
        {
            assert!(matches!(resolve(&Method::GET, path), Err(ApiError::NoRoute)), "{path}");
        }
        assert!(matches!(resolve(&Method::PUT, "/api/jobs"), Err(ApiError::MethodNotAllowed)));
        assert!(matches!(resolve(&Method::HEAD, "/healthz"), Err(ApiError::MethodNotAllowed)));
        assert_eq!(resolve(&Method::GET, "/").unwrap().route.endpoint, Endpoint::Index);
        assert_eq!(resolve(&Method::GET, "//").unwrap().route.endpoint, Endpoint::Index);
    }
}
