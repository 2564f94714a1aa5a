//! Runs one dispatched job: its executor hands the device work to the device threads (where the
//! job may wait for the job before it, when it was prefetched), the runner enforces the maximum
//! wait until the job starts and the maximum run time from the moment it started, and reports
//! how the job ended.
//!
//! A runner is a future driven by the scheduler task itself (no task is spawned per job), so the
//! end of a job is seen by the task that owns the bookkeeping without a hop. It never polls: it
//! sleeps until the job's next deadline (the end of its wait, or at most `max_run` later to look
//! whether it started meanwhile).
//!
//! Concurrency invariant: the scheduler counts a job as dispatched until its runner completes,
//! which happens only after the device work has returned (or panicked). The device threads bound
//! how many jobs compute at once; the scheduler bounds how many are dispatched; a panic can never
//! leak either.

use crate::context::{Emitter, JobStart, RunContext};
use crate::device::{DeviceHost, Reservation};
use crate::error::{Error, Failure};
use crate::event::{Event, JobId};
use crate::executor::{Executor, Job};
use futures::future::BoxFuture;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Everything a runner needs.
pub(crate) struct RunSpec<X: Executor> {
    pub id: JobId,
    pub job: X::Job,
    pub events: Emitter<X>,
    pub start: Arc<JobStart>,
    /// Its place in the device's order (device jobs only).
    pub place: Option<Reservation<X::Device>>,
    pub cancel: CancellationToken,
    pub device: Arc<DeviceHost<X::Device>>,
    pub executor: Arc<X>,
    pub max_run: Duration,
    pub max_wait: Duration,
}

/// How a job ended, for the scheduler's bookkeeping, and the event its owner hears next.
pub(crate) struct Ended<X: Executor> {
    pub id: JobId,
    /// Time from queued to reaching the device (or to the end, if it never did).
    pub waited: Duration,
    /// Time on the device; `None` if it never started.
    pub run: Option<Duration>,
    /// The failure's code, if it failed.
    pub failure: Option<&'static str>,
    /// The terminal event, sent after the bookkeeping (so the next job is dispatched while this
    /// one's answer is on its way, and an owner that reacts to it sees this job finished); `None`
    /// when the owner was already told (a run timeout).
    pub last: Option<(Emitter<X>, Event<X>)>,
}

/// The runner of one job, as a future for the scheduler task to drive.
pub(crate) fn run<X: Executor>(spec: RunSpec<X>) -> BoxFuture<'static, Ended<X>> {
    let span = tracing::info_span!("job", job_id = %spec.id, kind = spec.job.kind());
    Box::pin(drive(spec).instrument(span))
}

async fn drive<X: Executor>(spec: RunSpec<X>) -> Ended<X> {
    let RunSpec {
        id,
        job,
        events,
        start,
        place,
        cancel,
        device,
        executor,
        max_run,
        max_wait,
    } = spec;
    let ctx = RunContext {
        device,
        cancel: cancel.clone(),
        events: events.clone(),
        start: Arc::clone(&start),
        place: Arc::new(parking_lot::Mutex::new(place)),
    };
    let ended = |failure: Option<&'static str>, last: Option<Event<X>>| Ended {
        id,
        waited: start.waited(),
        run: start.at().map(|t| t.elapsed()),
        failure,
        last: last.map(|e| (events.clone(), e)),
    };
    // A panic in the executor's async part is caught like one on the device: the job fails, the
    // place on the device is given back.
    let mut work = AssertUnwindSafe(executor.run(job, ctx)).catch_unwind();
    let give_up_waiting = start.enqueued() + max_wait;
    // Until the job starts, look again at most `max_run` apart (the device thread starts it
    // without telling the runner, so as not to spend its time on a wake-up).
    let mut look_again = give_up_waiting.min(Instant::now() + max_run);
    let outcome = loop {
        let started = start.at();
        let deadline = match started {
            Some(t) => t + max_run,
            None => look_again,
        };
        let abandon = tokio::select! {
            biased;
            r = &mut work => match r {
                Ok(outcome) => break outcome,
                Err(_panic) => {
                    tracing::error!("job crashed; its place on the device was released");
                    break Err(Error::DeviceFailed.into());
                }
            },
            _ = cancel.cancelled(), if started.is_none() => Error::Cancelled,
            _ = tokio::time::sleep_until(deadline.into()) => match started {
                Some(_) => {
                    // Tell the owner now; the job stays dispatched until the work reaches its
                    // next cancellation point and returns.
                    cancel.cancel();
                    tracing::warn!(
                        max_run_ms = max_run.as_millis() as u64,
                        "job ran too long; cancelling"
                    );
                    events.send(Event::Ended(Err(Error::RunTimeout(max_run).into())));
                    let _ = work.await;
                    return ended(Some("timeout"), None);
                }
                None if Instant::now() >= give_up_waiting => Error::WaitTimeout(max_wait),
                None => {
                    look_again = give_up_waiting.min(Instant::now() + max_run);
                    continue;
                }
            },
        };
        if start.try_abandon() {
            // It never touched the device, and now never will.
            cancel.cancel();
            tracing::debug!(code = abandon.code(), "job given up before it started");
            return ended(
                Some(abandon.code()),
                Some(Event::Ended(Err(abandon.into()))),
            );
        }
        // It started in the meantime: carry on as a started job.
    };
    // A job that ended without reaching the device (it failed first) is over: no position may
    // be sent to it after its end.
    start.try_abandon();
    let failure = outcome.as_ref().err().map(|e| e.code());
    tracing::debug!(?failure, "job ended");
    ended(failure, Some(Event::Ended(outcome)))
}
