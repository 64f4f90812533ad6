//! API keys through the server, for administrators: `GET /api/keys` lists them,
//! `POST /api/keys` makes one (its key shown in that answer only), `DELETE /api/keys/{id}`
//! revokes one. The same operations as the `keys` command, which reaches a running server
//! through its control socket (`control.rs`); either way a change works at once.
//!
//! Input: a JSON body `{"name": "...", "role": "user" | "admin"}` or the same two fields
//! form-encoded (the admin page's form posts them; [`key_request`] reads both). Output:
//! key records without their hashes ([`KeyView`], what `keys list` prints).

use std::sync::Arc;
use std::time::Duration;

use bytes::Buf;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::auth::{KeyView, Role};
use crate::errors::ApiError;
use crate::http::openapi::{FieldKind, FormField};
use crate::http::routes::{Endpoint, at, at_id};
use crate::http::{AppState, json, read_small_body, respond, with_state};

/// A name and a role are a few dozen bytes.
const MAX_BODY_BYTES: usize = 4096;
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The fields [`key_request`] reads from a form, for the API reference.
pub(crate) const FIELDS: &[FormField] = &[
    FormField { name: "name", kind: FieldKind::Text, about: "The key's name: who or what uses it." },
    FormField { name: "role", kind: FieldKind::OneOf(&["user", "admin"]), about: "`user` (the default) or `admin`." },
];

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct KeyList {
    keys: Vec<KeyView>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct NewKey {
    #[serde(flatten)]
    record: KeyView,
    /// The key itself: shown once, here; only its hash is kept.
    key: String,
}

/// A key to make: its name, and `user` (the default) or `admin`.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct KeyFields {
    name: String,
    #[schema(value_type = Option<Role>)]
    #[serde(default)]
    role: Option<String>,
}

pub fn routes(state: &Arc<AppState>) -> BoxedFilter<(Response,)> {
    let list = at(Endpoint::KeyList).and(with_state(state)).map(|state: Arc<AppState>| {
        let keys = state.auth.keys().iter().map(KeyView::from).collect();
        json(StatusCode::OK, &KeyList { keys })
    });
    let create = at(Endpoint::KeyCreate)
        .and(with_state(state))
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::stream())
        .then(|state: Arc<AppState>, content_type: Option<String>, body| async move {
            let made = match read_key_request(content_type.as_deref(), body).await {
                Ok((name, role)) => state.auth.create_key(&name, role).map_err(ApiError::from),
                Err(error) => Err(error),
            };
            respond(made.map(|(record, key)| {
                tracing::info!(target: "audit", event = "key created", id = %record.id, name = %record.name, role = record.role.name(), "API key created");
                json(StatusCode::CREATED, &NewKey { record: KeyView::from(&record), key })
            }))
        });
    let revoke = at_id(Endpoint::KeyRevoke).and(with_state(state)).map(|id: String, state: Arc<AppState>| {
        respond(state.auth.revoke_key(&id).map_err(ApiError::from).map(|record| {
            tracing::info!(target: "audit", event = "key revoked", id = %record.id, name = %record.name, "API key revoked");
            json(StatusCode::OK, &KeyView::from(&record))
        }))
    });
    list.or(create).unify().or(revoke).unify().boxed()
}

/// The name and role of a key to make, from a small JSON or form-encoded body; the role is
/// `user` unless it says `admin`.
pub(crate) async fn read_key_request<S, B>(content_type: Option<&str>, body: S) -> Result<(String, Role), ApiError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let body = read_small_body(body, MAX_BODY_BYTES, BODY_TIMEOUT).await?;
    key_request(content_type, &body)
}

fn key_request(content_type: Option<&str>, body: &[u8]) -> Result<(String, Role), ApiError> {
    let is_json = content_type.is_some_and(|value| value.trim_start().starts_with("application/json"));
    let fields: KeyFields = if is_json {
        serde_json::from_slice(body).map_err(|_| ApiError::BadKeyRequest)?
    } else {
        let field = |wanted: &str| {
            form_urlencoded::parse(body).find(|(name, _)| name == wanted).map(|(_, value)| value.into_owned())
        };
        KeyFields { name: field("name").ok_or(ApiError::BadKeyRequest)?, role: field("role") }
    };
    let role = match fields.role.as_deref().map(str::trim) {
        None | Some("" | "user") => Role::User,
        Some("admin") => Role::Admin,
        Some(other) => return Err(ApiError::BadRole { value: other.to_owned() }),
    };
    Ok((fields.name, role))
}
