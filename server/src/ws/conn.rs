//! One WebSocket connection's state and what it does with each client message: submit (through
//! the result cache, then the relay and the scheduler), cancel, resume, ping. Every message is
//! first counted against the connection's, the session's and the address's rates.
//!
//! Concurrency: owned by its connection's task alone.

use super::{cached_answer, error, refused, Reply};
use crate::limits::ConnectionRate;
use crate::relay::{Follower, Submission};
use crate::session::SessionId;
use crate::AppState;
use app::error_code::ErrorCode;
use app::protocol::{ClientMessage, Job, JobId, ServerMessage};
use std::collections::HashMap;

/// One connection's state.
pub(super) struct Conn {
    pub(super) state: AppState,
    pub(super) session: SessionId,
    /// Who this connection's jobs are for in the fair queue (its session, or its API key).
    pub(super) party: crate::scheduler::Party,
    /// The client's address, for the per-address rate.
    pub(super) ip: Option<std::net::IpAddr>,
    /// This connection's message rate.
    pub(super) rate: ConnectionRate,
    /// This connection's follower identity, handed to every log it follows.
    pub(super) follower: Follower,
    /// The jobs it follows, each with the next sequence number to send.
    pub(super) following: HashMap<JobId, u64>,
}

impl Conn {
    /// Collects a slice of every followed job's new messages (asking to be woken again when more
    /// wait); forgets jobs that ended. False if the client has missed messages for good.
    pub(super) fn drain(&mut self, outgoing: &mut Vec<std::sync::Arc<str>>) -> bool {
        let relay = &self.state.relay;
        let conn = self.follower.conn;
        let (mut more, mut lost) = (false, false);
        self.following.retain(|id, cursor| {
            let read = relay.read(id, conn, *cursor);
            outgoing.extend(read.messages);
            *cursor = read.next;
            more |= read.more;
            lost |= read.lost;
            !read.finished
        });
        if more {
            self.follower.notify.notify_one();
        }
        !lost
    }

    /// Decodes one text frame and acts on it; returns the immediate replies, if any.
    pub(super) async fn handle_text(&mut self, text: &str) -> Vec<ServerMessage> {
        self.handle_one(text)
            .await
            .map_or_else(Vec::new, |r| match r {
                Reply::One(m) => vec![m],
                Reply::Many(ms) => ms,
            })
    }

    async fn handle_one(&mut self, text: &str) -> Option<Reply> {
        let rate = self.rate.check().and_then(|()| {
            self.state
                .limits
                .check_request(self.ip, self.session.as_str())
        });
        if let Err(wait) = rate {
            self.state.metrics.on_rejected("rate_limited");
            let client_ref = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("client_ref")?.as_str().map(str::to_owned));
            return Some(Reply::One(refused(
                client_ref,
                &crate::limits::rate_limited(wait),
            )));
        }
        let limit = self.state.config.max_message_bytes;
        if text.len() > limit {
            return Some(Reply::One(error(
                None,
                ErrorCode::BadMessage,
                format!(
                    "message of {} bytes is over the limit of {limit} bytes",
                    text.len()
                ),
            )));
        }
        let msg = match ClientMessage::decode(text) {
            Ok(m) => m,
            Err(e) => return Some(Reply::One(error(e.client_ref, e.code, e.message))),
        };
        match msg {
            ClientMessage::Ping { nonce } => Some(Reply::One(ServerMessage::Pong { nonce })),
            ClientMessage::Submit { client_ref, job } => self.submit(client_ref, job).await,
            ClientMessage::Cancel { job_id } => {
                if self.state.relay.cancel(&job_id, self.follower.conn) {
                    None
                } else {
                    Some(Reply::One(error(
                        None,
                        ErrorCode::NotFound,
                        format!("no job {job_id} is waiting or running on this connection"),
                    )))
                }
            }
            ClientMessage::Resume { job_id, last_seq } => {
                match self.state.relay.resume(
                    &job_id,
                    &self.session,
                    self.follower.clone(),
                    last_seq,
                ) {
                    Ok(cursor) => {
                        tracing::debug!(%job_id, cursor, "resumed");
                        self.following.insert(job_id, cursor);
                        None
                    }
                    Err(e) => Some(Reply::One(ServerMessage::Error {
                        job_id: Some(job_id),
                        client_ref: None,
                        seq: None,
                        code: ErrorCode::NotFound,
                        message: e.to_string(),
                        retry_after_ms: None,
                    })),
                }
            }
        }
    }

    async fn submit(&mut self, client_ref: String, job: Job) -> Option<Reply> {
        let (work, persist, resumable) = match job {
            Job::Calc(c) => {
                if let Some(hit) = self.state.cached(&c) {
                    return Some(Reply::Many(cached_answer(client_ref, &hit)));
                }
                (crate::job::Work::Calc(c), None, false)
            }
            Job::Chat(chat) => match crate::chat::prepare(&self.state, &self.session, chat).await {
                Ok(p) => (p.work, Some(p.persist), true),
                Err(e) => return Some(Reply::One(refused(Some(client_ref), &e))),
            },
        };
        let sub = Submission {
            session: self.session.clone(),
            client_ref: client_ref.clone(),
            persist,
            resumable,
            follower: self.follower.clone(),
            party: self.party.clone(),
        };
        match self.state.relay.submit(&self.state.scheduler, work, sub) {
            Ok(id) => {
                tracing::debug!(job_id = %id, %client_ref, "submitted");
                self.following.insert(id, 0);
                None
            }
            Err(e) => Some(Reply::One(refused(Some(client_ref), &e))),
        }
    }
}
