//! The [`ChatTracker`]'s state, its start from a submission or a resume, its queries, and what
//! it does when the socket drops, reopens or is given up. The server's messages are applied in
//! `reducer`.

use super::{AnswerPhase, PendingJob, ThreadMessage, CONNECTION_LOST};
use crate::chat::{ConversationId, MessageStatus, Role};
use crate::protocol::{ClientMessage, JobId};

/// The answer in flight (or the last one) and how far it got.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatTracker {
    /// The submission's label, until `accepted` (absent for a resumed job).
    pub(super) client_ref: Option<String>,
    /// The job, once accepted (or known from the resume record).
    pub(super) job_id: Option<JobId>,
    /// The conversation: the one submitted to, or the new one from `accepted`.
    pub(super) conversation_id: Option<ConversationId>,
    /// Where the answer is.
    pub(super) phase: AnswerPhase,
    /// The answer so far.
    pub(super) text: String,
    /// The highest `seq` applied; messages at or below it are repeats.
    pub(super) last_seq: Option<u64>,
    /// A cancel was sent; its answer is awaited.
    pub(super) stopping: bool,
    /// The socket dropped and the page is reopening it to resume.
    pub(super) reconnecting: bool,
    /// A `resume` was sent and the server has not yet said anything about the job since.
    pub(super) resume_pending: bool,
    /// The tracker began from a resume after a reload (the page has no local copy of the
    /// submission, so it reloads the conversation when the answer ends).
    pub(super) resumed: bool,
    /// The submission asked to regenerate the last answer.
    pub(super) regenerate: bool,
}

impl ChatTracker {
    /// Forget the previous answer and wait for `accepted` for `client_ref`.
    pub fn submitted(
        &mut self,
        client_ref: String,
        conversation_id: Option<ConversationId>,
        regenerate: bool,
    ) {
        *self = ChatTracker {
            client_ref: Some(client_ref),
            conversation_id,
            phase: AnswerPhase::Sending,
            regenerate,
            ..Default::default()
        };
    }

    /// Forget the previous answer and follow `pending` again, from its first event (after a
    /// reload nothing of it is on the page). Returns the `resume` to send.
    pub fn resuming(&mut self, pending: PendingJob) -> ClientMessage {
        *self = ChatTracker {
            job_id: Some(pending.job_id.clone()),
            conversation_id: Some(pending.conversation_id),
            phase: AnswerPhase::Resuming,
            resume_pending: true,
            resumed: true,
            ..Default::default()
        };
        ClientMessage::Resume {
            job_id: pending.job_id,
            last_seq: None,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> &AnswerPhase {
        &self.phase
    }

    /// The answer so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The job's id, once known.
    pub fn job_id(&self) -> Option<&JobId> {
        self.job_id.as_ref()
    }

    /// The conversation the answer belongs to, once known.
    pub fn conversation_id(&self) -> Option<&ConversationId> {
        self.conversation_id.as_ref()
    }

    /// The highest `seq` seen, for `resume`.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    /// The record to keep for a reload, once the job and conversation are known and while the
    /// answer is in flight.
    pub fn pending(&self) -> Option<PendingJob> {
        match (&self.job_id, &self.conversation_id) {
            (Some(job_id), Some(conversation_id)) if self.is_active() => Some(PendingJob {
                job_id: job_id.clone(),
                conversation_id: conversation_id.clone(),
            }),
            _ => None,
        }
    }

    /// Whether an answer is in flight (sent or resumed, and not yet ended).
    pub fn is_active(&self) -> bool {
        matches!(
            self.phase,
            AnswerPhase::Sending
                | AnswerPhase::Resuming
                | AnswerPhase::Waiting { .. }
                | AnswerPhase::Loading { .. }
                | AnswerPhase::Streaming
        )
    }

    /// Whether the tracker began from a resume after a reload.
    pub fn is_resumed(&self) -> bool {
        self.resumed
    }

    /// Whether the submission asked to regenerate the last answer.
    pub fn is_regenerate(&self) -> bool {
        self.regenerate
    }

    /// Whether the socket dropped and the page is reopening it.
    pub fn is_reconnecting(&self) -> bool {
        self.reconnecting && self.is_active()
    }

    /// Whether a cancel was sent and its answer is awaited.
    pub fn is_stopping(&self) -> bool {
        self.stopping && self.is_active()
    }

    /// Whether Stop can be sent now: the job has an id, is in flight, and the socket is not
    /// being reopened (a cancel must follow the `resume`, not overtake it).
    pub fn can_stop(&self) -> bool {
        self.job_id.is_some() && self.is_active() && !self.stopping && !self.reconnecting
    }

    /// The failure's code and message, when failed.
    pub fn failure(&self) -> Option<(&str, &str)> {
        match &self.phase {
            AnswerPhase::Failed { code, message } => Some((code, message)),
            _ => None,
        }
    }

    /// The ended answer as a thread message: complete, stopped, or failed part-way. `None`
    /// while in flight, when nothing was written, or when the job is gone.
    pub fn final_message(&self) -> Option<ThreadMessage> {
        let status = match &self.phase {
            AnswerPhase::Done { .. } => MessageStatus::Complete,
            AnswerPhase::Stopped => MessageStatus::Stopped,
            AnswerPhase::Failed { .. } if !self.text.is_empty() => MessageStatus::Failed,
            _ => return None,
        };
        Some(ThreadMessage {
            role: Role::Assistant,
            content: self.text.clone(),
            status,
        })
    }

    /// A cancel was sent for the job.
    pub fn stop_requested(&mut self) {
        self.stopping = true;
    }

    /// The socket closed. Returns whether the page should reopen it and resume: only for a job
    /// the server knows (it has an id). A submission still waiting for `accepted` cannot be
    /// followed again and fails.
    pub fn socket_closed(&mut self, reason: &str) -> bool {
        if !self.is_active() {
            return false;
        }
        if self.job_id.is_some() {
            self.reconnecting = true;
            return true;
        }
        self.fail(
            CONNECTION_LOST,
            format!("{reason}; the message may not have reached the server"),
        );
        false
    }

    /// The socket is open again: the `resume` to send (every event after the last one seen),
    /// if the answer is still being reconnected.
    pub fn resume_after_reconnect(&mut self) -> Option<ClientMessage> {
        if !self.is_reconnecting() {
            return None;
        }
        self.reconnecting = false;
        self.resume_pending = true;
        Some(ClientMessage::Resume {
            job_id: self.job_id.clone()?,
            last_seq: self.last_seq,
        })
    }

    /// Reconnecting failed for good: the answer ends here, as far as it got.
    pub fn give_up(&mut self, reason: &str) {
        if self.is_active() {
            self.fail(
                CONNECTION_LOST,
                format!("{reason}; reload the page to see the stored answer"),
            );
        }
    }

    pub(super) fn fail(&mut self, code: &str, message: String) {
        self.phase = AnswerPhase::Failed {
            code: code.into(),
            message,
        };
        self.stopping = false;
        self.reconnecting = false;
    }
}
