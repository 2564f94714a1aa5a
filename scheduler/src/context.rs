//! A dispatched job's side of the device: its [`RunContext`] (the device, its cancellation
//! token, its owner's events) and its [`JobStart`], the one place that decides whether the job
//! started on the device or was abandoned before (cancelled, or out of waiting time while
//! prefetched). That decision is taken once, under a small lock, by whichever side gets there
//! first: the device thread about to run the job, or the runner giving up on it. So a job never
//! both starts and fails as abandoned, and `started` is always its owner's first event after the
//! queue's.
//!
//! Concurrency: `JobStart` is shared by the job's runner (on the scheduler task) and a device
//! thread; its lock is held for
//! a state change only, never across an `.await`.

use crate::admission::PartyPlace;
use crate::device::{DeviceHost, DeviceTask, Reservation};
use crate::error::{Error, Failure};
use crate::event::{Event, EventSink, JobId};
use crate::executor::Executor;
use parking_lot::Mutex;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio_util::sync::CancellationToken;

/// A job's places among the waiting (the queue's and its party's), held until it starts.
pub(crate) struct WaitingPlaces {
    /// Its place among `max_waiting`.
    pub(crate) _permit: OwnedSemaphorePermit,
    /// Its place among its party's waiting jobs.
    pub(crate) _place: PartyPlace,
}

enum State {
    /// Not started; still holding its places among the waiting.
    Waiting(Option<WaitingPlaces>),
    /// Started on the device at this instant.
    Started(Instant),
    /// Given up before it started.
    Abandoned,
}

/// When a job was queued, and whether (and when) it reached the device.
pub(crate) struct JobStart {
    /// When it was queued.
    enqueued: Instant,
    state: Mutex<State>,
}

impl JobStart {
    pub(crate) fn new(enqueued: Instant, places: Option<WaitingPlaces>) -> Self {
        JobStart {
            enqueued,
            state: Mutex::new(State::Waiting(places)),
        }
    }

    /// When the job reached the device, if it has.
    pub(crate) fn at(&self) -> Option<Instant> {
        match *self.state.lock() {
            State::Started(t) => Some(t),
            _ => None,
        }
    }

    /// When it was queued.
    pub(crate) fn enqueued(&self) -> Instant {
        self.enqueued
    }

    /// How long the job waited: until it reached the device, or until now if it never did.
    pub(crate) fn waited(&self) -> Duration {
        self.at()
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(self.enqueued)
    }

    /// Claims the start for the device thread. False if the job was abandoned (or had started).
    pub(crate) fn try_begin(&self) -> bool {
        let places = {
            let mut state = self.state.lock();
            match &mut *state {
                State::Waiting(places) => {
                    let places = places.take();
                    *state = State::Started(Instant::now());
                    places
                }
                _ => return false,
            }
        };
        drop(places); // outside the lock: this wakes no one, but takes the party caps' lock
        true
    }

    /// Runs `tell` (which sends the owner an event) only while the job has not started, under the
    /// lock the start is claimed with: an event sent here always precedes `started`. Returns
    /// whether it ran.
    pub(crate) fn tell_if_waiting(&self, tell: impl FnOnce()) -> bool {
        let state = self.state.lock();
        if matches!(&*state, State::Waiting(_)) {
            tell();
            true
        } else {
            false
        }
    }

    /// Gives up on the job if it has not started. False if it already has.
    pub(crate) fn try_abandon(&self) -> bool {
        let mut state = self.state.lock();
        match &*state {
            State::Waiting(_) => {
                *state = State::Abandoned;
                true
            }
            _ => false,
        }
    }
}

/// Sends one job's events to its owner.
pub struct Emitter<X: Executor> {
    /// The job.
    pub(crate) id: JobId,
    /// The owner's sink.
    pub(crate) sink: EventSink<X>,
}

impl<X: Executor> Clone for Emitter<X> {
    fn clone(&self) -> Self {
        Emitter {
            id: self.id,
            sink: Arc::clone(&self.sink),
        }
    }
}

impl<X: Executor> Emitter<X> {
    /// An emitter for job `id` into `sink` (for executors' own tests).
    pub fn new(id: JobId, sink: EventSink<X>) -> Self {
        Emitter { id, sink }
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Sends an event; never waits (see [`crate::Sink`]). False once the owner is gone.
    pub fn send(&self, event: Event<X>) -> bool {
        self.sink.send(self.id, event)
    }

    /// Sends a progress report (a token, loading progress).
    pub fn progress(&self, progress: X::Progress) -> bool {
        self.send(Event::Progress(progress))
    }
}

/// What a dispatched job may use: the device, its cancellation token and its owner's events.
pub struct RunContext<X: Executor> {
    /// The device; its work goes through [`RunContext::on_device`].
    pub device: Arc<DeviceHost<X::Device>>,
    /// Fires when the job is cancelled or runs out of time.
    pub cancel: CancellationToken,
    /// Sends events (progress) to the job's owner.
    pub events: Emitter<X>,
    /// Whether and when the job reached the device.
    pub(crate) start: Arc<JobStart>,
    /// The job's place in the device's order, taken when it was dispatched; its first device
    /// work fills it.
    pub(crate) place: Arc<Mutex<Option<Reservation<X::Device>>>>,
}

impl<X: Executor> Clone for RunContext<X> {
    fn clone(&self) -> Self {
        RunContext {
            device: Arc::clone(&self.device),
            cancel: self.cancel.clone(),
            events: self.events.clone(),
            start: Arc::clone(&self.start),
            place: Arc::clone(&self.place),
        }
    }
}

impl<X: Executor> RunContext<X> {
    /// A context for a job that was never queued (for executors' own tests): it has not
    /// started, holds no place in the device's order, and reports to `events`.
    pub fn detached(device: Arc<DeviceHost<X::Device>>, events: Emitter<X>) -> Self {
        RunContext {
            device,
            cancel: CancellationToken::new(),
            events,
            start: Arc::new(JobStart::new(Instant::now(), None)),
            place: Arc::new(Mutex::new(None)),
        }
    }

