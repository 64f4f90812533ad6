//! `GET /v1/realtime?intent=transcription`: live transcription over a WebSocket that speaks
//! OpenAI's Realtime API in transcription mode, so its clients work by changing the base URL.
//!
//! Input: JSON client events (`session.update`, `transcription_session.update`,
//! `input_audio_buffer.append`/`.commit`/`.clear`, and our `transcript.save`). Output: JSON
//! server events in OpenAI's shapes (`session.created`/`.updated`, speech started and
//! stopped, `committed`, transcription `delta`/`completed`/`failed`, `error`), and
//! `transcript.saved`. The streaming itself is [`crate::live`]'s.
//!
//! The gate has authenticated the upgrade request like any other (key in `Authorization`,
//! in the `openai-insecure-api-key.` subprotocol browsers use, or the page's cookie). Here:
//! a socket not authenticated by a key must come from our own pages (a WebSocket is not
//! covered by the browser's same-origin rules); the key is checked again every few seconds so that
//! revoking it closes the socket; the session holds one of the caller's upload slots and one
//! live slot, and is closed when idle or over its length cap.
//!
//! SECURITY: audio is decoded in memory and never written anywhere; transcript text is
//! never logged. A session's transcript is kept only if the client saves it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep_until, timeout_at};
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, header};
use warp::reply::Response;
use warp::ws::{Message, WebSocket, Ws};
use warp::{Filter, Reply};

use super::routes::{Endpoint, at};
use super::{AppState, Caller, caller, error_response, with_state};
use crate::audio::{Resampler, SAMPLE_RATE};
use crate::auth::{Credentials, Identity, SESSION_COOKIE};
use crate::engine::{Request, Segment, Transcript};
use crate::errors::{ApiError, AuthError, Causes};
use crate::live::{Input, Output, Refused, StreamSettings, TurnDetection};

/// The subprotocol prefix that carries an API key from browsers (which cannot set headers).
pub const KEY_SUBPROTOCOL: &str = "openai-insecure-api-key.";
/// The subprotocol OpenAI's browser clients offer and expect back.
const REALTIME_SUBPROTOCOL: &str = "realtime";
/// The largest client event: 1 MiB holds 16 s of 16-bit audio at 24 kHz in base64.
const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// How often a key-authenticated session checks that its key still stands.
const AUTH_RECHECK: Duration = Duration::from_secs(2);
/// Rates `input_audio_buffer.append` audio may have: OpenAI's, and whisper's own.
const RATES: [u32; 2] = [24_000, 16_000];

pub fn routes(state: &Arc<AppState>) -> BoxedFilter<(Response,)> {
    at(Endpoint::Realtime)
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::header::headers_cloned())
        .and(caller())
        .and(with_state(state))
        .and(warp::ws())
        .map(|query: HashMap<String, String>, headers: HeaderMap, caller: Caller, state: Arc<AppState>, ws: Ws| {
            upgrade(&query, &headers, caller, state, ws)
        })
        .boxed()
}

/// The key a request carries in the subprotocol header, if any.
pub fn subprotocol_key(headers: &HeaderMap) -> Option<&str> {
    offered_protocols(headers).find_map(|protocol| protocol.strip_prefix(KEY_SUBPROTOCOL))
}

fn offered_protocols(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
}

fn upgrade(
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    caller: Caller,
    state: Arc<AppState>,
    ws: Ws,
) -> Response {
    if let Some(intent) = query.get("intent").filter(|intent| *intent != "transcription") {
        return error_response(&ApiError::BadIntent { intent: intent.clone() });
    }
    let credentials = OwnedCredentials::of(headers, &caller);
    if credentials.key.is_none() && is_cross_site(headers) {
        return error_response(&AuthError::CrossSite.into());
    }
    // The same slots as uploads: a key cannot hold more sessions and uploads together.
    let permit = match state.limits.upload_permit(&caller.owner) {
        Ok(permit) => permit,
        Err(error) => return error_response(&error.into()),
    };
    let offers_realtime = offered_protocols(headers).any(|protocol| protocol == REALTIME_SUBPROTOCOL);
    let reply =
        ws.max_message_size(MAX_MESSAGE_BYTES).max_frame_size(MAX_MESSAGE_BYTES).on_upgrade(move |socket| async move {
            run(socket, &state, &caller, &credentials).await;
            drop(permit);
        });
    let mut response = reply.into_response();
    if offers_realtime {
        response.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, header::HeaderValue::from_static("realtime"));
    }
    response
}

