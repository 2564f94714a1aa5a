//! The scheduler: the one owner of the device's queue. Jobs from every WebSocket connection and
//! every HTTP request enter here; exactly `max_concurrent` of them hold the device at once.
//!
//! Shape (after text-generation-inference's router queue): one task ([`task`]) owns the queue and
//! all its bookkeeping and is fed by an unbounded mpsc of [`Command`]s. Admission happens before
//! a command is sent: a semaphore of `max_waiting` permits is tried (`try_acquire`, so a full
//! queue answers `queue_full` at once) and each permit travels with its job until it starts.
//! Every job carries its owner's event sink; events go to that sink only. Dropping the
//! [`JobTicket`] cancels the job, so a vanished client frees its place at once.
//!
//! Concurrency invariant: only the scheduler task reads or writes the queue, the running set and
//! the statistics; runners ([`runner`]) talk back to it only through commands.

mod admission;
mod announce;
mod context;
pub mod fair;
mod housekeeping;
mod jobs;
mod line;
pub mod queue;
mod runner;
mod snapshot;
mod task;

pub use context::{Emitter, RunContext};
pub(crate) use context::{JobStart, WaitingPlaces};
pub use fair::{Party, QueueOrder};
pub use line::Resource;
pub use queue::QueueKey;

use crate::device::DeviceHost;
use crate::error::JobError;
use crate::job::Work;
use app::api::{DeviceQueue, QueueStatus, Stats};
use app::chat::ChatUsage;
use app::protocol::JobId;
use app::tensor::Tensor;
use futures::future::BoxFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// What happens to a job, as its owner hears it.
#[derive(Clone, Debug, PartialEq)]
pub enum JobEvent {
    /// Queued at `position` (1 = next) of `queue_length`.
    Accepted {
        /// 1 = next to run.
        position: u64,
        /// Jobs waiting, this one included.
        queue_length: u64,
        /// Estimated wait.
        eta_ms: u64,
    },
    /// Moved to `position`.
    Position {
        /// 1 = next to run.
        position: u64,
        /// Estimated wait.
        eta_ms: u64,
    },
    /// Holds the device after waiting `waited_ms`.
    Started {
        /// Time spent waiting.
        waited_ms: u64,
    },
    /// (Chat) waiting for the model to load, with the fraction done when known.
    Loading {
        /// Fraction loaded.
        progress: Option<f32>,
    },
    /// (Chat) the next piece of the answer: whole UTF-8 characters.
    Token {
        /// The text to append.
        text: String,
    },
    /// The output; `Done` follows.
    Result {
        /// The computed tensor.
        output: Tensor,
        /// Time spent computing.
        compute_ms: f64,
    },
    /// Finished; nothing follows.
    Done,
    /// (Chat) the answer is complete; nothing follows.
    Answered(ChatUsage),
    /// Failed; nothing follows.
    Failed(JobError),
}

impl JobEvent {
    /// Whether nothing follows this event.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobEvent::Done | JobEvent::Answered(_) | JobEvent::Failed(_)
        )
    }
}

/// Where a job's events go: its owner's channel. One connection may own many jobs.
///
/// Unbounded on purpose: a job's events are bounded by the job itself (its positions, at most
/// one per coalescing interval, and its tokens, at most `max_tokens`), and sending must never
/// wait, so that no owner, however slow, can hold up the device thread or the scheduler. Owners
/// drain their channel at once (the relay's pump copies events into the job's bounded log).
pub type EventSink = mpsc::UnboundedSender<(JobId, JobEvent)>;

/// What a finished job produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A calculator result.
    Tensor {
        /// The computed tensor.
        output: Tensor,
        /// Time spent computing.
        compute_ms: f64,
    },
    /// A chat answer, already streamed as tokens.
    Chat(ChatUsage),
}

/// The work jobs do.
///
/// Contract: the future [`Executor::run`] does its device work through
/// [`RunContext::on_device`] (or holds a place with [`RunContext::in_slot`]), completes only after
/// that work has returned, and returns promptly with
/// [`JobError::Cancelled`] once the context's token fires, at its next cancellation point. The
/// scheduler counts the job as holding the device until then.
pub trait Executor: Send + Sync + 'static {
    /// Cheap checks at submission (shapes, caps), so bad jobs never wait.
    fn validate(&self, work: &Work) -> Result<(), JobError>;
    /// What the job waits for: a device place (the default) or a batching engine's lane.
    fn resource(&self, _work: &Work) -> Resource {
        Resource::Device
    }
    /// The expected wait of the lane job at `position` (1 = next) of the lane line, from the
    /// engine's own view of its lanes; `None` lets the scheduler estimate from run times.
    fn lane_eta(&self, _position: u64) -> Option<Duration> {
        None
    }
    /// Runs the job; it holds one of the device's `max_concurrent` places meanwhile.
    fn run(
        self: Arc<Self>,
        work: Work,
        ctx: RunContext,
    ) -> BoxFuture<'static, Result<Outcome, JobError>>;
}

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
    /// The server's embedded defaults (see `crate::config`).
    fn default() -> Self {
        SchedulerConfig {
            max_concurrent: 1,
            lanes: 8,
            max_waiting: 1000,
            max_wait: Duration::from_secs(120),
            max_run: Duration::from_secs(30),
            prefetch: 1,
            position_interval: Duration::from_millis(100),
            initial_run_estimate: Duration::from_millis(50),
            order: QueueOrder::Fair,
            max_waiting_per_party: 32,
        }
    }
}

/// A point-in-time view for the HTTP endpoints.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Jobs in the queue, by kind (for `/metrics`).
    pub waiting_by_kind: Vec<(&'static str, u64)>,
    /// Jobs handed to the device ahead of their turn (counted as waiting in `stats`).
    pub prefetched: u64,
    /// `/api/device/queue`.
    pub device_queue: DeviceQueue,
    /// `/queue/status`.
    pub queue_status: QueueStatus,
    /// `/api/stats`.
    pub stats: Stats,
}

