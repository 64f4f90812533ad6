//! Logging in and out of the page: `POST /login` trades an API key for a signed session
//! cookie, `POST /logout` clears it. Both answer with a redirect to `/`, so they work
//! without JavaScript.
//!
//! SECURITY: the cookie is `HttpOnly` (no script reads it), `SameSite=Strict` (no other
//! site's request carries it), `Secure` when the request came over HTTPS through the
//! trusted proxy, and expires; the key itself is never stored in the browser.

use std::sync::Arc;

use std::time::Duration;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, header};
use warp::reply::Response;

use super::{login_page, see_other};
use crate::auth::SESSION_COOKIE;
use crate::errors::ApiError;
use crate::http::routes::{Endpoint, at};
use crate::http::{AppState, Connection, error_response, read_small_body, with_state};

/// A login form is one short field; anything larger is not one.
const MAX_FORM_BYTES: usize = 4096;
/// Time to send it, whole: a login body that trickles in holds a connection for no more.
const FORM_TIMEOUT: Duration = Duration::from_secs(10);

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
            let key = form_urlencoded::parse(&form).find(|(name, _)| name == "key").map(|(_, key)| key);
            let Some(key) = key else { return error_response(&ApiError::BadBody) };
            match state.auth.login(&key) {
                Ok((identity, value, lifetime)) => {
                    tracing::info!(target: "audit", event = "login", key = %identity.label(), "browser session started");
                    with_cookie(see_other("/"), &cookie(&value, lifetime, connection.https))
                }
                Err(error) => login_page(&state, Some(&ApiError::from(error))),
            }
        });
    let logout = at(Endpoint::Logout)
        .and(warp::ext::get::<Connection>())
        .map(|connection: Connection| with_cookie(see_other("/"), &cookie("", 0, connection.https)));
    login.or(logout).unify().boxed()
}

fn cookie(value: &str, max_age: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Strict{secure}")
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
        assert_eq!(cookie("v", 60, false), "wa_session=v; Max-Age=60; Path=/; HttpOnly; SameSite=Strict");
        assert!(cookie("v", 60, true).ends_with("; Secure"));
        assert!(cookie("", 0, false).starts_with("wa_session=; Max-Age=0;"));
    }
}
