//! The OpenAI-compatible API: `POST /v1/audio/transcriptions`, `POST /v1/audio/translations`
//! and `GET /v1/models`, so scripts written for OpenAI's SDK work by changing `base_url`.
//!
//! A request becomes an ordinary job (it shows in the job list) and the answer waits for
//! it, in the shape OpenAI's API uses: `json` `{"text"}`, `text`, `srt`, `vtt` or
//! `verbose_json`; errors as `{"error": {"message", "type", "code", "param"}}`. A client
//! that hangs up before the answer takes its job with it.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use serde::Serialize;
use uuid::Uuid;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::openapi::{FieldKind, FormField};
use super::routes::{Endpoint, at};
use super::{AppState, Caller, bool_field, json, respond, submit_upload, upload_request, with_state};
use crate::engine::{OPENAI_MODEL, Request};
use crate::errors::{ApiError, JobError};
use crate::formats::{self, Format};
use crate::jobs::{Jobs, Scope, Status};
use crate::upload::Received;

pub fn routes(state: &Arc<AppState>) -> BoxedFilter<(Response,)> {
    let audio = |endpoint: Endpoint, translate: bool| {
        at(endpoint)
            .and(upload_request(state))
            .then(move |state: Arc<AppState>, caller: Caller, content_type, body| async move {
                let mut openai_format = (ResponseFormat::Json, false);
                let options = |form: &Received| {
                    openai_format = (response_format(form)?, word_timestamps(form)?);
                    let mut request = openai_request(&state, form, translate)?;
                    request.words = openai_format.1;
                    Ok(request)
                };
                let snapshot = submit_upload(&state, &caller, content_type, body, options).await?;
                answer(&state, &caller, snapshot.record.id, openai_format.0, openai_format.1).await
            })
            .map(respond)
    };
    let models = at(Endpoint::Models).and(with_state(state)).map(|state: Arc<AppState>| models(&state));
    audio(Endpoint::Transcriptions, false).or(audio(Endpoint::Translations, true)).unify().or(models).unify().boxed()
}

/// `response_format` as OpenAI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseFormat {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

impl ResponseFormat {
    fn render_as(self) -> Format {
        match self {
            ResponseFormat::Json | ResponseFormat::VerboseJson => Format::Json,
            ResponseFormat::Text => Format::Txt,
            ResponseFormat::Srt => Format::Srt,
            ResponseFormat::Vtt => Format::Vtt,
        }
    }
}

const RESPONSE_FORMATS: &[&str] = &["json", "text", "srt", "vtt", "verbose_json"];

fn response_format(form: &Received) -> Result<ResponseFormat, ApiError> {
    match form.field("response_format").map(str::trim).unwrap_or("json") {
        "" | "json" => Ok(ResponseFormat::Json),
        "text" => Ok(ResponseFormat::Text),
        "srt" => Ok(ResponseFormat::Srt),
        "vtt" => Ok(ResponseFormat::Vtt),
        "verbose_json" => Ok(ResponseFormat::VerboseJson),
        other => Err(ApiError::BadResponseFormat { value: other.to_owned() }),
    }
}

/// Whether `timestamp_granularities[]` asks for words, which only `verbose_json` can carry.
fn word_timestamps(form: &Received) -> Result<bool, ApiError> {
    let words = form.fields_named("timestamp_granularities[]").any(|granularity| granularity.trim() == "word");
    if words && response_format(form)? != ResponseFormat::VerboseJson {
        return Err(ApiError::WordTimestamps);
    }
    Ok(words)
}

/// The fields a transcription reads ([`response_format`], [`word_timestamps`],
/// [`openai_request`]), for the API reference.
pub(crate) const FIELDS: &[FormField] = &[
    FormField { name: "file", kind: FieldKind::File, about: "The recording: any common audio or video format." },
    FormField {
        name: "model",
        kind: FieldKind::Text,
        about: "`whisper-1` (the default model) or an installed model's name.",
    },
    FormField {
        name: "language",
        kind: FieldKind::Text,
        about: "A language code, or `auto` (the default) to detect it.",
    },
    FormField { name: "prompt", kind: FieldKind::Text, about: "Text to steer spelling and style." },
    FormField {
        name: "response_format",
        kind: FieldKind::OneOf(RESPONSE_FORMATS),
        about: "The answer's format; `json` if absent.",
    },
    FormField { name: "temperature", kind: FieldKind::Number, about: "Sampling temperature, 0 to 1." },
    FormField {
        name: "timestamp_granularities[]",
        kind: FieldKind::OneOf(&["segment", "word"]),
        about: "`word` times each word (with `verbose_json` only).",
    },
    FormField {
        name: "vad",
        kind: FieldKind::Flag,
        about: "Transcribe only what the speech detector finds. Default true.",
    },
];

