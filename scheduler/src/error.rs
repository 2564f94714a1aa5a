//! The failures the scheduler itself decides (a full queue, a cap, a timeout, a cancel, a crash
//! on the device, a shutdown), and what it needs of an executor's own error type. Plain data.

use std::time::Duration;

/// Why the scheduler ended or refused a job. The executor's error type converts from it
/// (`From<Error>`), so a job's owner hears one error type whoever decided.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The waiting queue is at its maximum (`max_waiting`).
    #[error("the queue is full ({0} jobs waiting)")]
    QueueFull(usize),
    /// The job's party already has its maximum of jobs waiting.
    #[error("{waiting} jobs of this party are waiting already")]
    RateLimited {
        /// The cap that was reached.
        waiting: usize,
        /// When trying again makes sense (about one run time).
        retry_after: Duration,
    },
    /// The job waited longer than `max_wait`.
    #[error("waited longer than {0:?}")]
    WaitTimeout(Duration),
    /// The job ran longer than `max_run`.
    #[error("ran longer than {0:?}")]
    RunTimeout(Duration),
    /// The owner cancelled the job (or it was abandoned before it started).
    #[error("cancelled")]
    Cancelled,
    /// The device could not be opened.
    #[error("the device could not be opened")]
    DeviceOpen,
    /// The job panicked, or its device work never reported back; the device was released.
    #[error("the device failed while running the job")]
    DeviceFailed,
    /// The scheduler is shutting down.
    #[error("shutting down")]
    ShuttingDown,
}

impl Failure for Error {
    fn code(&self) -> &'static str {
        match self {
            Error::QueueFull(_) => "queue_full",
            Error::RateLimited { .. } => "rate_limited",
            Error::WaitTimeout(_) | Error::RunTimeout(_) => "timeout",
            Error::Cancelled => "cancelled",
            Error::DeviceOpen | Error::DeviceFailed => "device_error",
            Error::ShuttingDown => "shutting_down",
        }
    }
}

/// What the scheduler needs of an executor's error type: a stable snake_case code, counted in
/// the statistics under that name.
pub trait Failure {
    /// The stable code (`timeout`, `cancelled`, `invalid_input`, ...).
    fn code(&self) -> &'static str;
}
