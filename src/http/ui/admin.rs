//! `GET /admin`: what the appliance is doing, for its operator (administrators only; the
//! route table says so and the gate enforces it). Server-rendered and complete without
//! JavaScript; `static/admin.js` refreshes its figures in place.
//!
//! Shows: version and backend, uptime, the installed models (loaded or not, size, speed), the queue (waiting and running, by key), jobs that
//! ended in the last hour and day, median real-time factor and audio transcribed over the
//! last day, jobs ended per hour over the last 24 h as an inline SVG chart, disk use of the
//! state and upload directories, the process's memory and CPU time, and the keys, with forms
//! to make and revoke them (`POST /admin/keys`, `POST /admin/keys/{id}/revoke`): the
//! `keys` command's operations without a shell. A new key is shown once, on the page the
//! form's post answers with.
//!
//! Figures come from the job database and `/proc/self`, read at each request: nothing here
//! is kept between requests, and `/metrics` stays Prometheus's view of the same things.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::pages::{AdminPage, ChartBar, EndedCounts, KeyRow, ModelRow, NewKeyShown, QueueRow};
use super::{layout, page, render, see_other};
use crate::auth::KeyRecord;
use crate::engine::{Backend, Models};
use crate::errors::ApiError;
use crate::http::keys::read_key_request;
use crate::http::routes::{Endpoint, at, at_id};
use crate::http::{AppState, Caller, caller, with_state};
use crate::jobs::{JobRecord, Status, now_ms};

const HOUR_MS: u64 = 3_600_000;

pub fn routes(state: &Arc<AppState>) -> BoxedFilter<(Response,)> {
    let show = at(Endpoint::Admin)
        .and(with_state(state))
        .and(caller())
        .map(|state: Arc<AppState>, caller: Caller| page(&state, &caller, admin_page(&state, &caller, None, None)));
    let create = at(Endpoint::AdminKeyCreate)
        .and(with_state(state))
        .and(caller())
        .and(warp::header::optional::<String>("content-type"))
        .and(warp::body::stream())
        .then(|state: Arc<AppState>, caller: Caller, content_type: Option<String>, body| async move {
            let made = match read_key_request(content_type.as_deref(), body).await {
                Ok((name, role)) => state.auth.create_key(&name, role).map_err(ApiError::from),
                Err(error) => Err(error),
            };
            match made {
                Ok((record, key)) => {
                    tracing::info!(target: "audit", event = "key created", id = %record.id, name = %record.name, role = record.role.name(), "API key created on the admin page");
                    let shown = NewKeyShown { name: record.name, key };
                    page(&state, &caller, admin_page(&state, &caller, Some(shown), None))
                }
                // The page again, saying what was refused, with the refusal's status.
                Err(error) => {
                    let message = super::pages::sentence(&error.client_message());
                    match admin_page(&state, &caller, None, Some(message)) {
                        Ok(html) => super::html_error(&error, html),
                        Err(failure) => page(&state, &caller, Err(failure)),
                    }
                }
            }
        });
    let revoke = at_id(Endpoint::AdminKeyRevoke).and(with_state(state)).and(caller()).map(
        |id: String, state: Arc<AppState>, caller: Caller| match state.auth.revoke_key(&id) {
            Ok(record) => {
                tracing::info!(target: "audit", event = "key revoked", id = %record.id, name = %record.name, "API key revoked on the admin page");
                see_other("/admin")
            }
            Err(error) => page(&state, &caller, Err(error.into())),
        },
    );
    show.or(create).unify().or(revoke).unify().boxed()
}

