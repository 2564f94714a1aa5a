//! A web instance's side of the shared queue ([`SharedFront`]): it validates and sends jobs to
//! the queue in Redis, and its follower ([`super::follower`]) brings each job's position (from
//! the mirror) and events (from this instance's stream) back to the job's sink, exactly as the
//! in-process scheduler would.
//!
//! Concurrency: the handle is cheap to clone. One uplink task sends this instance's queue
//! changes (enqueue, cancel) to Redis one after another, so a connection's jobs queue in the
//! order it sent them and a cancel never overtakes its submit. The follower task alone owns the
//! mirror and the sinks of the instance's jobs; the handle reaches it through a channel.

use super::follower::{self, SharedCounts, ToFollower};
use super::wire::{encode_work, RemoteEvent};
use crate::error::JobError;
use crate::job::{EventSink, JobExecutor, Work};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use turnstile_cluster::{NewJob, QueueError, Refusal, SharedQueue};
use turnstile_scheduler::{Executor, Job, JobId, Party, Resource};

/// Changes of the shared queue, in the order this instance made them.
pub(super) enum Uplink {
    /// Queue a job; `admitted` hears whether it was.
    Submit {
        id: JobId,
        line: &'static str,
        party: Party,
        cost_us: u64,
        payload: Vec<u8>,
        admitted: oneshot::Sender<Result<(), JobError>>,
        /// Who may resume it through another instance, and what that instance needs.
        resume: Option<(String, Vec<u8>)>,
    },
    /// Cancel a job (waiting or running, wherever) while this instance owns it.
    Cancel(JobId),
}

/// The names of every line in Redis, in [`Resource::ALL`]'s order.
pub fn lines() -> [&'static str; 2] {
    Resource::ALL.map(line_of)
}

/// The name of a resource's line in Redis.
pub fn line_of(resource: Resource) -> &'static str {
    match resource {
        Resource::Device => "device",
        Resource::Lane => "lane",
    }
}

/// Each kind's expected device time (a moving average of the run times this instance saw),
/// charged to a job's party in the fair order.
#[derive(Default)]
pub(super) struct Costs {
    /// Calculator jobs, in microseconds (0 = none seen yet).
    calc_us: AtomicU64,
    /// Chats, in microseconds (0 = none seen yet).
    chat_us: AtomicU64,
}

impl Costs {
    fn slot(&self, kind: &str) -> &AtomicU64 {
        if kind == "chat" {
            &self.chat_us
        } else {
            &self.calc_us
        }
    }

    /// The expected cost of a job of `kind` (50 ms before anything ran).
    pub(super) fn get(&self, kind: &str) -> u64 {
        match self.slot(kind).load(Ordering::Relaxed) {
            0 => 50_000,
            us => us,
        }
    }

    /// A job of `kind` ran for `us`.
    pub(super) fn observe(&self, kind: &str, us: u64) {
        let slot = self.slot(kind);
        let old = slot.load(Ordering::Relaxed);
        let new = if old == 0 { us } else { (old * 7 + us) / 8 };
        slot.store(new.max(1), Ordering::Relaxed);
    }
}

/// The times a web instance keeps for its jobs.
#[derive(Clone, Copy, Debug)]
pub struct FrontTimes {
    /// At most one position announcement per job per this.
    pub position_interval: Duration,
    /// A job that waited this long in the shared line ends with `timeout` (as in one process).
    pub max_wait: Duration,
    /// A started job not heard to end within this (plus two leases: the worker enforces it
    /// itself) ends with `timeout`: nothing waits forever, whatever was lost.
    pub max_run: Duration,
    /// The workers' lease.
    pub lease: Duration,
}

/// A web instance's handle on the shared queue.
#[derive(Clone)]
pub struct SharedFront {
    /// Validates jobs and picks their line (the same checks as in one process).
    executor: Arc<JobExecutor>,
    /// This instance's changes to the queue, in order.
    pub(super) uplink: mpsc::UnboundedSender<Uplink>,
    /// The follower task.
    pub(super) follower: mpsc::UnboundedSender<ToFollower>,
    /// Expected costs by kind.
    costs: Arc<Costs>,
    /// What resuming through this instance needs (see [`super::resume`]).
    pub(super) resume: Arc<super::resume::Resume>,
}

