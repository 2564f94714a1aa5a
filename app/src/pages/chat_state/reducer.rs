//! The [`ChatTracker`]'s reducer: feeds it one server message at a time, ignoring messages about
//! other jobs and submissions, repeats and anything after the end.

use super::{AnswerPhase, Applied, ChatTracker};
use crate::error_code::ErrorCode;
use crate::protocol::ServerMessage;

impl ChatTracker {
    /// Feeds one server message; says what changed. Messages about other jobs, other
    /// submissions, repeats (a `seq` at or below the last one seen) and anything after the end
    /// are ignored.
    pub fn apply(&mut self, msg: ServerMessage) -> Applied {
        if !self.is_active() {
            return Applied::Ignored;
        }
        if let ServerMessage::Error {
            job_id: None,
            client_ref,
            code,
            message,
            ..
        } = msg
        {
            let ours = match client_ref {
                Some(r) => self.job_id.is_none() && self.client_ref.as_deref() == Some(r.as_str()),
                // About the last frame received: ours only while waiting for its answer.
                None => matches!(self.phase, AnswerPhase::Sending | AnswerPhase::Resuming),
            };
            if !ours {
                return Applied::Ignored;
            }
            self.fail(code.as_str(), message);
            return Applied::Ended;
        }
        let ours = match (&self.job_id, msg.job_id()) {
            (Some(mine), Some(theirs)) => mine == theirs,
            (None, Some(_)) => matches!(
                &msg,
                ServerMessage::Accepted { client_ref, .. }
                    if self.client_ref.as_deref() == Some(client_ref.as_str())
            ),
            _ => false,
        };
        if !ours {
            return Applied::Ignored;
        }
        if let Some(seq) = msg.seq() {
            if self.last_seq.is_some_and(|last| seq <= last) {
                return Applied::Ignored;
            }
            self.last_seq = Some(seq);
        }
        let was_resuming = std::mem::take(&mut self.resume_pending);
        self.apply_own(msg, was_resuming)
    }

    /// A new message known to be about this answer.
    fn apply_own(&mut self, msg: ServerMessage, was_resuming: bool) -> Applied {
        match msg {
            ServerMessage::Accepted {
                job_id,
                position,
                eta_ms,
                conversation_id,
                ..
            } => {
                self.job_id = Some(job_id);
                if conversation_id.is_some() {
                    self.conversation_id = conversation_id;
                }
                if matches!(self.phase, AnswerPhase::Sending | AnswerPhase::Resuming) {
                    self.phase = AnswerPhase::Waiting { position, eta_ms };
                }
                Applied::Accepted
            }
            ServerMessage::Position {
                position, eta_ms, ..
            } => {
                if !matches!(
                    self.phase,
                    AnswerPhase::Waiting { .. } | AnswerPhase::Resuming
                ) {
                    return Applied::Ignored;
                }
                self.phase = AnswerPhase::Waiting { position, eta_ms };
                Applied::Changed
            }
            ServerMessage::Started { .. } => {
                self.phase = AnswerPhase::Streaming;
                Applied::Changed
            }
            ServerMessage::Loading { progress, .. } => {
                if !self.text.is_empty() {
                    return Applied::Ignored;
                }
                self.phase = AnswerPhase::Loading { progress };
                Applied::Changed
            }
            ServerMessage::Token { text, .. } => {
                self.text.push_str(&text);
                self.phase = AnswerPhase::Streaming;
                Applied::Changed
            }
            ServerMessage::Done { usage, .. } => {
                self.phase = AnswerPhase::Done { usage };
                self.stopping = false;
                self.reconnecting = false;
                Applied::Ended
            }
            ServerMessage::Error { code, message, .. } => {
                match code {
                    ErrorCode::Cancelled => {
                        self.phase = AnswerPhase::Stopped;
                        self.stopping = false;
                        self.reconnecting = false;
                    }
                    ErrorCode::NotFound if was_resuming => {
                        self.phase = AnswerPhase::Gone;
                        self.stopping = false;
                        self.reconnecting = false;
                    }
                    code => self.fail(code.as_str(), message),
                }
                Applied::Ended
            }
            ServerMessage::Result { .. } | ServerMessage::Pong { .. } => Applied::Ignored,
        }
    }
}