fn admin_page(
    state: &AppState,
    caller: &Caller,
    new_key: Option<NewKeyShown>,
    error: Option<String>,
) -> Result<String, ApiError> {
    let models = state.jobs.models();
    let now = now_ms();
    let keys = state.auth.keys();
    let jobs: Vec<JobRecord> = state.jobs.store().all().collect();
    let (rss_kb, peak_kb) = memory_kb();
    let uptime = state.started.elapsed();
    let cpu = cpu_seconds();
    render(&AdminPage {
        layout: layout(state, Some(caller)),
        version: env!("CARGO_PKG_VERSION"),
        backend: models.backend().map_or("cpu", Backend::name),
        models: model_rows(models, &jobs, now.saturating_sub(24 * HOUR_MS)),
        uptime: duration_text(uptime),
        workers: state.config.workers,
        waiting: state.jobs.queue_depth(),
        running: state.jobs.running_count(),
        queue: queue_rows(&jobs, &keys),
        last_hour: ended_since(&jobs, now.saturating_sub(HOUR_MS)),
        last_day: ended_since(&jobs, now.saturating_sub(24 * HOUR_MS)),
        median_rtf: median(real_time_factors(&jobs, now.saturating_sub(24 * HOUR_MS), None))
            .map(|rtf| format!("{rtf:.3}")),
        audio_last_day: duration_text(Duration::from_millis(audio_ms_since(&jobs, now.saturating_sub(24 * HOUR_MS)))),
        chart: chart(&jobs, now),
        state_disk: megabytes(dir_bytes(state.config.state_dir())),
        temp_disk: megabytes(dir_bytes(state.config.temp_dir())),
        rss: megabytes(rss_kb * 1024),
        peak_rss: megabytes(peak_kb * 1024),
        cpu_seconds: format!("{cpu:.1}"),
        cpu_share: format!("{:.0}", 100.0 * cpu / uptime.as_secs_f64().max(1.0)),
        keys: keys.iter().rev().map(key_row).collect(),
        new_key,
        error,
    })
}

/// Waiting and running jobs per owner, named as the keys are.
fn queue_rows(jobs: &[JobRecord], keys: &[KeyRecord]) -> Vec<QueueRow> {
    let mut by_owner: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for job in jobs {
        let counts = by_owner.entry(&job.owner).or_default();
        match job.status {
            Status::Queued => counts.0 += 1,
            Status::Running => counts.1 += 1,
            _ => {}
        }
    }
    by_owner
        .into_iter()
        .filter(|(_, (waiting, running))| waiting + running > 0)
        .map(|(owner, (waiting, running))| QueueRow { owner: owner_name(owner, keys), waiting, running })
        .collect()
}

/// A job's owner as people know it: a key's name, else the owner as recorded.
fn owner_name(owner: &str, keys: &[KeyRecord]) -> String {
    owner
        .strip_prefix("key:")
        .and_then(|id| keys.iter().find(|key| key.id == id))
        .map_or_else(|| owner.to_owned(), |key| format!("{} (key {})", key.name, key.id))
}

fn ended_since(jobs: &[JobRecord], since_ms: u64) -> EndedCounts {
    let mut counts = EndedCounts::default();
    for job in jobs.iter().filter(|job| job.finished_at_ms.is_some_and(|at| at >= since_ms)) {
        match job.status {
            Status::Done => counts.done += 1,
            Status::Failed => counts.failed += 1,
            Status::Cancelled => counts.cancelled += 1,
            _ => {}
        }
    }
    counts
}

/// Each installed model: what it is for, its size, whether it is loaded now, and its
/// median real-time factor over the last day.
fn model_rows(models: &Models, jobs: &[JobRecord], since_ms: u64) -> Vec<ModelRow> {
    let loaded = models.loaded();
    let default = &models.default_model().name;
    models
        .installed()
        .iter()
        .map(|model| {
            let factors = real_time_factors(jobs, since_ms, Some((&model.name, &model.name == default)));
            ModelRow {
                name: model.name.clone(),
                languages: if model.is_multilingual() {
                    format!("{} languages, translation", model.language_count())
                } else {
                    "English".to_owned()
                },
                size: megabytes(model.size_bytes()),
                loaded: loaded.contains(&model.name),
                default: &model.name == default,
                jobs_last_day: factors.len(),
                median_rtf: median(factors).map(|rtf| format!("{rtf:.3}")),
            }
        })
        .collect()
}

