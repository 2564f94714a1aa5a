//! One WebSocket connection's state and what it does with each client message: submit (through
//! the result cache, then the scheduler, or the relay for a chat), cancel, resume, ping, and with
//! each event of its own calculator jobs. Every message is first counted against the
//! connection's, the session's and the address's rates.
//!
//! Concurrency: owned by its connection's task alone; its calculator jobs' events arrive on its
//! one sink (the one every one of them carries), and it numbers and serializes them itself.

use super::sink::ConnSink;
use super::{error, refused, Reply};
use crate::http::AppState;
use crate::ids::SessionId;
use crate::job::{EventSink, JobEvent};
use crate::limits::ConnectionRate;
use crate::messages::{cached_answer, to_messages, JobLabel};
use crate::queue::Ticket as JobTicket;
use crate::relay::{Follower, Submission};
use app::error_code::ErrorCode;
use app::protocol::{ClientMessage, Job, JobId, ServerMessage};
use std::collections::HashMap;

/// One of the connection's own (calculator) jobs.
pub(super) struct OwnJob {
    /// What its messages say besides the event.
    label: JobLabel,
    /// The seq of its next message.
    next_seq: u64,
    /// Cancels it when dropped (the connection closed).
    ticket: Option<JobTicket>,
}

/// One connection's state.
pub(super) struct Conn {
    pub(super) state: AppState,
    pub(super) session: SessionId,
    /// Who this connection's jobs are for in the fair queue (its session, or its API key).
    pub(super) party: turnstile_scheduler::Party,
    /// The client's address, for the per-address rate.
    pub(super) ip: Option<std::net::IpAddr>,
    /// This connection's message rate.
    pub(super) rate: ConnectionRate,
    /// This connection's follower identity, handed to every log it follows.
    pub(super) follower: Follower,
    /// The chat jobs it follows in the relay, each with the next sequence number to send.
    pub(super) following: HashMap<JobId, u64>,
    /// Where its calculator jobs' events go; the connection's task takes them from it.
    pub(super) sink: std::sync::Arc<ConnSink>,
    /// Events taken from the sink, kept between turns for their allocation.
    pub(super) taken: Vec<(turnstile_scheduler::JobId, JobEvent)>,
    /// Its calculator jobs, until their final message.
    pub(super) jobs: HashMap<turnstile_scheduler::JobId, OwnJob>,
}

impl Conn {
    /// Turns one event of its own jobs into numbered, serialized messages; forgets a job after
    /// its final one.
    pub(super) fn on_event(
        &mut self,
        id: turnstile_scheduler::JobId,
        event: JobEvent,
        outgoing: &mut Vec<std::sync::Arc<str>>,
    ) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return; // cancelled by this connection: nothing more to say
        };
        let terminal = event.is_terminal();
        let (first, second) = to_messages(&job.label, job.next_seq, event);
        for msg in std::iter::once(first).chain(second) {
            job.next_seq += 1;
            outgoing.push(crate::messages::encode(&msg));
        }
        if terminal {
            if let Some(ticket) = self.jobs.remove(&id).and_then(|job| job.ticket) {
                ticket.disarm();
            }
        }
    }

    /// Turns every event waiting in the sink into messages; true if one of them goes out at
    /// once (see `sink`).
    pub(super) fn take_events(&mut self, outgoing: &mut Vec<std::sync::Arc<str>>) -> bool {
        let mut taken = std::mem::take(&mut self.taken);
        let urgent = self.sink.take(&mut taken);
        for (id, event) in taken.drain(..) {
            self.on_event(id, event, outgoing);
        }
        self.taken = taken;
        urgent
    }

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
                let own = job_id
                    .0
                    .parse::<turnstile_scheduler::JobId>()
                    .ok()
                    .and_then(|id| self.jobs.get_mut(&id))
                    .and_then(|job| job.ticket.take());
                if let Some(ticket) = own {
                    // Its owner hears `cancelled` (or its result, if it had already ended).
                    ticket.cancel();
                    None
                } else if self.state.relay.cancel(&job_id, self.follower.conn) {
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
                match self.resume(&job_id, last_seq).await {
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
        let chat = match job {
            Job::Calc(c) => {
                if let Some(hit) = self.state.cached(&c) {
                    return Some(Reply::Many(cached_answer(client_ref, &hit).into()));
                }
                let work = crate::job::Work::Calc(c);
                let submitted = self
                    .state
                    .scheduler
                    .submit(
                        work,
                        self.party.clone(),
                        std::sync::Arc::clone(&self.sink) as EventSink,
                    )
                    .await;
                return match submitted {
                    Ok(ticket) => {
                        let id = ticket.id();
                        tracing::debug!(job_id = %id, %client_ref, "submitted");
                        let label = JobLabel {
                            job_id: JobLabel::wire_id(id),
                            client_ref,
                            conversation: None,
                        };
                        self.jobs.insert(
                            id,
                            OwnJob {
                                label,
                                next_seq: 0,
                                ticket: Some(ticket),
                            },
                        );
                        None
                    }
                    Err(e) => Some(Reply::One(refused(Some(client_ref), &e))),
                };
            }
            Job::Chat(chat) => chat,
        };
        let prepared = match crate::chat::prepare(
            &self.state.chat,
            &self.state.store,
            self.state.config.max_conversations_per_session,
            &self.session,
            chat,
        )
        .await
        {
            Ok(p) => p,
            Err(e) => return Some(Reply::One(refused(Some(client_ref), &e))),
        };
        let sub = Submission {
            session: self.session.clone(),
            client_ref: client_ref.clone(),
            persist: prepared.persist,
            follower: self.follower.clone(),
            party: self.party.clone(),
        };
        match self
            .state
            .relay
            .submit(&self.state.scheduler, prepared.work, sub)
            .await
        {
            Ok(id) => {
                tracing::debug!(job_id = %id, %client_ref, "submitted");
                self.following.insert(id, 0);
                None
            }
            Err(e) => Some(Reply::One(refused(Some(client_ref), &e))),
        }
    }
}
