//! Runs one started job: takes a device lease on a blocking thread, computes, enforces the
//! maximum run time, and reports to the job's owner and back to the scheduler.
//!
//! Concurrency invariant: the scheduler counts a job as holding the device until this runner's
//! [`FinishGuard`] reports `Finished`, which happens only after the blocking computation has
//! returned (or panicked). So at most `max_concurrent` computations ever run, even after a timeout,
//! and a panic or a dropped runner can never leak the device.

use super::{Command, Emitter, EventSink, Executor, JobEvent, Outcome, RunContext};
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

/// Everything a runner needs.
pub(super) struct RunSpec {
    pub id: JobId,
    pub job: Work,
    pub sink: EventSink,
    pub waited: Duration,
    pub cancel: CancellationToken,
    pub device: Arc<DeviceHost>,
    pub executor: Arc<dyn Executor>,
    pub max_run: Duration,
    pub tx: mpsc::UnboundedSender<Command>,
}

/// Reports `Finished` to the scheduler when dropped: on success, failure, panic or abort alike.
struct FinishGuard {
    id: JobId,
    tx: mpsc::UnboundedSender<Command>,
    run: Duration,
    failure: Option<&'static str>,
}

impl Drop for FinishGuard {
    fn drop(&mut self) {
        let _ = self.tx.send(Command::Finished {
            id: self.id.clone(),
            run: self.run,
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
        waited,
        cancel,
        device,
        executor,
        max_run,
        tx,
    } = spec;
    let mut guard = FinishGuard {
        id: id.clone(),
        tx,
        run: Duration::ZERO,
        failure: Some("internal"),
    };
    let events = Emitter {
        id: id.clone(),
        sink,
    };
    events
        .send(JobEvent::Started {
            waited_ms: waited.as_millis() as u64,
        })
        .await;
    tracing::debug!(waited_ms = waited.as_millis() as u64, "job started");

    let started = Instant::now();
    let ctx = RunContext {
        device,
        cancel: cancel.clone(),
        events: events.clone(),
    };
    // A panic in the executor's async part is caught like one on the device: the job fails, the
    // place on the device is given back.
    let mut work = AssertUnwindSafe(executor.run(job, ctx)).catch_unwind();
    let outcome = match tokio::time::timeout(max_run, &mut work).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_panic)) => {
            tracing::error!("job crashed; its place on the device was released");
            Err(JobError::DeviceFailed)
        }
        Err(_) => {
            // Tell the owner now; the device stays counted as busy until the work reaches its
            // next cancellation point and returns.
            cancel.cancel();
            tracing::warn!(
                max_run_ms = max_run.as_millis() as u64,
                "job ran too long; cancelling"
            );
            events
                .send(JobEvent::Failed(JobError::RunTimeout(max_run)))
                .await;
            let _ = work.await;
            guard.run = started.elapsed();
            guard.failure = Some("timeout");
            return;
        }
    };
    // The device is free: tell the scheduler before talking to the owner, so the next job starts
    // while this one's answer is on the wire, and so anything the owner does after reading the
    // answer sees this job counted as finished.
    guard.run = started.elapsed();
    guard.failure = outcome.as_ref().err().map(|e| e.code().as_str());
    drop(guard);
    match outcome {
        Ok(Outcome::Tensor { output, compute_ms }) => {
            tracing::debug!(compute_ms, "job done");
            if events.send(JobEvent::Result { output, compute_ms }).await {
                events.send(JobEvent::Done).await;
            }
        }
        Ok(Outcome::Chat(usage)) => {
            tracing::debug!(tokens = usage.completion_tokens, "answer done");
            events.send(JobEvent::Answered(usage)).await;
        }
        Err(e) => {
            tracing::debug!(code = %e.code(), "job failed");
            events.send(JobEvent::Failed(e)).await;
        }
    }
}
