//! A web instance's side of resuming chats across instances: it copies the wire messages of the
//! chats it owns to their wire streams in Redis (the copier task), and takes over a chat whose
//! client resumes through it (moving the job here, then handing its later events, from the
//! worker's stream and then live, to the new log's sink through the follower).
//!
//! Concurrency: the copier is one task that sends whatever is ready in one script call, one
//! after another, so each chat's copies keep their order; the chat logs only put copies in its
//! channel (never waiting on Redis under their locks). A take-over is one atomic script call;
//! the follower task alone then owns the job's sink.

use super::follower::ToFollower;
use super::front::{SharedFront, SharedTicket};
use super::wire::RemoteEvent;
use crate::job::{EventSink, Progress};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use turnstile_cluster::{QueueError, SharedQueue, Takeover, WireEntry};
use turnstile_scheduler::JobId;

/// Most copies sent in one call.
const BATCH: usize = 256;

/// Called once a copy is made (or given up).
pub type Copied = Box<dyn FnOnce() + Send>;

/// What resuming through an instance needs.
pub(super) struct Resume {
    /// This instance's name in the queue (the owner of its jobs).
    pub(super) instance: Arc<str>,
    /// The queue.
    pub(super) queue: SharedQueue,
    /// Copies of chat messages to the copier, in order.
    pub(super) wire: mpsc::UnboundedSender<(WireEntry, Copied)>,
}

/// Starts the copier: copies go to Redis in the order they were made.
pub(super) fn spawn_copier(
    queue: SharedQueue,
    instance: Arc<str>,
    shutdown: CancellationToken,
) -> mpsc::UnboundedSender<(WireEntry, Copied)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(WireEntry, Copied)>();
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        let mut acks: Vec<Copied> = Vec::with_capacity(BATCH);
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                m = rx.recv() => match m { Some(m) => m, None => return },
            };
            batch.push(first.0);
            acks.push(first.1);
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok((m, ack)) => {
                        batch.push(m);
                        acks.push(ack);
                    }
                    Err(_) => break,
                }
            }
            // A few tries (Redis restarting); then the copies are given up: a resume through
            // another instance derives what they said from the job's own events.
            for attempt in 0..3 {
                match queue.copy_wire(&instance, &batch).await {
                    Ok(_) => break,
                    Err(e) if attempt == 2 => {
                        tracing::warn!(error = %e, n = batch.len(), "copying chat messages failed");
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
            batch.clear();
            for ack in acks.drain(..) {
                ack();
            }
        }
    });
    tx
}

impl SharedFront {
    /// Copies one wire message of a chat this instance owns (never waits); `copied` is called
    /// once the copy is made, or given up (Redis out of reach). False (and `copied` is never
    /// called) when the copier has stopped (the instance is stopping).
    pub fn copy_wire(
        &self,
        job: &str,
        seq: u64,
        q: u64,
        message: &Arc<str>,
        copied: Copied,
    ) -> bool {
        let entry = WireEntry {
            job: job.to_owned(),
            seq,
            q,
            message: Arc::clone(message),
        };
        self.resume.wire.send((entry, copied)).is_ok()
    }

    /// Takes job `id` over for a client of `session` resuming from seq `from`.
    pub async fn take_over(
        &self,
        id: &str,
        session: &str,
        from: u64,
    ) -> Result<Takeover, QueueError> {
        let r = &self.resume;
        r.queue.take_over(id, &r.instance, session, from).await
    }

    /// The chat answer its events up to number `q` carry (its tokens, joined).
    pub async fn answer_upto(&self, id: &str, q: u64) -> Result<String, QueueError> {
        let mut answer = String::new();
        for (n, body) in self.resume.queue.events_after(id, 0).await? {
            if n > q {
                break;
            }
            if let Ok(RemoteEvent::Progress {
                progress: Progress::Token { text },
            }) = RemoteEvent::decode(&body)
            {
                answer.push_str(&text);
            }
        }
        Ok(answer)
    }

    /// A ticket for a job taken over: dropping it cancels the job while this instance owns it.
    pub fn ticket_for(&self, id: JobId) -> SharedTicket {
        SharedTicket {
            id,
            uplink: self.uplink.clone(),
            armed: true,
        }
    }

    /// Hands a job taken over (move number `moves`) to the follower: its events after number
    /// `after_q` go to `sink` (those already in its stream first, then live ones, each once).
    pub fn follow_taken(
        &self,
        id: JobId,
        sink: EventSink,
        after_q: u64,
        moves: u64,
        waiting: bool,
    ) {
        let _ = self.follower.send(ToFollower::Adopt {
            id,
            sink,
            after_q,
            moves,
            waiting,
        });
    }
}
