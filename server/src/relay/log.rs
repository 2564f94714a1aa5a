//! One chat's log, and the sink that fills it. The sink is called by the scheduler task, a
//! device thread or the chat engine, never waits on a reader, and numbers, maps and serializes
//! each event under the log's own lock (never the relay's map lock). The final event waits for
//! the answer to be stored first: that store is the one await on the path, in a task of its own
//! at the end of the chat.

use super::{Follower, Persist, Relay};
use crate::ids::SessionId;
use crate::job::{JobEvent, JobExecutor, Progress};
use crate::messages::{to_messages, JobLabel};
use crate::queue::Ticket as JobTicket;
use app::chat::{MessageStatus, Role};
use app::protocol::ServerMessage;
use parking_lot::{Mutex, MutexGuard};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Instant;
use turnstile_scheduler::{EventSink, JobId, Sink};

/// A chat's log.
pub(super) struct ChatLog {
    /// The relay, for the caps on all logs together.
    relay: Weak<Relay>,
    /// Where the answer is stored before the final event (a terminal event may be sent from a
    /// thread outside the runtime).
    runtime: tokio::runtime::Handle,
    pub(super) state: Mutex<LogState>,
    /// Itself, for the acknowledgements of its copies.
    me: Weak<ChatLog>,
}

pub(super) struct LogState {
    /// The session that owns the job.
    pub(super) session: SessionId,
    /// What its messages say besides the event (set by the first event, which brings the id).
    pub(super) label: Option<JobLabel>,
    /// The submission's label, until the first event.
    client_ref: String,
    /// Serialized messages, `first_seq` first.
    pub(super) events: VecDeque<Arc<str>>,
    /// Sequence number of `events[0]`.
    pub(super) first_seq: u64,
    /// Bytes of `events`.
    pub(super) bytes: usize,
    /// The job ended (its terminal message is the last event).
    pub(super) ended: Option<Instant>,
    /// The final event arrived and waits for the answer to be stored.
    finishing: bool,
    /// The connection following the job, if any.
    pub(super) follower: Option<Follower>,
    /// Since when nobody follows it.
    pub(super) detached_since: Option<Instant>,
    /// Cancels the job when dropped; `None` once the job ended or was cancelled.
    pub(super) ticket: Option<JobTicket>,
    /// The next sequence number the follower has not read yet.
    pub(super) read_upto: u64,
    /// Whether the newest message is a `position` (an unread one is replaced, not followed).
    last_is_position: bool,
    /// The answer so far.
    pub(super) answer: String,
    /// Where the answer is stored; taken when it is.
    pub(super) persist: Option<Persist>,
    /// How many of the job's events after the queue's own (start, progress, end) it took in:
    /// the number (`q`) of the last one, in a deployment.
    pub(super) q: u64,
    /// Whether its messages are copied (a deployment): then only those copied are read.
    pub(super) copied: bool,
    /// One past the last message copied.
    pub(super) copied_upto: u64,
}

impl LogState {
    pub(super) fn next_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64
    }

    /// One past the last message its reader may read (the last one copied, where copied).
    pub(super) fn readable(&self) -> u64 {
        let next = self.next_seq();
        if self.copied {
            next.min(self.copied_upto)
        } else {
            next
        }
    }

    /// Drops every message (the log is leaving the relay); returns the bytes it held.
    pub(super) fn empty(&mut self) -> usize {
        self.events.clear();
        std::mem::take(&mut self.bytes)
    }
}

impl ChatLog {
    pub(super) fn new(
        relay: Weak<Relay>,
        session: SessionId,
        follower: Follower,
        persist: Option<Persist>,
        client_ref: String,
    ) -> Arc<ChatLog> {
        let copied = relay.upgrade().is_some_and(|r| r.wire.is_some());
        Arc::new_cyclic(|me| ChatLog {
            me: me.clone(),
            relay,
            runtime: tokio::runtime::Handle::current(),
            state: Mutex::new(LogState {
                session,
                label: None,
                client_ref,
                events: VecDeque::new(),
                first_seq: 0,
                bytes: 0,
                ended: None,
                finishing: false,
                follower: Some(follower),
                detached_since: None,
                ticket: None,
                read_upto: 0,
                last_is_position: false,
                answer: String::new(),
                persist,
                q: 0,
                copied,
                copied_upto: 0,
            }),
        })
    }

    /// Keeps the job's ticket (dropping it cancels the job), unless the job already ended.
    pub(super) fn set_ticket(&self, ticket: JobTicket) {
        let mut st = self.state.lock();
        if st.ended.is_some() || st.finishing {
            ticket.disarm();
        } else {
            st.ticket = Some(ticket);
        }
    }

    /// One event of the job. False once the log takes no more (the job ended).
    pub(super) fn on_event(self: &Arc<Self>, id: JobId, event: JobEvent) -> bool {
        let mut st = self.state.lock();
        if st.ended.is_some() || st.finishing {
            return false;
        }
        if st.label.is_none() {
            st.label = Some(JobLabel {
                job_id: JobLabel::wire_id(id),
                client_ref: std::mem::take(&mut st.client_ref),
                conversation: st.persist.as_ref().map(|p| p.conversation.clone()),
            });
        }
        if !matches!(event, JobEvent::Accepted { .. } | JobEvent::Position { .. }) {
            st.q += 1;
        }
        if let JobEvent::Progress(Progress::Token { text }) = &event {
            st.answer.push_str(text);
        }
        if let JobEvent::Ended(outcome) = &event {
            let status = match outcome {
                Ok(_) => MessageStatus::Complete,
                Err(crate::error::JobError::Cancelled) => MessageStatus::Stopped,
                Err(_) => MessageStatus::Failed,
            };
            let answer = std::mem::take(&mut st.answer);
            if let Some(p) = st.persist.take() {
                if !answer.is_empty() || status == MessageStatus::Complete {
                    st.finishing = true;
                    drop(st);
                    let log = Arc::clone(self);
                    self.runtime.spawn(async move {
                        let stored = p
                            .store
                            .append_message(
                                &p.session,
                                &p.conversation,
                                Role::Assistant,
                                &answer,
                                status,
                            )
                            .await;
                        if let Err(e) = stored {
                            tracing::error!(job_id = %id, error = %e, "could not store the answer");
                        }
                        let mut st = log.state.lock();
                        st.finishing = false;
                        log.append(st, event);
                    });
                    return true;
                }
            }
        }
        self.append(st, event);
        true
    }

