//! The job API under `/api/jobs`: create from an upload, list, read, follow, fetch the
//! result in any format, cancel, delete.
//!
//! Ids that do not parse answer 404 like ids that do not exist, and someone else's job
//! is not found either, so a client learns nothing about jobs it may not see.

use std::sync::Arc;

use bytes::Buf;
use futures_util::{Stream, TryStreamExt as _};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::job_view::{JobView, parse_id};
use super::openapi::{FieldKind, FormField};
use super::routes::{Endpoint, at, at_id};
use super::{AppState, Caller, caller, json, respond, with_state};
use crate::engine::Request;
use crate::errors::ApiError;
use crate::formats::Format;
use crate::jobs::{NewJob, Snapshot};
use crate::upload::{self, Received};

const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;

pub fn routes(state: &Arc<AppState>) -> BoxedFilter<(Response,)> {
    let create = at(Endpoint::JobCreate)
        .and(upload_request(state))
        .then(|state: Arc<AppState>, caller: Caller, content_type, body| async move {
            let snapshot = submit_upload(&state, &caller, content_type, body, job_request).await?;
            let view = JobView::new(&state, &snapshot);
            let mut response = json(StatusCode::ACCEPTED, &view);
            if let Ok(location) = HeaderValue::from_str(&view.links.job) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            Ok(response)
        })
        .map(respond);
    let list = at(Endpoint::JobList)
        .and(with_state(state))
        .and(caller())
        .and(warp::query::<ListQuery>())
        .and(warp::header::optional::<String>("if-none-match"))
        .map(|state: Arc<AppState>, caller: Caller, query: ListQuery, if_none_match: Option<String>| {
            respond(list_jobs(&state, &caller, &query, if_none_match.as_deref()))
        });
    let get = at_id(Endpoint::JobGet).and(with_state(state)).and(caller()).map(
        |id: String, state: Arc<AppState>, caller: Caller| {
            respond(parse_id(&id).and_then(|id| {
                let snapshot = state.jobs.get(id, &caller.scope)?;
                Ok(json(StatusCode::OK, &JobView::new(&state, &snapshot)))
            }))
        },
    );
    let result = at_id(Endpoint::JobResult).and(with_state(state)).and(caller()).and(warp::query::<ResultQuery>()).map(
        |id: String, state: Arc<AppState>, caller: Caller, query: ResultQuery| {
            respond(result(&state, &caller, &id, query.format.as_deref()))
        },
    );
    let events = at_id(Endpoint::JobEvents)
        .and(with_state(state))
        .and(caller())
        .map(|id: String, state: Arc<AppState>, caller: Caller| respond(super::events::stream(&state, &caller, &id)));
    let cancel = at_id(Endpoint::JobCancel).and(with_state(state)).and(caller()).map(
        |id: String, state: Arc<AppState>, caller: Caller| {
            respond(parse_id(&id).and_then(|id| {
                state.jobs.cancel(id, &caller.scope)?;
                let snapshot = state.jobs.get(id, &caller.scope)?;
                Ok(json(StatusCode::OK, &JobView::new(&state, &snapshot)))
            }))
        },
    );
    let delete = at_id(Endpoint::JobDelete).and(with_state(state)).and(caller()).map(
        |id: String, state: Arc<AppState>, caller: Caller| {
            respond(parse_id(&id).and_then(|id| {
                state.jobs.delete(id, &caller.scope)?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }))
        },
    );
    create
        .or(list)
        .unify()
        .or(get)
        .unify()
        .or(result)
        .unify()
        .or(events)
        .unify()
        .or(cancel)
        .unify()
        .or(delete)
        .unify()
        .boxed()
}

/// What an upload route hands to [`submit_upload`]: the state, caller, declared content
/// type and body, the body still streaming in.
pub(crate) fn upload_request(
    state: &Arc<AppState>,
) -> impl Filter<
    Extract = (
        Arc<AppState>,
        Caller,
        Option<String>,
        impl Stream<Item = Result<impl Buf + Send + 'static + use<>, warp::Error>> + Send + 'static + use<>,
    ),
    Error = warp::Rejection,
> + Clone
+ use<> {
    with_state(state).and(caller()).and(warp::header::optional::<String>("content-type")).and(warp::body::stream())
}

/// Streams a multipart upload to disk, checks it and queues a job for it. The gate has
/// already refused uploads that are too large by their length or find the queue full.
///
/// `options` reads the job's settings from the form's text fields; it runs before the
/// file's content is checked, so a bad option is reported without decoding anything.
pub async fn submit_upload<S, B>(
    state: &AppState,
    caller: &Caller,
    content_type: Option<String>,
    body: S,
    options: impl FnOnce(&Received) -> Result<Request, ApiError>,
) -> Result<Snapshot, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf + Send + 'static,
{
    let body = body.map_ok(|mut chunk| chunk.copy_to_bytes(chunk.remaining())).map_err(Box::new);
    let received =
        upload::receive::<_, Box<warp::Error>>(state.jobs.temp(), content_type.as_deref(), body, &state.upload_limits)
            .await?;
    state.metrics.uploaded(received.upload.size());
    let mut request = options(&received)?;
    // The record names the model that will run, so the job says what produced it.
    let model = state.jobs.models().resolve(request.model.as_deref())?;
    model.check(&request)?;
    request.model = Some(model.name.clone());
    let Received { upload, file_name, declared_type, .. } = received;
    let jobs = Arc::clone(&state.jobs);
    let owner = caller.owner.clone();
    tokio::task::spawn_blocking(move || {
        let source = upload::check(&upload.path(), &file_name, declared_type.as_deref())?;
        tracing::debug!(upload = %upload.id(), ?source, "upload accepted");
        Ok(jobs.submit(NewJob { owner, file_name, request, upload })?)
    })
    .await
    .map_err(|join| ApiError::Internal(Box::new(join)))?
}

