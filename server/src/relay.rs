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

use crate::error::JobError;
use crate::scheduler::{EventSink, JobEvent, JobTicket, Scheduler};
use crate::session::SessionId;
use crate::store::Store;
use app::chat::{ConversationId, MessageStatus, Role};
use app::protocol::{JobId, ServerMessage};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
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

struct Log {
    /// The session that owns the job.
    session: SessionId,
    /// Whether the job survives its connection (chat) or not (calculator).
    resumable: bool,
    /// Serialized messages, `first_seq` first.
    events: VecDeque<Arc<str>>,
    /// Sequence number of `events[0]`.
    first_seq: u64,
    /// The job ended (its terminal message is the last event).
    ended: Option<Instant>,
    /// The connection following the job, if any.
    follower: Option<Follower>,
    /// Since when nobody follows it.
    detached_since: Option<Instant>,
    /// Cancels the job when dropped; `None` once the job ended or was cancelled.
    ticket: Option<JobTicket>,
    /// The next sequence number the follower has not read yet.
    read_upto: u64,
    /// Whether the newest message is a `position` (an unread one is replaced, not followed).
    last_is_position: bool,
}

impl Log {
    fn next_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64
    }
}

/// The logs and their total size.
#[derive(Default)]
struct Logs {
    /// By job.
    map: HashMap<JobId, Log>,
    /// Bytes of serialized messages held by all logs.
    bytes: usize,
}

impl Logs {
    fn get_mut(&mut self, id: &JobId) -> Option<&mut Log> {
        self.map.get_mut(id)
    }

    fn insert(&mut self, id: JobId, log: Log) {
        self.map.insert(id, log);
    }