/// A job queued through a [`SharedFront`]; dropping it cancels the job unless it has ended.
pub struct SharedTicket {
    /// The job.
    pub(super) id: JobId,
    /// Where the cancel goes.
    pub(super) uplink: mpsc::UnboundedSender<Uplink>,
    /// Whether dropping it cancels the job.
    pub(super) armed: bool,
}

impl SharedTicket {
    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// Cancels the job; its owner hears a cancellation (from wherever it is).
    pub fn cancel(mut self) {
        self.armed = false;
        let _ = self.uplink.send(Uplink::Cancel(self.id));
    }

    /// The job has ended: dropping the ticket no longer cancels anything.
    pub fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for SharedTicket {
    fn drop(&mut self) {
        // Only while this instance owns the job: one taken over elsewhere is left alone.
        if self.armed {
            let _ = self.uplink.send(Uplink::Cancel(self.id));
        }
    }
}

impl SharedFront {
    /// Starts this instance's uplink and follower tasks (they stop with `shutdown`).
    pub async fn start(
        queue: SharedQueue,
        executor: Arc<JobExecutor>,
        times: FrontTimes,
        shutdown: CancellationToken,
    ) -> Result<SharedFront, QueueError> {
        let instance = format!("web-{}", JobId::random());
        let costs = Arc::new(Costs::default());
        let (uplink, rx) = mpsc::unbounded_channel();
        let follower = follower::start(
            queue.clone(),
            instance.clone(),
            Arc::clone(&costs),
            times,
            uplink.clone(),
            shutdown.clone(),
        )
        .await?;
        let instance: Arc<str> = instance.into();
        tokio::spawn(uplink_task(
            queue.clone(),
            instance.to_string(),
            rx,
            follower.clone(),
            shutdown.clone(),
        ));
        let wire = super::resume::spawn_copier(queue.clone(), Arc::clone(&instance), shutdown);
        Ok(SharedFront {
            executor,
            uplink,
            follower,
            costs,
            resume: Arc::new(super::resume::Resume {
                instance,
                queue,
                wire,
            }),
        })
    }

    /// The executor jobs are validated with.
    pub fn executor(&self) -> &Arc<JobExecutor> {
        &self.executor
    }

    /// Validates `work` and queues it in the shared queue (one round trip): refused at once as in
    /// one process (`queue_full`, `rate_limited`), or admitted, its owner hearing `Accepted` as
    /// its first event. `resume`: the session that may resume it through another instance and
    /// what that instance needs (opaque here).
    pub async fn submit(
        &self,
        work: Work,
        party: Party,
        sink: EventSink,
        resume: Option<(String, Vec<u8>)>,
    ) -> Result<SharedTicket, JobError> {
        self.executor.validate(&work)?;
        let id = JobId::random();
        let kind = work.kind();
        let cost_us = work
            .cost_hint()
            .map_or_else(|| self.costs.get(kind), |d| d.as_micros() as u64);
        let line = line_of(self.executor.resource(&work));
        // The follower hears of the job before Redis does, so the job's own change in the
        // stream already finds it watched.
        self.follower
            .send(ToFollower::Watch { id, sink, kind })
            .map_err(|_| JobError::ShuttingDown)?;
        let (admitted, answer) = oneshot::channel();
        self.uplink
            .send(Uplink::Submit {
                id,
                line,
                party,
                cost_us,
                payload: encode_work(&work),
                admitted,
                resume,
            })
            .map_err(|_| JobError::ShuttingDown)?;
        answer.await.map_err(|_| JobError::ShuttingDown)??;
        Ok(SharedTicket {
            id,
            uplink: self.uplink.clone(),
            armed: true,
        })
    }