/// A page of another site opening the socket. Browsers send cookies (and cached basic-auth
/// credentials, which the proxy turns into a user) with a cross-site WebSocket, and no
/// same-origin rule stops it, so a socket that is not authenticated by a key must come from
/// our own pages. Clients that are not browsers send neither header and are not affected.
fn is_cross_site(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|value: &header::HeaderValue| value.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = text(header::ORIGIN) else { return false };
    let host = text(header::HOST).unwrap_or_default();
    origin.split_once("://").is_none_or(|(_, rest)| rest != host)
}

/// What authenticated the upgrade, kept to check again while the session runs.
struct OwnedCredentials {
    key: Option<String>,
    session: Option<String>,
}

impl OwnedCredentials {
    fn of(headers: &HeaderMap, caller: &Caller) -> OwnedCredentials {
        let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
        let bearer = text("authorization")
            .and_then(|value| value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")));
        let key = bearer.or_else(|| text("x-api-key")).or_else(|| subprotocol_key(headers));
        let session = caller.by_session.then(|| super::gate::cookies(headers, SESSION_COOKIE).next()).flatten();
        OwnedCredentials { key: key.map(str::to_owned), session: session.map(str::to_owned) }
    }

    /// Whether the caller is still who they were (only keys and sessions can be revoked).
    fn still_valid(&self, state: &AppState, caller: &Caller) -> bool {
        if !matches!(caller.identity, Identity::Key { .. }) {
            return true;
        }
        let credentials = Credentials { key: self.key.as_deref(), session: self.session.as_deref(), proxy_user: None };
        state.auth.authenticate(credentials).is_ok_and(|identity| identity == caller.identity)
    }
}

/// The session as the client configured it.
struct Config {
    rate: u32,
    model: String,
    settings: StreamSettings,
    /// Save the transcript as a job when the session ends.
    save: bool,
}

impl Config {
    fn session_json(&self, id: &str) -> Value {
        let turn_detection = self.settings.turn_detection.map(|turn| {
            json!({
                "type": "server_vad",
                "threshold": turn.threshold,
                "prefix_padding_ms": turn.prefix_padding_ms,
                "silence_duration_ms": turn.silence_duration_ms,
            })
        });
        let transcription = json!({
            "model": self.model,
            "language": self.settings.request.language,
            "prompt": self.settings.request.prompt.clone().unwrap_or_default(),
        });
        json!({
            "type": "transcription",
            "object": "realtime.transcription_session",
            "id": id,
            "audio": {"input": {
                "format": {"type": "audio/pcm", "rate": self.rate},
                "transcription": transcription,
                "turn_detection": turn_detection,
                "noise_reduction": null,
            }},
            // The beta API's names for the same settings.
            "input_audio_format": "pcm16",
            "input_audio_transcription": transcription,
            "turn_detection": turn_detection,
            "save": self.save,
        })
    }
}

/// Why a client event was refused: OpenAI's error `code`, the field, and the message.
struct Refusal {
    code: &'static str,
    param: Option<&'static str>,
    message: String,
}

fn refuse(code: &'static str, param: Option<&'static str>, message: impl Into<String>) -> Refusal {
    Refusal { code, param, message: message.into() }
}

/// A session's connection: numbering of server events, and the socket's sending half.
struct Outbox {
    sink: futures_util::stream::SplitSink<WebSocket, Message>,
    events: u64,
    open: bool,
}

impl Outbox {
    async fn send(&mut self, mut event: Value) {
        if !self.open {
            return;
        }
        self.events += 1;
        event["event_id"] = json!(format!("event_{:08}", self.events));
        if self.sink.send(Message::text(event.to_string())).await.is_err() {
            self.open = false;
        }
    }

    async fn error(&mut self, kind: &str, refusal: &Refusal, client_event: Option<&str>) {
        let event = json!({
            "type": "error",
            "error": {
                "type": kind,
                "code": refusal.code,
                "message": refusal.message,
                "param": refusal.param,
                "event_id": client_event,
            },
        });
        self.send(event).await;
    }

