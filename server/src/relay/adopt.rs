//! A chat taken over from another instance (its client resumed here, in a deployment): a new log
//! seeded with the messages that instance copied, which goes on numbering where they end, its
//! answer so far to store when it ends, and a sink for the job's later events.
//!
//! Concurrency: the new log is built whole, then put in the map under its lock (replacing a log
//! this instance held for the job before it moved away, whose ticket is disarmed first: the job
//! is not cancelled for it).

use super::log::{ChatLog, ChatSink};
use super::{Follower, Persist, Relay, ResumeError};
use crate::ids::SessionId;
use crate::job::EventSink;
use crate::messages::JobLabel;
use crate::queue::Ticket;
use crate::store::Store;
use app::chat::ConversationId;
use app::protocol::{JobId, ServerMessage};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// What an instance taking a chat over needs to know of it, kept with the job in the queue.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ResumeMeta {
    /// The submission's label, echoed in `accepted`.
    pub client_ref: String,
    /// The conversation its answer belongs to.
    pub conversation: Option<ConversationId>,
}

impl ResumeMeta {
    /// As stored.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("resume metadata serializes")
    }

    /// From storage (empty or unreadable: no label, no conversation).
    pub fn decode(bytes: &[u8]) -> ResumeMeta {
        serde_json::from_slice(bytes).unwrap_or_default()
    }
}

/// A chat to take over.
pub struct Adoption {
    /// The job.
    pub job_id: JobId,
    /// Its owner's session (checked by the queue).
    pub session: SessionId,
    /// What it is about.
    pub meta: ResumeMeta,
    /// Its copied messages `(seq, message)` from the resumer's cursor on, in copy order (a
    /// repeated seq: the later one counts).
    pub messages: Vec<(u64, String)>,
    /// One past the highest seq copied.
    pub next_seq: u64,
    /// The number of the job's last event the copies reflect.
    pub q: u64,
    /// Its answer up to that event.
    pub answer: String,
    /// Where its answer is stored when it ends.
    pub store: Store,
    /// Cancels it when dropped (while this instance owns it).
    pub ticket: Ticket,
    /// The connection resuming it.
    pub follower: Follower,
    /// The seq after the last one the client has.
    pub cursor: u64,
}

impl Relay {
    /// Takes a chat over: returns the reader's cursor and the sink for the job's events after
    /// the copies' last one. Refused (`Gone`) when the copies from the cursor on are more than
    /// a log keeps or have a hole; the ticket is then dropped, which cancels the job (nobody
    /// can follow it).
    pub fn adopt(self: &Arc<Self>, a: Adoption) -> Result<(u64, EventSink), ResumeError> {
        let mut by_seq = std::collections::BTreeMap::new();
        for (seq, message) in a.messages {
            by_seq.insert(seq, message);
        }
        // No more than a log keeps (the oldest would be dropped before the reader had them).
        if by_seq.len() > self.max_events {
            let first = by_seq.keys().rev().nth(self.max_events - 1).copied();
            return Err(ResumeError::Gone(a.job_id, first.unwrap_or(a.next_seq)));
        }
        // Copies are numbered without gaps from the cursor on (the queue refused a trimmed
        // stream); a hole means a copy was lost, so nothing after it can be trusted.
        let mut events: Vec<Arc<str>> = vec![];
        // With no copy from the cursor on (none made yet, or they expired while the job waited
        // longer than the window), the numbering goes on from the cursor: the client sees no
        // gap. (A client only ever reads copied messages, so `next_seq` is not behind it.)
        let first_seq = by_seq
            .keys()
            .next()
            .copied()
            .unwrap_or(a.next_seq.max(a.cursor));
        for (i, (seq, message)) in by_seq.into_iter().enumerate() {
            if seq != first_seq + i as u64 {
                return Err(ResumeError::Gone(a.job_id, first_seq + i as u64));
            }
            events.push(message.into());
        }
        let ended = events.last().is_some_and(|m| {
            serde_json::from_str::<ServerMessage>(m).is_ok_and(|m| m.is_terminal())
        });
        let persist = a.meta.conversation.clone().map(|conversation| Persist {
            store: a.store,
            session: a.session.clone(),
            conversation,
        });
        let notify = Arc::clone(&a.follower.notify);
        let log = ChatLog::new(
            Arc::downgrade(self),
            a.session,
            a.follower,
            if ended { None } else { persist },
            String::new(),
        );
        let added: usize = events.iter().map(|m| m.len()).sum();
        {
            let mut st = log.state.lock();
            st.label = Some(JobLabel {
                job_id: a.job_id.clone(),
                client_ref: a.meta.client_ref,
                conversation: a.meta.conversation,
            });
            st.first_seq = first_seq;
            st.events = events.into();
            st.bytes = added;
            st.read_upto = a.cursor;
            // The seed is what was copied.
            st.copied_upto = st.next_seq();
            st.q = a.q;
            st.answer = a.answer;
            if ended {
                st.ended = Some(Instant::now());
                a.ticket.disarm();
            } else {
                st.ticket = Some(a.ticket);
            }
        }
        self.bytes.fetch_add(added, Ordering::Relaxed);
        let old = self.logs.lock().insert(a.job_id, Arc::clone(&log));
        if let Some(old) = old {
            let ticket = old.state.lock().ticket.take();
            if let Some(t) = ticket {
                t.disarm();
            }
            self.bytes.fetch_sub(old.clear(), Ordering::Relaxed);
        }
        notify.notify_one();
        Ok((a.cursor, ChatSink::sink(log)))
    }
}