/// A translation's fields: a transcription's but `language`, which is always detected.
pub(crate) const TRANSLATION_FIELDS: &[FormField] =
    &[FIELDS[0], FIELDS[1], FIELDS[3], FIELDS[4], FIELDS[5], FIELDS[6], FIELDS[7]];

/// Checks OpenAI's fields (and our `vad`) and turns them into an engine request.
fn openai_request(state: &AppState, form: &Received, translate: bool) -> Result<Request, ApiError> {
    // `whisper-1` (OpenAI's default name) and no model mean the default; another name must
    // be installed (checked, with the list in the refusal, before the upload is decoded).
    let model = state.jobs.models().resolve(form.field("model"))?;
    // Translations take no language: the source language is detected.
    let language = if translate { "auto" } else { form.field("language").unwrap_or("auto") };
    let mut request = Request::new(language, translate)?;
    request.model = Some(model.name.clone());
    request.prompt = form.field("prompt").map(str::to_owned).filter(|prompt| !prompt.trim().is_empty());
    request.vad = bool_field(form, "vad", true)?;
    if let Some(text) = form.field("temperature").map(str::trim).filter(|t| !t.is_empty()) {
        let temperature = text
            .parse::<f32>()
            .ok()
            .filter(|t| (0.0..=1.0).contains(t))
            .ok_or_else(|| ApiError::BadTemperature { value: text.to_owned() })?;
        request.temperature = Some(temperature);
    }
    Ok(request)
}

/// Deletes the job if the client goes away before its answer.
struct AbandonGuard {
    jobs: Arc<Jobs>,
    id: Uuid,
    armed: bool,
}

impl Drop for AbandonGuard {
    fn drop(&mut self) {
        if self.armed {
            tracing::info!(job = %self.id, "the client left before the transcript was ready; deleting its job");
            if let Err(error) = self.jobs.delete(self.id, &Scope::All) {
                tracing::warn!(job = %self.id, %error, "cannot delete an abandoned job");
            }
        }
    }
}

/// `response_format=json`: the transcript alone.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TextOnly {
    text: String,
}

async fn answer(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    format: ResponseFormat,
    words: bool,
) -> Result<Response, ApiError> {
    let mut guard = AbandonGuard { jobs: Arc::clone(&state.jobs), id, armed: true };
    if let Some(mut live) = state.jobs.subscribe(id, &caller.scope)? {
        // An error means the job left the live set: it has ended either way.
        let _ = live.wait_for(|snapshot| snapshot.record.status.is_finished()).await;
    }
    guard.armed = false;
    let record = state.jobs.get(id, &caller.scope)?.record;
    match record.status {
        Status::Done => {}
        Status::Failed => {
            return Err(ApiError::TranscriptionFailed { reason: record.error.unwrap_or_default() });
        }
        status => return Err(JobError::NotDone { status: status.name() }.into()),
    }
    let transcript = state.jobs.result(id, &caller.scope)?;
    let mut response = match format {
        ResponseFormat::Json => json(StatusCode::OK, &TextOnly { text: transcript.text() }),
        ResponseFormat::Text => format!("{}\n", transcript.text()).into_response(),
        ResponseFormat::VerboseJson => formats::verbose_json(&transcript, words).into_response(),
        other => other.render_as().render(&transcript).into_response(),
    };
    if format != ResponseFormat::Json {
        let content_type = HeaderValue::from_static(format.render_as().content_type());
        response.headers_mut().insert(header::CONTENT_TYPE, content_type);
    }
    Ok(response)
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ModelList {
    object: &'static str,
    data: Vec<Model>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Model {
    id: String,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

/// `whisper-1` (the default model) and every installed model by name; `created` is the
/// file's modification time.
fn models(state: &AppState) -> Response {
    let models = state.jobs.models();
    let created = |path: &std::path::Path| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |age| age.as_secs())
    };
    let model = |id: &str, path| Model {
        id: id.to_owned(),
        object: "model",
        created: created(path),
        owned_by: "whisper-appliance",
    };
    let data = std::iter::once(model(OPENAI_MODEL, &models.default_model().path))
        .chain(models.installed().iter().map(|installed| model(&installed.name, &installed.path)))
        .collect();
    json(StatusCode::OK, &ModelList { object: "list", data })
}
