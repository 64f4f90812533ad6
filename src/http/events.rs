//! `GET /api/jobs/{id}/events`: a job's progress as Server-Sent Events.
//!
//! Events, in order: `job` (the job as the API shows it, on connect and whenever its
//! status or queue position changes), `progress` (`{"percent"}`), `segment` (each new
//! piece of text as whisper produces it: `{"id", "start", "end", "text"}`), and a last
//! `job` event with the final status, after which the stream ends. A client that connects
//! late gets every segment produced so far. Comments every 15 s keep proxies from
//! closing a quiet stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt as _, stream};
use serde::Serialize;
use tokio::sync::watch;
use warp::Reply;
use warp::reply::Response;
use warp::sse::Event;

use super::job_view::{JobView, parse_id};
use super::{AppState, Caller};
use crate::errors::ApiError;
use crate::jobs::{Snapshot, Status};

const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn stream(state: &Arc<AppState>, caller: &Caller, id: &str) -> Result<Response, ApiError> {
    let id = parse_id(id)?;
    // Subscribing first and starting from the value it marks as seen leaves no gap in which
    // a change could be missed.
    let receiver = state.jobs.subscribe(id, &caller.scope)?;
    let first = match &receiver {
        Some(live) => live.borrow().clone(),
        None => state.jobs.get(id, &caller.scope)?,
    };
    let events = job_events(Arc::clone(state), first, receiver);
    Ok(warp::sse::reply(warp::sse::keep_alive().interval(KEEP_ALIVE).stream(events)).into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Progress {
    percent: u8,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct SegmentEvent<'a> {
    id: usize,
    start: f64,
    end: f64,
    text: &'a str,
}

/// What a client has been sent so far.
struct Sent {
    status: Option<Status>,
    queue_position: Option<usize>,
    progress: Option<u8>,
    segments: usize,
    finished: bool,
}

fn job_events(
    state: Arc<AppState>,
    first: Snapshot,
    receiver: Option<watch::Receiver<Snapshot>>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let sent = Sent { status: None, queue_position: None, progress: None, segments: 0, finished: false };
    stream::unfold((state, Some(first), receiver, sent), |(state, pending, mut receiver, mut sent)| async move {
        if sent.finished {
            return None;
        }
        let snapshot = match (pending, receiver.as_mut()) {
            (Some(snapshot), _) => snapshot,
            (None, Some(live)) => match live.changed().await {
                Ok(()) => live.borrow_and_update().clone(),
                // The job left the live set without a final value we saw: read the store.
                Err(_) => {
                    let last = live.borrow().clone();
                    match state.jobs.store().get(last.record.id) {
                        Ok(Some(record)) => Snapshot { record, ..last },
                        _ => Snapshot {
                            record: crate::jobs::JobRecord { status: Status::Cancelled, ..last.record },
                            ..last
                        },
                    }
                }
            },
            (None, None) => return None,
        };
        let events = diff(&state, &snapshot, &mut sent);
        if receiver.is_none() {
            // A finished job: one final `job` event and done.
            sent.finished = true;
        }
        Some((stream::iter(events.into_iter().map(Ok)), (state, None, receiver, sent)))
    })
    .flatten()
}

/// The events that bring a client from what it was sent to `snapshot`.
fn diff(state: &AppState, snapshot: &Snapshot, sent: &mut Sent) -> Vec<Event> {
    let record = &snapshot.record;
    let mut events = Vec::new();
    let job_event = || Event::default().event("job").json_data(JobView::new(state, snapshot)).ok();
    let finished = record.status.is_finished();
    if !finished && (sent.status != Some(record.status) || sent.queue_position != snapshot.queue_position) {
        events.extend(job_event());
    }
    if record.status == Status::Running && sent.progress != Some(record.progress) {
        events.extend(Event::default().event("progress").json_data(Progress { percent: record.progress }).ok());
        sent.progress = Some(record.progress);
    }
    for (index, segment) in snapshot.segments.iter().enumerate().skip(sent.segments) {
        let text = segment.text.trim();
        let body = SegmentEvent {
            id: index,
            start: segment.start_ms as f64 / 1000.0,
            end: segment.end_ms as f64 / 1000.0,
            text,
        };
        events.extend(Event::default().event("segment").json_data(body).ok());
    }
    sent.segments = sent.segments.max(snapshot.segments.len());
    if finished {
        events.extend(job_event());
        sent.finished = true;
    }
    sent.status = Some(record.status);
    sent.queue_position = snapshot.queue_position;
    events
}
