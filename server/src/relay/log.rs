//! One job's log and the caps on all of them: a log is appended to only by its job's pump
//! task, under the relay's mutex, which is never held across an `.await`.

use super::{Follower, Relay};
use crate::scheduler::JobTicket;
use crate::session::SessionId;
use app::protocol::{JobId, ServerMessage};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

pub(super) struct Log {
    /// The session that owns the job.
    pub(super) session: SessionId,
    /// Whether the job survives its connection (chat) or not (calculator).
    pub(super) resumable: bool,
    /// Serialized messages, `first_seq` first.
    pub(super) events: VecDeque<Arc<str>>,
    /// Sequence number of `events[0]`.
    pub(super) first_seq: u64,
    /// The job ended (its terminal message is the last event).
    pub(super) ended: Option<Instant>,
    /// The connection following the job, if any.
    pub(super) follower: Option<Follower>,
    /// Since when nobody follows it.
    pub(super) detached_since: Option<Instant>,
    /// Cancels the job when dropped; `None` once the job ended or was cancelled.
    pub(super) ticket: Option<JobTicket>,
    /// The next sequence number the follower has not read yet.
    pub(super) read_upto: u64,
    /// Whether the newest message is a `position` (an unread one is replaced, not followed).
    pub(super) last_is_position: bool,
}

impl Log {
    pub(super) fn next_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64
    }
}

/// The logs and their total size.
#[derive(Default)]
pub(super) struct Logs {
    /// By job.
    pub(super) map: HashMap<JobId, Log>,
    /// Bytes of serialized messages held by all logs.
    pub(super) bytes: usize,
}

impl Logs {
    pub(super) fn get_mut(&mut self, id: &JobId) -> Option<&mut Log> {
        self.map.get_mut(id)
    }

    pub(super) fn insert(&mut self, id: JobId, log: Log) {
        self.map.insert(id, log);
    }

    pub(super) fn remove(&mut self, id: &JobId) {
        if let Some(log) = self.map.remove(id) {
            self.bytes -= log.events.iter().map(|e| e.len()).sum::<usize>();
        }
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    /// Drops ended logs, oldest first, while over `max`.
    pub(super) fn evict_ended(&mut self, max: usize, keep: &JobId) {
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

impl Relay {
    /// Appends a message (its `seq` given by `make`) and wakes the follower. A `position`
    /// (`is_position`) that follows an unread `position` replaces it, keeping its seq: a reader
    /// that is behind gets the current position once, not every step of the way.
    pub(super) fn append(
        &self,
        id: &JobId,
        is_position: bool,
        make: impl FnOnce(u64) -> ServerMessage,
    ) {
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
    pub(super) fn pump_stopped(&self, id: &JobId) {
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
}
