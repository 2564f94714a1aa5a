//! The one translation of the scheduler's plain [`QueueView`] into the HTTP bodies that show it
//! (`/api/device/queue`, `/queue/status`, `/api/stats`). The scheduler knows nothing of these
//! types; the handlers add what is not the scheduler's (the cache, the model, the process).
//! Plain functions.

use app::api::{
    DeviceQueue, DeviceStats, HistoryPoint, Performance, QueueItem, QueueStats, QueueStatus, Stats,
};
use std::time::SystemTime;
use turnstile_scheduler::QueueView;

/// `/api/device/queue`, the device's jobs only (the handler adds the cache's answers).
pub fn device_queue(v: &QueueView) -> DeviceQueue {
    DeviceQueue {
        total_requests: v.total_finished,
        cache_hits: 0,
        currently_waiting: v.waiting,
        max_wait_time_seconds: v.max_wait.as_secs_f64(),
        running: v.running,
        max_concurrent: v.max_concurrent,
    }
}

/// `/queue/status`, with the job-level list.
pub fn queue_status(v: &QueueView) -> QueueStatus {
    let wall = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    QueueStatus {
        queue_length: v.waiting,
        active_requests: v.running,
        max_concurrent: v.max_concurrent,
        total_processed: v.total_finished,
        queue_items: v
            .items
            .iter()
            .map(|i| QueueItem {
                position: i.position,
                enqueued_at: wall(i.enqueued_at),
                kind: i.kind.into(),
                status: i.status.as_str().into(),
            })
            .collect(),
    }
}

/// `/api/stats` as far as the scheduler knows it (model, cache and process are the handler's).
pub fn stats(v: &QueueView) -> Stats {
    let p = &v.performance;
    let d = &v.device;
    Stats {
        performance: Performance {
            requests_per_second: p.requests_per_second,
            avg_response_time: p.avg_response_time,
            p50_response_time: p.p50_response_time,
            p95_response_time: p.p95_response_time,
            p99_response_time: p.p99_response_time,
            total_requests: p.total_requests,
            window_seconds: p.window_seconds,
        },
        queue: QueueStats {
            length: v.waiting,
            running: v.running,
            max_concurrent: v.max_concurrent,
            max_waiting: v.max_waiting,
            p50_wait: v.p50_wait.as_secs_f64(),
            p95_wait: v.p95_wait.as_secs_f64(),
            max_wait: v.max_wait.as_secs_f64(),
            avg_run_time: v.avg_run.as_secs_f64(),
            cancelled: v.cancelled,
            rejected: v
                .rejected
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect(),
            parties_waiting: v.parties_waiting,
            order: v.order.as_str().into(),
        },
        device: DeviceStats {
            backend: d.backend.clone(),
            open: d.open,
            opens: d.opens,
            open_failures: d.open_failures,
            keep_alive_seconds: d.keep_alive.as_secs_f64(),
            busy_seconds_total: d.busy.as_secs_f64(),
            utilization: d.utilization,
            utilization_window_seconds: d.utilization_window.as_secs_f64(),
            handovers: d.handovers,
            handover_p50_us: d.handover_p50_us,
            handover_p99_us: d.handover_p99_us,
            threads: d.threads,
            compute_threads: d.compute_threads,
        },
        model: Default::default(),
        cache: Default::default(),
        process: Default::default(),
        history: v
            .history
            .iter()
            .map(|h| HistoryPoint {
                t: h.t,
                queue_length: h.queue_length,
                avg_wait: h.avg_wait,
                finished: h.finished,
            })
            .collect(),
        history_step_seconds: 1,
    }
}
