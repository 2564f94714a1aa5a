//! The chat page's view of its one answer in flight: a small state machine fed by the server's
//! messages, like the calculator's [`JobTracker`](crate::pages::job::JobTracker), plus the
//! thread's message type and the record kept in `sessionStorage` so a reload can resume.
//!
//! A [`ChatTracker`] starts from a submission (its `client_ref`) or from a resume (a known
//! `job_id`). It ignores messages about other jobs and other submissions, takes the job and
//! conversation ids from `accepted`, follows the queue position, the model load, the start and
//! every token, and ends with `done` or `error`. It remembers the last `seq` seen and ignores any
//! message at or below it, so a replay after `resume` never repeats a token, and it can say which
//! `resume` to send after the socket reopens.
//!
//! Pure (no DOM, no I/O), so it is unit-tested here without a browser. Concurrency: none; the page
//! owns it in a signal and feeds it from the browser's single-threaded event loop.

use crate::chat::{ChatUsage, ConversationId, MessageStatus, Role, StoredMessage};
use crate::error_code::ErrorCode;
use crate::protocol::{ClientMessage, JobId, ServerMessage};
use serde::{Deserialize, Serialize};

/// Code shown when the socket dropped and could not be reopened in time.
pub const CONNECTION_LOST: &str = "connection_lost";

/// Where the answer is.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum AnswerPhase {
    /// Nothing submitted yet (or the page just opened).
    #[default]
    Idle,
    /// Sent; waiting for `accepted`.
    Sending,
    /// A `resume` was sent after a reload; waiting for the replay.
    Resuming,
    /// Queued.
    Waiting {
        /// 1 = next to run.
        position: u64,
        /// Estimated wait until the job starts.
        eta_ms: u64,
    },
    /// Holding the device while the model loads.
    Loading {
        /// Fraction loaded, when the server can tell.
        progress: Option<f32>,
    },
    /// Holding the device: tokens arrive (or are about to).
    Streaming,
    /// The answer is complete.
    Done {
        /// Token counts and speed, when the server sent them.
        usage: Option<ChatUsage>,
    },
    /// Cancelled by its owner (Stop): the partial answer stays.
    Stopped,
    /// Refused, failed, or the connection was lost for good.
    Failed {
        /// An [`ErrorCode`] wire string, or [`CONNECTION_LOST`].
        code: String,
        /// A sentence for people.
        message: String,
    },
    /// A resumed job the server no longer knows (`not_found`): it ended while nobody listened,
    /// and the stored conversation has whatever it produced.
    Gone,
}

/// What one server message did to the tracker, so the page knows what to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// Not about this answer, a repeat, or too late: nothing changed.
    Ignored,
    /// Something visible changed.
    Changed,
    /// `accepted`: the job and conversation ids are known now.
    Accepted,
    /// The answer ended (done, stopped, failed or gone); nothing more will change.
    Ended,
}

/// One message of the thread as the page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadMessage {
    /// Who said it.
    pub role: Role,
    /// What was said (markdown for the assistant, plain text for the person).
    pub content: String,
    /// Whether it is complete, stopped or failed.
    pub status: MessageStatus,
}

impl ThreadMessage {
    /// A complete message by the person.
    pub fn user(content: impl Into<String>) -> Self {
        ThreadMessage {
            role: Role::User,
            content: content.into(),
            status: MessageStatus::Complete,
        }
    }
}

impl From<StoredMessage> for ThreadMessage {
    fn from(m: StoredMessage) -> Self {
        ThreadMessage {
            role: m.role,
            content: m.content,
            status: m.status,
        }
    }
}

/// The answer in flight, as kept in `sessionStorage` so a reload can `resume` it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingJob {
    /// The job to resume.
    pub job_id: JobId,
    /// Its conversation, to show around the answer.
    pub conversation_id: ConversationId,
}

