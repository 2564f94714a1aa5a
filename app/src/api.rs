//! JSON bodies of the HTTP API (`/api/execute`, `/api/device/queue`, `/queue/status`,
//! `/api/stats`, `/health`). Declared once here: the server produces them, the stats page reads them.

use crate::error_code::ErrorCode;
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// `POST /api/execute` success body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecuteResponse {
    /// Always `true`.
    pub success: bool,
    /// The computed tensor.
    pub result: Tensor,
    /// This request's id (also in the `x-request-id` header and the server's log).
    pub request_id: String,
    /// Time spent waiting in the queue.
    pub waited_ms: u64,
    /// Time spent computing on the device.
    pub compute_ms: f64,
    /// The answer came from the result cache (no wait, no device).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cached: bool,
}

/// Error body of every JSON endpoint: `{"success":false,"error":{"code","message"}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Always `false`.
    pub success: bool,
    /// What went wrong.
    pub error: ErrorDetail,
    /// The request's id, when one was assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// The `error` object of an [`ErrorBody`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code from the fixed set.
    pub code: ErrorCode,
    /// A sentence a person can act on.
    pub message: String,
}

/// `GET /api/device/queue`: the device lock's counters (seed 000's shape, plus more).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceQueue {
    /// Requests served since start: jobs that finished on the device (successfully or not) plus
    /// those answered from the result cache (`cache_hits`), so that ten identical requests count
    /// ten.
    pub total_requests: u64,
    /// Of `total_requests`, those answered from the result cache without taking the device
    /// (the same count as `/api/stats`' `cache.hits`).
    #[serde(default)]
    pub cache_hits: u64,
    /// Jobs waiting for the device now.
    pub currently_waiting: u64,
    /// The longest time any job waited for the device, since start.
    pub max_wait_time_seconds: f64,
    /// Jobs holding the device now.
    pub running: u64,
    /// How many jobs may hold the device at once.
    pub max_concurrent: u64,
}

/// One entry of `GET /queue/status`. Never carries a job id or content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueueItem {
    /// 1 = next to run; 0 for running jobs.
    pub position: u64,
    /// When the job was queued (RFC 3339, UTC).
    pub enqueued_at: String,
    /// `calc` (or later `chat`).
    pub kind: String,
    /// `queued` or `running`.
    pub status: String,
}

/// `GET /queue/status` (seed 003's shape).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStatus {
    /// Jobs waiting.
    pub queue_length: u64,
    /// Jobs running.
    pub active_requests: u64,
    /// How many jobs may run at once.
    pub max_concurrent: u64,
    /// Jobs finished since start.
    pub total_processed: u64,
    /// Running jobs first, then waiting jobs in queue order.
    pub queue_items: Vec<QueueItem>,
}

/// `GET /api/stats`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// End-to-end job latency (queue wait plus compute) over the recent window.
    pub performance: Performance,
    /// The queue now and over the window.
    pub queue: QueueStats,
    /// The device's state and usage.
    pub device: DeviceStats,
    /// The chat model's state.
    #[serde(default)]
    pub model: ModelStats,
    /// The calculator's result cache.
    #[serde(default)]
    pub cache: CacheStats,
    /// The server process itself.
    #[serde(default)]
    pub process: ProcessStats,
    /// One point per `history_step_seconds` over the last minutes, oldest first, for charts.
    pub history: Vec<HistoryPoint>,
    /// Seconds between history points.
    pub history_step_seconds: u64,
}

/// The `performance` section: all times in seconds (seed 001's names).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    /// Finished jobs per second over the window.
    pub requests_per_second: f64,
    /// Mean response time over the window.
    pub avg_response_time: f64,
    /// Median response time over the window.
    pub p50_response_time: f64,
    /// 95th percentile response time over the window.
    pub p95_response_time: f64,
    /// 99th percentile response time over the window.
    pub p99_response_time: f64,
    /// Jobs finished since start.
    pub total_requests: u64,
    /// Length of the window the rates and percentiles cover.
    pub window_seconds: u64,
}

/// The `queue` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueStats {
    /// Jobs waiting now.
    pub length: u64,
    /// Jobs running now.
    pub running: u64,
    /// How many jobs may run at once.
    pub max_concurrent: u64,
    /// Configured maximum of waiting jobs.
    pub max_waiting: u64,
    /// Median queue wait over the window, seconds.
    pub p50_wait: f64,
    /// 95th percentile queue wait over the window, seconds.
    pub p95_wait: f64,
    /// Longest wait since start, seconds.
    pub max_wait: f64,
    /// Moving average of recent job run times, used for ETAs, seconds.
    pub avg_run_time: f64,
    /// Jobs cancelled since start.
    pub cancelled: u64,
    /// Jobs refused or failed since start, by error code.
    pub rejected: Vec<(String, u64)>,
    /// Sessions (or API keys, or anonymous addresses) with jobs waiting now.
    #[serde(default)]
    pub parties_waiting: u64,
    /// How waiting jobs are ordered: `fair` or `fifo`.
    #[serde(default)]
    pub order: String,
}

/// The `process` section: the server's own footprint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    /// Resident memory, in bytes (0 where the platform does not say).
    pub rss_bytes: u64,
    /// CPU time the process has used since start (user plus system, all threads), in seconds
    /// (0 where the platform does not say).
    #[serde(default)]
    pub cpu_seconds: f64,
    /// Open WebSocket connections.
    pub websocket_connections: u64,
}

