//! The replay logs of chat jobs, between the scheduler and whoever follows a chat (a WebSocket
//! connection, a `/chat/stream` response). Only jobs that can be resumed are logged: a
//! calculator job's events go straight to its connection (see `crate::ws`).
//!
//! Each chat's log is its own event sink ([`log::ChatSink`]): the scheduler, the device thread
//! and the chat engine hand it the job's events; it numbers them, turns them into wire messages
//! (`crate::messages`), serializes them and wakes the follower, which reads from its own cursor.
//! Nothing is pushed into a connection, so a slow reader never slows a job, and a reader that
//! comes back (`resume`, same session, within the window) reads exactly what it missed, then the
//! live stream. A chat whose follower leaves goes on; if nobody resumes it within the resume
//! window it is cancelled (a window of zero cancels at once). The answer is stored in its
//! conversation before its final message is logged, so a client that sees `done` (or a server
//! restart right after) finds it in the history.
//!
//! In a deployment (a shared queue), each chat's messages are also copied, as numbered, to a
//! [`WireCopy`] (the shared queue's front; the relay knows nothing of Redis), with the number of
//! the job's events each reflects (`q`: the log counts the events after the queue's own, which
//! the front hands on once each, in order). A client resuming through another instance gets a
//! log there seeded from those copies ([`Relay::adopt`]) that goes on numbering where they end.
//!
//! Concurrency: the map of logs sits behind one small mutex, held only to find, add or drop a
//! log; each log has its own mutex, under which its messages are numbered and serialized (never
//! the map's lock, so no connection waits on another's JSON). Lock order: map, then a log. No
//! lock is held across an `.await`. Memory: at most `max_events` messages per log (older ones are
//! dropped and a resume from before them is refused), at most `max_bytes` of messages in all
//! (past it, the logs of ended jobs are dropped first, oldest first, then the growing log's own
//! oldest messages), and logs of ended jobs are kept only for the resume window.

mod adopt;
mod follow;
mod log;

pub use adopt::{Adoption, ResumeMeta};

use self::log::{ChatLog, ChatSink};
use crate::error::JobError;
use crate::ids::SessionId;
use crate::job::Work;
use crate::messages::JobLabel;
use crate::queue::JobQueue;
use crate::store::Store;
use app::chat::ConversationId;
use app::protocol::JobId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Most messages one read returns, so a reader far behind catches up in slices and stays
/// responsive in between.
pub const READ_BATCH: usize = 256;

/// Where chat messages are copied so that another instance can resume them (a deployment's
/// shared queue). Called under the log's lock, in each log's order: must not wait.
pub trait WireCopy: Send + Sync {
    /// Message `seq` of chat `id`, which reflects the job's first `q` events (start, progress,
    /// end). `copied` is to be called once the copy is made (or given up), never from this
    /// call (the log's lock is held): the log's reader reads no message before its copy, so a
    /// client never has a message that another instance taking the job over would not know.
    /// False when no copy will be made (`copied` is dropped): the message may be read at once.
    fn copy(&self, id: &JobId, seq: u64, q: u64, message: &Arc<str>, copied: Copied) -> bool;
}

/// Tells a log that its messages up to one are copied (see [`WireCopy`]).
pub struct Copied {
    /// The log.
    log: std::sync::Weak<ChatLog>,
    /// One past the message copied.
    upto: u64,
}

impl Copied {
    /// The copy is made (or given up): the reader may read the message.
    pub fn done(self) {
        if let Some(log) = self.log.upgrade() {
            let mut st = log.state.lock();
            if self.upto > st.copied_upto {
                st.copied_upto = self.upto;
                if let Some(f) = &st.follower {
                    f.notify.notify_one();
                }
            }
        }
    }
}

/// Who follows a log: a connection, woken through its `Notify`.
#[derive(Clone)]
pub struct Follower {
    /// The connection's id (unique per connection).
    pub conn: u64,
    /// Woken whenever a followed log grows.
    pub notify: Arc<Notify>,
}

/// Where a chat answer is stored when it ends.
pub struct Persist {
    /// The store.
    pub store: Store,
    /// The conversation's owner.
    pub session: SessionId,
    /// The conversation.
    pub conversation: ConversationId,
}

