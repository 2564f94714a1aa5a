//! The tensor calculator as the scheduler runs it: the pure calculator (crate `turnstile-calc`:
//! validation against the caps, execution on a candle device) wrapped with what only the server
//! has: the device lease and cancellation of a [`crate::job::RunContext`], the result cache,
//! test-only faults, and the mapping of [`CalcError`] into [`JobError`].
//!
//! Concurrency: `Calculator` is shared by the scheduler's tasks; a job's computation runs on a
//! device thread while the job holds a device lease, checking its cancellation token between steps.

use crate::error::JobError;
use app::protocol::CalcJob;
use std::time::Instant;
use turnstile_calc::CalcError;

pub use turnstile_calc::{validate, CalcLimits};

impl From<CalcError> for JobError {
    /// The calculator's errors as the job errors clients see. A device failure's details go to
    /// the log here (with the job's span), never to the client.
    fn from(e: CalcError) -> Self {
        match e {
            CalcError::InvalidInput(message) => JobError::InvalidInput(message),
            CalcError::Cancelled => JobError::Cancelled,
            CalcError::Device(detail) => {
                tracing::error!(error = %detail, "calculator job failed on the device");
                JobError::DeviceFailed
            }
        }
    }
}

/// The calculator as the executor's [`crate::job::Handler`] of calculator jobs.
pub struct Calculator {
    /// The caps jobs must fit.
    pub limits: CalcLimits,
    /// Where results are remembered for identical jobs.
    pub cache: std::sync::Arc<crate::cache::ResultCache>,
    /// Test-only faults (never armed outside `--test-mode`).
    pub faults: std::sync::Arc<crate::faults::Faults>,
}

impl crate::job::Handler<CalcJob> for Calculator {
    /// Checks a calculator job against the caps.
    fn validate(&self, job: &CalcJob) -> Result<(), JobError> {
        validate(job, &self.limits)?;
        Ok(())
    }

    /// Computes `job` on the device (through a lease), times it, and remembers the result.
    fn run(
        self: std::sync::Arc<Self>,
        job: CalcJob,
        ctx: crate::job::RunContext,
    ) -> futures::future::BoxFuture<'static, Result<crate::job::Outcome, JobError>> {
        let cache = std::sync::Arc::clone(&self.cache);
        let faults = std::sync::Arc::clone(&self.faults);
        Box::pin(async move {
            let cancel = ctx.cancel.clone();
            let (output, compute_ms, job) = ctx
                .on_device(move |device| {
                    use crate::faults::Fault;
                    if faults.fires(Fault::JobPanic) {
                        panic!("injected fault: a job panicked on the device");
                    }
                    let t = Instant::now();
                    let output = turnstile_calc::execute(&job, device, || cancel.is_cancelled())?;
                    if faults.fires(Fault::DeviceFail) {
                        tracing::error!("injected fault: the device failed mid-job");
                        return Err(JobError::DeviceFailed);
                    }
                    Ok((output, t.elapsed().as_secs_f64() * 1e3, job))
                })
                .await?;
            cache.put(
                &job,
                crate::cache::Cached {
                    output: output.clone(),
                    compute_ms,
                },
            );
            Ok(crate::job::Outcome::Tensor { output, compute_ms })
        })
    }
}
