//! `GET /metrics`: Prometheus text format through `prometheus-client`, from one registry owned
//! by the server (no global state). Names follow Prometheus conventions with a `turnstile_`
//! prefix; `docs/metrics.md` lists them all.
//!
//! Two kinds of figure: events are counted and timed where they happen (the scheduler records
//! waits, runs and refusals; runners record chat token timings); levels (queue sizes, device
//! utilization, model state, connections, cache) are set from the live state when a scrape comes
//! in, so they are exact at scrape time and cost nothing in between.
//!
//! Concurrency: every metric is atomic (histograms take their own short lock); the registry is
//! only read, to encode.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// A job kind (`calc`, `chat`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `calc` or `chat`.
    pub kind: String,
}

/// Where a job is.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// `waiting`, `prefetched` or `running`.
    pub state: String,
}

/// Why a job was refused or failed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// The error code, e.g. `queue_full`.
    pub reason: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every metric the server exposes.
pub struct Metrics {
    /// The registry they are encoded from.
    registry: Registry,
    /// Jobs waiting for the device, by kind.
    pub queue_jobs: Family<KindLabel, Gauge>,
    /// Jobs by state: waiting, prefetched (handed to the device, not started), running.
    pub jobs: Family<StateLabel, Gauge>,
    /// Time from queued to started.
    pub queue_wait: Histogram,
    /// Time on the device, by kind.
    pub run_time: Family<KindLabel, Histogram>,
    /// Chat: time from start to the first token.
    pub time_to_first_token: Histogram,
    /// Chat: time per output token after the first.
    pub time_per_output_token: Histogram,
    /// Jobs finished (successfully or not), by kind.
    pub finished: Family<KindLabel, Counter>,
    /// Refusals and failures, by error code.
    pub rejections: Family<ReasonLabel, Counter>,
    /// Busy time over wall time over the last window.
    pub device_utilization: FloatGauge,
    /// Device busy time since start.
    pub device_busy: Counter<f64, AtomicU64>,
    /// 1 when the device is open.
    pub device_open: Gauge,
    /// 1 when the chat model is loaded (or remote), 0 otherwise.
    pub model_loaded: Gauge,
    /// Seconds the last model load took.
    pub model_load_time: FloatGauge,
    /// Requests waiting for the model to load.
    pub model_waiting: Gauge,
    /// Open WebSocket connections.
    pub websocket_connections: Gauge,
    /// WebSocket upgrades refused for their origin.
    pub websocket_refused: Counter<f64, AtomicU64>,
    /// Result cache entries.
    pub cache_entries: Gauge,
    /// Result cache size.
    pub cache_bytes: Gauge,
    /// Jobs answered from the cache.
    pub cache_hits: Counter<f64, AtomicU64>,
    /// Cacheable jobs that had to be computed.
    pub cache_misses: Counter<f64, AtomicU64>,
}

fn seconds_buckets() -> Histogram {
    // 50 µs to about 55 minutes.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 26))
}

