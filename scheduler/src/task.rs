//! The scheduler task: owns the waiting lines (one per [`Resource`], each with its fair clock),
//! the dispatched set, the wait deadlines and the statistics, and is the only code that touches
//! them. It reacts to commands, hands device jobs to the device (`dispatch`) while fewer than
//! `max_concurrent + prefetch` are dispatched (so the next job is already queued on the device
//! when the current one ends) and lane jobs to their engine while fewer than `lanes` are,
//! expires jobs that waited too long, announces positions at most once per coalescing interval,
//! and closes the device when it has been idle for its keep-alive.
//!
//! It also drives the dispatched jobs' runners (see `runner`): their futures live here, so a
//! job's end is handled where the bookkeeping is, with no message between tasks.
//!
//! Positions count every job of the same resource ahead: for device jobs the prefetched ones
//! (dispatched beyond `max_concurrent`, not started yet) and the line's; for lane jobs the
//! line's. Every operation on a command is O(log n) in the number of
//! waiting jobs; position announcements cost O(k log n) per interval for the k jobs that moved
//! (see `queue`).

use crate::admission::PartyCaps;
use crate::config::SchedulerConfig;
use crate::device::DeviceHost;
use crate::error::Error;
use crate::event::{Event, JobId};
use crate::executor::{Executor, Job};
use crate::handle::Command;
use crate::jobs::{Running, Waiting};
use crate::line::{Lines, Resource};
use crate::observer::Observer;
use crate::queue::QueueKey;
use crate::runner::Ended;
use crate::stats::{Stats, UtilizationWindow};
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

pub(crate) struct Task<X: Executor> {
    pub(crate) config: SchedulerConfig,
    pub(crate) device: Arc<DeviceHost<X::Device>>,
    pub(crate) executor: Arc<X>,
    pub(crate) permits: Arc<Semaphore>,
    /// Each party's waiting jobs (for the view).
    pub(crate) party_caps: Arc<PartyCaps>,
    /// The dispatched jobs' runners, driven by this task.
    pub(crate) runners: FuturesUnordered<BoxFuture<'static, Ended<X>>>,
    /// The jobs waiting for each resource, in fair order.
    pub(crate) lines: Lines<X>,
    /// Expected device time per job kind (moving averages), for the fair order's costs.
    pub(crate) costs: HashMap<&'static str, Duration>,
    /// Moving average of run times per resource (indexed like [`Resource::ALL`]), for waits:
    /// a chat's turn in a lane and a calculator job's on the device have nothing in common.
    pub(crate) avg_run_by: [Duration; 2],
    /// Dispatches so far.
    pub(crate) dispatched: u64,
    /// Published moving average of run times, for the handle's retry hints.
    pub(crate) avg_run_us: Arc<AtomicU64>,
    /// Recent samples of the device's busy time, for its utilization.
    pub(crate) utilization: UtilizationWindow,
    /// Waiting jobs by kind (for `/metrics`).
    pub(crate) waiting_kinds: HashMap<&'static str, u64>,
    /// Where counters and timings are reported.
    pub(crate) observer: Arc<dyn Observer>,
    /// Waiting jobs by id: their line and place in it.
    pub(crate) waiting_ids: HashMap<JobId, (Resource, QueueKey)>,
    /// Wait deadlines, earliest first.
    pub(crate) deadlines: BTreeSet<(Instant, Resource, QueueKey)>,
    /// Dispatched jobs (device and lane alike).
    pub(crate) running: HashMap<JobId, Running<X>>,
    /// Dispatched device jobs in dispatch order (the order the device starts them in).
    pub(crate) device_order: std::collections::VecDeque<JobId>,
    /// Whether `device_order` changed since the prefetched jobs were told their places.
    pub(crate) device_order_moved: bool,
    /// Expected device time of the dispatched device jobs, together.
    pub(crate) device_cost: Duration,
    /// How many of `running` take each resource (indexed like [`Resource::ALL`]).
    pub(crate) running_by: [usize; 2],
    pub(crate) next_seq: u64,
    pub(crate) stats: Stats,
    /// When positions were last announced.
    pub(crate) last_flush: Instant,
    /// Set once shutdown began: nothing new starts.
    pub(crate) draining: bool,
    /// Waiting for the device to be idle (a shutdown's drain).
    pub(crate) idle_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
}

/// Everything the task starts with.
pub(crate) struct TaskParts<X: Executor> {
    pub config: SchedulerConfig,
    pub device: Arc<DeviceHost<X::Device>>,
    pub executor: Arc<X>,
    pub rx: mpsc::UnboundedReceiver<Command<X>>,
    pub permits: Arc<Semaphore>,
    pub avg_run_us: Arc<AtomicU64>,
    pub party_caps: Arc<PartyCaps>,
    pub observer: Arc<dyn Observer>,
    pub shutdown: CancellationToken,
}

pub(crate) fn spawn<X: Executor>(parts: TaskParts<X>) {
    let TaskParts {
        config,
        device,
        executor,
        rx,
        permits,
        avg_run_us,
        party_caps,
        observer,
        shutdown,
    } = parts;
    let initial_run = config.initial_run_estimate;
    let task = Task {
        stats: Stats::new(initial_run),
        lines: Lines::new(config.order),
        config,
        device,
        executor,
        permits,
        party_caps,
        runners: FuturesUnordered::new(),
        costs: HashMap::new(),
        avg_run_by: [initial_run; 2],
        dispatched: 0,
        avg_run_us,
        utilization: UtilizationWindow::default(),
        waiting_kinds: HashMap::new(),
        observer,
        waiting_ids: HashMap::new(),
        deadlines: BTreeSet::new(),
        running: HashMap::new(),
        running_by: [0; 2],
        device_order: std::collections::VecDeque::new(),
        device_order_moved: false,
        device_cost: Duration::ZERO,
        next_seq: 0,
        last_flush: Instant::now(),
        draining: false,
        idle_waiters: Vec::new(),
    };
    tokio::spawn(task.run(rx, shutdown));
}

