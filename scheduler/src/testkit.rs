//! Test support for the crate's own tests: a scripted job ([`TestJob`]: sleep, panic, or chat
//! in a lane), its output and error types ([`TestOutput`], [`TestError`]), and
//! [`Scripted`], the executor the unit tests run on. The property tests' executor (held jobs the
//! test finishes) reuses the job, output and error types.

use crate::context::RunContext;
use crate::error::{Error, Failure};
use crate::executor::{Executor, Job};
use crate::line::Resource;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What a scripted job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TestOp {
    /// Holds the device for `ms`, checking for cancellation every 2 ms.
    Sleep,
    /// Panics on the device.
    Panic,
    /// A chat: takes a lane (not a device place) and holds it for `ms`.
    Chat,
}

/// A scripted job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TestJob {
    /// What it does.
    pub(crate) op: TestOp,
    /// How long it holds its resource (and, for `Sleep`, what it costs in the fair order).
    pub(crate) ms: u64,
    /// Its label in the executor's start log and its output.
    pub(crate) label: u64,
}

impl TestJob {
    /// A job labelled by its `ms`.
    pub(crate) fn new(op: TestOp, ms: u64) -> TestJob {
        TestJob { op, ms, label: ms }
    }
}

impl Job for TestJob {
    fn kind(&self) -> &'static str {
        match self.op {
            TestOp::Chat => "chat",
            _ => "calc",
        }
    }

    /// A sleep costs its own duration; other jobs the average of their kind.
    fn cost_hint(&self) -> Option<Duration> {
        (self.op == TestOp::Sleep).then(|| Duration::from_millis(self.ms))
    }
}

/// What a scripted job produced: its label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TestOutput {
    /// A device job's result.
    Calc(u64),
    /// A chat's answer.
    Chat(u64),
}

/// Why a scripted job failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TestError {
    /// The scheduler decided.
    Scheduler(Error),
    /// The executor refused it at submission.
    InvalidInput(String),
    /// The test gave up on a held job (a broken test must not hang).
    Internal,
}

impl From<Error> for TestError {
    fn from(e: Error) -> Self {
        TestError::Scheduler(e)
    }
}

impl Failure for TestError {
    fn code(&self) -> &'static str {
        match self {
            TestError::Scheduler(e) => e.code(),
            TestError::InvalidInput(_) => "invalid_input",
            TestError::Internal => "internal",
        }
    }
}

/// The unit tests' executor. Device jobs run on the device and log their label as they start;
/// chats wait for a lane, start when their turn comes (`RunContext::begin`) and hold it for their
/// `ms`. Lane waits are estimated at 7 s per position. A job longer than an hour is refused.
#[derive(Default)]
pub(crate) struct Scripted {
    /// Labels of the device jobs, in the order they reached the device.
    pub(crate) started: Mutex<Vec<u64>>,
}

/// Longest job `validate` lets through.
pub(crate) const LONGEST_MS: u64 = 3_600_000;

impl Scripted {
    fn compute(&self, job: &TestJob, cancel: &CancellationToken) -> Result<u64, TestError> {
        self.started.lock().push(job.label);
        match job.op {
            TestOp::Panic => panic!("scripted panic"),
            TestOp::Sleep => {
                let until = Instant::now() + Duration::from_millis(job.ms);
                while Instant::now() < until {
                    if cancel.is_cancelled() {
                        return Err(Error::Cancelled.into());
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(job.label)
            }
            TestOp::Chat => Ok(job.label),
        }
    }
}

impl Executor for Scripted {
    type Job = TestJob;
    type Device = ();
    type Progress = String;
    type Output = TestOutput;
    type Error = TestError;

    fn validate(&self, job: &TestJob) -> Result<(), TestError> {
        if job.ms > LONGEST_MS {
            return Err(TestError::InvalidInput(format!(
                "{} ms is too long",
                job.ms
            )));
        }
        Ok(())
    }

    fn resource(&self, job: &TestJob) -> Resource {
        match job.op {
            TestOp::Chat => Resource::Lane,
            _ => Resource::Device,
        }
    }

    fn lane_eta(&self, position: u64) -> Option<Duration> {
        Some(Duration::from_secs(7 * position))
    }

    fn run(
        self: Arc<Self>,
        job: TestJob,
        ctx: RunContext<Self>,
    ) -> BoxFuture<'static, Result<TestOutput, TestError>> {
        Box::pin(async move {
            if job.op == TestOp::Chat {
                if !ctx.begin() {
                    return Err(Error::Cancelled.into());
                }
                tokio::select! {
                    _ = ctx.cancel.cancelled() => return Err(Error::Cancelled.into()),
                    _ = tokio::time::sleep(Duration::from_millis(job.ms)) => {}
                }
                return Ok(TestOutput::Chat(job.label));
            }
            let cancel = ctx.cancel.clone();
            let label = ctx.on_device(move |_| self.compute(&job, &cancel)).await?;
            Ok(TestOutput::Calc(label))
        })
    }
}
