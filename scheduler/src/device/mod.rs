//! The compute device: its lifecycle, the threads that run work on it, and how busy it is.
//!
//! - Lifecycle: opened lazily by the first job that needs it, kept open while jobs hold leases,
//!   closed after an idle keep-alive, re-opened on demand. A failed open fails the job that asked
//!   and is retried by the next one.
//! - Work: every job's device work runs on one of the device's own threads ([`worker`]), fed by a
//!   FIFO task queue, so a job handed over before the previous one ends starts the moment the
//!   device is free, with no round trip through the scheduler in between.
//! - Busy time: the device counts as busy while any lease is held. [`DeviceHost::busy`] gives the
//!   busy time since start (utilization is its rate) and the gaps between one lease's end and the
//!   next one's start when work was already waiting.
//!
//! Concurrency: only the device threads compute on the device (plus the model loader, which
//! takes a lease of its own to place weights on it). The state sits behind a small mutex that is
//! never held across an `.await`; the scheduler only calls [`DeviceHost::close_if_idle`], with
//! `try_lock`, so it never waits on a slow open. How many jobs hold the device at once is the
//! number of device threads, which the scheduler matches with its `max_concurrent`.

mod worker;

use crate::view::DeviceView;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
pub use worker::{DeviceTask, Reservation, WorkerConfig};

/// Something that can open the device. `D` is what an open device is (a candle device, say):
/// cloned into every lease.
pub trait Backend<D>: Send + Sync + 'static {
    /// `cpu`, `cuda:0`, ...
    fn name(&self) -> String;
    /// Opens the device. The error text goes to the log only.
    fn open(&self) -> Result<D, String>;
}

/// A device that is nothing but its places: for jobs that need no handle to compute (tests,
/// remote work that only takes turns).
pub struct Places;

impl Backend<()> for Places {
    fn name(&self) -> String {
        "places".into()
    }

    fn open(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The device, who holds it, and its threads.
pub struct DeviceHost<D> {
    /// Opens the device.
    backend: Box<dyn Backend<D>>,
    /// How long the device stays open with no lease.
    keep_alive: Duration,
    /// The open device and its bookkeeping.
    state: Mutex<State<D>>,
    /// Hands tasks to the device threads; dropping the host ends them.
    tasks: worker::Tasks<D>,
    /// When the host was made: the origin of busy-time accounting.
    started: Instant,
    /// What went wrong with the device last, until a job succeeds on it again (for `/health`).
    problem: Mutex<Option<String>>,
}

struct State<D> {
    /// The open device, if any.
    device: Option<D>,
    /// Leases alive now.
    leases: usize,
    /// When the last lease was dropped (or the device opened).
    idle_since: Instant,
    /// Successful opens since start.
    opens: u64,
    /// Failed opens since start.
    open_failures: u64,
    /// Busy time of finished busy periods.
    busy: Duration,
    /// Since when a lease has been held, if one is.
    busy_since: Option<Instant>,
    /// Whether tasks were queued when the last lease was released: the idle time until the next
    /// lease is then hand-over overhead, not a lack of work.
    backlogged: bool,
    /// Hand-over gaps (idle time between two leases while work was queued), in microseconds.
    handovers: hdrhistogram::Histogram<u64>,
}

/// A job's hold on the open device; dropping it (also during a panic's unwinding) releases it.
pub struct Lease<D: Clone + Send + Sync + 'static> {
    host: Arc<DeviceHost<D>>,
    device: D,
}

impl<D: Clone + Send + Sync + 'static> Lease<D> {
    /// The device to compute on.
    pub fn device(&self) -> &D {
        &self.device
    }
}

impl<D: Clone + Send + Sync + 'static> Drop for Lease<D> {
    fn drop(&mut self) {
        let mut s = self.host.state.lock();
        s.leases -= 1;
        if s.leases == 0 {
            let now = Instant::now();
            s.idle_since = now;
            if let Some(since) = s.busy_since.take() {
                s.busy += now - since;
            }
            s.backlogged = self.host.tasks.queued() > 0;
        }
    }
}

/// How busy the device has been.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Busy {
    /// Time with at least one lease held, since the host was made.
    pub busy: Duration,
    /// Time since the host was made.
    pub wall: Duration,
}

