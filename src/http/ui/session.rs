//! Logging in and out of the page: `POST /login` trades an API key for a session cookie
//! and goes on to the page a link named (`next`, a same-origin path) or to `/`;
//! `POST /logout` ends the session on the server and clears the cookie. Both answer with
//! a redirect, so they work without JavaScript.
//!
//! SECURITY: the cookie is `HttpOnly` (no script reads it), `SameSite=Lax` (another site's
//! links may open a page with it, which is what links are for; its forms and scripts
//! cannot send it, and cross-site writes are refused by the gate anyway), `Secure` when
//! the request came over HTTPS through the trusted proxy, and expires; the key itself is
//! never stored in the browser. `next` is only ever a path on this server.

use std::sync::Arc;

use std::time::Duration;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, header};
use warp::reply::Response;

use super::{login_page, see_other};
use crate::auth::SESSION_COOKIE;
use crate::errors::ApiError;
use crate::http::openapi::{FieldKind, FormField};
use crate::http::routes::{Endpoint, at};
use crate::http::{AppState, Connection, error_response, read_small_body, with_state};

/// A login form is one short field; anything larger is not one.
const MAX_FORM_BYTES: usize = 4096;
/// Time to send it, whole: a login body that trickles in holds a connection for no more.
const FORM_TIMEOUT: Duration = Duration::from_secs(10);

/// The login form's fields, for the API reference.
pub(crate) const LOGIN_FIELDS: &[FormField] = &[
    FormField { name: "key", kind: FieldKind::Text, about: "An API key." },
    FormField { name: "next", kind: FieldKind::Text, about: "A path on this server to go to after logging in." },
];

pub fn routes(state: &Arc<AppState>) -> BoxedFilter<(Response,)> {
    let login = at(Endpoint::Login)
        .and(with_state(state))
        .and(warp::ext::get::<Connection>())
        .and(warp::body::stream())
        .then(|state: Arc<AppState>, connection: Connection, body| async move {
            let form = match read_small_body(body, MAX_FORM_BYTES, FORM_TIMEOUT).await {
                Ok(form) => form,
                Err(error) => return error_response(&error),
            };
            let field = |wanted: &str| {
                form_urlencoded::parse(&form).find(|(name, _)| name == wanted).map(|(_, value)| value.into_owned())
            };
            let Some(key) = field("key") else { return error_response(&ApiError::BadBody) };
            let next = field("next");
            let next = next.as_deref().and_then(same_origin_path);
            match state.auth.login(&key) {
                Ok((identity, value, lifetime)) => {
                    tracing::info!(target: "audit", event = "login", key = %identity.label(), "browser session started");
                    with_cookie(see_other(next.unwrap_or("/")), &cookie(&value, lifetime, connection.https))
                }
                Err(error) => login_page(&state, Some(&ApiError::from(error)), next),
            }
        });
    let logout = at(Endpoint::Logout)
        .and(with_state(state))
        .and(warp::ext::get::<Connection>())
        .and(warp::cookie::optional::<String>(SESSION_COOKIE))
        .map(|state: Arc<AppState>, connection: Connection, session: Option<String>| {
            if let Some(session) = session {
                state.auth.logout(&session);
            }
            with_cookie(see_other("/"), &cookie("", 0, connection.https))
        });
    login.or(logout).unify().boxed()
}

fn cookie(value: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

/// `next` if it is a path on this server. SECURITY: `//host`, `/\host` and paths with
/// whitespace or control characters (which browsers drop, making `/\t/host` into
/// `//host`) could lead elsewhere, so only visible ASCII after a single `/` passes.
pub(super) fn same_origin_path(next: &str) -> Option<&str> {
    let plain = next.starts_with('/')
        && next.len() <= 2048
        && !matches!(next.as_bytes().get(1), Some(b'/' | b'\\'))
        && next.bytes().all(|byte| byte.is_ascii_graphic() && byte != b'\\');
    plain.then_some(next)
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookies_carry_their_flags() {
        assert_eq!(cookie("v", 60, false), "wa_session=v; Max-Age=60; Path=/; HttpOnly; SameSite=Lax");
        assert!(cookie("v", 60, true).ends_with("; Secure"));
        assert!(cookie("", 0, false).starts_with("wa_session=; Max-Age=0;"));
    }

    #[test]
    fn next_is_only_ever_a_path_here() {
        for good in ["/", "/jobs/0190f5b2-1c3e-7a4b-9c2d-3e4f5a6b7c8d", "/?a=b%20c"] {
            assert_eq!(same_origin_path(good), Some(good));
        }
        for bad in ["//evil.example", "/\\evil.example", "/\t/evil.example", "https://evil.example", "evil", "", "/a b"]
        {
            assert_eq!(same_origin_path(bad), None, "{bad:?}");
        }
    }
}
