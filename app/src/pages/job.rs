//! The calculator's view of its one job in flight: a small state machine fed by the server's
//! messages. It keeps the submission's `client_ref` and, once accepted, the `job_id`, and ignores
//! every message about other jobs (or arriving after the job ended). Pure, so it is unit-tested
//! here without a browser.

use crate::error_code::ErrorCode;
use crate::protocol::{JobId, ServerMessage};
use crate::tensor::Tensor;
use std::sync::Arc;

/// Where the job is.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Phase {
    /// Nothing submitted yet.
    #[default]
    Idle,
    /// Sent; waiting for `accepted`.
    Sending,
    /// Queued.
    Waiting {
        /// 1 = next to run.
        position: u64,
        /// Estimated wait until the job starts.
        eta_ms: u64,
    },
    /// Holding the device.
    Running {
        /// Time spent in the queue.
        waited_ms: u64,
    },
    /// The result arrived.
    Finished(Arc<Finished>),
    /// The job failed, was refused or cancelled, or the connection was lost.
    Failed {
        /// An [`ErrorCode`] wire string, or `connection_lost`.
        code: String,
        /// A sentence for people.
        message: String,
    },
}

/// A finished job's output and timings.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    /// The computed tensor.
    pub output: Tensor,
    /// Time spent in the queue.
    pub waited_ms: u64,
    /// Time spent on the device.
    pub compute_ms: f64,
    /// Answered from the server's result cache (no wait, no device).
    pub cached: bool,
}

/// Code shown when the socket drops while a job is in flight.
pub const CONNECTION_LOST: &str = "connection_lost";

/// The job in flight (or the last one) and how far it got.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobTracker {
    client_ref: Option<String>,
    job_id: Option<JobId>,
    phase: Phase,
    cancelling: bool,
}

impl JobTracker {
    /// Forget the previous job and wait for `accepted` for `client_ref`.
    pub fn submitted(&mut self, client_ref: String) {
        *self = JobTracker {
            client_ref: Some(client_ref),
            phase: Phase::Sending,
            ..Default::default()
        };
    }

    /// The current phase.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// The job's id, once accepted.
    pub fn job_id(&self) -> Option<&JobId> {
        self.job_id.as_ref()
    }

    /// Whether a job is in flight (sent and not yet finished or failed).
    pub fn is_active(&self) -> bool {
        matches!(
            self.phase,
            Phase::Sending | Phase::Waiting { .. } | Phase::Running { .. }
        )
    }

    /// Whether a cancel was sent and its answer is awaited.
    pub fn is_cancelling(&self) -> bool {
        self.cancelling && self.is_active()
    }

    /// Whether the job can be cancelled now (it has an id and is waiting or running).
    pub fn can_cancel(&self) -> bool {
        self.job_id.is_some() && self.is_active() && !self.cancelling
    }

    /// The output, when finished.
    pub fn finished(&self) -> Option<Arc<Finished>> {
        match &self.phase {
            Phase::Finished(f) => Some(Arc::clone(f)),
            _ => None,
        }
    }

    /// The failure's code and message, when failed.
    pub fn failure(&self) -> Option<(&str, &str)> {
        match &self.phase {
            Phase::Failed { code, message } => Some((code, message)),
            _ => None,
        }
    }

    /// A cancel was sent for the job.
    pub fn cancel_requested(&mut self) {
        self.cancelling = true;
    }

    /// The job could not be sent, or the socket dropped while it was in flight.
    pub fn connection_lost(&mut self, reason: &str) {
        if self.is_active() {
            self.fail(
                CONNECTION_LOST,
                format!("{reason}; the job was abandoned, submit it again"),
            );
        }
    }

    fn fail(&mut self, code: &str, message: String) {
        self.phase = Phase::Failed {
            code: code.into(),
            message,
        };
        self.cancelling = false;
    }

    fn fail_with(&mut self, code: ErrorCode, message: String) {
        self.fail(code.as_str(), message);
    }

    /// Feeds one server message; returns whether anything changed. Messages about other jobs,
    /// other submissions, or arriving after the job ended are ignored.
    pub fn apply(&mut self, msg: ServerMessage) -> bool {
        if !self.is_active() {
            return false;
        }
        match msg {
            ServerMessage::Accepted {
                client_ref,
                job_id,
                position,
                eta_ms,
                ..
            } => {
                if self.job_id.is_some() || self.client_ref.as_deref() != Some(client_ref.as_str())
                {
                    return false;
                }
                self.job_id = Some(job_id);
                self.phase = Phase::Waiting { position, eta_ms };
                true
            }
            ServerMessage::Error {
                job_id: None,
                client_ref,
                code,
                message,
                ..
            } => {
                let ours = match client_ref {
                    Some(r) => {
                        self.job_id.is_none() && self.client_ref.as_deref() == Some(r.as_str())
                    }
                    // About the last frame received: ours only if we are still waiting for an answer.
                    None => self.phase == Phase::Sending,
                };
                if ours {
                    self.fail_with(code, message);
                }
                ours
            }
            other => {
                if self.job_id.is_none() || other.job_id() != self.job_id.as_ref() {
                    return false;
                }
                self.apply_own(other)
            }
        }
    }