/// The answer in flight (or the last one) and how far it got.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatTracker {
    /// The submission's label, until `accepted` (absent for a resumed job).
    client_ref: Option<String>,
    /// The job, once accepted (or known from the resume record).
    job_id: Option<JobId>,
    /// The conversation: the one submitted to, or the new one from `accepted`.
    conversation_id: Option<ConversationId>,
    /// Where the answer is.
    phase: AnswerPhase,
    /// The answer so far.
    text: String,
    /// The highest `seq` applied; messages at or below it are repeats.
    last_seq: Option<u64>,
    /// A cancel was sent; its answer is awaited.
    stopping: bool,
    /// The socket dropped and the page is reopening it to resume.
    reconnecting: bool,
    /// A `resume` was sent and the server has not yet said anything about the job since.
    resume_pending: bool,
    /// The tracker began from a resume after a reload (the page has no local copy of the
    /// submission, so it reloads the conversation when the answer ends).
    resumed: bool,
    /// The submission asked to regenerate the last answer.
    regenerate: bool,
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

    fn fail(&mut self, code: &str, message: String) {
        self.phase = AnswerPhase::Failed {
            code: code.into(),
            message,
        };
        self.stopping = false;
        self.reconnecting = false;
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::FinishReason;

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

    fn error(
        job: Option<&str>,
        r: Option<&str>,
        seq: Option<u64>,
        code: ErrorCode,
    ) -> ServerMessage {
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
    fn follows_an_answer_from_submission_to_done() {
        let mut t = ChatTracker::default();
        assert!(!t.is_active());
        t.submitted("c1".into(), None, false);
        assert_eq!(t.phase(), &AnswerPhase::Sending);
        assert!(t.is_active() && !t.can_stop());
        assert_eq!(t.apply(accepted("c1", "j1", 2)), Applied::Accepted);
        assert_eq!(t.job_id(), Some(&id("j1")));
        assert_eq!(t.conversation_id(), Some(&conv("c-new")));
        assert_eq!(
            t.phase(),
            &AnswerPhase::Waiting {
                position: 2,
                eta_ms: 900
            }
        );
        assert_eq!(
            t.pending(),
            Some(PendingJob {
                job_id: id("j1"),
                conversation_id: conv("c-new")
            })
        );
        assert!(t.can_stop());
        assert_eq!(t.apply(position("j1", 1, 1)), Applied::Changed);
        assert_eq!(t.apply(started("j1", 2)), Applied::Changed);
        assert_eq!(t.phase(), &AnswerPhase::Streaming);
        assert_eq!(t.apply(token("j1", 3, "Hel")), Applied::Changed);
        assert_eq!(t.apply(token("j1", 4, "lo!")), Applied::Changed);
        assert_eq!(t.text(), "Hello!");
        assert_eq!(t.last_seq(), Some(4));
        assert_eq!(t.apply(done("j1", 5)), Applied::Ended);
        assert!(!t.is_active());
        assert!(t.pending().is_none());
        assert!(
            matches!(t.phase(), AnswerPhase::Done { usage: Some(u) } if u.completion_tokens == 3)
        );
        assert_eq!(
            t.final_message(),
            Some(ThreadMessage {
                role: Role::Assistant,
                content: "Hello!".into(),
                status: MessageStatus::Complete
            })
        );
        // Nothing after the end changes anything.
        assert_eq!(t.apply(token("j1", 6, " more")), Applied::Ignored);
        assert_eq!(t.text(), "Hello!");
    }

    #[test]
    fn a_continued_conversation_keeps_its_id() {
        let mut t = ChatTracker::default();
        t.submitted("c7".into(), Some(conv("old")), false);
        assert_eq!(t.conversation_id(), Some(&conv("old")));
        let mut msg = accepted("c7", "j7", 1);
        if let ServerMessage::Accepted {
            conversation_id, ..
        } = &mut msg
        {
            *conversation_id = Some(conv("old"));
        }
        assert_eq!(t.apply(msg), Applied::Accepted);
        assert_eq!(t.conversation_id(), Some(&conv("old")));
        assert!(!t.is_regenerate());
        t.submitted("c8".into(), Some(conv("old")), true);
        assert!(t.is_regenerate());
    }

    #[test]
    fn ignores_other_jobs_and_other_submissions() {
        let mut t = ChatTracker::default();
        t.submitted("c2".into(), None, false);
        assert_eq!(t.apply(accepted("c1", "other", 1)), Applied::Ignored);
        assert_eq!(
            t.apply(error(None, Some("c1"), None, ErrorCode::QueueFull)),
            Applied::Ignored
        );
        assert_eq!(t.apply(token("other", 3, "not mine")), Applied::Ignored);
        assert_eq!(t.apply(accepted("c2", "mine", 3)), Applied::Accepted);
        assert_eq!(t.apply(position("other", 1, 1)), Applied::Ignored);
        assert_eq!(t.apply(started("other", 2)), Applied::Ignored);
        assert_eq!(t.apply(token("other", 3, "not mine")), Applied::Ignored);
        assert_eq!(
            t.apply(error(Some("other"), None, Some(4), ErrorCode::Timeout)),
            Applied::Ignored
        );
        assert_eq!(
            t.apply(error(None, None, None, ErrorCode::BadMessage)),
            Applied::Ignored
        );
        // A second `accepted` for the same label (a stale echo) is not another job.
        assert_eq!(t.apply(accepted("c2", "again", 1)), Applied::Ignored);
        assert_eq!(t.text(), "");
        assert_eq!(t.job_id(), Some(&id("mine")));
        assert_eq!(
            t.phase(),
            &AnswerPhase::Waiting {
                position: 3,
                eta_ms: 900
            }
        );
    }

    #[test]
    fn position_is_only_shown_while_waiting() {
        let mut t = accepted_tracker();
        assert_eq!(t.apply(position("j1", 1, 1)), Applied::Changed);
        assert_eq!(
            t.phase(),
            &AnswerPhase::Waiting {
                position: 1,
                eta_ms: 300
            }
        );
        assert_eq!(t.apply(started("j1", 2)), Applied::Changed);
        // A late position (sent before the start, delivered after) must not bring the queue back.
        assert_eq!(t.apply(position("j1", 3, 1)), Applied::Ignored);
        assert_eq!(t.phase(), &AnswerPhase::Streaming);
        assert_eq!(
            t.apply(ServerMessage::Loading {
                job_id: id("j1"),
                seq: 4,
                progress: None
            }),
            Applied::Changed
        );
        assert_eq!(t.apply(position("j1", 5, 1)), Applied::Ignored);
        assert_eq!(t.phase(), &AnswerPhase::Loading { progress: None });
    }

    #[test]
    fn loading_reports_progress_until_the_first_token() {
        let mut t = accepted_tracker();
        t.apply(started("j1", 1));
        for (seq, p) in [(2, None), (3, Some(0.25)), (4, Some(1.0))] {
            assert_eq!(
                t.apply(ServerMessage::Loading {
                    job_id: id("j1"),
                    seq,
                    progress: p
                }),
                Applied::Changed
            );
            assert_eq!(t.phase(), &AnswerPhase::Loading { progress: p });
        }
        assert_eq!(t.apply(token("j1", 5, "Hi")), Applied::Changed);
        assert_eq!(t.phase(), &AnswerPhase::Streaming);
        assert_eq!(
            t.apply(ServerMessage::Loading {
                job_id: id("j1"),
                seq: 6,
                progress: Some(0.5)
            }),
            Applied::Ignored
        );
        assert_eq!(t.phase(), &AnswerPhase::Streaming);
    }

    #[test]
    fn repeats_and_stale_messages_are_ignored_by_seq() {
        let mut t = accepted_tracker();
        t.apply(started("j1", 1));
        t.apply(token("j1", 2, "a"));
        assert_eq!(t.apply(token("j1", 2, "a")), Applied::Ignored);
        assert_eq!(t.apply(token("j1", 1, "x")), Applied::Ignored);
        assert_eq!(t.apply(accepted("c1", "j1", 1)), Applied::Ignored);
        assert_eq!(t.apply(token("j1", 3, "b")), Applied::Changed);
        assert_eq!(t.text(), "ab");
        assert_eq!(t.last_seq(), Some(3));
    }

    #[test]
    fn a_replay_after_resume_neither_loses_nor_repeats_tokens() {
        let mut t = accepted_tracker();
        t.apply(started("j1", 1));
        for (seq, piece) in [(2, "one "), (3, "two "), (4, "three ")] {
            t.apply(token("j1", seq, piece));
        }
        // The socket drops; the page reopens it and resumes from the last seq seen.
        assert!(t.socket_closed("the connection to the server was lost"));
        assert!(t.is_reconnecting() && t.is_active());
        assert_eq!(
            t.resume_after_reconnect(),
            Some(ClientMessage::Resume {
                job_id: id("j1"),
                last_seq: Some(4)
            })
        );
        assert!(!t.is_reconnecting());
        assert_eq!(t.resume_after_reconnect(), None);
        // The server replays (here, overlapping what was seen), then goes on live.
        for (seq, piece) in [(3, "two "), (4, "three "), (5, "four "), (6, "five")] {
            t.apply(token("j1", seq, piece));
        }
        assert_eq!(t.apply(done("j1", 7)), Applied::Ended);
        assert_eq!(t.text(), "one two three four five");
    }

    #[test]
    fn a_resume_after_reload_rebuilds_the_answer_from_the_start() {
        let mut t = ChatTracker::default();
        let resume = t.resuming(PendingJob {
            job_id: id("j9"),
            conversation_id: conv("c9"),
        });
        assert_eq!(
            resume,
            ClientMessage::Resume {
                job_id: id("j9"),
                last_seq: None
            }
        );
        assert!(t.is_active() && t.is_resumed() && t.can_stop());
        assert_eq!(t.phase(), &AnswerPhase::Resuming);
        assert_eq!(t.conversation_id(), Some(&conv("c9")));
        // The replay starts with the original `accepted` (another page's client_ref).
        let mut acc = accepted("c1-of-the-old-page", "j9", 1);
        if let ServerMessage::Accepted {
            conversation_id, ..
        } = &mut acc
        {
            *conversation_id = Some(conv("c9"));
        }
        assert_eq!(t.apply(acc), Applied::Accepted);
        t.apply(started("j9", 1));
        t.apply(token("j9", 2, "Where "));
        t.apply(token("j9", 3, "it was"));
        assert_eq!(t.text(), "Where it was");
        // Then the live stream.
        t.apply(token("j9", 4, ", and on."));
        assert_eq!(t.text(), "Where it was, and on.");
        assert_eq!(t.conversation_id(), Some(&conv("c9")));
    }

    #[test]
    fn a_resume_the_server_no_longer_knows_is_gone_not_an_error() {
        let mut t = ChatTracker::default();
        t.resuming(PendingJob {
            job_id: id("j9"),
            conversation_id: conv("c9"),
        });
        assert_eq!(
            t.apply(error(Some("j9"), None, None, ErrorCode::NotFound)),
            Applied::Ended
        );
        assert_eq!(t.phase(), &AnswerPhase::Gone);
        assert!(t.failure().is_none() && t.final_message().is_none() && !t.is_active());

        // After a reconnect too.
        let mut t = accepted_tracker();
        t.apply(token("j1", 1, "part"));
        t.socket_closed("lost");
        t.resume_after_reconnect();
        assert_eq!(
            t.apply(error(Some("j1"), None, None, ErrorCode::NotFound)),
            Applied::Ended
        );
        assert_eq!(t.phase(), &AnswerPhase::Gone);
    }

    #[test]
    fn stop_keeps_the_partial_answer_marked_stopped() {
        let mut t = accepted_tracker();
        t.apply(started("j1", 1));
        t.apply(token("j1", 2, "Part of"));
        assert!(t.can_stop());
        t.stop_requested();
        assert!(t.is_stopping() && !t.can_stop());
        t.apply(token("j1", 3, " it"));
        assert_eq!(
            t.apply(error(Some("j1"), None, Some(4), ErrorCode::Cancelled)),
            Applied::Ended
        );
        assert_eq!(t.phase(), &AnswerPhase::Stopped);
        assert!(!t.is_stopping() && t.failure().is_none());
        assert_eq!(
            t.final_message(),
            Some(ThreadMessage {
                role: Role::Assistant,
                content: "Part of it".into(),
                status: MessageStatus::Stopped
            })
        );
    }

    #[test]
    fn refusals_and_failures_end_with_their_message() {
        let mut t = ChatTracker::default();
        t.submitted("c1".into(), None, false);
        assert_eq!(
            t.apply(error(None, Some("c1"), None, ErrorCode::QueueFull)),
            Applied::Ended
        );
        assert_eq!(t.failure(), Some(("queue_full", "what happened")));
        assert!(t.final_message().is_none());

        let mut t = accepted_tracker();
        t.apply(started("j1", 1));
        t.apply(token("j1", 2, "half"));
        assert_eq!(
            t.apply(error(
                Some("j1"),
                None,
                Some(3),
                ErrorCode::ModelUnavailable
            )),
            Applied::Ended
        );
        assert_eq!(t.failure().map(|f| f.0), Some("model_unavailable"));
        assert_eq!(
            t.final_message().map(|m| (m.content, m.status)),
            Some(("half".to_string(), MessageStatus::Failed))
        );

        // A failed job whose id was not ours is someone else's.
        let mut t = accepted_tracker();
        t.apply(error(Some("j2"), None, Some(1), ErrorCode::NotFound));
        assert!(t.is_active());
        // A not_found that is not about a resume is a plain failure.
        assert_eq!(
            t.apply(error(Some("j1"), None, Some(1), ErrorCode::NotFound)),
            Applied::Ended
        );
        assert_eq!(t.failure().map(|f| f.0), Some("not_found"));
    }

    #[test]
    fn a_drop_before_acceptance_fails_and_a_later_drop_reconnects() {
        let mut t = ChatTracker::default();
        t.submitted("c1".into(), None, false);
        assert!(!t.socket_closed("the server closed the connection"));
        assert_eq!(t.failure().map(|f| f.0), Some(CONNECTION_LOST));
        assert!(!t.socket_closed("again"));

        let mut t = accepted_tracker();
        assert!(t.socket_closed("lost"));
        assert!(t.is_reconnecting() && !t.can_stop());
        t.give_up("the server cannot be reached");
        assert_eq!(t.failure().map(|f| f.0), Some(CONNECTION_LOST));
        assert!(!t.is_reconnecting());
        assert_eq!(t.resume_after_reconnect(), None);

        // Idle trackers have nothing to reconnect.
        let mut t = ChatTracker::default();
        assert!(!t.socket_closed("x"));
        assert_eq!(t.phase(), &AnswerPhase::Idle);
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
}
