//! What the scheduler needs to know of a job and of the code that runs it. The server says what
//! a job is (a calculator job, a chat) by implementing these; the scheduler never looks inside.

use crate::context::RunContext;
use crate::error::{Error, Failure};
use crate::line::Resource;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// A job as the scheduler carries it.
pub trait Job: Send + 'static {
    /// A short label for statistics, the queue listing and the cost estimates (never the job's
    /// content).
    fn kind(&self) -> &'static str;
    /// The job's own idea of its device time, when it knows better than the average of its
    /// kind (the fair order charges its party this much).
    fn cost_hint(&self) -> Option<Duration> {
        None
    }
}

/// The work jobs do.
///
/// Contract: the future [`Executor::run`] does its device work through
/// [`RunContext::on_device`] (or holds a place with [`RunContext::in_slot`], or marks its start
/// with [`RunContext::begin`] when it waits for a lane), completes only after that work has
/// returned, and returns promptly with a cancellation error once the context's token fires, at
/// its next cancellation point. The scheduler counts the job as holding its resource until then.
/// The future is polled on the scheduler's task: it must not block (CPU-heavy work belongs on
/// the device or a blocking thread).
pub trait Executor: Sized + Send + Sync + 'static {
    /// What a job is.
    type Job: Job;
    /// What the device is (an open candle device, say); handed to device work.
    type Device: Clone + Send + Sync + 'static;
    /// What a running job reports on the way (tokens, loading progress).
    type Progress: Send + 'static;
    /// What a finished job produced.
    type Output: Send + 'static;
    /// Why a job failed; the scheduler's own failures convert into it.
    type Error: From<Error> + Failure + Send + 'static;

    /// Cheap checks at submission (shapes, caps), so bad jobs never wait.
    fn validate(&self, job: &Self::Job) -> Result<(), Self::Error>;
    /// What the job waits for: a device place (the default) or a batching engine's lane.
    fn resource(&self, _job: &Self::Job) -> Resource {
        Resource::Device
    }
    /// The expected wait of the lane job at `position` (1 = next) of the lane line, from the
    /// engine's own view of its lanes; `None` lets the scheduler estimate from run times.
    fn lane_eta(&self, _position: u64) -> Option<Duration> {
        None
    }
    /// Runs the job; it holds its resource meanwhile.
    fn run(
        self: Arc<Self>,
        job: Self::Job,
        ctx: RunContext<Self>,
    ) -> BoxFuture<'static, Result<Self::Output, Self::Error>>;
}
