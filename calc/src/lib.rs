//! Turnstile's tensor calculator, pure: [`validate`] checks a [`CalcJob`](app::protocol::CalcJob) against the configured
//! [`CalcLimits`] and returns its result's shape and cost (cheap, done at submission so a bad job
//! is refused before it waits), and [`execute`] computes a validated job on a candle device.
//!
//! Nothing here knows about the scheduler, the device's lease, the result cache or faults: the
//! server wraps these functions (`server/src/calc.rs`) and maps [`CalcError`] into its own job
//! error. The fuzz targets call them directly.
//!
//! Concurrency: pure functions. `execute` runs on whatever thread calls it (the server's device
//! threads) and asks its caller whether the job was cancelled between steps (its cancellation
//! points).

mod execute;
mod validate;

pub use execute::execute;
pub use validate::validate;

use app::error_code::ErrorCode;
use std::time::Duration;

/// The caps a calculator job must fit.
#[derive(Clone, Copy, Debug)]
pub struct CalcLimits {
    /// Most elements in any operand or result, so one job cannot take the device's memory.
    pub max_elements: usize,
    /// Most floating-point operations for generating the operands plus the op, so one job cannot
    /// hold the device for long.
    pub max_op_cost: u64,
    /// Whether the test-only `sleep` op is accepted (tests need a job that holds the device for a
    /// known time; a normal server refuses it).
    pub test_mode: bool,
    /// Longest `sleep` accepted (test mode), so a test job cannot hold the device forever.
    pub max_sleep: Duration,
}

/// Why a calculator job did not produce a result. Each variant has a stable wire code
/// ([`CalcError::code`]); the server turns it into its own job error.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CalcError {
    /// The job cannot be computed as asked; the text says what to change (`invalid_input`).
    #[error("{0}")]
    InvalidInput(String),
    /// The caller cancelled the job at one of its checkpoints (`cancelled`).
    #[error("the job was cancelled")]
    Cancelled,
    /// Candle failed on the device, after validation had passed (`device_error`). The text is for
    /// the log only, never for the client.
    #[error("the device failed: {0}")]
    Device(String),
}

impl CalcError {
    /// The wire code: `invalid_input`, `cancelled` or `device_error`.
    pub fn code(&self) -> ErrorCode {
        match self {
            CalcError::InvalidInput(_) => ErrorCode::InvalidInput,
            CalcError::Cancelled => ErrorCode::Cancelled,
            CalcError::Device(_) => ErrorCode::DeviceError,
        }
    }
}

#[cfg(test)]
mod tests;
