//! The device's threads. Each of the `slots` threads takes the next entry from one FIFO queue and
//! runs it to the end, so at most `slots` tasks compute at once, in the order they were queued. A
//! task queued while the threads are busy starts the moment one is free, on that same thread, with
//! no hand-over through the scheduler or the async runtime.
//!
//! An entry is a task, or a [`Reservation`]: a place in the order taken now (the scheduler takes
//! one per job, in dispatch order) and filled with the job's task later, by the job's runner. A
//! thread that reaches a reservation waits for its task (or skips it if the runner gives it up),
//! so jobs start in the order they were dispatched, however their runners are scheduled.
//!
//! The threads belong to a rayon pool of `compute_threads` threads (at least `slots`), and
//! candle's parallel kernels called from a task run on that pool: the device's compute
//! parallelism is bounded here, whatever else runs on the machine. (candle's fork-join kernels
//! slow down many times over when their threads compete with others for cores, so the default
//! leaves a core to the server's networking and the browser-facing work.)
//!
//! Concurrency: the queue is a `crossbeam_channel`; a task's panic is caught on its thread, which
//! goes on with the next task. The threads hold only a weak reference to their host: dropping
//! the host closes the queue and the threads end.

use super::DeviceHost;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};

/// Work for the device, run on a device thread. It takes its own lease (so it can decide what
/// to do before the device is touched, e.g. skip a cancelled job) and reports its own result.
pub type DeviceTask<D> = Box<dyn FnOnce(&Arc<DeviceHost<D>>) + Send + 'static>;

/// An entry of the device's queue.
enum Entry<D> {
    /// Run this.
    Task(DeviceTask<D>),
    /// Run what arrives here (nothing, if the sender is dropped).
    Reserved(tokio::sync::oneshot::Receiver<DeviceTask<D>>),
}

/// A place in the device's order, to be filled with a task. Dropping it unfilled gives the place
/// up (the device skips it).
pub struct Reservation<D>(tokio::sync::oneshot::Sender<DeviceTask<D>>);

impl<D> Reservation<D> {
    /// Fills the place. False if the device threads are gone (the task is dropped unrun).
    pub fn fill(self, task: DeviceTask<D>) -> bool {
        self.0.send(task).is_ok()
    }
}

/// How many device threads, and how many threads candle's kernels may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Tasks that may run at once (the scheduler's `max_concurrent`).
    pub slots: usize,
    /// Threads for candle's parallel kernels, the device threads included (0 = one less than
    /// the machine's cores, at least one).
    pub compute_threads: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            slots: 1,
            compute_threads: 1,
        }
    }
}

impl WorkerConfig {
    /// The compute threads this configuration asks for, resolved against the machine.
    pub fn resolved_compute_threads(&self) -> usize {
        let wanted = if self.compute_threads == 0 {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .saturating_sub(1)
        } else {
            self.compute_threads
        };
        wanted.max(self.slots.max(1))
    }
}

/// The sending end of the device threads' queue.
pub(crate) struct Tasks<D> {
    /// Tasks and reservations in the order they were queued.
    tx: crossbeam_channel::Sender<Entry<D>>,
    /// The pool the device threads live in (kept so it lives as long as the host).
    _pool: Option<rayon::ThreadPool>,
    /// Device threads.
    slots: usize,
    /// Compute threads.
    compute: usize,
}

impl<D> Tasks<D> {
    /// Queues a task; false when the threads are gone.
    pub(crate) fn send(&self, task: DeviceTask<D>) -> bool {
        self.tx.send(Entry::Task(task)).is_ok()
    }

    /// Takes the next place in the order.
    pub(crate) fn reserve(&self) -> Reservation<D> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        // If the threads are gone, the reservation's fill fails and its job hears so.
        let _ = self.tx.send(Entry::Reserved(rx));
        Reservation(tx)
    }

    /// Tasks queued and not yet taken by a thread.
    pub(crate) fn queued(&self) -> usize {
        self.tx.len()
    }

    /// Device threads.
    pub(crate) fn threads(&self) -> usize {
        self.slots
    }

    /// Compute threads.
    pub(crate) fn compute_threads(&self) -> usize {
        self.compute
    }
}

/// Starts the device threads for `host`.
pub(crate) fn spawn<D: Clone + Send + Sync + 'static>(
    host: Weak<DeviceHost<D>>,
    config: WorkerConfig,
) -> Tasks<D> {
    let slots = config.slots.max(1);
    let compute = config.resolved_compute_threads();
    let (tx, rx) = crossbeam_channel::unbounded::<Entry<D>>();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(compute)
        .thread_name(|i| format!("turnstile-device-{i}"))
        .build();
    let pool = match pool {
        Ok(pool) => {
            for _ in 0..slots {
                let (rx, host) = (rx.clone(), host.clone());
                pool.spawn(move || serve(&host, &rx));
            }
            Some(pool)
        }
        Err(e) => {
            // No pool (the machine refused threads): plain threads, candle on rayon's global pool.
            tracing::warn!(error = %e, "could not build the device's thread pool; using plain threads");
            for i in 0..slots {
                let (rx, host) = (rx.clone(), host.clone());
                let spawned = std::thread::Builder::new()
                    .name(format!("turnstile-device-{i}"))
                    .spawn(move || serve(&host, &rx));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "could not start a device thread");
                }
            }
            None
        }
    };
    Tasks {
        tx,
        _pool: pool,
        slots,
        compute,
    }
}

