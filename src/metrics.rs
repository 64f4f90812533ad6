//! Prometheus metrics in the OpenMetrics text format, for `GET /metrics`.
//!
//! Counters are updated where things happen (HTTP middleware, uploads, workers); job
//! counts by status and the queue depth are read from the job store when scraped, so
//! they are always true, also after a restart.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: String,
}

pub struct Metrics {
    registry: Registry,
    http_requests: Family<RouteLabels, Counter>,
    jobs: Family<StatusLabels, Gauge>,
    jobs_created: Counter,
    jobs_ended: Family<StatusLabels, Counter>,
    queue_depth: Gauge,
    audio_seconds: Counter<f64, AtomicU64>,
    real_time_factor: Histogram,
    upload_bytes: Counter,
    model_loads: Family<ModelLabels, Counter>,
    model_unloads: Family<ModelLabels, Counter>,
    model_bytes: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("whisper_appliance");
        let metrics = Metrics {
            http_requests: Family::default(),
            jobs: Family::default(),
            jobs_created: Counter::default(),
            jobs_ended: Family::default(),
            queue_depth: Gauge::default(),
            audio_seconds: Counter::default(),
            // Real-time factor: wall time over audio time; 0.01 (100x faster) to 2 (slower).
            real_time_factor: Histogram::new([0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]),
            upload_bytes: Counter::default(),
            model_loads: Family::default(),
            model_unloads: Family::default(),
            model_bytes: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests by route template, method and status",
            metrics.http_requests.clone(),
        );
        registry.register("jobs", "Jobs in the database by status", metrics.jobs.clone());
        registry.register("jobs_created", "Jobs accepted since start", metrics.jobs_created.clone());
        registry.register("jobs_ended", "Jobs that ended since start, by status", metrics.jobs_ended.clone());
        registry.register("queue_depth", "Jobs waiting for a worker", metrics.queue_depth.clone());
        registry.register("audio_seconds", "Seconds of audio transcribed since start", metrics.audio_seconds.clone());
        registry.register(
            "real_time_factor",
            "Transcription wall time divided by audio duration, per job",
            metrics.real_time_factor.clone(),
        );
        registry.register("upload_bytes", "Bytes of uploads received", metrics.upload_bytes.clone());
        registry.register(
            "model_loads",
            "Models loaded into memory since start, by model",
            metrics.model_loads.clone(),
        );
        registry.register(
            "model_unloads",
            "Idle models unloaded to stay within the memory budget since start, by model",
            metrics.model_unloads.clone(),
        );
        registry.register("model_bytes", "Bytes of model weights loaded now", metrics.model_bytes.clone());
        Metrics { registry, ..metrics }
    }
}

impl Metrics {
    pub fn http_request(&self, route: &str, method: &str, status: u16) {
        let labels = RouteLabels { route: route.to_owned(), method: method.to_owned(), status };
        self.http_requests.get_or_create(&labels).inc();
    }

    pub fn job_created(&self) {
        self.jobs_created.inc();
    }

    /// `status` is the ended job's status name (`done`, `failed`, `cancelled`).
    pub fn job_ended(&self, status: &str) {
        self.jobs_ended.get_or_create(&StatusLabels { status: status.to_owned() }).inc();
    }

    pub fn uploaded(&self, bytes: u64) {
        self.upload_bytes.inc_by(bytes);
    }

    pub fn transcribed(&self, audio_ms: u64, wall: Duration) {
        let audio_seconds = audio_ms as f64 / 1000.0;
        self.audio_seconds.inc_by(audio_seconds);
        if audio_seconds > 0.0 {
            self.real_time_factor.observe(wall.as_secs_f64() / audio_seconds);
        }
    }

    /// A model was loaded; `loaded_bytes` is what all loaded models take now.
    pub fn model_loaded(&self, model: &str, loaded_bytes: u64) {
        self.model_loads.get_or_create(&ModelLabels { model: model.to_owned() }).inc();
        self.model_bytes.set(loaded_bytes as i64);
    }

    /// An idle model was unloaded for the memory budget.
    pub fn model_unloaded(&self, model: &str, loaded_bytes: u64) {
        self.model_unloads.get_or_create(&ModelLabels { model: model.to_owned() }).inc();
        self.model_bytes.set(loaded_bytes as i64);
    }

    /// Encodes everything, with job counts by status name read fresh from the store (every
    /// status, so that one with no jobs reads 0 rather than vanishing).
    pub fn render(&self, counts: &[(&str, usize)], queue_depth: usize) -> String {
        for (status, count) in counts {
            self.jobs.get_or_create(&StatusLabels { status: (*status).to_owned() }).set(*count as i64);
        }
        self.queue_depth.set(queue_depth as i64);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_histograms() {
        let metrics = Metrics::default();
        metrics.http_request("/api/jobs", "POST", 202);
        metrics.transcribed(11_000, Duration::from_millis(1_100));
        let text = metrics.render(&[("queued", 0), ("done", 3)], 2);
        assert!(
            text.contains(
                "whisper_appliance_http_requests_total{route=\"/api/jobs\",method=\"POST\",status=\"202\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("whisper_appliance_jobs{status=\"done\"} 3"), "{text}");
        assert!(text.contains("whisper_appliance_jobs{status=\"queued\"} 0"), "{text}");
        assert!(text.contains("whisper_appliance_queue_depth 2"), "{text}");
        assert!(text.contains("whisper_appliance_real_time_factor_bucket{le=\"0.1\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