impl Metrics {
    /// A fresh set, registered.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("turnstile");
        let queue_jobs = Family::<KindLabel, Gauge>::default();
        r.register(
            "queue_jobs",
            "Jobs waiting for the device, by kind",
            queue_jobs.clone(),
        );
        let jobs = Family::<StateLabel, Gauge>::default();
        r.register(
            "jobs",
            "Jobs by state: waiting, prefetched (handed to the device ahead of their turn), running",
            jobs.clone(),
        );
        let queue_wait = seconds_buckets();
        r.register_with_unit(
            "queue_wait",
            "Time from queued to started on the device",
            Unit::Seconds,
            queue_wait.clone(),
        );
        let run_time = Family::<KindLabel, Histogram>::new_with_constructor(
            seconds_buckets as fn() -> Histogram,
        );
        r.register_with_unit(
            "job_run",
            "Time on the device, by kind",
            Unit::Seconds,
            run_time.clone(),
        );
        let time_to_first_token = seconds_buckets();
        r.register_with_unit(
            "chat_time_to_first_token",
            "Chat: time from the job's start to its first token (model load included)",
            Unit::Seconds,
            time_to_first_token.clone(),
        );
        let time_per_output_token = seconds_buckets();
        r.register_with_unit(
            "chat_time_per_output_token",
            "Chat: time per generated token after the first",
            Unit::Seconds,
            time_per_output_token.clone(),
        );
        let finished = Family::<KindLabel, Counter>::default();
        r.register(
            "jobs_finished",
            "Jobs that left the device, by kind",
            finished.clone(),
        );
        let rejections = Family::<ReasonLabel, Counter>::default();
        r.register(
            "rejections",
            "Jobs refused or failed, by error code (queue_full, rate_limited, timeout, ...)",
            rejections.clone(),
        );
        let device_utilization = FloatGauge::default();
        r.register(
            "device_utilization_ratio",
            "Device busy time over wall time over the last 10 s (0 to 1)",
            device_utilization.clone(),
        );
        let device_busy = Counter::<f64, AtomicU64>::default();
        r.register_with_unit(
            "device_busy",
            "Time the device was busy; its rate is the utilization",
            Unit::Seconds,
            device_busy.clone(),
        );
        let device_open = Gauge::default();
        r.register(
            "device_open",
            "1 when the device is open",
            device_open.clone(),
        );
        let model_loaded = Gauge::default();
        r.register(
            "model_loaded",
            "1 when the chat model is in memory (or remote)",
            model_loaded.clone(),
        );
        let model_load_time = FloatGauge::default();
        r.register_with_unit(
            "model_load",
            "How long the last model load took",
            Unit::Seconds,
            model_load_time.clone(),
        );
        let model_waiting = Gauge::default();
        r.register(
            "model_waiting",
            "Requests waiting for the model to load",
            model_waiting.clone(),
        );
        let websocket_connections = Gauge::default();
        r.register(
            "websocket_connections",
            "Open WebSocket connections",
            websocket_connections.clone(),
        );
        let websocket_refused = Counter::<f64, AtomicU64>::default();
        r.register(
            "websocket_refused",
            "WebSocket upgrades refused for their origin",
            websocket_refused.clone(),
        );
        let cache_entries = Gauge::default();
        r.register(
            "cache_entries",
            "Results in the calculator's cache",
            cache_entries.clone(),
        );
        let cache_bytes = Gauge::default();
        r.register_with_unit(
            "cache",
            "Size of the calculator's cache",
            Unit::Bytes,
            cache_bytes.clone(),
        );
        let cache_hits = Counter::<f64, AtomicU64>::default();
        r.register(
            "cache_hits",
            "Jobs answered from the result cache",
            cache_hits.clone(),
        );
        let cache_misses = Counter::<f64, AtomicU64>::default();
        r.register(
            "cache_misses",
            "Cacheable jobs that had to be computed",
            cache_misses.clone(),
        );
        Metrics {
            registry: r,
            queue_jobs,
            jobs,
            queue_wait,
            run_time,
            time_to_first_token,
            time_per_output_token,
            finished,
            rejections,
            device_utilization,
            device_busy,
            device_open,
            model_loaded,
            model_load_time,
            model_waiting,
            websocket_connections,
            websocket_refused,
            cache_entries,
            cache_bytes,
            cache_hits,
            cache_misses,
        }
    }

    /// A job started after `waited` and left the device after `run`.
    pub fn on_finish(&self, kind: &str, waited: Duration, run: Duration) {
        self.queue_wait.observe(waited.as_secs_f64());
        let kind = KindLabel { kind: kind.into() };
        self.run_time
            .get_or_create(&kind)
            .observe(run.as_secs_f64());
        self.finished.get_or_create(&kind).inc();
    }

    /// A job was refused or failed with `code`.
    pub fn on_rejected(&self, code: &str) {
        self.rejections
            .get_or_create(&ReasonLabel {
                reason: code.into(),
            })
            .inc();
    }

    /// A chat answer's token timings.
    pub fn on_answer(&self, usage: &app::chat::ChatUsage) {
        self.time_to_first_token
            .observe(usage.time_to_first_token_ms / 1e3);
        if usage.tokens_per_second > 0.0 {
            self.time_per_output_token
                .observe(1.0 / usage.tokens_per_second);
        }
    }

    /// The text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The scheduler's counters go straight into the registry.
impl turnstile_scheduler::Observer for Metrics {
    fn finished(&self, kind: &'static str, waited: Duration, run: Duration) {
        self.on_finish(kind, waited, run);
    }

    fn rejected(&self, code: &'static str) {
        self.on_rejected(code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let m = Metrics::new();
        m.on_finish("calc", Duration::from_millis(3), Duration::from_millis(2));
        m.on_rejected("queue_full");
        let text = m.encode();
        for name in [
            "turnstile_queue_wait_seconds_bucket",
            "turnstile_job_run_seconds_count{kind=\"calc\"} 1",
            "turnstile_jobs_finished_total{kind=\"calc\"} 1",
            "turnstile_rejections_total{reason=\"queue_full\"} 1",
            "turnstile_device_busy_seconds_total",
            "turnstile_device_utilization_ratio",
            "turnstile_cache_bytes",
        ] {
            assert!(text.contains(name), "{name} missing from:\n{text}");
        }
    }
}