/// One device thread: runs tasks until the host is gone.
fn serve<D: Clone + Send + Sync + 'static>(
    host: &Weak<DeviceHost<D>>,
    rx: &crossbeam_channel::Receiver<Entry<D>>,
) {
    while let Ok(entry) = rx.recv() {
        let task = match entry {
            Entry::Task(task) => task,
            Entry::Reserved(place) => match place.blocking_recv() {
                Ok(task) => task,
                Err(_) => continue, // given up: the next one
            },
        };
        let Some(host) = host.upgrade() else { break };
        if std::panic::catch_unwind(AssertUnwindSafe(|| task(&host))).is_err() {
            tracing::error!("a device task panicked; the device thread goes on");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::Places;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    fn host(slots: usize) -> Arc<DeviceHost<()>> {
        DeviceHost::with_workers(
            Box::new(Places),
            Duration::from_secs(60),
            WorkerConfig {
                slots,
                compute_threads: slots,
            },
        )
    }

    #[test]
    fn tasks_run_in_order_one_at_a_time_per_slot() {
        let host = host(1);
        let (done, seen) = mpsc::channel();
        let running = Arc::new(AtomicUsize::new(0));
        for i in 0..20 {
            let (done, running) = (done.clone(), Arc::clone(&running));
            assert!(host.submit(Box::new(move |h| {
                let _lease = h.lease().unwrap();
                assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0, "two at once");
                std::thread::sleep(Duration::from_micros(200));
                running.fetch_sub(1, Ordering::SeqCst);
                done.send(i).unwrap();
            })));
        }
        let order: Vec<i32> = (0..20).map(|_| seen.recv().unwrap()).collect();
        assert_eq!(order, (0..20).collect::<Vec<_>>());
        let busy = host.busy();
        assert!(busy.busy >= Duration::from_millis(4), "{busy:?}");
        assert!(busy.busy <= busy.wall);
    }

    #[test]
    fn two_slots_run_two_at_once_and_a_panic_spares_the_thread() {
        let host = host(2);
        let (tx, rx) = mpsc::channel();
        assert!(host.submit(Box::new(|_| panic!("scripted"))));
        let barrier = Arc::new(std::sync::Barrier::new(2));
        for _ in 0..2 {
            let (tx, barrier) = (tx.clone(), Arc::clone(&barrier));
            assert!(host.submit(Box::new(move |_| {
                // Both must be running for either to pass the barrier.
                barrier.wait();
                tx.send(()).unwrap();
            })));
        }
        for _ in 0..2 {
            rx.recv_timeout(Duration::from_secs(10)).expect("both ran");
        }
    }

    #[test]
    fn dropping_the_host_ends_its_threads() {
        let host = host(1);
        let weak = Arc::downgrade(&host);
        let (tx, rx) = mpsc::channel::<()>();
        assert!(host.submit(Box::new(move |_| drop(tx))));
        assert!(rx.recv().is_err(), "the task ran and dropped its sender");
        drop(host);
        // The thread holds the host only while a task runs.
        for _ in 0..100 {
            if weak.upgrade().is_none() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the host outlived its last handle");
    }

    #[test]
    fn reservations_keep_their_place_in_the_order_and_can_be_given_up() {
        let host = host(1);
        let (tx, rx) = mpsc::channel();
        let first = host.reserve();
        let given_up = host.reserve();
        let third = host.reserve();
        let t = tx.clone();
        assert!(host.submit(Box::new(move |_| t.send("unreserved").unwrap())));
        // Filled out of order; they still run in the order reserved.
        let t = tx.clone();
        assert!(third.fill(Box::new(move |_| t.send("third").unwrap())));
        drop(given_up);
        let t = tx.clone();
        assert!(first.fill(Box::new(move |_| t.send("first").unwrap())));
        let order: Vec<&str> = (0..3).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(order, ["first", "third", "unreserved"]);
    }

    #[test]
    fn auto_compute_threads_leave_a_core_and_cover_the_slots() {
        let auto = WorkerConfig {
            slots: 1,
            compute_threads: 0,
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(auto.resolved_compute_threads(), (cores - 1).max(1));
        let many_slots = WorkerConfig {
            slots: 64,
            compute_threads: 2,
        };
        assert_eq!(many_slots.resolved_compute_threads(), 64);
    }
}
