//! A web instance's follower: the one task that owns the instance's mirror of the shared lines
//! and the sinks of the jobs its clients sent. It follows two streams (the queue's changes and
//! this instance's events), tells each job its position when it moves (at once, and at most once
//! per `position_interval`), and hands each job's events to its sink in order.
//!
//! Each job's events are numbered (`q`, from 1): the follower hands them to the sink once each,
//! in order. A repeat is dropped; a gap (an event lost from this instance's stream) is filled
//! from the job's own event stream first. So a chat log that counts its events knows the `q` of
//! the last one, which is what a take-over elsewhere continues from. A job taken over from
//! another instance starts from the events after the last one its copied messages reflect; one
//! taken over by another instance is let go (the old owner's sink is dropped).
//!
//! Concurrency: everything here is owned by the task; the front reaches it through a channel.
//! A job's events wait until its `Accepted` went out (the enqueue's answer comes through the
//! uplink, the worker's events through Redis: either may arrive first).

use super::front::{line_of, lines, Costs, FrontTimes, Uplink};
use super::wire::RemoteEvent;
use crate::job::{EventSink, JobEvent};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use turnstile_cluster::follow::{bytes, number, text};
use turnstile_cluster::{Change, Enqueued, Followed, Mirror, QueueError, SharedQueue};
use turnstile_scheduler::{JobId, Resource};

mod deadlines;
use deadlines::{sleep_until_some, spawn_heartbeat};

/// Messages to the follower.
pub(super) enum ToFollower {
    /// A job of this instance, about to be queued.
    Watch {
        id: JobId,
        sink: EventSink,
        kind: &'static str,
    },
    /// The queue's answer to its enqueue.
    Enqueued { id: JobId, place: Enqueued },
    /// The job was refused: forget it (its submitter hears why).
    Forget(JobId),
    /// Report the lines.
    View(oneshot::Sender<SharedCounts>),
    /// A chat taken over from another instance (its client resumed here).
    Adopt {
        id: JobId,
        sink: EventSink,
        /// The number of its last event already reflected in its log.
        after_q: u64,
        /// The take-over's number (a notice of an earlier move does not let go of it).
        moves: u64,
        /// It still waits in its line (its position is reported).
        waiting: bool,
    },
}

/// The shared lines' lengths as this instance's mirror sees them.
#[derive(Clone, Copy, Debug, Default)]
pub struct SharedCounts {
    /// Calculator jobs waiting (the device line), in the whole deployment.
    pub waiting_calc: u64,
    /// Chats waiting (the lane line), in the whole deployment.
    pub waiting_chat: u64,
    /// This instance's jobs that are running somewhere.
    pub running_here: u64,
    /// This instance's jobs that reached a device and ended, since it started (the counter
    /// `/api/device/queue` reports as requests served).
    pub finished_here: u64,
}

/// A job of this instance that has not ended.
struct Local {
    /// Where its events go.
    sink: EventSink,
    /// Its kind (for costs).
    kind: &'static str,
    /// Whether its `Accepted` went out.
    accepted: bool,
    /// Events that came before the enqueue's answer.
    early: Vec<JobEvent>,
    /// When it started (for its run time).
    started: Option<Instant>,
    /// When it was sent to the queue.
    since: Instant,
    /// The number of its last event handed on (or kept in `early`).
    q: u64,
    /// How many times it had moved between instances when it came here.
    moves: u64,
}

/// The follower's state.
struct Follower {
    queue: SharedQueue,
    mirror: Mirror,
    jobs: HashMap<String, (JobId, Local)>,
    costs: Arc<Costs>,
    changes: String,
    /// Deadlines.
    times: FrontTimes,
    /// For cancelling jobs past their deadline.
    uplink: mpsc::UnboundedSender<Uplink>,
    /// Whether the mirror changed since the last announcement.
    dirty: bool,
    /// This instance's jobs that reached a device and ended.
    finished: u64,
}

