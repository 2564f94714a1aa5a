//! The statistics snapshot behind `/queue/status`, `/api/stats` and `/metrics`, built by the
//! scheduler task from the state only it touches.

use super::jobs::Running;
use super::line::Resource;
use super::task::Task;
use super::Snapshot;
use app::api::{DeviceQueue, QueueItem, QueueStats, QueueStatus};
use std::time::SystemTime;

/// Most entries `/queue/status` lists (running jobs first, then the front of the queue).
const MAX_LISTED: usize = 100;

impl Task {
    pub(super) fn snapshot(&mut self) -> Snapshot {
        let wall = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
        // The device starts dispatched jobs in dispatch order: the first `max_concurrent` run.
        // Lane jobs run once their engine has admitted them.
        let mut dispatched: Vec<&Running> = self
            .running
            .values()
            .filter(|r| r.resource == Resource::Device)
            .collect();
        dispatched.sort_by_key(|r| r.order);
        let mut in_lanes: Vec<&Running> = self
            .running
            .values()
            .filter(|r| r.resource == Resource::Lane)
            .collect();
        in_lanes.sort_by_key(|r| r.order);
        let lanes_running = in_lanes.iter().filter(|r| r.start.at().is_some()).count();
        let mut items: Vec<QueueItem> = dispatched
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let on_device = i < self.config.max_concurrent;
                QueueItem {
                    position: if on_device {
                        0
                    } else {
                        (i + 1 - self.config.max_concurrent) as u64
                    },
                    enqueued_at: wall(r.enqueued_wall),
                    kind: r.kind.into(),
                    status: if on_device { "running" } else { "starting" }.into(),
                }
            })
            .collect();
        items.extend(in_lanes.iter().map(|r| {
            QueueItem {
                position: 0,
                enqueued_at: wall(r.enqueued_wall),
                kind: r.kind.into(),
                status: if r.start.at().is_some() {
                    "running"
                } else {
                    "starting"
                }
                .into(),
            }
        }));
        for resource in Resource::ALL {
            let room = MAX_LISTED.saturating_sub(items.len());
            items.extend(self.lines.get(resource).queue.iter().take(room).map(
                |(position, _, w)| QueueItem {
                    position,
                    enqueued_at: wall(w.enqueued_wall),
                    kind: w.job.kind().into(),
                    status: "queued".into(),
                },
            ));
        }
        let (p50_wait, p95_wait) = self.stats.wait_percentiles();
        let prefetched = self.prefetched(Resource::Device);
        let waiting = (self.lines.len() + prefetched) as u64;
        // The device's places in use, plus the chats decoding in the engine's lanes.
        let running = (self.running_by[Resource::Device as usize].min(self.config.max_concurrent)
            + lanes_running) as u64;
        let max_concurrent = self.config.max_concurrent as u64;
        Snapshot {
            waiting_by_kind: self.waiting_kinds.iter().map(|(k, n)| (*k, *n)).collect(),
            prefetched: prefetched as u64,
            device_queue: DeviceQueue {
                // The device's jobs; the handler adds the cache's answers (the scheduler never
                // sees them).
                total_requests: self.stats.total_finished,
                cache_hits: 0,
                currently_waiting: waiting,
                max_wait_time_seconds: self.stats.max_wait.as_secs_f64(),
                running,
                max_concurrent,
            },
            queue_status: QueueStatus {
                queue_length: waiting,
                active_requests: running,
                max_concurrent,
                total_processed: self.stats.total_finished,
                queue_items: items,
            },
            stats: app::api::Stats {
                performance: self.stats.performance(),
                queue: QueueStats {
                    length: waiting,
                    running,
                    max_concurrent,
                    max_waiting: self.config.max_waiting as u64,
                    p50_wait,
                    p95_wait,
                    max_wait: self.stats.max_wait.as_secs_f64(),
                    avg_run_time: self.stats.avg_run.as_secs_f64(),
                    cancelled: self.stats.cancelled,
                    rejected: self
                        .stats
                        .rejected
                        .iter()
                        .map(|(k, v)| (k.to_string(), *v))
                        .collect(),
                    parties_waiting: 0, // filled in by the handle, which counts them
                    order: match self.config.order {
                        super::QueueOrder::Fair => "fair",
                        super::QueueOrder::Fifo => "fifo",
                    }
                    .into(),
                },
                device: {
                    let mut d = self.device.stats();
                    let (utilization, window) = self.utilization.utilization(self.device.busy());
                    d.utilization = utilization;
                    d.utilization_window_seconds = window.as_secs_f64();
                    d
                },
                model: Default::default(),
                cache: Default::default(),
                process: Default::default(),
                history: self.stats.history(),
                history_step_seconds: 1,
            },
        }
    }
}