impl<D: Clone + Send + Sync + 'static> DeviceHost<D> {
    /// A closed device on `backend` with one device thread (and one compute thread).
    pub fn new(backend: Box<dyn Backend<D>>, keep_alive: Duration) -> Arc<Self> {
        Self::with_workers(backend, keep_alive, WorkerConfig::default())
    }

    /// A closed device on `backend` with the given device threads.
    pub fn with_workers(
        backend: Box<dyn Backend<D>>,
        keep_alive: Duration,
        workers: WorkerConfig,
    ) -> Arc<Self> {
        Arc::new_cyclic(|weak| {
            let now = Instant::now();
            DeviceHost {
                backend,
                keep_alive,
                state: Mutex::new(State {
                    device: None,
                    leases: 0,
                    idle_since: now,
                    opens: 0,
                    open_failures: 0,
                    busy: Duration::ZERO,
                    busy_since: None,
                    backlogged: false,
                    handovers: hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 2)
                        .expect("valid histogram bounds"),
                }),
                tasks: worker::spawn(weak.clone(), workers),
                started: now,
                problem: Mutex::new(None),
            }
        })
    }

    /// Queues `task` for the next free device thread (tasks start in the order queued). False
    /// when the device threads are gone; the task is then dropped unrun.
    pub fn submit(&self, task: DeviceTask<D>) -> bool {
        self.tasks.send(task)
    }

    /// Takes the next place in the device's order, to be filled with a task later (see
    /// [`Reservation`]): the scheduler takes one per job as it dispatches it, so jobs reach the
    /// device in dispatch order whenever their runners get to run.
    pub fn reserve(&self) -> Reservation<D> {
        self.tasks.reserve()
    }

    /// Takes a lease, opening the device first if it is closed. Blocking: call it from a device
    /// thread (or another blocking thread). On failure the device stays closed and the next call
    /// tries again.
    pub fn lease(self: &Arc<Self>) -> Result<Lease<D>, String> {
        let mut s = self.state.lock();
        let device = match &s.device {
            Some(d) => d.clone(),
            None => match self.backend.open() {
                Ok(d) => {
                    s.opens += 1;
                    tracing::info!(backend = %self.backend.name(), "device opened");
                    s.device = Some(d.clone());
                    d
                }
                Err(e) => {
                    s.open_failures += 1;
                    return Err(e);
                }
            },
        };
        s.leases += 1;
        if s.leases == 1 {
            let now = Instant::now();
            s.busy_since = Some(now);
            if std::mem::take(&mut s.backlogged) {
                let gap = (now - s.idle_since).as_micros() as u64;
                s.handovers.saturating_record(gap.max(1));
            }
        }
        Ok(Lease {
            host: Arc::clone(self),
            device,
        })
    }

    /// Closes the device if nobody holds it and it has been idle for the keep-alive. Never waits:
    /// if the state is busy (an open in progress) it does nothing. Returns whether it closed.
    pub fn close_if_idle(&self, now: Instant) -> bool {
        let Some(mut s) = self.state.try_lock() else {
            return false;
        };
        if s.device.is_some()
            && s.leases == 0
            && now.saturating_duration_since(s.idle_since) >= self.keep_alive
        {
            s.device = None;
            tracing::info!(backend = %self.backend.name(), "device closed after idle keep-alive");
            return true;
        }
        false
    }

    /// Records how a job ended on the device: a failure degrades the device in `/health` until
    /// the next success.
    pub fn report(&self, outcome: Result<(), &str>) {
        let mut problem = self.problem.lock();
        match outcome {
            Ok(()) => {
                if problem.take().is_some() {
                    tracing::info!("the device recovered");
                }
            }
            Err(why) => *problem = Some(why.to_owned()),
        }
    }

    /// The device's last problem, if it has not recovered since.
    pub fn problem(&self) -> Option<String> {
        self.problem.lock().clone()
    }

    /// Whether the device is open now.
    pub fn is_open(&self) -> bool {
        self.state.lock().device.is_some()
    }

    /// Busy and wall time since the host was made.
    pub fn busy(&self) -> Busy {
        let now = Instant::now();
        let s = self.state.lock();
        let running = s.busy_since.map_or(Duration::ZERO, |t| now - t);
        Busy {
            busy: s.busy + running,
            wall: now - self.started,
        }
    }

    /// The device's state (utilization is the scheduler's to fill in: it keeps the recent
    /// history).
    pub fn view(&self) -> DeviceView {
        let busy = self.busy();
        let s = self.state.lock();
        DeviceView {
            backend: self.backend.name(),
            open: s.device.is_some(),
            opens: s.opens,
            open_failures: s.open_failures,
            keep_alive: self.keep_alive,
            busy: busy.busy,
            handovers: s.handovers.len(),
            handover_p50_us: s.handovers.value_at_quantile(0.5),
            handover_p99_us: s.handovers.value_at_quantile(0.99),
            threads: self.tasks.threads() as u64,
            compute_threads: self.tasks.compute_threads() as u64,
            problem: self.problem(),
            ..DeviceView::default()
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
