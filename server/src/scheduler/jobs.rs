//! The task's records of its jobs: one waiting in the queue, and one handed to the device. Only
//! the scheduler task holds them.

use super::admission::PartyPlace;
use super::fair::{Party, Tags};
use super::line::Resource;
use super::queue::{Announced, QueueKey};
use super::{EventSink, WaitingPlaces};
use crate::job::Work;
use app::protocol::JobId;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

/// A job waiting for the device.
pub(crate) struct Waiting {
    /// The job's id.
    pub(super) id: JobId,
    /// What to run.
    pub(super) job: Work,
    /// What it waits for (its executor's choice).
    pub(super) resource: Resource,
    /// Who it is for.
    pub(super) party: Party,
    /// The owner's events.
    pub(super) sink: EventSink,
    /// Its places among the waiting; they go with it to the device and are released when it
    /// starts there (or when it is dropped).
    pub(super) places: Option<WaitingPlaces>,
    /// Its fair-order tags.
    pub(super) tags: Tags,
    /// When it was queued (for waits and deadlines).
    pub(super) enqueued: Instant,
    /// When it was queued, wall clock (for `/queue/status`).
    pub(super) enqueued_wall: SystemTime,
    /// The position its owner was last told.
    pub(super) told: u64,
    /// When it times out.
    pub(super) deadline: Instant,
}

impl Waiting {
    pub(crate) fn new(
        id: JobId,
        job: Work,
        resource: Resource,
        party: Party,
        sink: EventSink,
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

impl Announced for Waiting {
    fn last_announced(&mut self) -> &mut u64 {
        &mut self.told
    }
}

/// A job handed to the device (running, or prefetched and about to).
pub(super) struct Running {
    /// Fires to stop it at its next cancellation point.
    pub(super) cancel: CancellationToken,
    /// Its kind, for `/queue/status` and the cost estimates.
    pub(super) kind: &'static str,
    /// When it was queued, wall clock.
    pub(super) enqueued_wall: SystemTime,
    /// Dispatch order (the device starts dispatched jobs in this order).
    pub(super) order: u64,
    /// The owner's events (to tell a prefetched job its place as the jobs ahead start).
    pub(super) sink: EventSink,
    /// The position its owner was last told.
    pub(super) told: u64,
    /// Whether it has started (positions are only sent before).
    pub(super) start: Arc<super::JobStart>,
    /// What it holds: a device place or an engine's lane.
    pub(super) resource: Resource,
}
