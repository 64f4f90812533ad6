//! Job records and transcripts in sled: the durable truth about every job.
//!
//! Two trees: `jobs` (id -> [`JobRecord`] as JSON) and `results` (id -> the engine's
//! [`Transcript`] as JSON). Ids are UUIDv7, whose bytes sort by creation time, so the
//! trees iterate oldest first and newest first without a second index. Every write that
//! a client was told about is flushed to disk before the answer leaves. The same database
//! holds the `keys` and `sessions` trees, which [`Store::tree`] hands to `auth`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sled::Transactional as _;
use uuid::Uuid;

use crate::engine::{Request, Transcript};
use crate::errors::{Causes, StoreError};

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 5] = [Status::Queued, Status::Running, Status::Done, Status::Failed, Status::Cancelled];

    /// Done, failed and cancelled jobs never change again.
    pub fn is_finished(self) -> bool {
        matches!(self, Status::Done | Status::Failed | Status::Cancelled)
    }

    pub fn name(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Running => "running",
            Status::Done => "done",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// Everything known about a job except its transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: Uuid,
    /// Who submitted it: an API key id, a proxy user, or "local" without auth.
    pub owner: String,
    /// The uploaded file's name, as display text only: never part of a path.
    pub file_name: String,
    pub size_bytes: u64,
    pub request: Request,
    pub status: Status,
    pub progress: u8,
    pub created_at_ms: u64,
    pub started_at_ms: Option<u64>,
    pub finished_at_ms: Option<u64>,
    /// The user-facing sentence of a failed job.
    pub error: Option<String>,
    /// Length of the recording, known once decoded.
    pub audio_duration_ms: Option<u64>,
    /// Detected or requested language of a finished job.
    pub language: Option<String>,
    /// How much speech the detector found, once done (`None` with detection off).
    #[serde(default)]
    pub speech_ms: Option<u64>,
    /// Whether a finished job found nothing said.
    #[serde(default)]
    pub no_speech: Option<bool>,
    /// How many times a worker started this job; a job that keeps killing the server
    /// must stop being retried.
    pub attempts: u32,
}

impl JobRecord {
    /// A job just accepted, waiting for a worker.
    pub fn queued(id: Uuid, owner: String, file_name: String, size_bytes: u64, request: Request) -> JobRecord {
        JobRecord {
            id,
            owner,
            file_name,
            size_bytes,
            request,
            status: Status::Queued,
            progress: 0,
            created_at_ms: now_ms(),
            started_at_ms: None,
            finished_at_ms: None,
            error: None,
            audio_duration_ms: None,
            language: None,
            speech_ms: None,
            no_speech: None,
            attempts: 0,
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    jobs: sled::Tree,
    results: sled::Tree,
}

impl Store {
    pub fn open(path: &std::path::Path) -> Result<Store, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::LowSpace)
            .open()
            .map_err(|source| StoreError::open(path, source))?;
        let jobs = db.open_tree("jobs")?;
        let results = db.open_tree("results")?;
        Ok(Store { db, jobs, results })
    }

    pub fn get(&self, id: Uuid) -> Result<Option<JobRecord>, StoreError> {
        self.jobs.get(id.as_bytes())?.map(|bytes| decode(&bytes)).transpose()
    }

    pub fn put(&self, record: &JobRecord) -> Result<(), StoreError> {
        self.jobs.insert(record.id.as_bytes(), encode(record))?;
        Ok(())
    }

    pub fn result(&self, id: Uuid) -> Result<Option<Transcript>, StoreError> {
        self.results.get(id.as_bytes())?.map(|bytes| decode(&bytes)).transpose()
    }

    /// Stores a finished job and its transcript in one transaction, so a crash can never
    /// leave a "done" job without text or text without a job.
    pub fn finish(&self, record: &JobRecord, transcript: Option<&Transcript>) -> Result<(), StoreError> {
        let job_bytes = encode(record);
        let result_bytes = transcript.map(encode);
        (&self.jobs, &self.results)
            .transaction(|(jobs, results)| {
                jobs.insert(record.id.as_bytes().as_slice(), job_bytes.as_slice())?;
                if let Some(bytes) = &result_bytes {
                    results.insert(record.id.as_bytes().as_slice(), bytes.as_slice())?;
                }
                Ok(())
            })
            .map_err(storage_error)?;
        Ok(())
    }

    /// Removes a job and its transcript together.
    pub fn remove(&self, id: Uuid) -> Result<(), StoreError> {
        (&self.jobs, &self.results)
            .transaction(|(jobs, results)| {
                jobs.remove(id.as_bytes().as_slice())?;
                results.remove(id.as_bytes().as_slice())?;
                Ok(())
            })
            .map_err(storage_error)?;
        Ok(())
    }