    /// Numbers, maps, serializes and appends one event, then wakes the follower. A `position`
    /// that follows an unread `position` replaces it, keeping its seq: a reader that is behind
    /// gets the current position once, not every step of the way.
    fn append(&self, mut st: MutexGuard<'_, LogState>, event: JobEvent) {
        let Some(label) = st.label.clone() else {
            return;
        };
        let is_position = matches!(event, JobEvent::Position { .. });
        let next = st.next_seq();
        let replace = is_position
            && st.last_is_position
            && !st.events.is_empty()
            && next > st.read_upto.max(st.first_seq);
        let (first, second) = to_messages(&label, if replace { next - 1 } else { next }, event);
        let terminal =
            first.is_terminal() || second.as_ref().is_some_and(ServerMessage::is_terminal);
        let (mut added, mut freed) = (0, 0);
        let relay = self.relay.upgrade();
        if replace {
            freed += st.events.pop_back().map_or(0, |old| old.len());
        }
        let wire = relay.as_ref().and_then(|r| r.wire.as_ref());
        for msg in std::iter::once(first).chain(second) {
            let text = crate::messages::encode(&msg);
            added += text.len();
            if let (Some(wire), Some(seq)) = (wire, msg.seq()) {
                let copied = super::Copied {
                    log: self.me.clone(),
                    upto: seq + 1,
                };
                if !wire.copy(&label.job_id, seq, st.q, &text, copied) {
                    st.copied_upto = st.copied_upto.max(seq + 1);
                }
            }
            st.events.push_back(text);
        }
        st.last_is_position = is_position;
        let max_events = relay.as_ref().map_or(usize::MAX, |r| r.max_events);
        while st.events.len() > max_events {
            freed += st.events.pop_front().map_or(0, |old| old.len());
            st.first_seq += 1;
        }
        st.bytes = st.bytes + added - freed;
        if terminal {
            st.ended = Some(Instant::now());
            if let Some(t) = st.ticket.take() {
                t.disarm();
            }
        }
        if let Some(f) = &st.follower {
            f.notify.notify_one();
        }
        drop(st);
        if let Some(relay) = relay {
            relay.bytes.fetch_add(added, Ordering::Relaxed);
            relay.bytes.fetch_sub(freed, Ordering::Relaxed);
            if relay.bytes.load(Ordering::Relaxed) > relay.max_bytes {
                relay.make_room(self);
            }
        }
    }

    /// The scheduler let go of the job without a final event (it was dropped unannounced).
    fn sink_dropped(&self) {
        let mut st = self.state.lock();
        if st.finishing {
            return;
        }
        st.ended.get_or_insert_with(Instant::now);
        st.ticket = None;
        if let Some(f) = &st.follower {
            f.notify.notify_one();
        }
    }

    /// Empties the log (it is being dropped from the relay); returns the bytes it held.
    pub(super) fn clear(&self) -> usize {
        self.state.lock().empty()
    }
}

impl Relay {
    /// Over the total cap: drops the logs of ended jobs, oldest first, then `growing`'s own
    /// oldest messages (never its newest).
    fn make_room(&self, growing: &ChatLog) {
        let over = || self.bytes.load(Ordering::Relaxed) > self.max_bytes;
        {
            let mut logs = self.logs.lock();
            let mut ended: Vec<(Instant, app::protocol::JobId)> = logs
                .iter()
                .filter(|(_, l)| !std::ptr::eq(l.as_ref(), growing))
                .filter_map(|(id, l)| l.state.lock().ended.map(|t| (t, id.clone())))
                .collect();
            ended.sort();
            for (_, id) in ended {
                if !over() {
                    break;
                }
                if let Some(log) = logs.remove(&id) {
                    self.bytes.fetch_sub(log.clear(), Ordering::Relaxed);
                }
            }
        }
        let mut st = growing.state.lock();
        while over() && st.events.len() > 1 {
            let freed = st.events.pop_front().map_or(0, |old| old.len());
            st.first_seq += 1;
            st.bytes -= freed;
            self.bytes.fetch_sub(freed, Ordering::Relaxed);
        }
    }
}

/// A chat's event sink: its log. When the scheduler drops its last copy without having sent a
/// final event, the log counts as ended.
pub(super) struct ChatSink(Arc<ChatLog>);

impl ChatSink {
    /// The sink of `log`, as the scheduler holds it.
    pub(super) fn sink(log: Arc<ChatLog>) -> EventSink<JobExecutor> {
        Arc::new(ChatSink(log))
    }
}

impl Sink<JobExecutor> for ChatSink {
    fn send(&self, id: JobId, event: JobEvent) -> bool {
        self.0.on_event(id, event)
    }

    fn is_closed(&self) -> bool {
        let st = self.0.state.lock();
        st.ended.is_some() || st.finishing
    }
}

impl Drop for ChatSink {
    fn drop(&mut self) {
        self.0.sink_dropped();
    }
}
