//! Job event logs, between the scheduler and the WebSocket connections. Every job submitted over
//! `/ws` gets a log: a pump task turns the job's events into numbered wire messages, appends them
//! and wakes the connection that follows the job, which reads from its own cursor. Nothing is
//! pushed into a connection, so a slow reader never slows a job, and a reader that comes back
//! (`resume`, same session, within the window) reads exactly what it missed, then the live stream.
//!
//! Calculator jobs are not resumable: when their connection closes they are cancelled at once and
//! their log is dropped. A chat job whose connection closes goes on; if nobody resumes it within
//! the resume window it is cancelled (a window of zero cancels at once). A chat answer is stored
//! in the conversation before its final event is appended, so a client that sees `done` (or a
//! server restart right after) finds it in the history.
//!
//! Concurrency: the logs sit behind one small mutex, never held across an `.await`; each log is
//! appended to only by its job's pump task. Memory: at most `max_events` messages per log (older
//! ones are dropped and a resume from before them is refused), at most `max_bytes` of messages in
//! all (past it, the logs of ended jobs are dropped first, oldest first, then the growing log's own
//! oldest messages), and logs of ended jobs are kept only for the resume window.

mod follow;
mod log;
mod pump;

pub use pump::to_message;

use self::log::{Log, Logs};
use self::pump::Pump;
use crate::error::JobError;
use crate::scheduler::{EventSink, Scheduler};
use crate::session::SessionId;
use crate::store::Store;
use app::chat::ConversationId;
use app::protocol::JobId;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// Most messages one read returns, so a reader far behind catches up in slices and stays
/// responsive in between.
pub const READ_BATCH: usize = 256;

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

/// The logs of every job submitted over the WebSocket.
pub struct Relay {
    /// The logs by job, and the bytes they hold in all.
    logs: Mutex<Logs>,
    /// Most bytes of messages kept in all.
    max_bytes: usize,
    /// How long a job waits for its owner to come back.
    window: Duration,
    /// Most messages kept per job.
    max_events: usize,
}

/// What a new job is about, for its messages.
pub struct Submission {
    /// The owner's session.
    pub session: SessionId,
    /// The client's label, echoed in `accepted`.
    pub client_ref: String,
    /// For chat: where the answer is stored.
    pub persist: Option<Persist>,
    /// Whether the job survives its connection.
    pub resumable: bool,
    /// The connection that submits it (it follows the job from the start).
    pub follower: Follower,
    /// Who the job is for, in the fair queue.
    pub party: crate::scheduler::Party,
}

impl Relay {
    /// A relay with the given resume window, per-job cap and total cap in bytes.
    pub fn new(window: Duration, max_events: usize, max_bytes: usize) -> Arc<Relay> {
        Arc::new(Relay {
            logs: Mutex::new(Logs::default()),
            max_bytes: max_bytes.max(1 << 16),
            window,
            max_events: max_events.max(16),
        })
    }

    /// Queues `work` with the scheduler and starts its log and pump.
    pub fn submit(
        self: &Arc<Self>,
        scheduler: &Scheduler,
        work: crate::job::Work,
        sub: Submission,
    ) -> Result<JobId, JobError> {
        let (tx, rx): (EventSink, _) = mpsc::unbounded_channel();
        let ticket = scheduler.submit(work, sub.party, tx)?;
        let id = ticket.id().clone();
        self.logs.lock().insert(
            id.clone(),
            Log {
                session: sub.session,
                resumable: sub.resumable,
                events: VecDeque::new(),
                first_seq: 0,
                ended: None,
                follower: Some(sub.follower),
                detached_since: None,
                ticket: Some(ticket),
                read_upto: 0,
                last_is_position: false,
            },
        );
        let conversation = sub.persist.as_ref().map(|p| p.conversation.clone());
        let pump = Pump {
            relay: Arc::clone(self),
            id: id.clone(),
            client_ref: sub.client_ref,
            conversation,
            persist: sub.persist,
            answer: String::new(),
        };
        tokio::spawn(pump.run(rx));
        Ok(id)
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