    /// Removes every job that finished before `cutoff_ms`, with its transcript; returns how many.
    pub fn remove_finished_before(&self, cutoff_ms: u64) -> Result<usize, StoreError> {
        let expired: Vec<Uuid> = self
            .all()
            .filter(|record| record.status.is_finished() && record.finished_at_ms.is_some_and(|at| at < cutoff_ms))
            .map(|record| record.id)
            .collect();
        for id in &expired {
            self.remove(*id)?;
        }
        if !expired.is_empty() {
            self.flush()?;
        }
        Ok(expired.len())
    }

    /// All jobs, oldest first. Records that no longer parse are skipped and logged.
    pub fn all(&self) -> impl Iterator<Item = JobRecord> + '_ {
        self.jobs.iter().values().filter_map(|value| match value.map_err(StoreError::from).and_then(|v| decode(&v)) {
            Ok(record) => Some(record),
            Err(error) => {
                tracing::error!(%error, cause = %Causes(&error), "skipping an unreadable job record");
                None
            }
        })
    }

    /// Jobs newest first, starting after `before` (exclusive) when given.
    pub fn newest_first(&self, before: Option<Uuid>) -> impl Iterator<Item = JobRecord> + '_ {
        let range = match before {
            Some(id) => self.jobs.range(..id.as_bytes().to_vec()),
            None => self.jobs.range::<Vec<u8>, _>(..),
        };
        range.rev().filter_map(Result::ok).filter_map(|(_, value)| decode(&value).ok())
    }

    /// Makes every earlier write durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    /// Another tree of the same database: the API keys, the browser sessions (`auth` owns both).
    pub fn tree(&self, name: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(name)?)
    }

    /// A cheap read that fails if the database is unusable, for `/readyz`.
    pub fn check(&self) -> Result<(), StoreError> {
        self.jobs.first()?;
        Ok(())
    }
}

/// Our transactions never abort themselves; what can fail is the storage beneath.
fn storage_error(error: sled::transaction::TransactionError<()>) -> StoreError {
    match error {
        sled::transaction::TransactionError::Storage(source) => StoreError::Database(source),
        sled::transaction::TransactionError::Abort(()) => unreachable!("the transaction never aborts"),
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records hold only strings and numbers")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(StoreError::Corrupt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: Uuid) -> JobRecord {
        JobRecord::queued(id, "local".into(), "a.wav".into(), 1, Request::new("auto", false).unwrap())
    }

    #[test]
    fn jobs_list_newest_first_and_page_by_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::now_v7()).collect();
        for id in &ids {
            store.put(&record(*id)).unwrap();
        }
        let newest: Vec<Uuid> = store.newest_first(None).map(|r| r.id).collect();
        assert_eq!(newest, ids.iter().rev().copied().collect::<Vec<_>>());
        let page: Vec<Uuid> = store.newest_first(Some(ids[2])).map(|r| r.id).collect();
        assert_eq!(page, vec![ids[1], ids[0]]);
    }

    #[test]
    fn retention_removes_only_jobs_that_finished_before_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let transcript =
            Transcript { language: "en".into(), translated: false, duration_ms: 1, speech_ms: None, segments: vec![] };
        let finished = |finished_at_ms: u64| {
            let mut done = record(Uuid::now_v7());
            done.status = Status::Done;
            done.finished_at_ms = Some(finished_at_ms);
            store.finish(&done, Some(&transcript)).unwrap();
            done.id
        };
        let old = finished(1_000);
        let recent = finished(5_000);
        let queued = record(Uuid::now_v7());
        store.put(&queued).unwrap();
        assert_eq!(store.remove_finished_before(2_000).unwrap(), 1);
        assert_eq!(store.get(old).unwrap(), None);
        assert_eq!(store.result(old).unwrap(), None);
        assert!(store.get(recent).unwrap().is_some() && store.result(recent).unwrap().is_some());
        assert!(store.get(queued.id).unwrap().is_some(), "jobs still waiting never expire");
    }

    #[test]
    fn remove_takes_the_result_with_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let id = Uuid::now_v7();
        let transcript =
            Transcript { language: "en".into(), translated: false, duration_ms: 1, speech_ms: None, segments: vec![] };
        store.finish(&record(id), Some(&transcript)).unwrap();
        assert_eq!(store.result(id).unwrap(), Some(transcript));
        store.remove(id).unwrap();
        assert_eq!(store.get(id).unwrap(), None);
        assert_eq!(store.result(id).unwrap(), None);
    }
}