/// Wall time over audio time of each job done since `since_ms` that ran on a worker; with
/// `model` (a name, and whether it is the default, which jobs that name none ran on), that
/// model's jobs only.
fn real_time_factors(jobs: &[JobRecord], since_ms: u64, model: Option<(&str, bool)>) -> Vec<f64> {
    jobs.iter()
        .filter(|job| job.status == Status::Done && job.finished_at_ms.is_some_and(|at| at >= since_ms))
        .filter(|job| match (model, job.request.model.as_deref()) {
            (None, _) => true,
            (Some((name, _)), Some(ran_on)) => ran_on == name,
            (Some((_, is_default)), None) => is_default,
        })
        .filter_map(|job| {
            let wall = job.finished_at_ms?.checked_sub(job.started_at_ms?)?;
            let audio = job.audio_duration_ms.filter(|&ms| ms > 0)?;
            Some(wall as f64 / audio as f64)
        })
        .collect()
}

fn median(mut factors: Vec<f64>) -> Option<f64> {
    if factors.is_empty() {
        return None;
    }
    factors.sort_by(f64::total_cmp);
    Some(factors[factors.len() / 2])
}

fn audio_ms_since(jobs: &[JobRecord], since_ms: u64) -> u64 {
    jobs.iter()
        .filter(|job| job.status == Status::Done && job.finished_at_ms.is_some_and(|at| at >= since_ms))
        .filter_map(|job| job.audio_duration_ms)
        .sum()
}

/// Jobs ended in each of the last 24 hours, oldest first, as bars 0 to 100 high.
fn chart(jobs: &[JobRecord], now: u64) -> Vec<ChartBar> {
    let mut hours = [(0usize, 0usize); 24];
    for job in jobs {
        let Some(age) = job.finished_at_ms.and_then(|at| now.checked_sub(at)) else { continue };
        let Some(slot) = 23usize.checked_sub((age / HOUR_MS) as usize) else { continue };
        if job.status == Status::Done {
            hours[slot].0 += 1;
        } else {
            hours[slot].1 += 1;
        }
    }
    let most = hours.iter().map(|(done, other)| done + other).max().unwrap_or(0).max(1);
    hours
        .iter()
        .enumerate()
        .map(|(slot, &(done, other))| {
            let height = |count: usize| (count * 100).div_ceil(most);
            ChartBar {
                x: slot * 10,
                done_height: height(done),
                other_height: height(other),
                done,
                other,
                hours_ago: 24 - slot,
            }
        })
        .collect()
}

fn key_row(record: &KeyRecord) -> KeyRow {
    let when =
        |ms: u64| humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(ms)).to_string();
    KeyRow {
        id: record.id.clone(),
        name: record.name.clone(),
        role: record.role.name(),
        created: when(record.created_ms),
        last_used: record.last_used_ms.map_or_else(|| "never".to_owned(), when),
        revoked: record.revoked_ms.map(when),
    }
}

/// Resident and peak resident memory of this process, in KiB (`/proc/self/status`).
fn memory_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// CPU time this process has used, user and system.
fn cpu_seconds() -> f64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).map_or(0.0, |usage| {
        let seconds = |time: nix::sys::time::TimeVal| time.tv_sec() as f64 + time.tv_usec() as f64 / 1e6;
        seconds(usage.user_time()) + seconds(usage.system_time())
    })
}

/// Bytes of the files under `dir` (symbolic links not followed).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| Some((entry.path(), entry.metadata().ok()?)))
        .map(|(path, meta)| if meta.is_dir() { dir_bytes(&path) } else { meta.len() })
        .sum()
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn duration_text(duration: Duration) -> String {
    let minutes = duration.as_secs() / 60;
    match minutes {
        0 => format!("{} s", duration.as_secs()),
        1..60 => format!("{minutes} min"),
        60..1440 => format!("{} h {} min", minutes / 60, minutes % 60),
        _ => format!("{} d {} h", minutes / 1440, minutes / 60 % 24),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration_text(Duration::from_secs(42)), "42 s");
        assert_eq!(duration_text(Duration::from_secs(5 * 60 + 3)), "5 min");
        assert_eq!(duration_text(Duration::from_secs(2 * 3600 + 5 * 60)), "2 h 5 min");
        assert_eq!(duration_text(Duration::from_secs(3 * 86_400 + 4 * 3600)), "3 d 4 h");
    }
}
