//! The queue the HTTP layer submits to: the in-process scheduler (one machine, the default) or
//! the shared queue in Redis (a web instance of a deployment; see [`crate::cluster`]). Both take
//! the same jobs and tell their sinks the same events, so handlers do not know which it is.
//!
//! Concurrency: handles only; each variant's state lives in its own tasks.

use crate::cluster::{SharedFront, SharedTicket};
use crate::error::JobError;
use crate::job::{EventSink, JobExecutor, Work};
use std::sync::Arc;
use turnstile_scheduler::{JobId, Party, QueueView};

pub use crate::job::{LocalScheduler, LocalTicket};

/// Where jobs go.
#[derive(Clone)]
pub enum JobQueue {
    /// Everything in this process.
    Local(LocalScheduler),
    /// The shared queue; `idle` is this instance's own (deviceless) scheduler, kept for the
    /// shape of its statistics.
    Shared {
        /// The shared queue's front.
        front: SharedFront,
        /// An in-process scheduler that never gets a job.
        idle: LocalScheduler,
    },
}

/// A submitted job; dropping it cancels the job unless it has ended.
pub enum Ticket {
    /// In this process.
    Local(LocalTicket),
    /// In the shared queue.
    Shared(SharedTicket),
}

impl Ticket {
    /// The job's id.
    pub fn id(&self) -> JobId {
        match self {
            Ticket::Local(t) => t.id(),
            Ticket::Shared(t) => t.id(),
        }
    }

    /// Cancels the job; its owner hears a cancellation.
    pub fn cancel(self) {
        match self {
            Ticket::Local(t) => t.cancel(),
            Ticket::Shared(t) => t.cancel(),
        }
    }

    /// The job has ended: dropping the ticket no longer cancels anything.
    pub fn disarm(self) {
        match self {
            Ticket::Local(t) => t.disarm(),
            Ticket::Shared(t) => t.disarm(),
        }
    }
}

impl JobQueue {
    /// Validates and queues `work` for `party`; its events go to `sink`, `Accepted` first. A
    /// refusal (`queue_full`, `rate_limited`, a bad job) is the error. In one process this never
    /// waits; in the shared queue it is one round trip to Redis.
    pub async fn submit(
        &self,
        work: Work,
        party: Party,
        sink: EventSink,
    ) -> Result<Ticket, JobError> {
        self.submit_resumable(work, party, sink, None).await
    }

    /// As [`JobQueue::submit`]; in the shared queue, `resume` (the session that may resume the
    /// job through another instance, and what that instance needs, opaque here) is kept with it.
    pub async fn submit_resumable(
        &self,
        work: Work,
        party: Party,
        sink: EventSink,
        resume: Option<(String, Vec<u8>)>,
    ) -> Result<Ticket, JobError> {
        match self {
            JobQueue::Local(s) => s.submit(work, party, sink).map(Ticket::Local),
            JobQueue::Shared { front, .. } => front
                .submit(work, party, sink, resume)
                .await
                .map(Ticket::Shared),
        }
    }

    /// The shared queue's front, for a web instance of a deployment.
    pub fn shared(&self) -> Option<&SharedFront> {
        match self {
            JobQueue::Local(_) => None,
            JobQueue::Shared { front, .. } => Some(front),
        }
    }

    /// The executor jobs are validated (and, in one process, run) with.
    pub fn executor(&self) -> &Arc<JobExecutor> {
        match self {
            JobQueue::Local(s) => s.executor(),
            JobQueue::Shared { front, .. } => front.executor(),
        }
    }

    /// Resolves once no job of this process holds the device (at once for a web instance).
    pub async fn idle(&self) {
        if let JobQueue::Local(s) = self {
            s.idle().await
        }
    }

    /// Cancels every job running in this process.
    pub fn cancel_running(&self) {
        if let JobQueue::Local(s) = self {
            s.cancel_running()
        }
    }

    /// The queue's state; for a web instance, the shared lines' lengths and its own jobs'
    /// counts (running somewhere, finished) over its own (idle) statistics. `None` once stopped.
    pub async fn view(&self) -> Option<QueueView> {
        match self {
            JobQueue::Local(s) => s.view().await,
            JobQueue::Shared { front, idle } => {
                let mut view = idle.view().await?;
                let c = front.counts().await?;
                view.waiting_by_kind = vec![("calc", c.waiting_calc), ("chat", c.waiting_chat)];
                view.waiting = c.waiting_calc + c.waiting_chat;
                view.running = c.running_here;
                view.total_finished = c.finished_here;
                Some(view)
            }
        }
    }
}