    async fn close(&mut self, code: u16, reason: &'static str) {
        if self.open {
            let _ = self.sink.send(Message::close_with(code, reason)).await;
            self.open = false;
        }
    }
}

/// Close codes (RFC 6455): normal, policy violation, try again later.
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_POLICY: u16 = 1008;
const CLOSE_TRY_LATER: u16 = 1013;

async fn run(socket: WebSocket, state: &AppState, caller: &Caller, credentials: &OwnedCredentials) {
    let (sink, mut incoming) = socket.split();
    let mut outbox = Outbox { sink, events: 0, open: true };
    let mut config = Config {
        rate: RATES[0],
        model: "whisper-1".to_owned(),
        settings: StreamSettings {
            request: Request::new("auto", false).expect("auto is always a valid language"),
            turn_detection: Some(TurnDetection::default()),
        },
        save: false,
    };
    let live = state.live.settings().clone();
    let mut session = match state.live.open(config.settings.clone()) {
        Ok(session) => session,
        Err(Refused::Busy { sessions }) => {
            let message =
                format!("the server is busy: all {sessions} live transcription sessions are in use; try again later");
            outbox.error("server_error", &refuse("session_limit_reached", None, message), None).await;
            outbox.close(CLOSE_TRY_LATER, "server busy").await;
            return;
        }
        Err(Refused::Model(error)) => {
            tracing::error!(%error, cause = %Causes(&error), "a live session's model cannot be loaded");
            let message = "the model cannot be loaded now; try again later".to_owned();
            outbox.error("server_error", &refuse("model_unavailable", None, message), None).await;
            outbox.close(CLOSE_TRY_LATER, "model unavailable").await;
            return;
        }
    };
    let session_id = format!("sess_{}", uuid::Uuid::now_v7().simple());
    tracing::info!(session = %session_id, owner = %caller.owner, "live session started");
    outbox.send(json!({"type": "session.created", "session": config.session_json(&session_id)})).await;

    let deadline = Instant::now() + live.max_session;
    let mut idle_until = Instant::now() + live.idle_timeout;
    let mut recheck = tokio::time::interval(AUTH_RECHECK);
    let mut resampler = Resampler::new(config.rate).ok();
    let mut transcript = Vec::new();
    let mut received: u64 = 0;
    let mut save_now = false;
    loop {
        tokio::select! {
            frame = timeout_at(idle_until, incoming.next()) => {
                let message = match frame {
                    Err(_) => {
                        let message = format!("no event for {} seconds; the session is closed", live.idle_timeout.as_secs());
                        outbox.error("invalid_request_error", &refuse("idle_timeout", None, message), None).await;
                        outbox.close(CLOSE_POLICY, "idle timeout").await;
                        break;
                    }
                    Ok(Some(Ok(message))) => message,
                    // Gone, or a protocol error (such as a message over the size limit).
                    Ok(_) => break,
                };
                idle_until = Instant::now() + live.idle_timeout;
                if message.is_close() {
                    break;
                }
                if !message.is_text() {
                    if message.is_binary() {
                        let refusal = refuse("invalid_event", None, "binary messages are not events; send JSON text");
                        outbox.error("invalid_request_error", &refusal, None).await;
                    }
                    continue;
                }
                let text = message.to_str().unwrap_or_default();
                let event: Value = match serde_json::from_str(text) {
                    Ok(event @ Value::Object(_)) => event,
                    _ => {
                        let refusal = refuse("invalid_json", None, "the message is not a JSON object");
                        outbox.error("invalid_request_error", &refusal, None).await;
                        continue;
                    }
                };
                let client_event = event.get("event_id").and_then(Value::as_str).map(str::to_owned);
                let kind = event.get("type").and_then(Value::as_str).unwrap_or_default();
                let outcome = match kind {
                    "input_audio_buffer.append" => match pcm(&event, config.rate, resampler.as_mut()) {
                        Ok(samples) if samples.is_empty() => Ok(()),
                        Ok(samples) => {
                            let length = samples.len() as u64;
                            match session.input.audio(samples) {
                                Ok(()) => {
                                    received += length;
                                    Ok(())
                                }
                                Err(full) => Err(refuse(
                                    "input_audio_buffer_full",
                                    Some("audio"),
                                    format!(
                                        "over {} seconds of audio are waiting to be transcribed; this audio was \
                                         dropped: send at real-time pace",
                                        full.seconds
                                    ),
                                )),
                            }
                        }
                        Err(refusal) => Err(refusal),
                    },
                    "input_audio_buffer.commit" => {
                        session.input.send(Input::Commit);
                        Ok(())
                    }
                    "input_audio_buffer.clear" => {
                        session.input.send(Input::Clear);
                        Ok(())
                    }
                    "session.update" | "transcription_session.update" => {
                        match configure(state, &mut config, event.get("session")) {
                            Ok(()) => {
                                resampler = Resampler::new(config.rate).ok();
                                session.input.send(Input::Configure(config.settings.clone()));
                                let reply = if kind == "session.update" { "session.updated" } else { "transcription_session.updated" };
                                outbox.send(json!({"type": reply, "session": config.session_json(&session_id)})).await;
                                Ok(())
                            }
                            Err(refusal) => Err(refusal),
                        }
                    }
                    "transcript.save" => {
                        save_now = true;
                        session.input.send(Input::Flush);
                        Ok(())
                    }
                    other => Err(refuse(
                        "invalid_value",
                        Some("type"),
                        format!(
                            "unknown event type {other:?}; this server takes session.update, transcription_session.update, \
                             input_audio_buffer.append, input_audio_buffer.commit, input_audio_buffer.clear and transcript.save"
                        ),
                    )),
                };
                if let Err(refusal) = outcome {
                    outbox.error("invalid_request_error", &refusal, client_event.as_deref()).await;
                }
            }
            output = session.output.recv() => {
                let Some(output) = output else { break };
                if let Output::Completed { segments, .. } = &output {
                    transcript.extend(segments.iter().cloned());
                }
                if matches!(output, Output::Flushed) && std::mem::take(&mut save_now) {
                    let event = match save(state, caller, &config, &transcript, received) {
                        Ok(id) => json!({"type": "transcript.saved", "job_id": id, "url": format!("/jobs/{id}")}),
                        Err(refusal) => json!({"type": "error", "error": {
                            "type": "server_error", "code": refusal.code, "message": refusal.message, "param": null, "event_id": null,
                        }}),
                    };
                    outbox.send(event).await;
                    continue;
                }
                if let Some(event) = server_event(output) {
                    outbox.send(event).await;
                }
            }
            () = sleep_until(deadline) => {
                let message = format!("the session reached its limit of {} seconds; start a new one", live.max_session.as_secs());
                outbox.error("invalid_request_error", &refuse("session_expired", None, message), None).await;
                outbox.close(CLOSE_POLICY, "session length limit").await;
                break;
            }
            _ = recheck.tick() => {
                if !credentials.still_valid(state, caller) {
                    let refusal = refuse("invalid_api_key", None, "the API key of this session was revoked or has expired");
                    outbox.error("invalid_request_error", &refusal, None).await;
                    outbox.close(CLOSE_POLICY, "key revoked").await;
                    break;
                }
            }
        }
        if !outbox.open {
            break;
        }
    }
    outbox.close(CLOSE_NORMAL, "session ended").await;
    // The stream ends with a final pass over the utterance in progress; a session saved on
    // close keeps that too.
    drop(session.input);
    while let Some(output) = session.output.recv().await {
        if let Output::Completed { segments, .. } = output {
            transcript.extend(segments);
        }
    }
    if config.save && credentials.still_valid(state, caller) {
        let _ = save(state, caller, &config, &transcript, received);
    }
    tracing::info!(session = %session_id, audio_seconds = received / u64::from(SAMPLE_RATE), "live session ended");
}

/// Applies a `session.update`'s settings; all or nothing.
fn configure(state: &AppState, config: &mut Config, session: Option<&Value>) -> Result<(), Refusal> {
    let Some(session) = session.filter(|session| session.is_object()) else {
        return Err(refuse("missing_required_parameter", Some("session"), "session.update needs a session object"));
    };
    if let Some(kind) = session.get("type").and_then(Value::as_str).filter(|kind| *kind != "transcription") {
        return Err(refuse(
            "invalid_value",
            Some("session.type"),
            format!("session type {kind:?} is not served here: only \"transcription\""),
        ));
    }
    let input = session.pointer("/audio/input");
    let field = |ga: &str, beta: &str| input.and_then(|input| input.get(ga)).or_else(|| session.get(beta));
    let mut next =
        Config { rate: config.rate, model: config.model.clone(), settings: config.settings.clone(), save: config.save };
    if let Some(format) = input.and_then(|input| input.get("format")) {
        let kind = format.get("type").and_then(Value::as_str).unwrap_or("audio/pcm");
        if kind != "audio/pcm" {
            return Err(refuse(
                "invalid_value",
                Some("session.audio.input.format.type"),
                format!("audio format {kind:?} is not supported: only audio/pcm (16-bit little-endian, mono)"),
            ));
        }
        if let Some(rate) = format.get("rate") {
            next.rate = rate
                .as_u64()
                .and_then(|rate| u32::try_from(rate).ok())
                .filter(|rate| RATES.contains(rate))
                .ok_or_else(|| {
                    refuse(
                        "invalid_value",
                        Some("session.audio.input.format.rate"),
                        format!("sample rate {rate} is not supported: use 24000 (OpenAI's) or 16000"),
                    )
                })?;
        }
    }
    if let Some(format) = session.get("input_audio_format").and_then(Value::as_str).filter(|format| *format != "pcm16")
    {
        return Err(refuse(
            "invalid_value",
            Some("session.input_audio_format"),
            format!("audio format {format:?} is not supported: only pcm16"),
        ));
    }
    if let Some(transcription) = field("transcription", "input_audio_transcription").filter(|value| value.is_object()) {
        if let Some(model) = transcription.get("model").and_then(Value::as_str) {
            model.clone_into(&mut next.model);
        }
        if let Some(language) = transcription.get("language") {
            let request = Request::new(language.as_str().unwrap_or("auto"), false).map_err(|error| {
                refuse("invalid_value", Some("session.audio.input.transcription.language"), error.to_string())
            })?;
            state.jobs.models().default_model().check(&request).map_err(|error| {
                refuse("invalid_value", Some("session.audio.input.transcription.language"), error.to_string())
            })?;
            next.settings.request.language = request.language;
        }
        if let Some(prompt) = transcription.get("prompt") {
            next.settings.request.prompt =
                prompt.as_str().filter(|prompt| !prompt.trim().is_empty()).map(str::to_owned);
        }
    }
    if let Some(turn) = field("turn_detection", "turn_detection") {
        next.settings.turn_detection = match turn {
            Value::Null => None,
            Value::Object(_) => Some(turn_detection(turn)?),
            _ => {
                return Err(refuse(
                    "invalid_value",
                    Some("session.audio.input.turn_detection"),
                    "turn_detection is an object or null",
                ));
            }
        };
    }
    if let Some(save) = session.get("save") {
        next.save =
            save.as_bool().ok_or_else(|| refuse("invalid_value", Some("session.save"), "save is true or false"))?;
    }
    *config = next;
    Ok(())
}

fn turn_detection(turn: &Value) -> Result<TurnDetection, Refusal> {
    let defaults = TurnDetection::default();
    let kind = turn.get("type").and_then(Value::as_str).unwrap_or("server_vad");
    if !matches!(kind, "server_vad" | "semantic_vad") {
        return Err(refuse(
            "invalid_value",
            Some("session.audio.input.turn_detection.type"),
            format!("turn detection {kind:?} is not supported: use server_vad, or null to commit yourself"),
        ));
    }
    let number = |name: &str| turn.get(name).and_then(Value::as_f64);
    let threshold = number("threshold").unwrap_or(f64::from(defaults.threshold));
    if !(0.0..=1.0).contains(&threshold) {
        return Err(refuse(
            "invalid_value",
            Some("session.audio.input.turn_detection.threshold"),
            "threshold is between 0 and 1",
        ));
    }
    let milliseconds = |name: &str, default: u64| number(name).map_or(default, |ms| ms.clamp(0.0, 10_000.0) as u64);
    Ok(TurnDetection {
        threshold: threshold as f32,
        prefix_padding_ms: milliseconds("prefix_padding_ms", defaults.prefix_padding_ms),
        silence_duration_ms: milliseconds("silence_duration_ms", defaults.silence_duration_ms).max(100),
    })
}

/// An append event's audio as 16 kHz samples.
fn pcm(event: &Value, rate: u32, resampler: Option<&mut Resampler>) -> Result<Vec<f32>, Refusal> {
    let Some(audio) = event.get("audio").and_then(Value::as_str) else {
        return Err(refuse(
            "missing_required_parameter",
            Some("audio"),
            "input_audio_buffer.append needs audio (base64)",
        ));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(audio)
        .map_err(|_| refuse("invalid_value", Some("audio"), "audio is not valid base64"))?;
    if bytes.len() % 2 != 0 {
        return Err(refuse("invalid_value", Some("audio"), "audio is not 16-bit PCM: it has an odd number of bytes"));
    }
    let samples: Vec<f32> =
        bytes.chunks_exact(2).map(|pair| f32::from(i16::from_le_bytes([pair[0], pair[1]])) / 32_768.0).collect();
    if rate == SAMPLE_RATE {
        return Ok(samples);
    }
    let mut out = Vec::with_capacity(samples.len() * SAMPLE_RATE as usize / rate as usize + 1);
    resampler
        .ok_or_else(|| refuse("server_error", None, "the audio could not be resampled"))?
        .push(&samples, &mut out)
        .map_err(|_| refuse("server_error", None, "the audio could not be resampled"))?;
    Ok(out)
}

/// A stream's output as the server event OpenAI's clients know.
fn server_event(output: Output) -> Option<Value> {
    Some(match output {
        Output::SpeechStarted { item_id, audio_start_ms } => {
            json!({"type": "input_audio_buffer.speech_started", "item_id": item_id, "audio_start_ms": audio_start_ms})
        }
        Output::SpeechStopped { item_id, audio_end_ms } => {
            json!({"type": "input_audio_buffer.speech_stopped", "item_id": item_id, "audio_end_ms": audio_end_ms})
        }
        Output::Committed { item_id, previous_item_id } => {
            json!({"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous_item_id})
        }
        Output::Cleared => json!({"type": "input_audio_buffer.cleared"}),
        Output::Delta { item_id, delta } => json!({
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": item_id, "content_index": 0, "delta": delta,
        }),
        Output::Completed { item_id, transcript, segments } => {
            let seconds = segments
                .last()
                .zip(segments.first())
                .map_or(0.0, |(last, first)| (last.end_ms.saturating_sub(first.start_ms)) as f64 / 1000.0);
            json!({
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id, "content_index": 0, "transcript": transcript,
                "usage": {"type": "duration", "seconds": seconds},
            })
        }
        Output::Failed { item_id, message } => json!({
            "type": "conversation.item.input_audio_transcription.failed",
            "item_id": item_id, "content_index": 0,
            "error": {"type": "transcription_error", "code": "transcription_failed", "message": message, "param": null},
        }),
        Output::NothingToCommit => json!({"type": "error", "error": {
            "type": "invalid_request_error", "code": "input_audio_buffer_commit_empty",
            "message": "there is no audio to commit: append audio first", "param": null, "event_id": null,
        }}),
        Output::Flushed => return None,
    })
}

/// Stores the session's transcript so far as a finished job of the caller's.
fn save(
    state: &AppState,
    caller: &Caller,
    config: &Config,
    segments: &[Segment],
    received: u64,
) -> Result<uuid::Uuid, Refusal> {
    let transcript = Transcript {
        language: config.settings.request.language.clone().unwrap_or_else(|| "en".to_owned()),
        translated: false,
        duration_ms: received * 1000 / u64::from(SAMPLE_RATE),
        // Only the utterances were transcribed; how much of them is speech is not measured.
        speech_ms: None,
        segments: segments.to_vec(),
    };
    let name = format!("Live transcription {}", humantime::format_rfc3339_seconds(std::time::SystemTime::now()));
    // Live sessions run on the default model.
    let mut request = config.settings.request.clone();
    request.model = Some(state.jobs.models().default_model().name.clone());
    state.jobs.save_transcript(caller.owner.clone(), name, request, &transcript).map_err(|error| {
        tracing::error!(%error, "a live transcript could not be saved");
        refuse("save_failed", None, "the transcript could not be saved")
    })
}
