//! The reading side of the logs: a follower reads from its own cursor, resumes, cancels or
//! detaches, and the sweep expires what the window no longer keeps. Each call takes the map's
//! lock only to find a log, then that log's lock, and never holds either across an `.await`.

use super::{Follower, Read, Relay, ResumeError, READ_BATCH};
use crate::ids::SessionId;
use app::protocol::JobId;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

impl Relay {
    /// Messages of a followed job from `cursor` on, at most [`READ_BATCH`] of them (`more` says
    /// when others wait). A connection that no longer follows the job (another one resumed it)
    /// gets `finished` with nothing.
    pub fn read(&self, id: &JobId, conn: u64, cursor: u64) -> Read {
        let nothing = Read {
            finished: true,
            next: cursor,
            ..Read::default()
        };
        let Some(log) = self.get(id) else {
            return nothing;
        };
        let mut st = log.state.lock();
        if st.follower.as_ref().map(|f| f.conn) != Some(conn) {
            return nothing;
        }
        let lost = cursor < st.first_seq;
        let from = cursor.max(st.first_seq);
        let skip = (from - st.first_seq) as usize;
        // Only what may be read (in a deployment, what is copied).
        let readable = st.readable();
        let take = readable.saturating_sub(from).min(READ_BATCH as u64) as usize;
        let messages: Vec<Arc<str>> = st.events.iter().skip(skip).take(take).cloned().collect();
        let next = from + messages.len() as u64;
        st.read_upto = st.read_upto.max(next);
        Read {
            messages,
            next,
            // Everything up to the end was returned.
            finished: st.ended.is_some() && next >= st.next_seq(),
            lost,
            more: next < readable,
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
        let log = self
            .get(id)
            .ok_or_else(|| ResumeError::NotFound(id.clone()))?;
        let mut st = log.state.lock();
        if &st.session != session {
            return Err(ResumeError::NotFound(id.clone()));
        }
        let cursor = last_seq.map_or(0, |s| s + 1);
        if cursor < st.first_seq {
            return Err(ResumeError::Gone(id.clone(), st.first_seq));
        }
        // The new reader has read up to its cursor (a position after it may be replaced).
        st.read_upto = cursor;
        follower.notify.notify_one();
        st.follower = Some(follower);
        st.detached_since = None;
        Ok(cursor)
    }

    /// Cancels a job its follower asked to cancel. False when `conn` does not follow it or it
    /// has ended.
    pub fn cancel(&self, id: &JobId, conn: u64) -> bool {
        let Some(log) = self.get(id) else {
            return false;
        };
        let mut st = log.state.lock();
        if st.follower.as_ref().map(|f| f.conn) != Some(conn) {
            return false;
        }
        match st.ticket.take() {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    /// A follower left: its chats wait for a resume for the window (or are cancelled now when
    /// the window is zero).
    pub fn detach(&self, ids: impl IntoIterator<Item = JobId>, conn: u64) {
        for id in ids {
            let Some(log) = self.get(&id) else {
                continue;
            };
            let mut st = log.state.lock();
            if st.follower.as_ref().map(|f| f.conn) != Some(conn) {
                continue;
            }
            st.follower = None;
            st.detached_since = Some(Instant::now());
            if self.window.is_zero() {
                if let Some(t) = st.ticket.take() {
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
        logs.retain(|id, log| {
            let mut st = log.state.lock();
            if let Some(ended) = st.ended {
                let keep = now.saturating_duration_since(ended) < window;
                if !keep {
                    self.bytes.fetch_sub(st.empty(), Ordering::Relaxed);
                }
                return keep;
            }
            if let Some(since) = st.detached_since {
                if now.saturating_duration_since(since) >= window {
                    if let Some(t) = st.ticket.take() {
                        tracing::info!(job_id = %id, "owner did not come back; cancelling");
                        t.cancel();
                    }
                }
            }
            true
        });
    }
}
