//! Worker threads: take the next queued job (round-robin over owners, see `mod.rs`),
//! decode its upload, run it on the model it names (loaded if need be), store the outcome,
//! delete the upload, and let the pool unload models that became idle over its budget.
//!
//! Workers are OS threads, not async tasks: whisper.cpp computes for seconds to minutes
//! and must not starve the HTTP runtime. A panic inside one job fails that job only.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use super::{JobRecord, Jobs, Queued, Running, Snapshot, Status, now_ms};
use crate::audio;
use crate::engine::{CancelToken, Observer, Transcript};
use crate::errors::{Causes, EngineError};

/// Starts `count` workers that run until [`Jobs::shut_down`].
pub fn spawn_workers(jobs: &Arc<Jobs>, count: usize) -> Vec<JoinHandle<()>> {
    (0..count)
        .map(|index| {
            let jobs = Arc::clone(jobs);
            std::thread::Builder::new()
                .name(format!("worker-{index}"))
                .spawn(move || jobs.work())
                .expect("the OS refused to start a worker thread")
        })
        .collect()
}

impl Jobs {
    fn work(&self) {
        while let Some((record, cancel)) = self.next_job() {
            let started = Instant::now();
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| self.transcribe(&record, &cancel)))
                .unwrap_or_else(|_| {
                    tracing::error!(job = %record.id, "a job panicked; it is marked failed");
                    Outcome::Failed("an internal error stopped this job; please report it".to_owned())
                });
            self.finish(record, outcome, started);
            self.models.trim();
        }
    }

    /// Blocks until a job is queued (or returns `None` once the server is stopping).
    fn next_job(&self) -> Option<(JobRecord, CancelToken)> {
        let mut inner = self.lock();
        loop {
            if !inner.accepting {
                return None;
            }
            if let Some(&id) = inner.run_order().first() {
                let Some(index) = inner.queue.iter().position(|queued| queued.id == id) else { continue };
                let Some(Queued { owner, .. }) = inner.queue.remove(index) else { continue };
                inner.starts += 1;
                let start = inner.starts;
                inner.served.insert(owner, start);
                let mut record = match self.store.get(id) {
                    Ok(Some(record)) => record,
                    Ok(None) => continue,
                    Err(error) => {
                        tracing::error!(job = %id, %error, cause = %Causes(&error), "cannot read a queued job; skipping it");
                        continue;
                    }
                };
                record.status = Status::Running;
                record.started_at_ms = Some(now_ms());
                record.attempts += 1;
                // Durable before whisper.cpp runs, so a job that crashes the process is counted.
                if let Err(error) = self.store.put(&record).and_then(|()| self.store.flush()) {
                    tracing::error!(job = %id, %error, cause = %Causes(&error), "cannot mark a job running; skipping it");
                    continue;
                }
                let cancel = CancelToken::default();
                inner.running.insert(id, Running { cancel: cancel.clone(), requeue: false });
                if let Some(sender) = inner.live.get(&id) {
                    sender.send_modify(|snapshot| {
                        snapshot.record = record.clone();
                        snapshot.queue_position = None;
                    });
                }
                self.publish_queue_positions(&inner);
                return Some((record, cancel));
            }
            inner = self.wake.wait(inner).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Decodes and transcribes.
    fn transcribe(&self, record: &JobRecord, cancel: &CancelToken) -> Outcome {
        let decoded = match audio::decode_file(&self.temp.upload_path(record.id)) {
            Ok(decoded) => decoded,
            Err(error) => return Outcome::Failed(error.to_string()),
        };
        let live = self.lock().live.get(&record.id).cloned();
        let duration_ms = decoded.samples.len() as u64 * 1000 / u64::from(audio::SAMPLE_RATE);
        if let Some(sender) = &live {
            sender.send_modify(|snapshot| snapshot.record.audio_duration_ms = Some(duration_ms));
        }
        let observer = match live {
            Some(sender) => {
                let progress = sender.clone();
                Observer {
                    on_progress: Box::new(move |percent| {
                        progress.send_if_modified(|snapshot: &mut Snapshot| {
                            let changed = snapshot.record.progress != percent;
                            snapshot.record.progress = percent;
                            changed
                        });
                    }),
                    on_segment: Box::new(move |segment| {
                        sender.send_modify(|snapshot| snapshot.segments.push(segment.clone()));
                    }),
                }
            }
            None => Observer::none(),
        };
        // The model is held (kept loaded) only while the job runs.
        let engine = match self.models.get(record.request.model.as_deref().unwrap_or_default()) {
            Ok(engine) => engine,
            Err(error) => {
                tracing::warn!(job = %record.id, %error, cause = %Causes(&error), "the job's model cannot be loaded");
                return Outcome::Failed(error.to_string());
            }
        };
        match engine.transcribe(&decoded.samples, &record.request, observer, cancel) {
            Ok(transcript) => Outcome::Done(transcript),
            Err(EngineError::Cancelled) => Outcome::Cancelled,
            Err(error) => {
                tracing::warn!(job = %record.id, %error, cause = %Causes(&error), "transcription failed");
                Outcome::Failed(error.to_string())
            }
        }
    }

    /// Records the outcome and removes the upload, unless the job goes back to the queue.
    fn finish(&self, mut record: JobRecord, outcome: Outcome, started: Instant) {
        let id = record.id;
        let mut inner = self.lock();
        let requeue = inner.running.remove(&id).is_some_and(|running| running.requeue);
        match self.store.get(id) {
            Ok(Some(stored)) if !stored.status.is_finished() => {}
            // Cancelled or deleted while running: that already ended it; nothing may remain.
            _ => {
                self.temp.remove_upload(id);
                return;
            }
        }
        let mut transcript = None;
        match outcome {
            Outcome::Done(done) => {
                record.status = Status::Done;
                record.progress = 100;
                record.language = Some(done.language.clone());
                record.audio_duration_ms = Some(done.duration_ms);
                record.speech_ms = done.speech_ms;
                record.no_speech = Some(done.no_speech());
                self.metrics.transcribed(done.duration_ms, started.elapsed());
                let model = record.request.model.as_deref().unwrap_or(&self.models.default_model().name);
                self.models.record_speed(model, done.duration_ms, started.elapsed());
                transcript = Some(done);
            }
            Outcome::Cancelled if requeue => {
                record.status = Status::Queued;
                record.progress = 0;
                // Stopping the server is not the job's fault.
                record.attempts = record.attempts.saturating_sub(1);
            }
            // Only a cancel that ended the job already (see above) stops a transcription,
            // apart from shutdown; keep the record true if that ever changes.
            Outcome::Cancelled => record.status = Status::Cancelled,
            Outcome::Failed(reason) => {
                record.status = Status::Failed;
                record.error = Some(reason);
            }
        }
        if record.status.is_finished() {
            record.finished_at_ms = Some(now_ms());
        }
        if let Err(error) = self.store.finish(&record, transcript.as_ref()).and_then(|()| self.store.flush()) {
            tracing::error!(job = %id, %error, cause = %Causes(&error), "cannot store a finished job");
        }
        if record.status.is_finished() {
            self.temp.remove_upload(id);
            self.metrics.job_ended(record.status.name());
        }
        self.end_live(&mut inner, &record);
        tracing::info!(job = %id, status = record.status.name(), seconds = started.elapsed().as_secs_f64(), "job ended");
    }
}

/// How a job's run ended.
enum Outcome {
    Done(Transcript),
    Cancelled,
    /// With the user-facing reason.
    Failed(String),
}
