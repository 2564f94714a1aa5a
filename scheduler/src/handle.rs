//! The [`Scheduler`] handle: submission (validation and admission, so a refusal is immediate),
//! cancellation through the [`JobTicket`], and requests to the scheduler task. Cheap to clone;
//! every handle talks to the same task through one unbounded channel.

use crate::admission::PartyCaps;
use crate::config::SchedulerConfig;
use crate::device::DeviceHost;
use crate::error::{Error, Failure};
use crate::event::{EventSink, JobId};
use crate::executor::Executor;
use crate::fair::Party;
use crate::jobs::Waiting;
use crate::observer::Observer;
use crate::task;
use crate::view::QueueView;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;

/// Messages to the scheduler task.
pub(crate) enum Command<X: Executor> {
    /// A new job, admitted (it holds its places among the waiting).
    Submit(Box<Waiting<X>>),
    /// Cancel a job; `notify` tells its owner (an explicit cancel) or not (the owner is gone).
    Cancel { id: JobId, notify: bool },
    /// A submission was refused before reaching the queue (for statistics).
    Refused(&'static str),
    /// Report the current state.
    View(oneshot::Sender<QueueView>),
    /// Answer once no job is dispatched (at once if none is).
    WhenIdle(oneshot::Sender<()>),
    /// Cancel every dispatched job (the end of a shutdown's drain).
    CancelRunning,
}

/// A handle for submitting jobs; cheap to clone.
pub struct Scheduler<X: Executor> {
    /// Commands to the task.
    tx: mpsc::UnboundedSender<Command<X>>,
    /// One permit per waiting job; closed at shutdown.
    permits: Arc<Semaphore>,
    /// Validates jobs before they queue, and picks their resource.
    executor: Arc<X>,
    /// For `queue_full` errors.
    max_waiting: usize,
    /// Each party's waiting jobs, against its cap.
    party_caps: Arc<PartyCaps>,
    /// The task's moving average of run times, in microseconds (for retry hints).
    avg_run_us: Arc<AtomicU64>,
}

impl<X: Executor> Clone for Scheduler<X> {
    fn clone(&self) -> Self {
        Scheduler {
            tx: self.tx.clone(),
            permits: Arc::clone(&self.permits),
            executor: Arc::clone(&self.executor),
            max_waiting: self.max_waiting,
            party_caps: Arc::clone(&self.party_caps),
            avg_run_us: Arc::clone(&self.avg_run_us),
        }
    }
}

/// A submitted job's id; dropping it cancels the job unless it has ended.
pub struct JobTicket<X: Executor> {
    id: JobId,
    tx: mpsc::UnboundedSender<Command<X>>,
    armed: bool,
}

impl<X: Executor> JobTicket<X> {
    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Cancels the job; its owner hears a cancellation.
    pub fn cancel(mut self) {
        self.armed = false;
        let _ = self.tx.send(Command::Cancel {
            id: self.id,
            notify: true,
        });
    }

    /// The job has ended: dropping the ticket no longer cancels anything.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl<X: Executor> Drop for JobTicket<X> {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.tx.send(Command::Cancel {
                id: self.id,
                notify: false,
            });
        }
    }
}

impl<X: Executor> Scheduler<X> {
    /// Starts the scheduler task on the current runtime. It stops when every handle is dropped
    /// or `shutdown` fires.
    pub fn spawn(
        config: SchedulerConfig,
        device: Arc<DeviceHost<X::Device>>,
        executor: Arc<X>,
        observer: Arc<dyn Observer>,
        shutdown: CancellationToken,
    ) -> Scheduler<X> {
        let (tx, rx) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(config.max_waiting));
        let max_waiting = config.max_waiting;
        let party_caps = PartyCaps::new(config.max_waiting_per_party);
        let avg_run_us = Arc::new(AtomicU64::new(
            config.initial_run_estimate.as_micros() as u64
        ));
        task::spawn(task::TaskParts {
            config,
            device,
            executor: Arc::clone(&executor),
            rx,
            permits: Arc::clone(&permits),
            avg_run_us: Arc::clone(&avg_run_us),
            party_caps: Arc::clone(&party_caps),
            observer,
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

    /// The executor jobs run on.
    pub fn executor(&self) -> &Arc<X> {
        &self.executor
    }

    /// Validates and queues `job` for `party`, whose events go to `sink`. Its first event is
    /// `Accepted`.
    pub fn submit(
        &self,
        job: X::Job,
        party: Party,
        sink: EventSink<X>,
    ) -> Result<JobTicket<X>, X::Error> {
        let refuse = |e: X::Error| {
            let _ = self.tx.send(Command::Refused(e.code()));
            e
        };
        self.executor.validate(&job).map_err(refuse)?;
        let Some(place) = self.party_caps.try_take(&party) else {
            let avg = Duration::from_micros(self.avg_run_us.load(Ordering::Relaxed));
            return Err(refuse(
                Error::RateLimited {
                    waiting: self.party_caps.max(),
                    retry_after: avg.max(Duration::from_secs(1)),
                }
                .into(),
            ));
        };
        let permit = match Arc::clone(&self.permits).try_acquire_owned() {
            Ok(p) => p,
            Err(TryAcquireError::NoPermits) => {
                return Err(refuse(Error::QueueFull(self.max_waiting).into()))
            }
            Err(TryAcquireError::Closed) => return Err(refuse(Error::ShuttingDown.into())),
        };
        let id = JobId::random();
        let resource = self.executor.resource(&job);
        let waiting = Waiting::new(id, job, resource, party, sink, permit, place);
        self.tx
            .send(Command::Submit(Box::new(waiting)))
            .map_err(|_| X::Error::from(Error::ShuttingDown))?;
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

    /// Cancels every running job (each owner hears a cancellation).
    pub fn cancel_running(&self) {
        let _ = self.tx.send(Command::CancelRunning);
    }

    /// The current state; `None` once the task has stopped.
    pub async fn view(&self) -> Option<QueueView> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::View(tx)).ok()?;
        rx.await.ok()
    }
}
