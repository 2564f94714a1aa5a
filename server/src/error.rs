//! Every failure a client can see, as typed errors with stable codes, and their one mapping to
//! HTTP status codes and bodies. Internal details (device messages, panics) are logged with the
//! job's span and never sent: the `Display` text of each variant is what a client reads.

use app::api::{ErrorBody, ErrorDetail};
use app::error_code::ErrorCode;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::Duration;

/// Why a job did not produce a result.
#[derive(Clone, Debug, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum JobError {
    /// The job cannot be computed as asked; the text says what to change.
    #[error("{0}")]
    InvalidInput(String),
    /// The waiting queue is at its maximum.
    #[error("the queue is full ({0} jobs waiting); try again in a few seconds")]
    QueueFull(usize),
    /// This client already has its maximum of jobs waiting, or sends too much too fast.
    #[error("you already have {waiting} jobs waiting, the most one client may; try again in {}", humantime::format_duration(Duration::from_secs(retry_after.as_secs().max(1))))]
    RateLimited {
        /// The cap that was reached.
        waiting: usize,
        /// When trying again makes sense.
        retry_after: Duration,
    },
    /// This client sends requests faster than its rate allows.
    #[error("too many requests; try again in {}", humantime::format_duration(Duration::from_millis(retry_after.as_millis().max(1) as u64)))]
    TooFast {
        /// When the next request will be accepted.
        retry_after: Duration,
    },
    /// The job waited longer than the configured maximum.
    #[error("the job waited longer than the maximum of {} for the device", humantime::format_duration(*.0))]
    WaitTimeout(Duration),
    /// The job ran longer than the configured maximum.
    #[error("the job ran longer than the maximum of {} and was stopped", humantime::format_duration(*.0))]
    RunTimeout(Duration),
    /// The owner cancelled the job.
    #[error("the job was cancelled")]
    Cancelled,
    /// The device could not be opened; the next job tries again.
    #[error("the device could not be opened; the next job will try again")]
    DeviceOpen,
    /// The device failed, or the job panicked, while running. The device was released.
    #[error("the device failed while running this job; it was released and the next job runs")]
    DeviceFailed,
    /// The server is shutting down.
    #[error("the server is shutting down; try again shortly")]
    ShuttingDown,
    /// A remote model server went silent for longer than the configured limit.
    #[error("the model server sent nothing for {}; the answer was stopped", humantime::format_duration(*.0))]
    UpstreamTimeout(Duration),
    /// The chat model could not be loaded or reached; the text says why (never internals).
    #[error("the model is unavailable: {0}")]
    ModelUnavailable(String),
    /// No such job or conversation for this client; the text says which.
    #[error("{0}")]
    NotFound(String),
    /// An unexpected failure; the details are in the server's log only.
    #[error("something went wrong on the server; try again")]
    Internal,
}

impl JobError {
    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        match self {
            JobError::InvalidInput(_) => ErrorCode::InvalidInput,
            JobError::QueueFull(_) => ErrorCode::QueueFull,
            JobError::RateLimited { .. } | JobError::TooFast { .. } => ErrorCode::RateLimited,
            JobError::WaitTimeout(_) | JobError::RunTimeout(_) | JobError::UpstreamTimeout(_) => {
                ErrorCode::Timeout
            }
            JobError::Cancelled => ErrorCode::Cancelled,
            JobError::DeviceOpen | JobError::DeviceFailed => ErrorCode::DeviceError,
            JobError::ShuttingDown => ErrorCode::ShuttingDown,
            JobError::ModelUnavailable(_) => ErrorCode::ModelUnavailable,
            JobError::NotFound(_) => ErrorCode::NotFound,
            JobError::Internal => ErrorCode::Internal,
        }
    }

    /// When the client should try again, if a retry makes sense: the error's own hint, else the
    /// code's default.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            JobError::RateLimited { retry_after, .. } | JobError::TooFast { retry_after } => {
                Some(*retry_after)
            }
            other => retry_after_secs(other.code()).map(Duration::from_secs),
        }
    }
}

/// The scheduler's own failures, as a client hears them.
impl From<turnstile_scheduler::Error> for JobError {
    fn from(e: turnstile_scheduler::Error) -> Self {
        use turnstile_scheduler::Error as E;
        match e {
            E::QueueFull(n) => JobError::QueueFull(n),
            E::RateLimited {
                waiting,
                retry_after,
            } => JobError::RateLimited {
                waiting,
                retry_after,
            },
            E::WaitTimeout(d) => JobError::WaitTimeout(d),
            E::RunTimeout(d) => JobError::RunTimeout(d),
            E::Cancelled => JobError::Cancelled,
            E::DeviceOpen => JobError::DeviceOpen,
            E::DeviceFailed => JobError::DeviceFailed,
            E::ShuttingDown => JobError::ShuttingDown,
        }
    }
}

impl turnstile_scheduler::Failure for JobError {
    fn code(&self) -> &'static str {
        JobError::code(self).as_str()
    }
}

/// An error answered over HTTP: a code, a message for people, and the request id.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// The wire code; it decides the HTTP status.
    pub code: ErrorCode,
    /// What the client reads.
    pub message: String,
    /// The request's id, echoed in the body.
    pub request_id: Option<String>,
    /// When to retry (the `Retry-After` header), if not the code's default.
    pub retry_after: Option<Duration>,
}

impl AppError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: message.into(),
            request_id: None,
            retry_after: None,
        }
    }

    /// Attaches the request id.
    pub fn with_request_id(mut self, id: &str) -> Self {
        self.request_id = Some(id.to_owned());
        self
    }
}

impl From<JobError> for AppError {
    fn from(e: JobError) -> Self {
        AppError {
            retry_after: e.retry_after(),
            ..AppError::new(e.code(), e.to_string())
        }
    }
}

/// The HTTP status for each code: the one place this mapping lives.
pub fn http_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidInput | ErrorCode::BadMessage => StatusCode::BAD_REQUEST,
        ErrorCode::QueueFull | ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::Cancelled => StatusCode::CONFLICT,
        ErrorCode::DeviceError | ErrorCode::ShuttingDown | ErrorCode::ModelUnavailable => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Seconds a client should wait before retrying after this code, if a retry makes sense.
pub fn retry_after_secs(code: ErrorCode) -> Option<u64> {
    match code {
        ErrorCode::QueueFull | ErrorCode::RateLimited => Some(2),
        ErrorCode::ShuttingDown | ErrorCode::DeviceError | ErrorCode::ModelUnavailable => Some(5),
        _ => None,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = http_status(self.code);
        let body = ErrorBody {
            success: false,
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
            request_id: self.request_id,
        };
        let mut response = (status, Json(body)).into_response();
        let retry = self
            .retry_after
            .map(|d| d.as_secs_f64().ceil() as u64)
            .or_else(|| retry_after_secs(self.code));
        if let Some(secs) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_status_and_retryable_ones_say_when() {
        for code in ErrorCode::ALL {
            let status = http_status(code);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code}"
            );
            if status == StatusCode::TOO_MANY_REQUESTS {
                assert!(retry_after_secs(code).is_some(), "{code} needs Retry-After");
            }
        }
    }

    #[test]
    fn device_errors_do_not_leak_internals() {
        let e = AppError::from(JobError::DeviceFailed);
        assert_eq!(e.code, ErrorCode::DeviceError);
        assert!(!e.message.contains("panic"));
    }
}
