//! The job queue: accepted uploads become records in sled, wait in a bounded queue, run on
//! worker threads that share the loaded models (each job runs on the model its request
//! names, loaded by [`Models`] when first needed), and end done, failed or cancelled.
//!
//! The queue is fair between owners (API keys, proxy users): each owner may have at most
//! `per_owner` jobs waiting, and the next job to run is the oldest of the owner served
//! least recently (round-robin), so one owner's burst cannot starve the others.
//!
//! Input: uploads already streamed to the temp directory ([`crate::upload`]).
//! Output: job records, transcripts, and a live view of every active job for progress
//! streams. All state changes happen under one mutex so that cancel, delete and a
//! finishing worker can never interleave badly; whisper.cpp itself runs outside it.
//!
//! Temp files never outlive their job: a worker deletes the upload when the job ends, and
//! [`Jobs::recover`] reconciles the temp directory with the database at start-up.

mod store;
mod worker;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;

pub use self::store::{JobRecord, Status, Store, now_ms};
use crate::engine::{CancelToken, Models, Request, Segment, Transcript};
use crate::errors::{JobError, StoreError};
use crate::metrics::Metrics;
use crate::spool::{TempDir, TempUpload};

/// A job that keeps stopping the server is failed after this many starts.
const MAX_ATTEMPTS: u32 = 3;

/// Whose jobs a caller may see and change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Administrators, and everyone when authentication is off.
    All,
    /// Only jobs whose owner is this id.
    Owner(String),
}

impl Scope {
    fn allows(&self, record: &JobRecord) -> bool {
        match self {
            Scope::All => true,
            Scope::Owner(owner) => &record.owner == owner,
        }
    }
}

/// A job as a client sees it at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub record: JobRecord,
    /// 1 for the next job to run; `None` unless queued.
    pub queue_position: Option<usize>,
    /// Segments produced so far by a running job (empty otherwise).
    pub segments: Vec<Segment>,
}

/// A new job, its upload already on disk.
pub struct NewJob {
    pub owner: String,
    pub file_name: String,
    pub request: Request,
    pub upload: TempUpload,
}

struct Inner {
    /// Waiting jobs in arrival order; [`Inner::run_order`] says in which order they run.
    queue: VecDeque<Queued>,
    /// When each owner last had a job started (a counter, not a clock), for round-robin.
    served: HashMap<String, u64>,
    starts: u64,
    running: HashMap<Uuid, Running>,
    live: HashMap<Uuid, watch::Sender<Snapshot>>,
    accepting: bool,
}

struct Queued {
    id: Uuid,
    owner: String,
}

impl Inner {
    /// Queued jobs in the order they will start if nothing else arrives: round-robin over
    /// owners, those served least recently first (ties: the oldest waiting job first),
    /// each owner's jobs in arrival order.
    fn run_order(&self) -> Vec<Uuid> {
        let mut owners: Vec<(&str, VecDeque<Uuid>)> = Vec::new();
        for queued in &self.queue {
            match owners.iter_mut().find(|(owner, _)| *owner == queued.owner) {
                Some((_, jobs)) => jobs.push_back(queued.id),
                None => owners.push((&queued.owner, VecDeque::from([queued.id]))),
            }
        }
        // Stable: owners first seen earlier (with older jobs) stay ahead among equals.
        owners.sort_by_key(|(owner, _)| self.served.get(*owner).copied().unwrap_or(0));
        let mut order = Vec::with_capacity(self.queue.len());
        while order.len() < self.queue.len() {
            for (_, jobs) in &mut owners {
                order.extend(jobs.pop_front());
            }
        }
        order
    }

    fn queued_by(&self, owner: &str) -> usize {
        self.queue.iter().filter(|queued| queued.owner == owner).count()
    }

    /// Whether one more job of `owner` fits.
    fn check_room(&self, owner: &str, capacity: usize, per_owner: usize) -> Result<(), JobError> {
        if !self.accepting {
            return Err(JobError::ShuttingDown);
        }
        if self.queue.len() >= capacity {
            return Err(JobError::QueueFull { capacity });
        }
        if self.queued_by(owner) >= per_owner {
            return Err(JobError::OwnerQueueFull { max: per_owner });
        }
        Ok(())
    }
}