    /// Marks the job as started now, for executors whose work does not go through
    /// [`RunContext::on_device`] (a batching engine admitting a chat into a lane): its owner
    /// hears `started`, its run time starts, and its places among the waiting are released.
    /// False if it was cancelled or abandoned first: it must then not run.
    pub fn begin(&self) -> bool {
        if self.cancel.is_cancelled() || !self.start.try_begin() {
            return false;
        }
        let waited_ms = self.start.waited().as_millis() as u64;
        self.events.send(Event::Started { waited_ms });
        true
    }

    /// Runs `f` on a device thread with a lease on the device, and waits for it to return. The
    /// job counts as started (its owner is told, its run time starts) when `f` is about to run.
    /// A job cancelled or abandoned before its turn returns a cancellation without touching the
    /// device; a panic inside `f` releases the lease and becomes [`Error::DeviceFailed`].
    pub async fn on_device<T, F>(&self, f: F) -> Result<T, X::Error>
    where
        T: Send + 'static,
        F: FnOnce(&X::Device) -> Result<T, X::Error> + Send + 'static,
    {
        self.device_task(true, move |device| match device {
            Some(device) => f(device),
            None => Err(Error::DeviceFailed.into()),
        })
        .await
    }

    /// Holds one of the device's places while `work` runs, without opening the device: for jobs
    /// whose work is elsewhere (a remote model server) but must still take turns. `work` runs
    /// here, on the async runtime; a device thread only keeps the place (parked, not polling)
    /// from the job's start until `work` ends.
    pub async fn in_slot<T, Fut>(&self, work: Fut) -> Result<T, X::Error>
    where
        T: Send + 'static,
        Fut: Future<Output = Result<T, X::Error>> + Send + 'static,
    {
        let (started_tx, started_rx) = oneshot::channel::<()>();
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let holder = self.device_task(false, move |_| {
            let _ = started_tx.send(());
            // Parked until the work ends (or is dropped): the place stays taken meanwhile.
            let _ = release_rx.blocking_recv();
            Ok(())
        });
        tokio::pin!(holder);
        tokio::select! {
            biased;
            // It ended before it started (cancelled, abandoned, shutting down).
            r = &mut holder => return r.and(Err(Error::Cancelled.into())),
            started = started_rx => if started.is_err() {
                return holder.await.and(Err(Error::DeviceFailed.into()));
            },
        }
        let result = work.await;
        drop(release_tx);
        holder.await?;
        result
    }

    async fn device_task<T, F>(&self, lease: bool, f: F) -> Result<T, X::Error>
    where
        T: Send + 'static,
        F: FnOnce(Option<&X::Device>) -> Result<T, X::Error> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let (cancel, events, start) = (
            self.cancel.clone(),
            self.events.clone(),
            Arc::clone(&self.start),
        );
        let task: DeviceTask<X::Device> = Box::new(move |host| {
            if cancel.is_cancelled() || !start.try_begin() {
                let _ = tx.send(Err(Error::Cancelled.into()));
                return;
            }
            let lease = match lease.then(|| host.lease()).transpose() {
                Ok(lease) => lease,
                Err(e) => {
                    tracing::error!(error = %e, "device failed to open");
                    host.report(Err("the device failed to open; the next job tries again"));
                    let _ = tx.send(Err(Error::DeviceOpen.into()));
                    return;
                }
            };
            let waited_ms = start.waited().as_millis() as u64;
            events.send(Event::Started { waited_ms });
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                f(lease.as_ref().map(|l| l.device()))
            }))
            .unwrap_or_else(|_| {
                tracing::error!("job crashed on the device; lease released");
                host.report(Err("a job crashed on the device; it was released"));
                Err(Error::DeviceFailed.into())
            });
            drop(lease);
            match &result {
                Ok(_) => host.report(Ok(())),
                Err(e) if e.code() == "device_error" => {
                    host.report(Err("the device failed during a job; it was released"))
                }
                Err(_) => {}
            }
            let _ = tx.send(result);
        });
        let place = self.place.lock().take();
        let queued = match place {
            Some(place) => place.fill(task),
            None => self.device.submit(task),
        };
        if !queued {
            return Err(Error::ShuttingDown.into());
        }
        rx.await.unwrap_or_else(|_| Err(Error::DeviceFailed.into()))
    }
}