/// Starts following; returns the channel to the task.
pub(super) async fn start(
    queue: SharedQueue,
    instance: String,
    costs: Arc<Costs>,
    times: FrontTimes,
    uplink: mpsc::UnboundedSender<Uplink>,
    shutdown: CancellationToken,
) -> Result<mpsc::UnboundedSender<ToFollower>, QueueError> {
    let (entries_tx, mut entries) = mpsc::unbounded_channel();
    let changes = queue.keys().changes();
    let streams = vec![changes.clone(), queue.keys().instance(&instance)];
    turnstile_cluster::follow(queue.client(), streams, entries_tx, shutdown.clone()).await?;
    let mut f = Follower {
        mirror: Mirror::default(),
        jobs: HashMap::new(),
        costs,
        changes,
        queue,
        times,
        uplink,
        dirty: false,
        finished: 0,
    };
    f.resync().await;
    spawn_heartbeat(f.queue.clone(), instance, shutdown.clone());
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // Positions go out as soon as the entries at hand are applied, and at most once per
        // interval: a change within an interval of the last announcement waits for its end.
        let interval = times.position_interval.max(Duration::from_millis(1));
        let mut deadlines = tokio::time::interval(Duration::from_secs(1));
        let mut last_flush = Instant::now() - interval;
        loop {
            let due = f
                .dirty
                .then(|| tokio::time::Instant::from_std(last_flush + interval));
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                m = rx.recv() => match m {
                    Some(m) => f.command(m).await,
                    None => return,
                },
                e = entries.recv() => match e {
                    Some(Followed::Entry { stream, fields }) => f.entry(&stream, &fields).await,
                    Some(Followed::Reconnected) => f.resync().await,
                    None => return,
                },
                _ = deadlines.tick() => f.expire(),
                _ = sleep_until_some(due) => {
                    last_flush = Instant::now();
                    f.announce();
                }
            }
        }
    });
    Ok(tx)
}

impl Follower {
    async fn command(&mut self, m: ToFollower) {
        match m {
            ToFollower::Watch { id, sink, kind } => {
                let key = id.to_string();
                self.mirror.watch(&key);
                let local = Local {
                    sink,
                    kind,
                    accepted: false,
                    early: vec![],
                    started: None,
                    since: Instant::now(),
                    q: 0,
                    moves: 0,
                };
                self.jobs.insert(key, (id, local));
            }
            ToFollower::Adopt {
                id,
                sink,
                after_q,
                moves,
                waiting,
            } => {
                let key = id.to_string();
                let local = Local {
                    sink,
                    kind: "chat",
                    accepted: true,
                    early: vec![],
                    started: (!waiting).then(Instant::now),
                    q: after_q,
                    moves,
                    since: Instant::now(),
                };
                // A log this instance held for it before (it moved away and back) is replaced.
                self.jobs.insert(key.clone(), (id, local));
                if waiting {
                    // Its entry is in the mirror already: a reload marks it watched and reports
                    // its place.
                    self.mirror.watch(&key);
                    self.resync().await;
                }
                self.backfill(&key).await;
            }
            ToFollower::Enqueued { id, place: e } => {
                let key = id.to_string();
                let eta_ms = self.eta_ms(&key, e.position);
                if let Some((_, job)) = self.jobs.get_mut(&key) {
                    job.accepted = true;
                    job.sink.send(
                        id,
                        JobEvent::Accepted {
                            position: e.position,
                            queue_length: e.line_length,
                            eta_ms,
                        },
                    );
                    for ev in std::mem::take(&mut job.early) {
                        self.deliver(&key, ev);
                    }
                }
            }
            ToFollower::Forget(id) => {
                let key = id.to_string();
                self.mirror.unwatch(&key);
                self.jobs.remove(&key);
            }
            ToFollower::View(tx) => {
                let _ = tx.send(self.view());
            }
        }
    }