/// The `cache` section (seed 001's names): the calculator's result cache.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheStats {
    /// Whether results are cached at all.
    pub enabled: bool,
    /// Entries now.
    pub size: u64,
    /// Most entries.
    pub max_size: u64,
    /// Bytes held now (keys and results).
    pub bytes: u64,
    /// Most bytes.
    pub max_bytes: u64,
    /// Jobs answered from the cache since start.
    pub hits: u64,
    /// Cacheable jobs that had to be computed since start.
    pub misses: u64,
    /// Hits over lookups, in percent.
    pub hit_rate: f64,
    /// How long an entry is kept.
    pub ttl_seconds: f64,
}

/// The `device` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeviceStats {
    /// `cpu` or `cuda:N`.
    pub backend: String,
    /// Whether the device is open now.
    pub open: bool,
    /// Times the device was opened since start.
    pub opens: u64,
    /// Failed open attempts since start.
    pub open_failures: u64,
    /// Seconds the device stays open after its last job.
    pub keep_alive_seconds: f64,
    /// Seconds the device was busy (some job held it) since start; its rate is the utilization.
    #[serde(default)]
    pub busy_seconds_total: f64,
    /// Busy time over wall time over the last [`DeviceStats::utilization_window_seconds`]
    /// (0 to 1).
    #[serde(default)]
    pub utilization: f64,
    /// The window `utilization` covers.
    #[serde(default)]
    pub utilization_window_seconds: f64,
    /// Hand-overs measured: times one job's device work ended while another's was queued.
    #[serde(default)]
    pub handovers: u64,
    /// Median idle time of the device between two such jobs, in microseconds.
    #[serde(default)]
    pub handover_p50_us: u64,
    /// 99th percentile of the same.
    #[serde(default)]
    pub handover_p99_us: u64,
    /// Jobs that may hold the device at once (its threads).
    #[serde(default)]
    pub threads: u64,
    /// Threads candle's kernels may use.
    #[serde(default)]
    pub compute_threads: u64,
}

/// The `model` section of `/api/stats` (and `/health`): the chat model manager's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelStats {
    /// The configured model's name.
    pub name: String,
    /// `local` (candle, on the device), `ollama` or `openai`.
    pub backend: String,
    /// `unloaded`, `loading` or `loaded` (remote backends: `remote`).
    pub state: String,
    /// Seconds the last successful load took.
    pub load_time_seconds: Option<f64>,
    /// Bytes of weights held while loaded.
    pub memory_bytes: Option<u64>,
    /// Seconds since the model was last used, while loaded.
    pub idle_seconds: Option<f64>,
    /// Requests waiting for a load now.
    pub waiting: u64,
    /// Loads started since start.
    pub loads: u64,
    /// Loads that failed, timed out or were cancelled.
    pub load_failures: u64,
    /// Why the last load failed, if it did.
    pub last_error: Option<String>,
    /// Seconds a loaded model stays after its last use.
    pub keep_alive_seconds: f64,
    /// Conversations the local model decodes at once (its engine's lanes; 0 for a remote
    /// backend, which keeps its own concurrency).
    #[serde(default)]
    pub lanes: u64,
    /// Lanes decoding now.
    #[serde(default)]
    pub lanes_in_use: u64,
}

/// One point of the stats history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    /// Seconds since the server started.
    pub t: u64,
    /// Jobs waiting at the end of the step.
    pub queue_length: u64,
    /// Mean queue wait of jobs started in the step, seconds (0 when none).
    pub avg_wait: f64,
    /// Jobs finished in the step.
    pub finished: u64,
}

/// `GET /health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// `healthy`, or `degraded` with the reason in a subsystem.
    pub status: String,
    /// The server's version.
    pub version: String,
    /// Seconds since start.
    pub uptime_seconds: u64,
    /// Per-subsystem state.
    pub subsystems: Subsystems,
}

/// The subsystems reported by `/health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subsystems {
    /// The scheduler task.
    pub scheduler: SubsystemHealth,
    /// The device.
    pub device: SubsystemHealth,
    /// WebSocket connections.
    pub websocket: SubsystemHealth,
    /// The chat model.
    #[serde(default = "SubsystemHealth::unknown")]
    pub model: SubsystemHealth,
}

/// One subsystem's health.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubsystemHealth {
    /// `ok` or `degraded`.
    pub status: String,
    /// A short human description (e.g. "2 waiting, 1 running").
    pub detail: String,
}

impl SubsystemHealth {
    /// For bodies from servers that did not report the subsystem.
    pub fn unknown() -> Self {
        SubsystemHealth {
            status: "ok".into(),
            detail: "not reported".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_device_queue_counts_cache_hits_and_reads_the_older_shape() {
        let q = DeviceQueue {
            total_requests: 10,
            cache_hits: 9,
            currently_waiting: 0,
            max_wait_time_seconds: 0.5,
            running: 0,
            max_concurrent: 1,
        };
        let golden = json!({"total_requests":10,"cache_hits":9,"currently_waiting":0,
            "max_wait_time_seconds":0.5,"running":0,"max_concurrent":1});
        assert_eq!(serde_json::to_value(&q).unwrap(), golden);
        assert_eq!(serde_json::from_value::<DeviceQueue>(golden).unwrap(), q);
        // A server from before `cache_hits` still decodes (as no hits).
        let old = json!({"total_requests":1,"currently_waiting":0,"max_wait_time_seconds":0.0,
            "running":0,"max_concurrent":1});
        assert_eq!(
            serde_json::from_value::<DeviceQueue>(old)
                .unwrap()
                .cache_hits,
            0
        );
    }
}
