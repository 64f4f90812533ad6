//! The API reference: an OpenAPI 3.1 document of every route, served as `GET /openapi.json`
//! and rendered for people by `GET /api` (`ui/reference.rs`).
//!
//! Input: the route table ([`ROUTES`]) and the types handlers send and receive. Output: one
//! [`OpenApi`] value, built once. Paths, methods and who may call each route come from the
//! route table itself, each operation's text from [`operation`], an exhaustive match on
//! [`Endpoint`] (a new route does not compile until it is documented), and every JSON shape
//! from the `ToSchema` derive on the type that is serialized, so none of them can drift
//! from what the server does. Form fields sit next to the parsers that read them.

use std::sync::LazyLock;

use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Required, ResponseBuilder, Schema};
use utoipa::{IntoParams, ToSchema};
use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, Method, header};

use super::api::{JobList, ListQuery, ResultQuery};
use super::events::{Progress, SegmentEvent};
use super::job_view::JobView;
use super::keys::{KeyFields, KeyList, NewKey};
use super::openai::{ModelList, TextOnly};
use super::routes::{Access, Endpoint, ROUTES, Route, at};
use super::ui::HistoryQuery;
use super::{ErrorBody, Health, Readiness};
use crate::auth::{KeyView, SESSION_COOKIE};
use crate::errors::ApiError;
use crate::formats::{Format, VerboseJson};

/// The security schemes' names in the document.
const BEARER: &str = "api_key";
const COOKIE: &str = "session";
/// The role administrators' routes require.
pub(crate) const ADMIN_ROLE: &str = "admin";

/// One field of a form a route reads.
#[derive(Clone, Copy)]
pub(crate) struct FormField {
    pub name: &'static str,
    pub kind: FieldKind,
    pub about: &'static str,
}

#[derive(Clone, Copy)]
pub(crate) enum FieldKind {
    /// The uploaded file.
    File,
    Text,
    /// true/false, also 1/0, on/off, yes/no.
    Flag,
    Number,
    /// One of these values.
    OneOf(&'static [&'static str]),
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "whisper-appliance",
        description = "Self-hosted speech-to-text. Every route the server answers, generated from its route table \
                       and types. Errors always have the body `ErrorBody`. The realtime WebSocket's events are \
                       described in the README's section \"Live transcription (/v1/realtime)\"."
    ),
    components(schemas(
        ErrorBody,
        Health,
        Readiness,
        JobView,
        JobList,
        VerboseJson,
        TextOnly,
        ModelList,
        KeyView,
        KeyList,
        NewKey,
        KeyFields,
        Progress,
        SegmentEvent
    ))
)]
struct Document;

static DOCUMENT: LazyLock<OpenApi> = LazyLock::new(build);

/// The document, built on first use (the server builds it before it listens).
pub fn document() -> &'static OpenApi {
    &DOCUMENT
}

/// `GET /openapi.json`: the document, serialized once.
pub fn route() -> BoxedFilter<(warp::reply::Response,)> {
    let body = document().to_pretty_json().map_err(|error| error.to_string());
    at(Endpoint::OpenApi)
        .map(move || {
            super::respond(body.clone().map_err(|error| ApiError::Internal(error.into())).map(|body| {
                let mut response = body.into_response();
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                response
            }))
        })
        .boxed()
}

fn build() -> OpenApi {
    let mut document = <Document as utoipa::OpenApi>::openapi();
    document.info.version = env!("CARGO_PKG_VERSION").to_owned();
    for route in ROUTES {
        document.paths.add_path_operation(route.template, vec![http_method(&route.method)], documented(route));
    }
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "An API key (`Authorization: Bearer KEY`), made with `whisper-appliance keys create`, \
                     the admin page or POST /api/keys. With authentication off, every request is a caller.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        COOKIE,
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "The page's session, from POST /login.",
        ))),
    );
    document
}

fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::POST => HttpMethod::Post,
        Method::DELETE => HttpMethod::Delete,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        _ => HttpMethod::Get,
    }
}

/// The route's operation with what its guard implies: who may call it, and the answers the
/// gate gives before the handler runs.
fn documented(route: &Route) -> Operation {
    let mut operation = operation(route.endpoint);
    operation.operation_id = Some(format!("{:?}", route.endpoint));
    let responses = &mut operation.responses.responses;
    if route.access != Access::Public {
        // OpenAPI 3.1 lets a requirement name the roles it needs, for schemes other than OAuth.
        let roles: &[&str] = if route.access == Access::Admin { &[ADMIN_ROLE] } else { &[] };
        operation.security = Some(vec![
            SecurityRequirement::new(BEARER, roles.iter().copied()),
            SecurityRequirement::new(COOKIE, roles.iter().copied()),
        ]);
        responses.insert("401".to_owned(), error("No valid API key or session.").into());
    }
    if route.access == Access::Admin {
        responses.insert("403".to_owned(), error("The key is not an administrator's.").into());
    }
    if route.metered {
        responses.insert("429".to_owned(), error("Over the caller's requests per minute; see Retry-After.").into());
    }
    operation
}

