//! A job as the API, its events and the page show it, and the job ids in URLs.
//!
//! Input: a job's [`Snapshot`] and the appliance's state (for when it expires). Output: the
//! JSON view with its links, and the id parsed from a path segment. Its own file because
//! the job API, its event stream and the page all read it and none of them owns it.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use uuid::Uuid;

use super::AppState;
use crate::errors::{ApiError, JobError};
use crate::formats::Format;
use crate::jobs::{Snapshot, Status};

/// Job ids are UUIDs; anything else cannot name a job.
pub fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(text).map_err(|_| ApiError::Job(JobError::NotFound))
}

/// A job as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: Uuid,
    pub status: Status,
    /// The uploaded file's name, as the client sent it.
    pub file_name: String,
    pub size_bytes: u64,
    /// The installed model that runs (or ran) the job: `tiny.en`, `base`; null for jobs
    /// from before models could be chosen, which ran on the default.
    pub model: Option<String>,
    /// The language asked for: a code, or "auto".
    pub requested_language: String,
    /// Whether the transcript is translated into English.
    pub translate: bool,
    /// Percent done, 0 to 100.
    pub progress: u8,
    /// Jobs ahead of this one while it waits (0: next); null once it runs.
    pub queue_position: Option<usize>,
    /// RFC 3339 times, to the second.
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// When a finished job and its transcript are deleted (the retention setting); null
    /// until it finishes.
    pub expires_at: Option<String>,
    /// Why the job failed.
    pub error: Option<String>,
    /// The recording's length in seconds, once decoded.
    pub duration_seconds: Option<f64>,
    /// Seconds of speech found, once done; null when speech detection was off.
    pub speech_seconds: Option<f64>,
    /// Once done: true when nothing was said (the transcript is empty on purpose).
    pub no_speech: Option<bool>,
    /// Whether only what the speech detector finds is transcribed.
    pub vad: bool,
    /// The language spoken (detected or as asked), once done.
    pub language: Option<String>,
    pub links: Links,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Links {
    /// This job in the API.
    pub job: String,
    /// Its Server-Sent Events.
    pub events: String,
    /// POST here to cancel it.
    pub cancel: String,
    /// Its page, for people.
    pub page: String,
    /// Format name to download URL; present once the job is done.
    pub results: BTreeMap<&'static str, String>,
}

fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

impl JobView {
    pub fn new(state: &AppState, snapshot: &Snapshot) -> JobView {
        let record = &snapshot.record;
        let base = format!("/api/jobs/{}", record.id);
        let results = if record.status == Status::Done {
            Format::ALL.iter().map(|f| (f.extension(), format!("{base}/result?format={}", f.extension()))).collect()
        } else {
            BTreeMap::new()
        };
        JobView {
            id: record.id,
            status: record.status,
            file_name: record.file_name.clone(),
            size_bytes: record.size_bytes,
            model: record.request.model.clone(),
            requested_language: record.request.language.clone().unwrap_or_else(|| "auto".to_owned()),
            translate: record.request.translate,
            progress: record.progress,
            queue_position: snapshot.queue_position,
            created_at: rfc3339(record.created_at_ms),
            started_at: record.started_at_ms.map(rfc3339),
            finished_at: record.finished_at_ms.map(rfc3339),
            expires_at: state.jobs.expires_at_ms(record).map(rfc3339),
            error: record.error.clone(),
            duration_seconds: record.audio_duration_ms.map(|ms| ms as f64 / 1000.0),
            speech_seconds: record.speech_ms.map(|ms| ms as f64 / 1000.0),
            no_speech: record.no_speech,
            vad: record.request.vad,
            language: record.language.clone(),
            links: Links {
                events: format!("{base}/events"),
                cancel: format!("{base}/cancel"),
                page: format!("/jobs/{}", record.id),
                job: base,
                results,
            },
        }
    }
}
