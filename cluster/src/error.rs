//! Why a shared-queue call failed. Plain data.

/// A failure of the shared queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis is unreachable or answered with an error; the text is for the log only.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A script answered something this client does not understand (a version mismatch).
    #[error("unexpected answer from the queue's script {script}: {detail}")]
    Protocol {
        /// Which script.
        script: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl From<redis::ParsingError> for QueueError {
    fn from(e: redis::ParsingError) -> Self {
        QueueError::Redis(e.into())
    }
}

/// Why a job was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The whole queue holds `max_waiting` jobs.
    #[error("the queue is full")]
    QueueFull,
    /// The job's party holds its maximum of waiting jobs.
    #[error("this party has its maximum of jobs waiting")]
    RateLimited,
    /// A job with this id exists already.
    #[error("a job with this id exists")]
    Duplicate,
}