/// What each route does, takes and answers.
fn operation(endpoint: Endpoint) -> Operation {
    let job_id = || path_param("id", "A job's id.", Some(KnownFormat::Uuid));
    let (tag, summary) = match endpoint {
        Endpoint::Index => ("pages", "The upload page and history, or the login form without a session"),
        Endpoint::Health => ("service", "Liveness: the process answers"),
        Endpoint::Ready => ("service", "Readiness: model loaded, database and temporary directory usable"),
        Endpoint::Metrics => ("service", "Prometheus metrics (OpenMetrics text)"),
        Endpoint::JobCreate => ("jobs", "Upload a recording and queue a job for it"),
        Endpoint::JobList => ("jobs", "The caller's jobs, newest first, a page at a time"),
        Endpoint::JobGet => ("jobs", "One job"),
        Endpoint::JobDelete => ("jobs", "Delete a job and its transcript (cancels it if it runs)"),
        Endpoint::JobResult => ("jobs", "A finished job's transcript in a format"),
        Endpoint::JobEvents => ("jobs", "A job's progress and segments as Server-Sent Events"),
        Endpoint::JobCancel => ("jobs", "Cancel a queued or running job"),
        Endpoint::Transcriptions => ("openai", "Transcribe a recording, as OpenAI's API does"),
        Endpoint::Translations => ("openai", "Transcribe a recording into English, as OpenAI's API does"),
        Endpoint::Models => ("openai", "The installed models, as OpenAI's API lists them"),
        Endpoint::Realtime => ("openai", "Live transcription over a WebSocket (OpenAI's Realtime API)"),
        Endpoint::FormSubmit => ("pages", "The page's upload form, without JavaScript"),
        Endpoint::FormBack => ("pages", "Back to the page (after reloading a refused form post)"),
        Endpoint::JobPage => ("pages", "A job's page, refreshing itself until the job ends"),
        Endpoint::JobPageDelete => ("pages", "Delete a job from its page"),
        Endpoint::Login => ("pages", "Trade an API key for a session cookie"),
        Endpoint::Logout => ("pages", "End the session"),
        Endpoint::Asset => ("pages", "A static asset under its content-hashed URL, cached for good"),
        Endpoint::Admin => ("admin", "The operator's page: queue, models, disk, memory, keys"),
        Endpoint::AdminKeyCreate => ("admin", "Make a key from the admin page's form"),
        Endpoint::AdminKeyRevoke => ("admin", "Revoke a key from the admin page's form"),
        Endpoint::KeyList => ("keys", "Every API key, without its secret"),
        Endpoint::KeyCreate => ("keys", "Make an API key; the key is in this answer only"),
        Endpoint::KeyRevoke => ("keys", "Revoke an API key; it stops working at once"),
        Endpoint::OpenApi => ("docs", "This document (OpenAPI 3.1)"),
        Endpoint::Reference => ("docs", "This document as a page"),
    };
    let builder = OperationBuilder::new().tag(tag).summary(Some(summary));
    let builder = match endpoint {
        Endpoint::Index => builder
            .parameters(Some(HistoryQuery::into_params(|| Some(ParameterIn::Query))))
            .response("200", html("The page."))
            .response("303", redirect("Logged in meanwhile: on to `next`.")),
        Endpoint::Health => builder.response("200", json::<Health>("The process answers.")),
        Endpoint::Ready => builder
            .response("200", json::<Readiness>("Ready."))
            .response("503", json::<Readiness>("Not ready; the body says what is missing.")),
        Endpoint::Metrics => builder.response("200", text(crate::metrics::CONTENT_TYPE, "The metrics.")),
        Endpoint::JobCreate => upload(builder, super::api::JOB_FIELDS)
            .response("202", json::<JobView>("Queued; `Location` is the job's URL."))
            .response("415", error("The file is not audio that can be decoded.")),
        Endpoint::JobList => builder
            .parameters(Some(ListQuery::into_params(|| Some(ParameterIn::Query))))
            .parameter(header_param("If-None-Match", "The ETag of a page already seen."))
            .response("200", json::<JobList>("A page of jobs; `ETag` identifies it."))
            .response("304", bare("Nothing on the page changed.")),
        Endpoint::JobGet | Endpoint::JobCancel => builder
            .parameter(job_id())
            .response("200", json::<JobView>("The job."))
            .response("404", error("No such job that the caller may see.")),
        Endpoint::JobDelete => builder
            .parameter(job_id())
            .response("204", bare("Deleted."))
            .response("404", error("No such job that the caller may see.")),
        Endpoint::JobResult => builder
            .parameter(job_id())
            .parameters(Some(ResultQuery::into_params(|| Some(ParameterIn::Query))))
            .response("200", transcript())
            .response("404", error("No such job that the caller may see."))
            .response("409", error("The job has not finished.")),
        Endpoint::JobEvents => builder
            .parameter(job_id())
            .response(
                "200",
                ResponseBuilder::new()
                    .description(
                        "Events `job` (a `JobView`), `progress` (a `Progress`) and `segment` (a `SegmentEvent`); \
                         the stream ends after the last `job` event.",
                    )
                    .content("text/event-stream", Content::new(Some(string())))
                    .build(),
            )
            .response("404", error("No such job that the caller may see.")),
        Endpoint::Transcriptions | Endpoint::Translations => {
            let fields = if endpoint == Endpoint::Translations {
                super::openai::TRANSLATION_FIELDS
            } else {
                super::openai::FIELDS
            };
            upload(builder, fields).response("200", openai_transcript()).response(
                "422",
                error("Transcription failed; also 415 for a file that is not audio, 413 for one too large."),
            )
        }
        Endpoint::Models => builder.response("200", json::<ModelList>("`whisper-1` (the default) and every model.")),
        Endpoint::Realtime => builder
            .description(Some(
                "A WebSocket upgrade. Client and server events are OpenAI's Realtime transcription events; \
                 see the README's section \"Live transcription (/v1/realtime)\".",
            ))
            .parameter(query_param("intent", "`transcription`, the only intent served."))
            .response("101", bare("Switching to the WebSocket."))
            .response("400", error("Not a WebSocket upgrade, or another intent.")),
        Endpoint::FormSubmit => upload(builder, super::api::JOB_FIELDS)
            .response("303", redirect("Queued: on to the job's page."))
            .response("400", html("Refused: the form again with the reason, with the refusal's status.")),
        Endpoint::FormBack | Endpoint::JobPageDelete => {
            let builder = if endpoint == Endpoint::JobPageDelete { builder.parameter(job_id()) } else { builder };
            builder.response("303", redirect("On to the page."))
        }
        Endpoint::JobPage => {
            builder.parameter(job_id()).response("200", html("The job's page.")).response("404", html("No such job."))
        }
        Endpoint::Login => form(builder, super::ui::LOGIN_FIELDS)
            .response("303", redirect("Logged in: the cookie is set; on to `next` or the page."))
            .response("401", html("The login form again, saying why.")),
        Endpoint::Logout => builder.response("303", redirect("Logged out: the cookie is cleared.")),
        Endpoint::Asset => builder
            .parameter(path_param("hash", "The asset's content hash.", None))
            .parameter(path_param("file", "The asset's file name.", None))
            .response("200", bare("The asset, with its own content type; immutable."))
            .response("304", bare("Unchanged (`If-None-Match`)."))
            .response("404", error("No such asset, or an old hash.")),
        Endpoint::Admin => builder.response("200", html("The page.")),
        Endpoint::AdminKeyCreate => form(builder, super::keys::FIELDS)
            .response("200", html("The page, showing the new key once."))
            .response("400", html("The page, saying what was refused.")),
        Endpoint::AdminKeyRevoke => builder
            .parameter(path_param("id", "The key's id.", None))
            .response("303", redirect("Revoked: back to the admin page.")),
        Endpoint::KeyList => builder.response("200", json::<KeyList>("The keys.")),
        Endpoint::KeyCreate => form(builder, super::keys::FIELDS)
            .request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content("application/json", Content::new(Some(schema::<KeyFields>())))
                    .content("application/x-www-form-urlencoded", fields_content(super::keys::FIELDS))
                    .build(),
            ))
            .response("201", json::<NewKey>("Made; `key` is shown only here."))
            .response("400", error("No name, a bad name or an unknown role."))
            .response("409", error("A key has that name.")),
        Endpoint::KeyRevoke => builder
            .parameter(path_param("id", "The key's id or name.", None))
            .response("200", json::<KeyView>("Revoked."))
            .response("404", error("No such key.")),
        Endpoint::OpenApi => builder.response("200", text("application/json", "The OpenAPI 3.1 document, as JSON.")),
        Endpoint::Reference => builder.response("200", html("The page.")),
    };
    builder.build()
}