    fn remove(&mut self, id: &JobId) {
        if let Some(log) = self.map.remove(id) {
            self.bytes -= log.events.iter().map(|e| e.len()).sum::<usize>();
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    /// Drops ended logs, oldest first, while over `max`.
    fn evict_ended(&mut self, max: usize, keep: &JobId) {
        while self.bytes > max {
            let oldest = self
                .map
                .iter()
                .filter(|(id, l)| *id != keep && l.ended.is_some())
                .min_by_key(|(_, l)| l.ended)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => self.remove(&id),
                None => return,
            }
        }
    }
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

    /// Appends a message (its `seq` given by `make`) and wakes the follower. A `position`
    /// (`is_position`) that follows an unread `position` replaces it, keeping its seq: a reader
    /// that is behind gets the current position once, not every step of the way.
    fn append(&self, id: &JobId, is_position: bool, make: impl FnOnce(u64) -> ServerMessage) {
        let mut logs = self.logs.lock();
        let Some(log) = logs.get_mut(id) else { return };
        let next = log.next_seq();
        let replace = is_position
            && log.last_is_position
            && !log.events.is_empty()
            && next > log.read_upto.max(log.first_seq);
        let msg = make(if replace { next - 1 } else { next });
        let terminal = msg.is_terminal();
        let text: Arc<str> = serde_json::to_string(&msg)
            .expect("server messages serialize")
            .into();
        let mut added = text.len() as isize;
        if replace {
            if let Some(old) = log.events.pop_back() {
                added -= old.len() as isize;
            }
        }
        log.last_is_position = is_position;
        log.events.push_back(text);
        while log.events.len() > self.max_events {
            if let Some(old) = log.events.pop_front() {
                added -= old.len() as isize;
                log.first_seq += 1;
            }
        }
        logs.bytes = (logs.bytes as isize + added) as usize;
        if logs.bytes > self.max_bytes {
            logs.evict_ended(self.max_bytes, id);
            let over = logs.bytes.saturating_sub(self.max_bytes);
            let Some(log) = logs.get_mut(id) else { return };
            let mut freed = 0;
            // Still over: this log gives up its own oldest messages (never its newest).
            while freed < over && log.events.len() > 1 {
                if let Some(old) = log.events.pop_front() {
                    freed += old.len();
                    log.first_seq += 1;
                }
            }
            logs.bytes -= freed;
        }
        let Some(log) = logs.get_mut(id) else { return };
        if terminal {
            log.ended = Some(Instant::now());
            if let Some(t) = log.ticket.take() {
                t.disarm();
            }
        }
        if let Some(f) = &log.follower {
            f.notify.notify_one();
        }
    }

    /// The job's pump stopped (its job ended, or was dropped unannounced).
    fn pump_stopped(&self, id: &JobId) {
        let mut logs = self.logs.lock();
        if let Some(log) = logs.get_mut(id) {
            log.ended.get_or_insert_with(Instant::now);
            if !log.resumable && log.follower.is_none() {
                logs.remove(id);
            } else if let Some(f) = &log.follower {
                f.notify.notify_one();
            }
        }
    }

    /// Messages of a followed job from `cursor` on, at most [`READ_BATCH`] of them (`more` says
    /// when others wait). A connection that no longer follows the job (another one resumed it)
    /// gets `finished` with nothing.
    pub fn read(&self, id: &JobId, conn: u64, cursor: u64) -> Read {
        let mut logs = self.logs.lock();
        let Some(log) = logs.get_mut(id) else {
            return Read {
                finished: true,
                next: cursor,
                ..Read::default()
            };
        };
        if log.follower.as_ref().map(|f| f.conn) != Some(conn) {
            return Read {
                finished: true,
                next: cursor,
                ..Read::default()
            };
        }
        let lost = cursor < log.first_seq;
        let from = cursor.max(log.first_seq);
        let skip = (from - log.first_seq) as usize;
        let messages: Vec<Arc<str>> = log
            .events
            .iter()
            .skip(skip)
            .take(READ_BATCH)
            .cloned()
            .collect();
        let next = from + messages.len() as u64;
        log.read_upto = log.read_upto.max(next);
        let more = next < log.next_seq();
        // Everything up to the end was returned: after an ended job's last read nothing is left.
        let finished = log.ended.is_some() && !more;
        if finished && !log.resumable {
            logs.remove(id);
        }
        Read {
            messages,
            next,
            finished,
            lost,
            more,
        }
    }

    /// Follows a job again from after `last_seq` (`resume`). Only the job's own session may.
    pub fn resume(
        &self,
        id: &JobId,
        session: &SessionId,
        follower: Follower,
        last_seq: Option<u64>,
    ) -> Result<u64, ResumeError> {
        let mut logs = self.logs.lock();
        let log = logs
            .get_mut(id)
            .filter(|l| l.resumable && &l.session == session)
            .ok_or_else(|| ResumeError::NotFound(id.clone()))?;
        let cursor = last_seq.map_or(0, |s| s + 1);
        if cursor < log.first_seq {
            return Err(ResumeError::Gone(id.clone(), log.first_seq));
        }
        // The new reader has read up to its cursor (a position after it may be replaced).
        log.read_upto = cursor;
        follower.notify.notify_one();
        log.follower = Some(follower);
        log.detached_since = None;
        Ok(cursor)
    }

    /// Cancels a job its follower asked to cancel. False when `conn` does not follow it or it
    /// has ended.
    pub fn cancel(&self, id: &JobId, conn: u64) -> bool {
        let mut logs = self.logs.lock();
        match logs.get_mut(id) {
            Some(log) if log.follower.as_ref().map(|f| f.conn) == Some(conn) => {
                match log.ticket.take() {
                    Some(t) => {
                        t.cancel();
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        }
    }

    /// A connection closed: its calculator jobs are cancelled now; its chat jobs wait for a
    /// resume for the window (or are cancelled now when the window is zero).
    pub fn detach(&self, ids: impl IntoIterator<Item = JobId>, conn: u64) {
        let mut logs = self.logs.lock();
        for id in ids {
            let Some(log) = logs.get_mut(&id) else {
                continue;
            };
            if log.follower.as_ref().map(|f| f.conn) != Some(conn) {
                continue;
            }
            log.follower = None;
            log.detached_since = Some(Instant::now());
            if !log.resumable {
                // Dropping the ticket cancels the job without a message: nobody listens.
                drop(log.ticket.take());
                if log.ended.is_some() {
                    logs.remove(&id);
                }
            } else if self.window.is_zero() {
                if let Some(t) = log.ticket.take() {
                    t.cancel();
                }
            }
        }
    }

    /// Cancels jobs whose owner stayed away past the window and forgets ended jobs past it.
    /// Called about once a second.
    pub fn sweep(&self, now: Instant) {
        let window = self.window;
        let mut logs = self.logs.lock();
        let mut gone = Vec::new();
        for (id, log) in logs.map.iter_mut() {
            if let Some(ended) = log.ended {
                // A calculator job's log goes once its follower has read it (or there is none).
                let expired = if log.resumable {
                    now.saturating_duration_since(ended) >= window
                } else {
                    log.follower.is_none()
                };
                if expired {
                    gone.push(id.clone());
                }
                continue;
            }
            if let Some(since) = log.detached_since {
                if now.saturating_duration_since(since) >= window {
                    if let Some(t) = log.ticket.take() {
                        tracing::info!(job_id = %id, "owner did not come back; cancelling");
                        t.cancel();
                    }
                }
            }
        }
        for id in gone {
            logs.remove(&id);
        }
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

/// Turns one job's events into messages, in order, and stores a chat answer when it ends.
struct Pump {
    relay: Arc<Relay>,
    id: JobId,
    client_ref: String,
    conversation: Option<ConversationId>,
    persist: Option<Persist>,
    /// The answer so far (chat).
    answer: String,
}

impl Pump {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<(JobId, JobEvent)>) {
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

#[cfg(test)]
#[path = "relay_tests.rs"]
mod tests;
