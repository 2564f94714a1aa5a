//! Runs one dispatched job: its executor hands the device work to the device threads (where the
//! job may wait for the job before it, when it was prefetched), the runner enforces the maximum
//! run time from the moment the job reached the device, and reports to the job's owner and back
//! to the scheduler.
//!
//! Concurrency invariant: the scheduler counts a job as dispatched until this runner's
//! [`FinishGuard`] reports `Finished`, which happens only after the device work has returned (or
//! panicked). The device threads bound how many jobs compute at once; the scheduler bounds how
//! many are dispatched; a panic or a dropped runner can never leak either.

use super::{Command, Emitter, EventSink, Executor, JobEvent, JobStart, Outcome, RunContext};
use crate::device::DeviceHost;
use crate::error::JobError;
use crate::job::Work;
use app::protocol::JobId;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// How often a runner whose job waits on the device looks whether it has started.
const START_POLL: Duration = Duration::from_millis(20);

/// Everything a runner needs.
pub(super) struct RunSpec {
    pub id: JobId,
    pub job: Work,
    pub sink: EventSink,
    pub start: Arc<JobStart>,
    /// Its place in the device's order (device jobs only).
    pub place: Option<crate::device::Reservation>,
    pub cancel: CancellationToken,
    pub device: Arc<DeviceHost>,
    pub executor: Arc<dyn Executor>,
    pub max_run: Duration,
    pub max_wait: Duration,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub tx: mpsc::UnboundedSender<Command>,
}

/// Reports `Finished` to the scheduler when dropped: on success, failure, panic or abort alike.
struct FinishGuard {
    id: JobId,
    tx: mpsc::UnboundedSender<Command>,
    start: Arc<JobStart>,
    failure: Option<&'static str>,
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        let run = self.start.at().map(|t| t.elapsed());
        let _ = self.tx.send(Command::Finished {
            id: self.id.clone(),
            waited: self.start.waited(),
            run,
            failure: self.failure,
        });
    }
}

pub(super) fn spawn(spec: RunSpec) {
    let span = tracing::info_span!("job", job_id = %spec.id, kind = spec.job.kind());
    tokio::spawn(run(spec).instrument(span));
}

async fn run(spec: RunSpec) {
    let RunSpec {
        id,
        job,
        sink,
        start,
        place,
        cancel,
        device,
        executor,
        max_run,
        max_wait,
        metrics,
        tx,
    } = spec;
    let mut guard = FinishGuard {
        id: id.clone(),
        tx,
        start: Arc::clone(&start),
        failure: Some("internal"),
    };
    let events = Emitter {
        id: id.clone(),
        sink,
    };
    let ctx = RunContext {
        device,
        cancel: cancel.clone(),
        events: events.clone(),
        start: Arc::clone(&start),
        place: Arc::new(parking_lot::Mutex::new(place)),
    };
    // A panic in the executor's async part is caught like one on the device: the job fails, the
    // place on the device is given back.
    let mut work = AssertUnwindSafe(executor.run(job, ctx)).catch_unwind();
    // A prefetched job first waits on the device for the job before it. Until it starts, a
    // cancel or the end of its waiting time ends it at once (the device will skip it); once it
    // has started, its run time counts from the start.
    let outcome = loop {
        let started = start.at();
        // Not started: look again shortly (the device thread starts the job without telling the
        // runner, so as not to spend its time on a wake-up), or give up at the end of the wait.
        let deadline = match started {
            Some(t) => t + max_run,
            None => (start.enqueued() + max_wait).min(Instant::now() + START_POLL),
        };
        let abandon = tokio::select! {
            biased;
            r = &mut work => match r {
                Ok(outcome) => break outcome,
                Err(_panic) => {
                    tracing::error!("job crashed; its place on the device was released");
                    break Err(JobError::DeviceFailed);
                }
            },
            _ = cancel.cancelled(), if started.is_none() => JobError::Cancelled,
            _ = tokio::time::sleep_until(deadline.into()) => match started {
                Some(_) => {
                    // Tell the owner now; the job stays dispatched until the work reaches its
                    // next cancellation point and returns.
                    cancel.cancel();
                    tracing::warn!(
                        max_run_ms = max_run.as_millis() as u64,
                        "job ran too long; cancelling"
                    );
                    events.send(JobEvent::Failed(JobError::RunTimeout(max_run)));
                    let _ = work.await;
                    guard.failure = Some("timeout");
                    return;
                }
                None if start.enqueued().elapsed() >= max_wait => JobError::WaitTimeout(max_wait),
                None => continue,
            },
        };
        if start.try_abandon() {
            // It never touched the device, and now never will.
            cancel.cancel();
            tracing::debug!(code = %abandon.code(), "job given up before it started");
            guard.failure = Some(abandon.code().as_str());
            drop(guard);
            events.send(JobEvent::Failed(abandon));
            return;
        }
        // It started in the meantime: carry on as a started job.
    };
    // The device is free: tell the scheduler before talking to the owner, so the next job starts
    // while this one's answer is on the wire, and so anything the owner does after reading the
    // answer sees this job counted as finished.
    guard.failure = outcome.as_ref().err().map(|e| e.code().as_str());
    // A job that ended without reaching the device (it failed first) is over: no position may
    // be sent to it after its end.
    start.try_abandon();
    drop(guard);
    match outcome {
        Ok(Outcome::Tensor { output, compute_ms }) => {
            tracing::debug!(compute_ms, "job done");
            if events.send(JobEvent::Result { output, compute_ms }) {
                events.send(JobEvent::Done);
            }
        }
        Ok(Outcome::Chat(usage)) => {
            tracing::debug!(tokens = usage.completion_tokens, "answer done");
            metrics.on_answer(&usage);
            events.send(JobEvent::Answered(usage));
        }
        Err(e) => {
            tracing::debug!(code = %e.code(), "job failed");
            events.send(JobEvent::Failed(e));
        }
    }
}
