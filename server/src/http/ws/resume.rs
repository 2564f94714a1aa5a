//! `resume` on a WebSocket: in one process, the relay's log of the chat; in a deployment, the
//! chat may have been sent through another instance (killed since, or just not the one the
//! client reconnected to). Then this instance takes it over through the shared queue (same
//! session only: another session's job is as unknown as a job that never was), seeds a log with
//! the messages the old instance copied, and follows the job's later events, numbered on.
//!
//! Concurrency: runs in the connection's task; the take-over is one atomic call to Redis, after
//! which the follower task alone feeds the new log.

use super::conn::Conn;
use crate::relay::{Adoption, ResumeError, ResumeMeta};
use app::protocol::JobId;
use turnstile_cluster::Takeover;

impl Conn {
    /// Follows chat `job_id` from after `last_seq`; returns the reader's cursor.
    pub(super) async fn resume(
        &mut self,
        job_id: &JobId,
        last_seq: Option<u64>,
    ) -> Result<u64, ResumeError> {
        let relay = &self.state.relay;
        let local = |c: &Conn| relay.resume(job_id, &c.session, c.follower.clone(), last_seq);
        let Some(front) = self.state.scheduler.shared() else {
            return local(self);
        };
        let not_found = || ResumeError::NotFound(job_id.clone());
        let id: turnstile_scheduler::JobId = job_id.0.parse().map_err(|_| not_found())?;
        let cursor = last_seq.map_or(0, |s| s + 1);
        let moved = match front
            .take_over(&job_id.0, self.session.as_str(), cursor)
            .await
        {
            Ok(Takeover::Unknown) => return Err(not_found()),
            Ok(Takeover::Gone { first }) => return Err(ResumeError::Gone(job_id.clone(), first)),
            Ok(Takeover::Mine) => return local(self),
            Err(e) => {
                // Redis is out of reach: what this instance holds is all there is.
                tracing::warn!(error = %e, %job_id, "taking a chat over failed");
                return local(self);
            }
            Ok(Takeover::Moved(m)) => m,
        };
        tracing::info!(%job_id, cursor, state = moved.state, "taking a chat over from another instance");
        let answer = match front.answer_upto(&job_id.0, moved.last_q).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, %job_id, "reading a chat's answer so far failed");
                String::new()
            }
        };
        let (cursor, sink) = relay.adopt(Adoption {
            job_id: job_id.clone(),
            session: self.session.clone(),
            meta: ResumeMeta::decode(&moved.meta),
            messages: moved
                .messages
                .into_iter()
                .map(|(seq, _, m)| (seq, m))
                .collect(),
            next_seq: moved.next_seq,
            q: moved.last_q,
            answer,
            store: self.state.store.clone(),
            ticket: crate::queue::Ticket::Shared(front.ticket_for(id)),
            follower: self.follower.clone(),
            cursor,
        })?;
        front.follow_taken(
            id,
            sink,
            moved.last_q,
            moved.moves,
            moved.state == "waiting",
        );
        Ok(cursor)
    }
}
