//! The scheduler task: owns the waiting queue, the fair clock, the dispatched set, the wait
//! deadlines and the statistics, and is the only code that touches them. It reacts to commands,
//! hands jobs to the device while fewer than `max_concurrent + prefetch` are dispatched (so the
//! next job is already queued on the device when the current one ends), expires jobs that waited
//! too long, announces positions at most once per coalescing interval, and closes the device when
//! it has been idle for its keep-alive.
//!
//! Positions count every job ahead: the prefetched ones (dispatched beyond `max_concurrent`,
//! not started yet) and the queue's. Every operation on a command is O(log n) in the number of
//! waiting jobs; position announcements cost O(k log n) per interval for the k jobs that moved
//! (see `queue`).

use super::fair::FairClock;
use super::jobs::{Running, Waiting};
use super::queue::{QueueKey, WaitQueue};
use super::runner::{self, RunSpec};
use super::{Command, EventSink, Executor, JobEvent, SchedulerConfig};
use crate::device::DeviceHost;
use crate::error::JobError;
use crate::job::Work;
use crate::stats::Stats;
use app::protocol::JobId;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

pub(super) struct Task {
    pub(super) config: SchedulerConfig,
    pub(super) device: Arc<DeviceHost>,
    executor: Arc<dyn Executor>,
    /// For runners to report back; weak so the task ends when every handle is gone.
    tx: mpsc::WeakUnboundedSender<Command>,
    permits: Arc<Semaphore>,
    pub(super) queue: WaitQueue<Waiting>,
    /// The fair order's virtual time and parties.
    pub(super) clock: FairClock,
    /// Expected device time per job kind (moving averages), for the fair order's costs.
    costs: HashMap<&'static str, Duration>,
    /// Dispatches so far.
    dispatched: u64,
    /// Published moving average of run times, for the handle's retry hints.
    avg_run_us: Arc<AtomicU64>,
    /// Recent samples of the device's busy time, for its utilization.
    pub(super) utilization: crate::stats::UtilizationWindow,
    /// Waiting jobs by kind (for `/metrics`).
    pub(super) waiting_kinds: HashMap<&'static str, u64>,
    /// Where events are counted for `/metrics`.
    metrics: Arc<crate::metrics::Metrics>,
    /// Waiting jobs by id.
    pub(super) waiting_ids: HashMap<JobId, QueueKey>,
    /// Wait deadlines, earliest first.
    pub(super) deadlines: BTreeSet<(Instant, QueueKey)>,
    pub(super) running: HashMap<JobId, Running>,
    next_seq: u64,
    pub(super) stats: Stats,
    /// When positions were last announced.
    pub(super) last_flush: Instant,
    /// Set once shutdown began: nothing new starts.
    draining: bool,
    /// Waiting for the device to be idle (a shutdown's drain).
    idle_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// Everything the task starts with.
pub(super) struct TaskParts {
    pub config: SchedulerConfig,
    pub device: Arc<DeviceHost>,
    pub executor: Arc<dyn Executor>,
    pub tx: mpsc::WeakUnboundedSender<Command>,
    pub rx: mpsc::UnboundedReceiver<Command>,
    pub permits: Arc<Semaphore>,
    pub avg_run_us: Arc<AtomicU64>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub shutdown: CancellationToken,
}

pub(super) fn spawn(parts: TaskParts) {
    let TaskParts {
        config,
        device,
        executor,
        tx,
        rx,
        permits,
        avg_run_us,
        metrics,
        shutdown,
    } = parts;
    let task = Task {
        stats: Stats::new(config.initial_run_estimate),
        clock: FairClock::new(config.order),
        config,
        device,
        executor,
        tx,
        permits,
        queue: WaitQueue::default(),
        costs: HashMap::new(),
        dispatched: 0,
        avg_run_us,
        utilization: crate::stats::UtilizationWindow::default(),
        waiting_kinds: HashMap::new(),
        metrics,
        waiting_ids: HashMap::new(),
        deadlines: BTreeSet::new(),
        running: HashMap::new(),
        next_seq: 0,
        last_flush: Instant::now(),
        draining: false,
        idle_waiters: Vec::new(),
    };
    tokio::spawn(task.run(rx, shutdown));
}

/// Sends an event that must not be lost: at once if the sink has room, else from a short task.
pub(super) fn deliver(sink: &EventSink, id: &JobId, event: JobEvent) {
    // An owner that is gone has nobody to tell.
    let _ = sink.send((id.clone(), event));
}

impl Task {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>, shutdown: CancellationToken) {
        let mut tick =
            tokio::time::interval(self.config.position_interval.min(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled(), if !self.draining => self.drain(),
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.handle(cmd),
                    None => break,
                },
                _ = tick.tick() => self.housekeeping(Instant::now()),
            }
            self.dispatch();
            if self.running.is_empty() {
                for w in self.idle_waiters.drain(..) {
                    let _ = w.send(());
                }
            }
            if self.queue.is_dirty() && self.last_flush.elapsed() >= self.config.position_interval {
                self.flush_positions();
            }
        }
        tracing::debug!("scheduler task stopped");
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Submit(w) => self.enqueue(*w),
            Command::Cancel { id, notify } => self.cancel(id, notify),
            Command::Finished {
                id,
                waited,
                run,
                failure,
            } => {
                if let Some(r) = self.running.remove(&id) {
                    if let Some(run) = run {
                        self.metrics.on_finish(r.kind, waited, run);
                        self.stats.on_start(waited);
                        self.stats.on_finish(run, waited + run);
                        self.avg_run_us
                            .store(self.stats.avg_run.as_micros() as u64, Ordering::Relaxed);
                        let cost = self.costs.entry(r.kind).or_insert(run);
                        *cost = (*cost * 4 + run) / 5;
                    }
                    if let Some(code) = failure {
                        self.reject(code);
                    }
                }
            }
            Command::Refused(code) => self.reject(code),
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Command::WhenIdle(reply) => self.idle_waiters.push(reply),
            Command::CancelRunning => {
                for (id, r) in &self.running {
                    tracing::info!(job_id = %id, "cancelled: the server is shutting down");
                    r.cancel.cancel();
                }
            }
        }
    }

    fn enqueue(&mut self, mut w: Waiting) {
        if self.draining {
            deliver(&w.sink, &w.id, JobEvent::Failed(JobError::ShuttingDown));
            return;
        }
        let cost = self.expected_cost(&w.job).as_micros() as u64;
        w.tags = self.clock.tag(&w.party, cost, self.next_seq);
        let key = w.tags.key;
        self.next_seq += 1;
        w.deadline = w.enqueued + self.config.max_wait;
        self.deadlines.insert((w.deadline, key));
        self.waiting_ids.insert(w.id.clone(), key);
        let (sink, id) = (w.sink.clone(), w.id.clone());
        *self.waiting_kinds.entry(w.job.kind()).or_default() += 1;
        let position = self.queue.push(key, w);
        let accepted = JobEvent::Accepted {
            position,
            queue_length: (self.queue.len() + self.prefetched()) as u64,
            eta_ms: self.eta_ms(position),
        };
        tracing::debug!(job_id = %id, position, "job queued");
        deliver(&sink, &id, accepted);
    }

    fn cancel(&mut self, id: JobId, notify: bool) {
        if let Some(key) = self.waiting_ids.remove(&id) {
            if let Some(w) = self.queue.remove(&key) {
                self.left_queue(&w);
                self.deadlines.remove(&(w.deadline, key));
                self.clock.withdrawn(&w.party, &w.tags);
                self.stats.cancelled += 1;
                tracing::debug!(job_id = %id, notify, "waiting job cancelled");
                if notify {
                    deliver(&w.sink, &w.id, JobEvent::Failed(JobError::Cancelled));
                }
            }
        } else if let Some(r) = self.running.get(&id) {
            tracing::debug!(job_id = %id, "running job cancelled");
            self.stats.cancelled += 1;
            r.cancel.cancel();
        }
    }

    /// A refusal or failure, counted for `/api/stats` and `/metrics`.
    pub(super) fn reject(&mut self, code: &'static str) {
        self.stats.on_rejected(code);
        self.metrics.on_rejected(code);
    }

    /// Bookkeeping for a job that left the queue (for any reason).
    pub(super) fn left_queue(&mut self, w: &Waiting) {
        if let Some(n) = self.waiting_kinds.get_mut(w.job.kind()) {
            *n = n.saturating_sub(1);
        }
    }

    /// Expected device time of a job: a test-mode `sleep` says it; otherwise the moving
    /// average of its kind.
    fn expected_cost(&self, job: &Work) -> Duration {
        if let Work::Calc(c) = job {
            if c.op == app::protocol::Op::Sleep {
                return c.sleep_duration().unwrap_or_default();
            }
        }
        self.costs
            .get(job.kind())
            .copied()
            .unwrap_or(self.config.initial_run_estimate)
    }

    /// Jobs dispatched beyond `max_concurrent`: handed to the device, waiting for a place.
    pub(super) fn prefetched(&self) -> usize {
        self.running
            .len()
            .saturating_sub(self.config.max_concurrent)
    }

    /// Hands waiting jobs to the device while it has room (its places plus the prefetch).
    fn dispatch(&mut self) {
        let room = self.config.max_concurrent + self.config.prefetch;
        while !self.draining && self.running.len() < room {
            let Some((key, mut w)) = self.queue.pop_first() else {
                break;
            };
            self.left_queue(&w);
            self.waiting_ids.remove(&w.id);
            self.deadlines.remove(&(w.deadline, key));
            if w.sink.is_closed() {
                self.clock.withdrawn(&w.party, &w.tags);
                continue;
            }
            let Some(tx) = self.tx.upgrade() else {
                deliver(&w.sink, &w.id, JobEvent::Failed(JobError::ShuttingDown));
                continue;
            };
            self.clock.dispatched(&w.tags);
            let cancel = CancellationToken::new();
            let start = Arc::new(super::JobStart::new(w.enqueued, w.places.take()));
            self.running.insert(
                w.id.clone(),
                Running {
                    cancel: cancel.clone(),
                    kind: w.job.kind(),
                    enqueued_wall: w.enqueued_wall,
                    order: self.dispatched,
                    sink: w.sink.clone(),
                    told: w.told,
                    start: Arc::clone(&start),
                },
            );
            self.dispatched += 1;
            runner::spawn(RunSpec {
                id: w.id,
                job: w.job,
                sink: w.sink,
                start,
                place: self.device.reserve(),
                cancel,
                device: Arc::clone(&self.device),
                executor: Arc::clone(&self.executor),
                max_run: self.config.max_run,
                max_wait: self.config.max_wait,
                metrics: Arc::clone(&self.metrics),
                tx,
            });
        }
        self.queue.set_offset(self.prefetched() as u64);
        self.announce_prefetched();
    }

    /// Shutdown: refuse new jobs, fail the waiting ones; running ones finish.
    fn drain(&mut self) {
        self.draining = true;
        self.permits.close();
        while let Some((_, w)) = self.queue.pop_first() {
            self.left_queue(&w);
            deliver(&w.sink, &w.id, JobEvent::Failed(JobError::ShuttingDown));
        }
        self.waiting_ids.clear();
        self.deadlines.clear();
        self.queue.set_offset(0);
    }
}
