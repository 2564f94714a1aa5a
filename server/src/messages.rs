//! The one mapping from a job's scheduler events to the wire's [`ServerMessage`]s, and the
//! numbering that goes with it: every message of a job has the next `seq`, from 0, with no gap.
//! A calculator result is two messages (`result`, then `done`); every other event is one.
//! Used by the WebSocket connection for its own jobs, by the relay's chat logs and by the
//! answers the result cache gives. Plain functions and data.

use crate::cache::Cached;
use crate::job::{JobEvent, Outcome, Progress};
use app::chat::ConversationId;
use app::protocol::{JobId, ServerMessage};

/// What a job's messages say about it besides the event.
#[derive(Clone, Debug)]
pub struct JobLabel {
    /// The job's id on the wire.
    pub job_id: JobId,
    /// The submission's label, echoed in `accepted`.
    pub client_ref: String,
    /// The conversation a chat answer belongs to, echoed in `accepted`.
    pub conversation: Option<ConversationId>,
}

impl JobLabel {
    /// The wire id of a scheduler job.
    pub fn wire_id(id: turnstile_scheduler::JobId) -> JobId {
        JobId(id.to_string())
    }
}

/// The messages for `event`: the first numbered `seq`, the second (if any) `seq + 1`.
pub fn to_messages(
    label: &JobLabel,
    seq: u64,
    event: JobEvent,
) -> (ServerMessage, Option<ServerMessage>) {
    let job_id = label.job_id.clone();
    let one = match event {
        JobEvent::Accepted {
            position,
            queue_length,
            eta_ms,
        } => ServerMessage::Accepted {
            client_ref: label.client_ref.clone(),
            job_id,
            seq,
            position,
            queue_length,
            eta_ms,
            conversation_id: label.conversation.clone(),
        },
        JobEvent::Position { position, eta_ms } => ServerMessage::Position {
            job_id,
            seq,
            position,
            eta_ms,
        },
        JobEvent::Started { waited_ms } => ServerMessage::Started {
            job_id,
            seq,
            waited_ms,
        },
        JobEvent::Progress(Progress::Loading { progress }) => ServerMessage::Loading {
            job_id,
            seq,
            progress,
        },
        JobEvent::Progress(Progress::Token { text }) => ServerMessage::Token { job_id, seq, text },
        JobEvent::Ended(Ok(Outcome::Tensor { output, compute_ms })) => {
            let done = ServerMessage::Done {
                job_id: job_id.clone(),
                seq: seq + 1,
                usage: None,
            };
            let result = ServerMessage::Result {
                job_id,
                seq,
                output,
                compute_ms,
                cached: false,
            };
            return (result, Some(done));
        }
        JobEvent::Ended(Ok(Outcome::Chat(usage))) => ServerMessage::Done {
            job_id,
            seq,
            usage: Some(usage),
        },
        JobEvent::Ended(Err(e)) => ServerMessage::Error {
            job_id: Some(job_id),
            client_ref: None,
            seq: Some(seq),
            code: e.code(),
            message: e.to_string(),
            retry_after_ms: e.retry_after().map(|d| d.as_millis() as u64),
        },
    };
    (one, None)
}

/// The whole life of a job answered from the result cache: accepted (no wait), the result
/// (marked cached), done. Nothing is queued and nothing is kept for resume.
pub fn cached_answer(client_ref: String, hit: &Cached) -> [ServerMessage; 3] {
    let job_id = JobLabel::wire_id(turnstile_scheduler::JobId::random());
    [
        ServerMessage::Accepted {
            client_ref,
            job_id: job_id.clone(),
            seq: 0,
            position: 0,
            queue_length: 0,
            eta_ms: 0,
            conversation_id: None,
        },
        ServerMessage::Result {
            job_id: job_id.clone(),
            seq: 1,
            output: hit.output.clone(),
            compute_ms: hit.compute_ms,
            cached: true,
        },
        ServerMessage::Done {
            job_id,
            seq: 2,
            usage: None,
        },
    ]
}

/// Serializes a message for the socket (shared, so a log and its reader hold one copy).
pub fn encode(msg: &ServerMessage) -> std::sync::Arc<str> {
    serde_json::to_string(msg)
        .expect("server messages serialize")
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::JobError;
    use app::tensor::Tensor;

    fn label() -> JobLabel {
        JobLabel {
            job_id: JobId("j".into()),
            client_ref: "c".into(),
            conversation: None,
        }
    }

    #[test]
    fn a_result_is_two_messages_numbered_in_turn_and_everything_else_one() {
        let output = Tensor {
            shape: vec![1],
            data: vec![4.0],
        };
        let (result, done) = to_messages(
            &label(),
            3,
            JobEvent::Ended(Ok(Outcome::Tensor {
                output,
                compute_ms: 1.0,
            })),
        );
        assert!(matches!(result, ServerMessage::Result { seq: 3, .. }));
        assert!(matches!(
            done,
            Some(ServerMessage::Done {
                seq: 4,
                usage: None,
                ..
            })
        ));
        let (err, none) = to_messages(&label(), 5, JobEvent::Ended(Err(JobError::Cancelled)));
        assert!(none.is_none());
        assert!(err.is_terminal());
        assert!(matches!(err, ServerMessage::Error { seq: Some(5), .. }));
        let (accepted, _) = to_messages(
            &label(),
            0,
            JobEvent::Accepted {
                position: 2,
                queue_length: 2,
                eta_ms: 10,
            },
        );
        assert!(
            matches!(accepted, ServerMessage::Accepted { ref client_ref, seq: 0, position: 2, .. } if client_ref == "c")
        );
    }
}