/// Messages to the scheduler task.
enum Command {
    /// A new job, admitted (it holds a permit).
    Submit(Box<jobs::Waiting>),
    /// Cancel a job; `notify` tells its owner (an explicit cancel) or not (the owner is gone).
    Cancel { id: JobId, notify: bool },
    /// A runner left the device.
    Finished {
        id: JobId,
        /// Time from queued to reaching the device (or to the end, if it never did).
        waited: Duration,
        /// Time on the device; `None` if it never started (abandoned while prefetched).
        run: Option<Duration>,
        failure: Option<&'static str>,
    },
    /// A submission was refused before reaching the queue (for statistics).
    Refused(&'static str),
    /// Report the current state.
    Snapshot(oneshot::Sender<Snapshot>),
    /// Answer once no job is dispatched (at once if none is).
    WhenIdle(oneshot::Sender<()>),
    /// Cancel every dispatched job (the end of a shutdown's drain).
    CancelRunning,
}

/// A handle for submitting jobs; cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    /// Commands to the task.
    tx: mpsc::UnboundedSender<Command>,
    /// One permit per waiting job; closed at shutdown.
    permits: Arc<Semaphore>,
    /// Validates jobs before they queue.
    executor: Arc<dyn Executor>,
    /// For `queue_full` messages.
    max_waiting: usize,
    /// Each party's waiting jobs, against its cap.
    party_caps: Arc<admission::PartyCaps>,
    /// The scheduler task's moving average of run times, in microseconds (for retry hints).
    avg_run_us: Arc<AtomicU64>,
}

/// A submitted job's id; dropping it cancels the job unless it has ended.
pub struct JobTicket {
    id: JobId,
    tx: mpsc::UnboundedSender<Command>,
    armed: bool,
}

impl JobTicket {
    /// The job's id.
    pub fn id(&self) -> &JobId {
        &self.id
    }

    /// Cancels the job; its owner receives `Failed(Cancelled)`.
    pub fn cancel(mut self) {
        self.armed = false;
        let _ = self.tx.send(Command::Cancel {
            id: self.id.clone(),
            notify: true,
        });
    }

    /// The job has ended: dropping the ticket no longer cancels anything.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for JobTicket {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.tx.send(Command::Cancel {
                id: self.id.clone(),
                notify: false,
            });
        }
    }
}

impl Scheduler {
    /// Starts the scheduler task on the current runtime. It stops when every handle is dropped
    /// or `shutdown` fires.
    pub fn spawn(
        config: SchedulerConfig,
        device: Arc<DeviceHost>,
        executor: Arc<dyn Executor>,
        metrics: Arc<crate::metrics::Metrics>,
        shutdown: CancellationToken,
    ) -> Scheduler {
        let (tx, rx) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(config.max_waiting));
        let max_waiting = config.max_waiting;
        let party_caps = admission::PartyCaps::new(config.max_waiting_per_party);
        let avg_run_us = Arc::new(AtomicU64::new(
            config.initial_run_estimate.as_micros() as u64
        ));
        task::spawn(task::TaskParts {
            config,
            device,
            executor: Arc::clone(&executor),
            tx: tx.downgrade(),
            rx,
            permits: Arc::clone(&permits),
            avg_run_us: Arc::clone(&avg_run_us),
            metrics,
            shutdown,
        });
        Scheduler {
            tx,
            permits,
            executor,
            max_waiting,
            party_caps,
            avg_run_us,
        }
    }

    /// Validates and queues `job` for `party`, whose events go to `sink`. Its first event is
    /// `Accepted`.
    pub fn submit(&self, job: Work, party: Party, sink: EventSink) -> Result<JobTicket, JobError> {
        let refuse = |e: JobError| {
            let _ = self.tx.send(Command::Refused(e.code().as_str()));
            e
        };
        self.executor.validate(&job).map_err(refuse)?;
        let Some(place) = self.party_caps.try_take(&party) else {
            let avg = Duration::from_micros(self.avg_run_us.load(Ordering::Relaxed));
            return Err(refuse(JobError::RateLimited {
                waiting: self.party_caps.max(),
                retry_after: avg.max(Duration::from_secs(1)),
            }));
        };
        let permit: OwnedSemaphorePermit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(p) => p,
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                return Err(refuse(JobError::QueueFull(self.max_waiting)))
            }
            Err(tokio::sync::TryAcquireError::Closed) => {
                return Err(refuse(JobError::ShuttingDown))
            }
        };
        let id = JobId(uuid::Uuid::new_v4().simple().to_string());
        let resource = self.executor.resource(&job);
        let waiting = jobs::Waiting::new(id.clone(), job, resource, party, sink, permit, place);
        self.tx
            .send(Command::Submit(Box::new(waiting)))
            .map_err(|_| JobError::ShuttingDown)?;
        Ok(JobTicket {
            id,
            tx: self.tx.clone(),
            armed: true,
        })
    }

    /// Resolves once no job holds (or is about to hold) the device: after a shutdown began, when
    /// the running jobs have finished.
    pub async fn idle(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::WhenIdle(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Cancels every running job (each owner hears `cancelled`).
    pub fn cancel_running(&self) {
        let _ = self.tx.send(Command::CancelRunning);
    }

    /// The current state, for the HTTP endpoints.
    pub async fn snapshot(&self) -> Option<Snapshot> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Snapshot(tx)).ok()?;
        let mut snapshot = rx.await.ok()?;
        snapshot.stats.queue.parties_waiting = self.party_caps.parties() as u64;
        Some(snapshot)
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
