//! The task's records of its jobs: one waiting in the queue, and one handed to the device. Only
//! the scheduler task holds them.

use crate::admission::PartyPlace;
use crate::context::{JobStart, WaitingPlaces};
use crate::event::{EventSink, JobId};
use crate::executor::Executor;
use crate::fair::{Party, Tags};
use crate::line::Resource;
use crate::queue::{Announced, QueueKey};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

/// A job waiting for the device.
pub(crate) struct Waiting<X: Executor> {
    /// The job's id.
    pub(crate) id: JobId,
    /// What to run.
    pub(crate) job: X::Job,
    /// What it waits for (its executor's choice).
    pub(crate) resource: Resource,
    /// Who it is for.
    pub(crate) party: Party,
    /// The owner's events.
    pub(crate) sink: EventSink<X>,
    /// Its places among the waiting; they go with it to the device and are released when it
    /// starts there (or when it is dropped).
    pub(crate) places: Option<WaitingPlaces>,
    /// Its fair-order tags.
    pub(crate) tags: Tags,
    /// When it was queued (for waits and deadlines).
    pub(crate) enqueued: Instant,
    /// When it was queued, wall clock (for `/queue/status`).
    pub(crate) enqueued_wall: SystemTime,
    /// The position its owner was last told.
    pub(crate) told: u64,
    /// When it times out.
    pub(crate) deadline: Instant,
}

impl<X: Executor> Waiting<X> {
    pub(crate) fn new(
        id: JobId,
        job: X::Job,
        resource: Resource,
        party: Party,
        sink: EventSink<X>,
        permit: OwnedSemaphorePermit,
        place: PartyPlace,
    ) -> Self {
        let now = Instant::now();
        Waiting {
            id,
            job,
            resource,
            party,
            sink,
            places: Some(WaitingPlaces {
                _permit: permit,
                _place: place,
            }),
            tags: Tags {
                key: QueueKey { tag: 0, seq: 0 },
                finish: 0,
                previous: 0,
            },
            enqueued: now,
            enqueued_wall: SystemTime::now(),
            told: 0,
            deadline: now,
        }
    }
}

impl<X: Executor> Announced for Waiting<X> {
    fn last_announced(&mut self) -> &mut u64 {
        &mut self.told
    }
}

/// A job handed to the device (running, or prefetched and about to).
pub(crate) struct Running<X: Executor> {
    /// Fires to stop it at its next cancellation point.
    pub(crate) cancel: CancellationToken,
    /// Its kind, for `/queue/status` and the cost estimates.
    pub(crate) kind: &'static str,
    /// When it was queued, wall clock.
    pub(crate) enqueued_wall: SystemTime,
    /// Dispatch order (the device starts dispatched jobs in this order).
    pub(crate) order: u64,
    /// The owner's events (to tell a prefetched job its place as the jobs ahead start).
    pub(crate) sink: EventSink<X>,
    /// The position its owner was last told.
    pub(crate) told: u64,
    /// Whether it has started (positions are only sent before).
    pub(crate) start: Arc<JobStart>,
    /// What it holds: a device place or an engine's lane.
    pub(crate) resource: Resource,
    /// Its expected device time when dispatched (device jobs; counted against `prefetch_time`).
    pub(crate) cost: std::time::Duration,
}
