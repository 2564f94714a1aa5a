//! The reading side of the logs: a follower reads from its own cursor, resumes, cancels or
//! detaches, and the sweep expires what the window no longer keeps. Each call takes the relay's
//! mutex once and never holds it across an `.await`.

use super::{Follower, Read, Relay, ResumeError, READ_BATCH};
use crate::session::SessionId;
use app::protocol::JobId;
use std::sync::Arc;
use std::time::Instant;

impl Relay {
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
}
