//! The scheduler's state as its callers see it: plain, owned copies made by the scheduler task
//! on request ([`crate::Scheduler::view`]). The server turns them into its HTTP bodies and
//! metrics; nothing here knows about either.

use crate::fair::QueueOrder;
use std::time::{Duration, SystemTime};

/// A point-in-time view of the queue, the device and the statistics.
#[derive(Clone, Debug)]
pub struct QueueView {
    /// Jobs waiting, by kind.
    pub waiting_by_kind: Vec<(&'static str, u64)>,
    /// Device jobs handed to the device ahead of their turn (they count as waiting).
    pub prefetched: u64,
    /// Jobs waiting in every line, the prefetched ones included.
    pub waiting: u64,
    /// Jobs holding the device's places, plus lane jobs their engine has admitted.
    pub running: u64,
    /// The device's places.
    pub max_concurrent: u64,
    /// Most jobs waiting at once.
    pub max_waiting: u64,
    /// Parties with jobs waiting.
    pub parties_waiting: u64,
    /// Running jobs first, then the front of each line (at most [`QueueView::MAX_LISTED`]).
    pub items: Vec<QueueItem>,
    /// Jobs that reached the device and finished, since start.
    pub total_finished: u64,
    /// The longest wait of a job that started, since start.
    pub max_wait: Duration,
    /// Median wait over the statistics window.
    pub p50_wait: Duration,
    /// 95th-percentile wait over the statistics window.
    pub p95_wait: Duration,
    /// Moving average of run times.
    pub avg_run: Duration,
    /// Jobs cancelled, since start.
    pub cancelled: u64,
    /// Jobs refused or failed, by code, since start.
    pub rejected: Vec<(&'static str, u64)>,
    /// The queue's order.
    pub order: QueueOrder,
    /// Response times over the window.
    pub performance: Performance,
    /// One point per second, oldest first.
    pub history: Vec<HistoryPoint>,
    /// The device.
    pub device: DeviceView,
}

impl QueueView {
    /// Most entries listed in [`QueueView::items`].
    pub const MAX_LISTED: usize = 100;
}

/// One entry of the queue listing.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueItem {
    /// 0 for a running job, else its position in its line.
    pub position: u64,
    /// When it was queued.
    pub enqueued_at: SystemTime,
    /// Its kind (see [`crate::Job::kind`]).
    pub kind: &'static str,
    /// Where it is.
    pub status: ItemStatus,
}

/// Where a listed job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemStatus {
    /// Holding the device (or a lane).
    Running,
    /// Handed to the device (or its engine), not started yet.
    Starting,
    /// Waiting in its line.
    Queued,
}

impl ItemStatus {
    /// A lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemStatus::Running => "running",
            ItemStatus::Starting => "starting",
            ItemStatus::Queued => "queued",
        }
    }
}

/// Response times (queued to finished) over the statistics window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Performance {
    /// Finished jobs per second over the window.
    pub requests_per_second: f64,
    /// Mean, in seconds.
    pub avg_response_time: f64,
    /// Median, in seconds.
    pub p50_response_time: f64,
    /// 95th percentile, in seconds.
    pub p95_response_time: f64,
    /// 99th percentile, in seconds.
    pub p99_response_time: f64,
    /// Jobs finished since start.
    pub total_requests: u64,
    /// The window's length, in seconds.
    pub window_seconds: u64,
}

/// One second of history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryPoint {
    /// Seconds since start.
    pub t: u64,
    /// Jobs waiting at the end of that second.
    pub queue_length: u64,
    /// Mean wait of the jobs that started in it, in seconds.
    pub avg_wait: f64,
    /// Jobs that finished in it.
    pub finished: u64,
}

/// The device's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceView {
    /// Its backend's name (`cpu`, `cuda:0`).
    pub backend: String,
    /// Whether it is open now.
    pub open: bool,
    /// Successful opens since start.
    pub opens: u64,
    /// Failed opens since start.
    pub open_failures: u64,
    /// How long it stays open unused.
    pub keep_alive: Duration,
    /// Time held by some job, since start.
    pub busy: Duration,
    /// Busy share over the recent window.
    pub utilization: f64,
    /// The window `utilization` covers.
    pub utilization_window: Duration,
    /// Hand-overs between jobs while work was queued.
    pub handovers: u64,
    /// Median hand-over gap, in microseconds.
    pub handover_p50_us: u64,
    /// 99th-percentile hand-over gap, in microseconds.
    pub handover_p99_us: u64,
    /// Device threads (places).
    pub threads: u64,
    /// Threads for the device's parallel kernels.
    pub compute_threads: u64,
    /// What went wrong last, until a job succeeds again.
    pub problem: Option<String>,
}