/// What a reader got from [`Relay::read`].
#[derive(Debug, Default)]
pub struct Read {
    /// Serialized messages, in order, from the cursor on.
    pub messages: Vec<Arc<str>>,
    /// The cursor after them.
    pub next: u64,
    /// The job ended and everything was read: stop following.
    pub finished: bool,
    /// Messages after the cursor were dropped before this reader read them (the log's caps): the
    /// reader has missed events and cannot catch up.
    pub lost: bool,
    /// More messages are waiting after these (the read was capped): read again.
    pub more: bool,
}

/// Why a `resume` was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ResumeError {
    /// Unknown, expired, or another session's job: the same answer for all three.
    #[error("no job {0} can be resumed by this session (unknown, or past the resume window)")]
    NotFound(JobId),
    /// The events after `last_seq` are no longer kept.
    #[error("the events of job {0} before seq {1} are no longer kept")]
    Gone(JobId, u64),
}

/// The logs of every chat job.
pub struct Relay {
    /// The logs by job.
    logs: Mutex<HashMap<JobId, Arc<ChatLog>>>,
    /// Bytes of serialized messages held by all logs.
    bytes: AtomicUsize,
    /// Most bytes of messages kept in all.
    max_bytes: usize,
    /// How long a job waits for its owner to come back.
    window: Duration,
    /// Most messages kept per job.
    max_events: usize,
    /// Where messages are copied (a deployment), if anywhere.
    wire: Option<Arc<dyn WireCopy>>,
}

/// What a new chat is about, for its messages.
pub struct Submission {
    /// The owner's session.
    pub session: SessionId,
    /// The client's label, echoed in `accepted`.
    pub client_ref: String,
    /// Where the answer is stored.
    pub persist: Persist,
    /// The connection that submits it (it follows the job from the start).
    pub follower: Follower,
    /// Who the job is for, in the fair queue.
    pub party: turnstile_scheduler::Party,
}

impl Relay {
    /// A relay with the given resume window, per-job cap and total cap in bytes.
    pub fn new(window: Duration, max_events: usize, max_bytes: usize) -> Arc<Relay> {
        Self::with_wire(window, max_events, max_bytes, None)
    }

    /// As [`Relay::new`], copying every chat's messages to `wire` (a deployment's web instance).
    pub fn with_wire(
        window: Duration,
        max_events: usize,
        max_bytes: usize,
        wire: Option<Arc<dyn WireCopy>>,
    ) -> Arc<Relay> {
        Arc::new(Relay {
            logs: Mutex::new(HashMap::new()),
            bytes: AtomicUsize::new(0),
            max_bytes: max_bytes.max(1 << 16),
            window,
            max_events: max_events.max(16),
            wire,
        })
    }

    /// Queues a chat with the scheduler; its log is its event sink.
    pub async fn submit(
        self: &Arc<Self>,
        scheduler: &JobQueue,
        work: Work,
        sub: Submission,
    ) -> Result<JobId, JobError> {
        let meta = ResumeMeta {
            client_ref: sub.client_ref.clone(),
            conversation: Some(sub.persist.conversation.clone()),
        };
        let resume = Some((sub.session.as_str().to_owned(), meta.encode()));
        let log = ChatLog::new(
            Arc::downgrade(self),
            sub.session,
            sub.follower,
            Some(sub.persist),
            sub.client_ref,
        );
        let sink = ChatSink::sink(Arc::clone(&log));
        let ticket = scheduler
            .submit_resumable(work, sub.party, sink, resume)
            .await?;
        let id = JobLabel::wire_id(ticket.id());
        log.set_ticket(ticket);
        self.logs.lock().insert(id.clone(), log);
        Ok(id)
    }

    /// The log of `id`, if it is kept.
    fn get(&self, id: &JobId) -> Option<Arc<ChatLog>> {
        self.logs.lock().get(id).cloned()
    }

    /// Jobs with a log now (for stats and tests).
    pub fn len(&self) -> usize {
        self.logs.lock().len()
    }

    /// Whether no job has a log.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests;
