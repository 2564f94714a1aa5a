//! Unit tests of the chat page's answer tracker: the message builders and the tracker they share,
//! grouped by what they follow (the stream, reconnecting and resuming, the other endings).

mod endings;
mod reconnect;
mod stream;

use super::*;
use crate::chat::{ChatUsage, ConversationId, FinishReason, MessageStatus, Role, StoredMessage};
use crate::error_code::ErrorCode;
use crate::protocol::{ClientMessage, JobId, ServerMessage};

fn id(s: &str) -> JobId {
    JobId(s.into())
}

fn conv(s: &str) -> ConversationId {
    ConversationId(s.into())
}

fn accepted(r: &str, job: &str, position: u64) -> ServerMessage {
    ServerMessage::Accepted {
        client_ref: r.into(),
        job_id: id(job),
        seq: 0,
        position,
        queue_length: position,
        eta_ms: 900,
        conversation_id: Some(conv("c-new")),
    }
}

fn position(job: &str, seq: u64, position: u64) -> ServerMessage {
    ServerMessage::Position {
        job_id: id(job),
        seq,
        position,
        eta_ms: 300 * position,
    }
}

fn started(job: &str, seq: u64) -> ServerMessage {
    ServerMessage::Started {
        job_id: id(job),
        seq,
        waited_ms: 10,
    }
}

fn token(job: &str, seq: u64, text: &str) -> ServerMessage {
    ServerMessage::Token {
        job_id: id(job),
        seq,
        text: text.into(),
    }
}

fn done(job: &str, seq: u64) -> ServerMessage {
    ServerMessage::Done {
        job_id: id(job),
        seq,
        usage: Some(ChatUsage {
            prompt_tokens: 10,
            completion_tokens: 3,
            time_to_first_token_ms: 12.0,
            tokens_per_second: 30.0,
            finish_reason: FinishReason::Stop,
        }),
    }
}

fn error(job: Option<&str>, r: Option<&str>, seq: Option<u64>, code: ErrorCode) -> ServerMessage {
    ServerMessage::Error {
        job_id: job.map(id),
        client_ref: r.map(String::from),
        seq,
        code,
        message: "what happened".into(),
        retry_after_ms: None,
    }
}

/// A tracker that submitted `c1` and was accepted as job `j1` at position 2.
fn accepted_tracker() -> ChatTracker {
    let mut t = ChatTracker::default();
    t.submitted("c1".into(), None, false);
    assert_eq!(t.apply(accepted("c1", "j1", 2)), Applied::Accepted);
    t
}

#[test]
fn stored_messages_become_thread_messages_and_pending_jobs_round_trip() {
    let stored = StoredMessage {
        id: 3,
        role: Role::Assistant,
        content: "An answer".into(),
        status: MessageStatus::Stopped,
        created_at: "2025-01-01T00:00:00Z".into(),
    };
    let m = ThreadMessage::from(stored);
    assert_eq!(
        (m.role, m.content.as_str(), m.status),
        (Role::Assistant, "An answer", MessageStatus::Stopped)
    );
    assert_eq!(ThreadMessage::user("hi").role, Role::User);
    let p = PendingJob {
        job_id: id("j"),
        conversation_id: conv("c"),
    };
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(json, r#"{"job_id":"j","conversation_id":"c"}"#);
    assert_eq!(serde_json::from_str::<PendingJob>(&json).unwrap(), p);
}