/// A multipart upload's fields, and the refusals every upload route shares.
fn upload(builder: OperationBuilder, fields: &[FormField]) -> OperationBuilder {
    let body =
        RequestBodyBuilder::new().required(Some(Required::True)).content("multipart/form-data", fields_content(fields));
    builder
        .request_body(Some(body.build()))
        .response("400", error("A field is refused, or the form is malformed; `param` names the field."))
        .response("413", error("The file or the audio is too long."))
        .response("503", error("The queue is full or the server is stopping; see Retry-After."))
        .response("507", error("The disk is too full to take the upload."))
}

/// A form-encoded body.
fn form(builder: OperationBuilder, fields: &[FormField]) -> OperationBuilder {
    let body = RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content("application/x-www-form-urlencoded", fields_content(fields));
    builder.request_body(Some(body.build()))
}

fn fields_content(fields: &[FormField]) -> Content {
    let mut object = ObjectBuilder::new().schema_type(Type::Object);
    for field in fields {
        let property = match field.kind {
            FieldKind::File => {
                ObjectBuilder::new().schema_type(Type::String).content_media_type("application/octet-stream")
            }
            FieldKind::Text => ObjectBuilder::new().schema_type(Type::String),
            FieldKind::Flag => ObjectBuilder::new().schema_type(Type::Boolean),
            FieldKind::Number => ObjectBuilder::new().schema_type(Type::Number),
            FieldKind::OneOf(values) => {
                ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values.iter().copied()))
            }
        };
        object = object.property(field.name, property.description(Some(field.about)));
        if matches!(field.kind, FieldKind::File) {
            object = object.required(field.name);
        }
    }
    Content::new(Some(object.build()))
}

