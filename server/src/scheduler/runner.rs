//! Runs one started job: takes a device lease on a blocking thread, computes, enforces the
//! maximum run time, and reports to the job's owner and back to the scheduler.
//!
//! Concurrency invariant: the scheduler counts a job as holding the device until this runner's
//! [`FinishGuard`] reports `Finished`, which happens only after the blocking computation has
//! returned (or panicked). So at most `max_concurrent` computations ever run, even after a timeout,
//! and a panic or a dropped runner can never leak the device.

use super::{Command, EventSink, Executor, JobEvent};
use crate::device::DeviceHost;
use crate::error::JobError;
use app::protocol::{Job, JobId};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Everything a runner needs.
pub(super) struct RunSpec {
    pub id: JobId,
    pub job: Job,
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
    let send = |event: JobEvent| {
        let sink = sink.clone();
        let id = id.clone();
        async move { sink.send((id, event)).await.is_ok() }
    };
    send(JobEvent::Started {
        waited_ms: waited.as_millis() as u64,
    })
    .await;
    tracing::debug!(waited_ms = waited.as_millis() as u64, "job started");

    let started = Instant::now();
    let token = cancel.clone();
    let mut blocking = tokio::task::spawn_blocking(move || {
        let lease = device.lease().map_err(|e| {
            tracing::error!(error = %e, "device failed to open");
            JobError::DeviceOpen
        })?;
        let t = Instant::now();
        let output = executor.execute(&job, lease.device(), &token)?;
        Ok::<_, JobError>((output, t.elapsed()))
    });
    let outcome = match tokio::time::timeout(max_run, &mut blocking).await {
        Ok(joined) => joined.unwrap_or_else(|e| {
            tracing::error!(
                panic = e.is_panic(),
                "job crashed on the device; lease released"
            );
            Err(JobError::DeviceFailed)
        }),
        Err(_) => {
            // Tell the owner now; the device stays counted as busy until the computation
            // reaches its next cancellation point and returns.
            cancel.cancel();
            tracing::warn!(
                max_run_ms = max_run.as_millis() as u64,
                "job ran too long; cancelling"
            );
            send(JobEvent::Failed(JobError::RunTimeout(max_run))).await;
            let _ = blocking.await;
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
        Ok((output, compute)) => {
            let compute_ms = compute.as_secs_f64() * 1e3;
            tracing::debug!(compute_ms, "job done");
            if send(JobEvent::Result { output, compute_ms }).await {
                send(JobEvent::Done).await;
            }
        }
        Err(e) => {
            tracing::debug!(code = %e.code(), "job failed");
            send(JobEvent::Failed(e)).await;
        }
    }
}