    /// A message known to be about this job.
    fn apply_own(&mut self, msg: ServerMessage) -> bool {
        match msg {
            ServerMessage::Position {
                position, eta_ms, ..
            } => {
                if !matches!(self.phase, Phase::Waiting { .. }) {
                    return false;
                }
                self.phase = Phase::Waiting { position, eta_ms };
                true
            }
            ServerMessage::Started { waited_ms, .. } => {
                self.phase = Phase::Running { waited_ms };
                true
            }
            ServerMessage::Result {
                output,
                compute_ms,
                cached,
                ..
            } => {
                let waited_ms = match self.phase {
                    Phase::Running { waited_ms } => waited_ms,
                    _ => 0,
                };
                self.phase = Phase::Finished(Arc::new(Finished {
                    output,
                    waited_ms,
                    compute_ms,
                    cached,
                }));
                self.cancelling = false;
                true
            }
            ServerMessage::Done { .. } => {
                self.fail_with(ErrorCode::Internal, "the job ended without a result".into());
                true
            }
            ServerMessage::Error { code, message, .. } => {
                self.fail_with(code, message);
                true
            }
            ServerMessage::Accepted { .. }
            | ServerMessage::Loading { .. }
            | ServerMessage::Token { .. }
            | ServerMessage::Pong { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> JobId {
        JobId(s.into())
    }

    fn accepted(r: &str, job: &str, position: u64) -> ServerMessage {
        ServerMessage::Accepted {
            client_ref: r.into(),
            job_id: id(job),
            seq: 0,
            position,
            queue_length: position,
            eta_ms: 600,
            conversation_id: None,
        }
    }

    fn error(job: Option<&str>, r: Option<&str>, code: ErrorCode) -> ServerMessage {
        ServerMessage::Error {
            job_id: job.map(id),
            client_ref: r.map(String::from),
            seq: None,
            code,
            message: "m".into(),
            retry_after_ms: None,
        }
    }

    #[test]
    fn follows_a_job_from_queue_to_result() {
        let mut t = JobTracker::default();
        assert!(!t.is_active());
        t.submitted("r1".into());
        assert_eq!(t.phase(), &Phase::Sending);
        assert!(t.apply(accepted("r1", "j1", 3)));
        assert_eq!(
            t.phase(),
            &Phase::Waiting {
                position: 3,
                eta_ms: 600
            }
        );
        assert!(t.can_cancel());
        assert!(t.apply(ServerMessage::Position {
            job_id: id("j1"),
            seq: 1,
            position: 1,
            eta_ms: 200
        }));
        assert_eq!(
            t.phase(),
            &Phase::Waiting {
                position: 1,
                eta_ms: 200
            }
        );
        assert!(t.apply(ServerMessage::Started {
            job_id: id("j1"),
            seq: 2,
            waited_ms: 412
        }));
        let output = Tensor {
            shape: vec![1],
            data: vec![4.0],
        };
        assert!(t.apply(ServerMessage::Result {
            job_id: id("j1"),
            seq: 3,
            output: output.clone(),
            compute_ms: 3.1,
            cached: false,
        }));
        let f = t.finished().unwrap();
        assert_eq!(
            (f.output.clone(), f.waited_ms, f.compute_ms),
            (output, 412, 3.1)
        );
        assert!(!t.is_active());
        assert!(!t.apply(ServerMessage::Done {
            job_id: id("j1"),
            seq: 4,
            usage: None,
        }));
        assert!(t.finished().is_some());
    }

    #[test]
    fn ignores_other_jobs_and_other_submissions() {
        let mut t = JobTracker::default();
        t.submitted("r2".into());
        assert!(!t.apply(accepted("r1", "other", 1)));
        assert!(!t.apply(error(None, Some("r1"), ErrorCode::QueueFull)));
        assert!(t.apply(accepted("r2", "mine", 2)));
        assert!(!t.apply(ServerMessage::Position {
            job_id: id("other"),
            seq: 1,
            position: 1,
            eta_ms: 0
        }));
        assert!(!t.apply(ServerMessage::Started {
            job_id: id("other"),
            seq: 2,
            waited_ms: 0
        }));
        assert!(!t.apply(error(Some("other"), None, ErrorCode::Timeout)));
        assert!(!t.apply(error(None, None, ErrorCode::BadMessage)));
        assert_eq!(
            t.phase(),
            &Phase::Waiting {
                position: 2,
                eta_ms: 600
            }
        );
    }

    #[test]
    fn refusals_cancellations_and_lost_connections_end_the_job() {
        let mut t = JobTracker::default();
        t.submitted("r1".into());
        assert!(t.apply(error(None, Some("r1"), ErrorCode::InvalidInput)));
        assert_eq!(t.failure(), Some(("invalid_input", "m")));

        t.submitted("r2".into());
        t.apply(accepted("r2", "j2", 2));
        t.cancel_requested();
        assert!(t.is_cancelling() && !t.can_cancel());
        assert!(t.apply(error(Some("j2"), None, ErrorCode::Cancelled)));
        assert_eq!(t.failure().map(|f| f.0), Some("cancelled"));
        assert!(!t.is_cancelling());

        t.submitted("r3".into());
        t.connection_lost("the server closed the connection");
        assert_eq!(t.failure().map(|f| f.0), Some(CONNECTION_LOST));
        t.connection_lost("again");
        assert!(t.failure().unwrap().1.starts_with("the server closed"));
    }
}