/// The fields [`job_request`] reads, for the API reference.
pub(crate) const JOB_FIELDS: &[FormField] = &[
    FormField { name: "file", kind: FieldKind::File, about: "The recording: any common audio or video format." },
    FormField { name: "model", kind: FieldKind::Text, about: "An installed model's name; the default if absent." },
    FormField {
        name: "language",
        kind: FieldKind::Text,
        about: "A language code, or `auto` (the default) to detect it.",
    },
    FormField { name: "translate", kind: FieldKind::Flag, about: "Translate into English. Default false." },
    FormField { name: "prompt", kind: FieldKind::Text, about: "Text to steer spelling and style." },
    FormField {
        name: "vad",
        kind: FieldKind::Flag,
        about: "Transcribe only what the speech detector finds. Default true.",
    },
    FormField { name: "words", kind: FieldKind::Flag, about: "Time each word. Default false." },
];

/// The job API's form fields: `model` (an installed model's name; the default if absent),
/// `language` (a code or `auto`), `translate`, `prompt`, `vad`, `words`; the page's no-JS
/// form sends the same fields and is read by this same function.
pub(crate) fn job_request(form: &Received) -> Result<Request, ApiError> {
    let translate = bool_field(form, "translate", false)?;
    let mut request = Request::new(form.field("language").unwrap_or("auto"), translate)?;
    request.model = form.field("model").map(str::trim).filter(|model| !model.is_empty()).map(str::to_owned);
    request.prompt = form.field("prompt").map(str::to_owned).filter(|prompt| !prompt.trim().is_empty());
    request.vad = bool_field(form, "vad", true)?;
    request.words = bool_field(form, "words", false)?;
    Ok(request)
}

/// A true/false form field (also 1/0, on/off, yes/no); absent or empty gives `default`.
pub(crate) fn bool_field(form: &Received, name: &'static str, default: bool) -> Result<bool, ApiError> {
    match form.field(name).map(str::trim) {
        None | Some("") => Ok(default),
        Some("false" | "0" | "off" | "no") => Ok(false),
        Some("true" | "1" | "on" | "yes") => Ok(true),
        Some(other) => Err(ApiError::BadFlag { name, value: other.to_owned() }),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Jobs per page, 1 to 100; 20 if absent.
    limit: Option<usize>,
    /// Jobs older than this job id (the `next` link carries it).
    before: Option<String>,
    /// Only jobs whose file name or transcript contains this, ignoring case.
    q: Option<String>,
}

/// A page of jobs, newest first.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct JobList {
    jobs: Vec<JobView>,
    /// The next page, newest first, or null at the end.
    next: Option<String>,
}

/// A page of the caller's jobs. The ETag is a digest of the body, so a client polling for
/// changes (the page keeps its history current this way) gets a bodiless 304 while
/// nothing it would see has changed: no job added, removed, advanced or finished.
fn list_jobs(
    state: &AppState,
    caller: &Caller,
    query: &ListQuery,
    if_none_match: Option<&str>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let before = query.before.as_deref().map(parse_id).transpose()?;
    let search = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let (page, more) = state.jobs.list(&caller.scope, before, limit, search);
    let next = match (more, page.last()) {
        (true, Some(last)) => {
            let search = search.map(|q| format!("&q={}", percent_encode(q))).unwrap_or_default();
            Some(format!("/api/jobs?limit={limit}&before={}{search}", last.record.id))
        }
        _ => None,
    };
    let jobs = page.iter().map(|snapshot| JobView::new(state, snapshot)).collect();
    let body = serde_json::to_vec(&JobList { jobs, next }).map_err(|error| ApiError::Internal(Box::new(error)))?;
    let digest = sha2::Sha256::digest(&body);
    let etag = format!("\"{}\"", digest[..8].iter().map(|byte| format!("{byte:02x}")).collect::<String>());
    let mut response = if if_none_match.is_some_and(|header| super::ui::etag_matches(header, &etag)) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = body.into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    };
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

/// Text as a URL's query string or an RFC 5987 header value carries it: unreserved bytes
/// as they are, the rest as `%XX`.
pub(crate) fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ResultQuery {
    /// `txt` (the default), `srt`, `vtt`, `json` or `tsv`.
    format: Option<String>,
}

fn result(state: &AppState, caller: &Caller, id: &str, format: Option<&str>) -> Result<Response, ApiError> {
    let format: Format = format.unwrap_or("txt").parse()?;
    let id = parse_id(id)?;
    let transcript = state.jobs.result(id, &caller.scope)?;
    let record = state.jobs.get(id, &caller.scope)?.record;
    let mut response = format.render(&transcript).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Ok(disposition) = HeaderValue::from_str(&attachment(&record.file_name, format)) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}

/// `attachment` with an ASCII fallback name and the UTF-8 name per RFC 6266 / 5987.
fn attachment(file_name: &str, format: Format) -> String {
    let stem = file_name.rsplit_once('.').map_or(file_name, |(stem, _)| stem);
    let name = format!("{stem}.{}", format.extension());
    let ascii: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._- ".contains(c) { c } else { '_' }).collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{}", percent_encode(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_names_are_safe_and_keep_unicode() {
        assert_eq!(
            attachment("Interview Müller.m4a", Format::Srt),
            "attachment; filename=\"Interview M_ller.srt\"; filename*=UTF-8''Interview%20M%C3%BCller.srt"
        );
        assert_eq!(attachment("a\"b.wav", Format::Txt), "attachment; filename=\"a_b.txt\"; filename*=UTF-8''a%22b.txt");
    }
}