/// A result's body in each format `?format=` names.
fn transcript() -> utoipa::openapi::Response {
    let mut response = ResponseBuilder::new().description("The transcript, in the format asked for.");
    for format in Format::ALL {
        let body = if *format == Format::Json { schema::<VerboseJson>() } else { string().into() };
        response = response.content(format.content_type(), Content::new(Some(body)));
    }
    response.build()
}

/// OpenAI's answer: `json` (text only) or `verbose_json`, or plain text, SRT or WebVTT.
fn openai_transcript() -> utoipa::openapi::Response {
    let json = OneOfBuilder::new().item(schema::<TextOnly>()).item(schema::<VerboseJson>());
    let mut response = ResponseBuilder::new()
        .description("The transcript in `response_format`: `json` and `verbose_json` as JSON, the rest as text.")
        .content("application/json", Content::new(Some(Schema::OneOf(json.build()))));
    for format in [Format::Txt, Format::Srt, Format::Vtt] {
        response = response.content(format.content_type(), Content::new(Some(string())));
    }
    response.build()
}

fn schema<T: ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

fn string() -> Schema {
    ObjectBuilder::new().schema_type(Type::String).build().into()
}

fn json<T: ToSchema>(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(schema::<T>())))
        .build()
}

fn error(description: &str) -> utoipa::openapi::Response {
    json::<ErrorBody>(description)
}

fn text(content_type: &str, description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new().description(description).content(content_type, Content::new(Some(string()))).build()
}

fn html(description: &str) -> utoipa::openapi::Response {
    text("text/html; charset=utf-8", description)
}

fn redirect(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new().description(format!("{description} (`Location`)")).build()
}

fn bare(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new().description(description).build()
}

fn path_param(name: &str, description: &str, format: Option<KnownFormat>) -> Parameter {
    let schema = ObjectBuilder::new().schema_type(Type::String).format(format.map(SchemaFormat::KnownFormat));
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn query_param(name: &str, description: &str) -> Parameter {
    optional_param(name, ParameterIn::Query, description)
}

fn header_param(name: &str, description: &str) -> Parameter {
    optional_param(name, ParameterIn::Header, description)
}

fn optional_param(name: &str, location: ParameterIn, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(location)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_guard() {
        let document = document();
        for route in ROUTES {
            let item = document.paths.get_path_item(route.template).unwrap_or_else(|| panic!("{route:?}"));
            let operation = match route.method {
                Method::POST => &item.post,
                Method::DELETE => &item.delete,
                _ => &item.get,
            };
            let operation = operation.as_ref().unwrap_or_else(|| panic!("{route:?}"));
            assert_eq!(operation.security.is_some(), route.access != Access::Public, "{route:?}");
            let responses = &operation.responses.responses;
            assert!(responses.keys().any(|status| status.starts_with(['1', '2', '3'])), "{route:?} answers nothing");
            assert_eq!(responses.contains_key("403"), route.access == Access::Admin, "{route:?}");
        }
    }
}