struct Running {
    cancel: CancelToken,
    /// Set on shutdown: the job goes back to the queue instead of ending cancelled.
    requeue: bool,
}

pub struct Jobs {
    store: Store,
    models: Arc<Models>,
    temp: TempDir,
    capacity: usize,
    per_owner: usize,
    retention: Duration,
    metrics: Arc<Metrics>,
    inner: Mutex<Inner>,
    wake: Condvar,
}

impl Jobs {
    pub fn new(
        store: Store,
        models: Arc<Models>,
        temp: TempDir,
        (capacity, per_owner): (usize, usize),
        retention: Duration,
        metrics: Arc<Metrics>,
    ) -> Jobs {
        Jobs {
            store,
            models,
            temp,
            capacity,
            per_owner,
            retention,
            metrics,
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                served: HashMap::new(),
                starts: 0,
                running: HashMap::new(),
                live: HashMap::new(),
                accepting: true,
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind, still consistent enough
        // to keep serving: every field is rewritten as a whole.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The models jobs run on.
    pub fn models(&self) -> &Models {
        &self.models
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn temp(&self) -> &TempDir {
        &self.temp
    }

    pub fn queue_depth(&self) -> usize {
        self.lock().queue.len()
    }

    pub fn running_count(&self) -> usize {
        self.lock().running.len()
    }

    /// A cheap early answer before an upload is read: is there room in the queue for one
    /// more job of this owner?
    pub fn check_room(&self, owner: &str) -> Result<(), JobError> {
        self.lock().check_room(owner, self.capacity, self.per_owner)
    }

    /// Queues a job whose upload is complete and checked.
    pub fn submit(&self, new: NewJob) -> Result<Snapshot, JobError> {
        let mut inner = self.lock();
        inner.check_room(&new.owner, self.capacity, self.per_owner)?;
        let id = new.upload.id();
        let size_bytes = new.upload.size();
        let record = JobRecord::queued(id, new.owner.clone(), new.file_name, size_bytes, new.request);
        new.upload.keep().map_err(JobError::Upload)?;
        let stored = self.store.put(&record).and_then(|()| self.store.flush());
        if let Err(error) = stored {
            self.temp.remove_upload(id);
            // The record may be in memory though not on disk: it must not outlive its upload.
            if let Err(error) = self.store.remove(id) {
                tracing::warn!(job = %id, %error, "cannot take back a job that could not be stored");
            }
            return Err(if error.is_no_space() { JobError::NoSpace } else { error.into() });
        }
        inner.queue.push_back(Queued { id, owner: new.owner });
        let position = inner.run_order().iter().position(|queued| *queued == id).map(|index| index + 1);
        let snapshot = Snapshot { record, queue_position: position, segments: Vec::new() };
        inner.live.insert(id, watch::Sender::new(snapshot.clone()));
        self.publish_queue_positions(&inner);
        self.metrics.job_created();
        self.wake.notify_one();
        Ok(snapshot)
    }

    /// Stores a transcript made elsewhere (a live session) as a finished job, so it appears
    /// in history with its downloads like any upload's. No audio is kept: there is none.
    pub fn save_transcript(
        &self,
        owner: String,
        file_name: String,
        request: Request,
        transcript: &Transcript,
    ) -> Result<Uuid, JobError> {
        let id = Uuid::now_v7();
        let mut record = JobRecord::queued(id, owner, file_name, 0, request);
        record.status = Status::Done;
        record.progress = 100;
        record.started_at_ms = Some(record.created_at_ms);
        record.finished_at_ms = Some(now_ms());
        record.audio_duration_ms = Some(transcript.duration_ms);
        record.language = Some(transcript.language.clone());
        self.store.finish(&record, Some(transcript))?;
        self.store.flush()?;
        self.metrics.job_created();
        self.metrics.job_ended(Status::Done.name());
        Ok(id)
    }

    /// The current state of a job the caller may see.
    pub fn get(&self, id: Uuid, scope: &Scope) -> Result<Snapshot, JobError> {
        let live = self.lock().live.get(&id).map(|sender| sender.borrow().clone());
        let snapshot = match live {
            Some(snapshot) => snapshot,
            None => {
                let record = self.store.get(id)?.ok_or(JobError::NotFound)?;
                Snapshot { record, queue_position: None, segments: Vec::new() }
            }
        };
        if scope.allows(&snapshot.record) { Ok(snapshot) } else { Err(JobError::NotFound) }
    }

    /// The caller's jobs, newest first, `limit` at a time after the job `before`, only those
    /// whose file name or transcript contains `search` (ignoring case) when one is given.
    /// Returns the page and whether more follow.
    pub fn list(
        &self,
        scope: &Scope,
        before: Option<Uuid>,
        limit: usize,
        search: Option<&str>,
    ) -> (Vec<Snapshot>, bool) {
        let search = search.map(str::to_lowercase);
        let matches = |record: &JobRecord| match &search {
            None => true,
            Some(needle) => {
                record.file_name.to_lowercase().contains(needle)
                    || (record.status == Status::Done
                        && self
                            .store
                            .result(record.id)
                            .ok()
                            .flatten()
                            .is_some_and(|transcript| transcript.text().to_lowercase().contains(needle)))
            }
        };
        let mut page: Vec<JobRecord> = self
            .store
            .newest_first(before)
            .filter(|record| scope.allows(record) && matches(record))
            .take(limit + 1)
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        let inner = self.lock();
        let snapshots = page
            .into_iter()
            .map(|record| match inner.live.get(&record.id) {
                Some(sender) => sender.borrow().clone(),
                None => Snapshot { record, queue_position: None, segments: Vec::new() },
            })
            .collect();
        (snapshots, more)
    }

    /// The transcript of a finished job.
    pub fn result(&self, id: Uuid, scope: &Scope) -> Result<Transcript, JobError> {
        let snapshot = self.get(id, scope)?;
        if snapshot.record.status != Status::Done {
            return Err(JobError::NotDone { status: snapshot.record.status.name() });
        }
        self.store.result(id)?.ok_or(JobError::NotFound)
    }

    /// Live updates of an active job; `None` once it has finished.
    pub fn subscribe(&self, id: Uuid, scope: &Scope) -> Result<Option<watch::Receiver<Snapshot>>, JobError> {
        self.get(id, scope)?;
        Ok(self.lock().live.get(&id).map(watch::Sender::subscribe))
    }

    /// Ends a queued or running job at once: marked cancelled, its upload removed. A running
    /// job's whisper.cpp stops at its next abort check (after the current encoder pass) and
    /// its worker then finds the job ended.
    pub fn cancel(&self, id: Uuid, scope: &Scope) -> Result<(), JobError> {
        let snapshot = self.get(id, scope)?;
        let mut inner = self.lock();
        match snapshot.record.status {
            Status::Queued => inner.queue.retain(|queued| queued.id != id),
            Status::Running => {
                if let Some(running) = inner.running.get(&id) {
                    running.cancel.cancel();
                }
            }
            status => return Err(JobError::AlreadyFinished { status: status.name() }),
        }
        let mut record = snapshot.record;
        record.status = Status::Cancelled;
        record.finished_at_ms = Some(now_ms());
        self.store.put(&record)?;
        self.store.flush()?;
        self.temp.remove_upload(id);
        self.metrics.job_ended(Status::Cancelled.name());
        self.end_live(&mut inner, &record);
        self.publish_queue_positions(&inner);
        Ok(())
    }

    /// Removes a job and everything of it: record, transcript and upload.
    pub fn delete(&self, id: Uuid, scope: &Scope) -> Result<(), JobError> {
        let snapshot = self.get(id, scope)?;
        let mut inner = self.lock();
        inner.queue.retain(|queued| queued.id != id);
        if let Some(running) = inner.running.get(&id) {
            // The worker sees the record gone when it stops and removes the upload.
            running.cancel.cancel();
        } else {
            self.temp.remove_upload(id);
        }
        self.store.remove(id)?;
        self.store.flush()?;
        let mut record = snapshot.record;
        if !record.status.is_finished() {
            record.status = Status::Cancelled;
        }
        self.end_live(&mut inner, &record);
        self.publish_queue_positions(&inner);
        Ok(())
    }

    /// Sends the final state to anyone watching and forgets the live view.
    fn end_live(&self, inner: &mut Inner, record: &JobRecord) {
        if let Some(sender) = inner.live.remove(&record.id) {
            sender.send_modify(|snapshot| {
                snapshot.record = record.clone();
                snapshot.queue_position = None;
            });
        }
    }

    fn publish_queue_positions(&self, inner: &Inner) {
        for (index, id) in inner.run_order().iter().enumerate() {
            if let Some(sender) = inner.live.get(id) {
                sender.send_if_modified(|snapshot| {
                    let position = Some(index + 1);
                    let changed = snapshot.queue_position != position;
                    snapshot.queue_position = position;
                    changed
                });
            }
        }
    }

    /// Reconciles the database and the temp directory after a start, clean or not:
    /// interrupted jobs with an intact upload are queued again in their original order,
    /// those without one fail with the reason, and files no job owns are removed.
    pub fn recover(&self) -> Result<RecoveryReport, StoreError> {
        let mut report = RecoveryReport::default();
        let mut inner = self.lock();
        let mut keep = Vec::new();
        for mut record in self.store.all() {
            if record.status.is_finished() {
                continue;
            }
            let intact = self.temp.upload_size(record.id) == Some(record.size_bytes);
            let reason = if !intact {
                Some("the upload was lost when the server stopped; please upload the file again".to_owned())
            } else if record.attempts >= MAX_ATTEMPTS {
                Some(format!(
                    "this recording stopped the server {} times, so it was not tried again; please report it",
                    record.attempts
                ))
            } else {
                None
            };
            match reason {
                Some(reason) => {
                    record.status = Status::Failed;
                    record.error = Some(reason);
                    record.finished_at_ms = Some(now_ms());
                    self.store.put(&record)?;
                    report.failed += 1;
                }
                None => {
                    record.status = Status::Queued;
                    record.progress = 0;
                    self.store.put(&record)?;
                    keep.push(record.id);
                    inner.queue.push_back(Queued { id: record.id, owner: record.owner.clone() });
                    let snapshot = Snapshot { record, queue_position: Some(inner.queue.len()), segments: Vec::new() };
                    inner.live.insert(snapshot.record.id, watch::Sender::new(snapshot));
                    report.requeued += 1;
                }
            }
        }
        self.store.flush()?;
        report.orphans_removed = self.temp.remove_all_except(&keep);
        drop(inner);
        self.wake.notify_all();
        Ok(report)
    }

    /// Deletes finished jobs older than the retention period; returns how many.
    pub fn sweep_expired(&self) -> Result<usize, StoreError> {
        self.store.remove_finished_before(now_ms().saturating_sub(self.retention.as_millis() as u64))
    }

    /// When a finished job will be deleted.
    pub fn expires_at_ms(&self, record: &JobRecord) -> Option<u64> {
        record.finished_at_ms.map(|at| at + self.retention.as_millis() as u64)
    }

    /// Counts of jobs by status, for metrics.
    pub fn count_by_status(&self) -> Vec<(&'static str, usize)> {
        let mut counts: HashMap<Status, usize> = HashMap::new();
        for record in self.store.all() {
            *counts.entry(record.status).or_insert(0) += 1;
        }
        Status::ALL.iter().map(|status| (status.name(), counts.get(status).copied().unwrap_or(0))).collect()
    }

    /// Stops taking jobs, gives running ones `grace` to finish, then cancels them back
    /// into the queue (their uploads kept for the next start) and flushes the database.
    pub fn shut_down(&self, grace: Duration) -> Result<(), StoreError> {
        self.lock().accepting = false;
        self.wake.notify_all();
        let deadline = std::time::Instant::now() + grace;
        while self.running_count() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        {
            let mut inner = self.lock();
            for (id, running) in inner.running.iter_mut() {
                tracing::info!(job = %id, "shutdown grace period over; the job goes back to the queue");
                running.requeue = true;
                running.cancel.cancel();
            }
        }
        // whisper.cpp notices the abort flag between graph computations: well under a second.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.running_count() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.store.flush()
    }
}

/// What [`Jobs::recover`] did, for the start-up log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub requeued: usize,
    pub failed: usize,
    pub orphans_removed: usize,
}

pub use self::worker::spawn_workers;