    async fn entry(&mut self, stream: &str, fields: &HashMap<String, redis::Value>) {
        if stream == self.changes {
            let Some(change) = Change::from_fields(fields) else {
                return;
            };
            if self.mirror.apply(&change).is_err() {
                self.resync().await;
            }
            self.dirty = true;
            return;
        }
        let Some(job) = text(fields, "j") else {
            return;
        };
        if let Some(moves) = number(fields, "moved") {
            // Its client resumed through another instance, which took it over.
            if self.jobs.get(&job).is_some_and(|(_, l)| l.moves < moves) {
                self.mirror.unwatch(&job);
                self.jobs.remove(&job);
            }
            return;
        }
        let Some(body) = bytes(fields, "e") else {
            return;
        };
        let Some(last) = self.jobs.get(&job).map(|(_, l)| l.q) else {
            return;
        };
        if let Some(q) = number(fields, "q") {
            if q <= last {
                return; // handed on already
            }
            if q > last + 1 {
                self.backfill(&job).await;
            }
            match self.jobs.get_mut(&job) {
                Some((_, l)) if l.q < q => l.q = q,
                _ => return, // the backfill brought it
            }
        }
        self.decode_and_deliver(&job, &body);
    }

    fn decode_and_deliver(&mut self, job: &str, body: &[u8]) {
        match RemoteEvent::decode(body) {
            Ok(ev) => self.deliver(job, ev.into_local()),
            Err(e) => tracing::error!(error = %e, job, "an undecodable event in the shared queue"),
        }
    }

    /// Hands on a job's events after the last one handed on, from its own stream (a gap in
    /// this instance's stream, or a job taken over).
    async fn backfill(&mut self, key: &str) {
        let Some(after) = self.jobs.get(key).map(|(_, l)| l.q) else {
            return;
        };
        let events = match self.queue.events_after(key, after).await {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(error = %e, job = key, "reading a job's events failed");
                return;
            }
        };
        for (q, body) in events {
            match self.jobs.get_mut(key) {
                Some((_, l)) if l.q < q => l.q = q,
                Some(_) => continue,
                None => return,
            }
            self.decode_and_deliver(key, &body);
        }
    }

    /// Hands one event to its job's sink (or keeps it until the job's `Accepted` went out).
    fn deliver(&mut self, key: &str, ev: JobEvent) {
        let Some((id, job)) = self.jobs.get_mut(key) else {
            return;
        };
        if !job.accepted {
            job.early.push(ev);
            return;
        }
        match &ev {
            JobEvent::Started { .. } => {
                job.started = Some(Instant::now());
                self.mirror.unwatch(key);
            }
            JobEvent::Ended(_) => {
                if let Some(t) = job.started {
                    self.costs.observe(job.kind, t.elapsed().as_micros() as u64);
                    self.finished += 1;
                }
            }
            _ => {}
        }
        let terminal = ev.is_terminal();
        job.sink.send(*id, ev);
        if terminal {
            self.mirror.unwatch(key);
            self.jobs.remove(key);
        }
    }

    /// Tells each waiting job of this instance that moved its new position.
    fn announce(&mut self) {
        self.dirty = false;
        let mut moved = vec![];
        self.mirror
            .flush(|id, position| moved.push((id.to_owned(), position)));
        self.tell(moved);
    }

    fn tell(&mut self, moved: Vec<(String, u64)>) {
        for (key, position) in moved {
            let eta_ms = self.eta_ms(&key, position);
            if let Some((id, job)) = self.jobs.get(&key) {
                if job.accepted && job.started.is_none() {
                    job.sink.send(*id, JobEvent::Position { position, eta_ms });
                }
            }
        }
    }

    /// The expected wait at `position`: that many jobs of the kind's average run time.
    fn eta_ms(&self, key: &str, position: u64) -> u64 {
        let kind = self.jobs.get(key).map_or("calc", |(_, j)| j.kind);
        position.saturating_sub(1) * self.costs.get(kind) / 1000
    }

    /// Reloads the mirror from a snapshot (at start, after a gap or a reconnection).
    async fn resync(&mut self) {
        loop {
            match self.queue.snapshot(&lines()).await {
                Ok(s) => {
                    let moved = self.mirror.load(&s);
                    self.tell(moved);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the shared queue's order failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    fn view(&self) -> SharedCounts {
        SharedCounts {
            waiting_calc: self.mirror.len(line_of(Resource::Device)) as u64,
            waiting_chat: self.mirror.len(line_of(Resource::Lane)) as u64,
            running_here: self
                .jobs
                .values()
                .filter(|(_, j)| j.started.is_some())
                .count() as u64,
            finished_here: self.finished,
        }
    }
}