/// What woke the task.
enum Wake<X: Executor> {
    Shutdown,
    Command(Command<X>),
    /// Every handle is gone.
    Orphaned,
    Ended(Ended<X>),
    Tick,
}

impl<X: Executor> Task<X> {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Command<X>>,
        shutdown: CancellationToken,
    ) {
        let mut tick =
            tokio::time::interval(self.config.position_interval.min(Duration::from_secs(1)));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut orphaned = false;
        loop {
            let wake = tokio::select! {
                _ = shutdown.cancelled(), if !self.draining => Wake::Shutdown,
                cmd = rx.recv(), if !orphaned => cmd.map_or(Wake::Orphaned, Wake::Command),
                Some(ended) = self.runners.next(), if !self.runners.is_empty() => Wake::Ended(ended),
                _ = tick.tick() => Wake::Tick,
            };
            match wake {
                Wake::Shutdown => self.drain(),
                Wake::Command(cmd) => {
                    self.handle(cmd);
                    // Take whatever else is queued, dispatching before each command as if it
                    // had woken the task alone: a job's `accepted` position, and a view, must
                    // not count jobs ahead of it that are about to be dispatched.
                    while let Ok(cmd) = rx.try_recv() {
                        self.dispatch();
                        self.handle(cmd);
                    }
                }
                Wake::Orphaned => {
                    // Nobody can submit any more: finish what is dispatched, then stop.
                    orphaned = true;
                    self.drain();
                }
                Wake::Ended(ended) => self.ended(ended),
                Wake::Tick => self.housekeeping(Instant::now()),
            }
            if orphaned && self.runners.is_empty() {
                break;
            }
            self.dispatch();
            if self.running.is_empty() {
                for w in self.idle_waiters.drain(..) {
                    let _ = w.send(());
                }
            }
            if self.any_dirty() && self.last_flush.elapsed() >= self.config.position_interval {
                self.flush_positions();
            }
        }
        tracing::debug!("scheduler task stopped");
    }

    fn handle(&mut self, cmd: Command<X>) {
        match cmd {
            Command::Submit(w) => self.enqueue(*w),
            Command::Cancel { id, notify } => self.cancel(id, notify),
            Command::Refused(code) => self.reject(code),
            Command::View(reply) => {
                let _ = reply.send(self.view());
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

    fn enqueue(&mut self, mut w: Waiting<X>) {
        if self.draining {
            let _ = w
                .sink
                .send(w.id, Event::Ended(Err(Error::ShuttingDown.into())));
            return;
        }
        let cost = self.expected_cost(&w.job).as_micros() as u64;
        let resource = w.resource;
        let line = self.lines.get_mut(resource);
        w.tags = line.clock.tag(&w.party, cost, self.next_seq);
        let key = w.tags.key;
        self.next_seq += 1;
        w.deadline = w.enqueued + self.config.max_wait;
        self.deadlines.insert((w.deadline, resource, key));
        self.waiting_ids.insert(w.id, (resource, key));
        let (sink, id) = (Arc::clone(&w.sink), w.id);
        *self.waiting_kinds.entry(w.job.kind()).or_default() += 1;
        let position = line.queue.push(key, w);
        let queue_length = (line.queue.len() + self.prefetched(resource)) as u64;
        let accepted = Event::Accepted {
            position,
            queue_length,
            eta_ms: self.eta_ms(resource, position),
        };
        tracing::debug!(job_id = %id, position, "job queued");
        sink.send(id, accepted);
    }

    fn cancel(&mut self, id: JobId, notify: bool) {
        if let Some((resource, key)) = self.waiting_ids.remove(&id) {
            let line = self.lines.get_mut(resource);
            if let Some(w) = line.queue.remove(&key) {
                line.clock.withdrawn(&w.party, &w.tags);
                self.left_queue(&w);
                self.deadlines.remove(&(w.deadline, resource, key));
                self.stats.cancelled += 1;
                tracing::debug!(job_id = %id, notify, "waiting job cancelled");
                if notify {
                    let _ = w
                        .sink
                        .send(w.id, Event::Ended(Err(Error::Cancelled.into())));
                }
            }
        } else if let Some(r) = self.running.get(&id) {
            tracing::debug!(job_id = %id, "running job cancelled");
            self.stats.cancelled += 1;
            r.cancel.cancel();
        }
    }

    /// A refusal or failure, counted for `/api/stats` and `/metrics`.
    pub(crate) fn reject(&mut self, code: &'static str) {
        self.stats.on_rejected(code);
        self.observer.rejected(code);
    }

    /// Bookkeeping for a job that left the queue (for any reason).
    pub(crate) fn left_queue(&mut self, w: &Waiting<X>) {
        if let Some(n) = self.waiting_kinds.get_mut(w.job.kind()) {
            *n = n.saturating_sub(1);
        }
    }

    /// Shutdown: refuse new jobs, fail the waiting ones; running ones finish.
    fn drain(&mut self) {
        self.draining = true;
        self.permits.close();
        for resource in Resource::ALL {
            while let Some((_, w)) = self.lines.get_mut(resource).queue.pop_first() {
                self.left_queue(&w);
                let _ = w
                    .sink
                    .send(w.id, Event::Ended(Err(Error::ShuttingDown.into())));
            }
            self.lines.get_mut(resource).queue.set_offset(0);
        }
        self.waiting_ids.clear();
        self.deadlines.clear();
    }
}
