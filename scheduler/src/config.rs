//! The scheduler's settings. Plain data.

use crate::fair::QueueOrder;
use std::time::Duration;

/// Most device jobs handed ahead of their turn by `prefetch_time`.
pub const MAX_PREFETCH: usize = 64;

/// The scheduler's settings.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Jobs on the device at once.
    pub max_concurrent: usize,
    /// Lane jobs (chats on a batching engine) dispatched at once.
    pub lanes: usize,
    /// Jobs waiting at once.
    pub max_waiting: usize,
    /// Longest wait before `timeout`.
    pub max_wait: Duration,
    /// Longest run before `timeout`.
    pub max_run: Duration,
    /// Jobs handed to the device ahead of their turn, beyond `max_concurrent` (0 = none): the
    /// next job is already queued on the device when the current one ends, so the device never
    /// waits for the scheduler.
    pub prefetch: usize,
    /// Beyond `prefetch`, more device jobs are handed ahead while the expected device time of
    /// every dispatched device job together stays within this (at most [`MAX_PREFETCH`] of
    /// them): many tiny jobs queue on the device with no round trip between them, long ones
    /// never go ahead of their turn by more than `prefetch`. Zero turns it off.
    pub prefetch_time: Duration,
    /// Shortest interval between two position messages for one job.
    pub position_interval: Duration,
    /// ETA guess per job before any job has run.
    pub initial_run_estimate: Duration,
    /// Fair across parties, or arrival order.
    pub order: QueueOrder,
    /// Most jobs one party may have waiting at once (0 = no cap); beyond it, `rate_limited`.
    pub max_waiting_per_party: usize,
}

impl Default for SchedulerConfig {
    /// The server's embedded defaults.
    fn default() -> Self {
        SchedulerConfig {
            max_concurrent: 1,
            lanes: 8,
            max_waiting: 1000,
            max_wait: Duration::from_secs(120),
            max_run: Duration::from_secs(30),
            prefetch: 1,
            prefetch_time: Duration::ZERO,
            position_interval: Duration::from_millis(100),
            initial_run_estimate: Duration::from_millis(50),
            order: QueueOrder::Fair,
            max_waiting_per_party: 32,
        }
    }
}