    /// The shared lines as this instance's mirror sees them.
    pub async fn counts(&self) -> Option<SharedCounts> {
        let (tx, rx) = oneshot::channel();
        self.follower.send(ToFollower::View(tx)).ok()?;
        rx.await.ok()
    }
}

/// Sends this instance's queue changes to Redis. Calls are pipelined on the one connection (a
/// connection's next submit waits for its last one's answer, and a job's cancel can only follow
/// its admission, so nothing needs them in sequence here).
async fn uplink_task(
    queue: SharedQueue,
    instance: String,
    mut rx: mpsc::UnboundedReceiver<Uplink>,
    follower: mpsc::UnboundedSender<ToFollower>,
    shutdown: CancellationToken,
) {
    let cancelled: Arc<[u8]> = RemoteEvent::failure(JobError::Cancelled).into();
    let instance: Arc<str> = instance.into();
    let mut inflight = futures::stream::FuturesUnordered::new();
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(()) = futures::StreamExt::next(&mut inflight), if !inflight.is_empty() => continue,
            m = rx.recv() => match m { Some(m) => m, None => return },
        };
        let (queue, follower) = (queue.clone(), follower.clone());
        let (cancelled, instance) = (Arc::clone(&cancelled), Arc::clone(&instance));
        inflight.push(async move {
            match msg {
                Uplink::Submit {
                    id,
                    line,
                    party,
                    cost_us,
                    payload,
                    admitted,
                    resume,
                } => {
                    let (session, meta) = resume.unwrap_or_default();
                    let job = Queued {
                        id,
                        line,
                        party: &party,
                        cost_us,
                        payload: &payload,
                        session: &session,
                        meta: &meta,
                    };
                    let result = enqueue(&queue, &instance, job).await;
                    // The follower hears first, so `Accepted` is in the sink when the submitter
                    // gets its ticket.
                    match result {
                        Ok(place) => {
                            let _ = follower.send(ToFollower::Enqueued { id, place });
                            let _ = admitted.send(Ok(()));
                        }
                        Err(err) => {
                            let _ = follower.send(ToFollower::Forget(id));
                            let _ = admitted.send(Err(err));
                        }
                    }
                }
                Uplink::Cancel(id) => {
                    let id_text = id.to_string();
                    let cancel = queue.cancel_owned(&id_text, &cancelled, &instance);
                    if let Err(e) = cancel.await {
                        tracing::warn!(error = %e, job = %id, "cancelling in the shared queue failed");
                    }
                }
            }
        });
    }
}

/// A job for [`enqueue`].
struct Queued<'a> {
    id: JobId,
    line: &'static str,
    party: &'a Party,
    cost_us: u64,
    payload: &'a [u8],
    session: &'a str,
    meta: &'a [u8],
}

/// Queues one job; a refusal or a failure as the error its submitter hears.
async fn enqueue(
    queue: &SharedQueue,
    instance: &str,
    q: Queued<'_>,
) -> Result<turnstile_cluster::Enqueued, JobError> {
    let id_text = q.id.to_string();
    let job = NewJob {
        id: &id_text,
        line: q.line,
        party: &q.party.key,
        weight: q.party.weight,
        cost_us: q.cost_us,
        owner: instance,
        payload: q.payload,
        session: q.session,
        meta: q.meta,
    };
    let cfg = queue.config();
    match queue.enqueue(job).await {
        Ok(Ok(e)) => Ok(e),
        Ok(Err(Refusal::QueueFull)) => Err(JobError::QueueFull(cfg.max_waiting as usize)),
        Ok(Err(Refusal::RateLimited)) => Err(JobError::RateLimited {
            waiting: cfg.max_waiting_per_party as usize,
            retry_after: Duration::from_secs(1),
        }),
        Ok(Err(Refusal::Duplicate)) => Err(JobError::Internal),
        Err(e) => {
            tracing::error!(error = %e, "queueing a job in the shared queue failed");
            Err(JobError::Internal)
        }
    }
}
