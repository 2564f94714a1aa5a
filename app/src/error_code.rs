//! The fixed set of error codes a client can receive, over the WebSocket (`error.code`) and over
//! HTTP (`error.code` in the body). Codes are stable snake_case strings: clients branch on them.
//! The server maps each code to an HTTP status in one place (`server::error`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a request or job failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The job is well-formed JSON but cannot be computed as asked: unknown op, shape mismatch,
    /// a tensor over the element cap, an op over the cost cap. The message says what to change.
    InvalidInput,
    /// The message itself is unusable: not JSON, not an object, unknown `type`, or too large.
    BadMessage,
    /// The waiting queue is at its configured maximum; retry later.
    QueueFull,
    /// This client sends too much, too fast; retry after the time given.
    RateLimited,
    /// The job waited longer than the maximum wait, or ran longer than the maximum run time.
    Timeout,
    /// The job was cancelled by its owner.
    Cancelled,
    /// The device failed to open, or failed (or panicked) while running the job.
    DeviceError,
    /// The server is shutting down and accepts no new jobs.
    ShuttingDown,
    /// The language model could not be loaded or reached (the message says why); the next
    /// request tries again.
    ModelUnavailable,
    /// The request is not allowed from where it came (a WebSocket from a foreign page's origin).
    Forbidden,
    /// No such job or resource for this client (other clients' jobs are never visible).
    NotFound,
    /// Something unexpected went wrong on the server; details are in the server's log only.
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and exhaustive tests.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::InvalidInput,
        ErrorCode::BadMessage,
        ErrorCode::QueueFull,
        ErrorCode::RateLimited,
        ErrorCode::Timeout,
        ErrorCode::Cancelled,
        ErrorCode::DeviceError,
        ErrorCode::ShuttingDown,
        ErrorCode::ModelUnavailable,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Internal,
    ];

    /// The wire string, e.g. `"queue_full"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::DeviceError => "device_error",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::ModelUnavailable => "model_unavailable",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_match_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }
}
