//! The pump task that turns one job's events into numbered wire messages and appends them to its
//! log; it is the only writer of that log, and stores a chat answer before its final event.

use super::{Persist, Relay};
use crate::error::JobError;
use crate::scheduler::JobEvent;
use app::chat::{ConversationId, MessageStatus, Role};
use app::protocol::{JobId, ServerMessage};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Turns one job's events into messages, in order, and stores a chat answer when it ends.
pub(super) struct Pump {
    pub(super) relay: Arc<Relay>,
    pub(super) id: JobId,
    pub(super) client_ref: String,
    pub(super) conversation: Option<ConversationId>,
    pub(super) persist: Option<Persist>,
    /// The answer so far (chat).
    pub(super) answer: String,
}

impl Pump {
    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<(JobId, JobEvent)>) {
        while let Some((_, event)) = rx.recv().await {
            let terminal = event.is_terminal();
            if let JobEvent::Token { text } = &event {
                self.answer.push_str(text);
            }
            if terminal {
                self.store_answer(&event).await;
            }
            let (id, client_ref, conversation) = (
                self.id.clone(),
                self.client_ref.clone(),
                self.conversation.clone(),
            );
            let is_position = matches!(event, JobEvent::Position { .. });
            self.relay.append(&self.id, is_position, move |seq| {
                to_message(id, seq, event, &client_ref, conversation)
            });
            if terminal {
                break;
            }
        }
        self.relay.pump_stopped(&self.id);
    }

    /// Stores the answer (complete, or as far as it got) before its final event goes out.
    async fn store_answer(&mut self, event: &JobEvent) {
        let Some(p) = self.persist.take() else { return };
        let status = match event {
            JobEvent::Answered(_) => MessageStatus::Complete,
            JobEvent::Failed(JobError::Cancelled) => MessageStatus::Stopped,
            _ => MessageStatus::Failed,
        };
        if self.answer.is_empty() && status != MessageStatus::Complete {
            return;
        }
        let answer = std::mem::take(&mut self.answer);
        if let Err(e) = p
            .store
            .append_message(
                &p.session,
                &p.conversation,
                Role::Assistant,
                &answer,
                status,
            )
            .await
        {
            tracing::error!(job_id = %self.id, error = %e, "could not store the answer");
        }
    }
}

/// The wire message for a job event.
pub fn to_message(
    job_id: JobId,
    seq: u64,
    event: JobEvent,
    client_ref: &str,
    conversation_id: Option<ConversationId>,
) -> ServerMessage {
    match event {
        JobEvent::Accepted {
            position,
            queue_length,
            eta_ms,
        } => ServerMessage::Accepted {
            client_ref: client_ref.to_owned(),
            job_id,
            seq,
            position,
            queue_length,
            eta_ms,
            conversation_id,
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
        JobEvent::Loading { progress } => ServerMessage::Loading {
            job_id,
            seq,
            progress,
        },
        JobEvent::Token { text } => ServerMessage::Token { job_id, seq, text },
        JobEvent::Result { output, compute_ms } => ServerMessage::Result {
            job_id,
            seq,
            output,
            compute_ms,
            cached: false,
        },
        JobEvent::Done => ServerMessage::Done {
            job_id,
            seq,
            usage: None,
        },
        JobEvent::Answered(usage) => ServerMessage::Done {
            job_id,
            seq,
            usage: Some(usage),
        },
        JobEvent::Failed(e) => ServerMessage::Error {
            job_id: Some(job_id),
            client_ref: None,
            seq: Some(seq),
            code: e.code(),
            message: e.to_string(),
            retry_after_ms: e.retry_after().map(|d| d.as_millis() as u64),
        },
    }
}
