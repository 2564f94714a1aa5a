//! The device's two capacities and the line of jobs waiting for each.
//!
//! A job waits for one [`Resource`], chosen by its executor at submission:
//! - [`Resource::Device`]: one of the device's `max_concurrent` places, held for the whole job
//!   (calculator jobs; chats answered by a remote model server, which take turns). The scheduler
//!   hands such jobs to the device threads `prefetch` ahead of their turn.
//! - [`Resource::Lane`]: one of a batching engine's `lanes`. The job shares the device step by
//!   step with the other lanes (chats on the local model, decoded together), so it does not hold
//!   a device place; its executor says when it starts ([`crate::RunContext::begin`]).
//!
//! Each resource has its own [`Line`]: a waiting queue in fair order with its own fair clock, so
//! a calculator job never waits behind a chat that waits for a lane (and the reverse), and a
//! position means "N jobs of your kind ahead of you".
//!
//! Concurrency: plain data, owned by the scheduler task alone.

use crate::executor::Executor;
use crate::fair::{FairClock, QueueOrder};
use crate::jobs::Waiting;
use crate::queue::WaitQueue;

/// Which capacity a job waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    /// One of the device's places, for the whole job.
    Device,
    /// One of the batching engine's lanes.
    Lane,
}

impl Resource {
    /// Every resource, in a fixed order (dispatch visits them in it).
    pub const ALL: [Resource; 2] = [Resource::Device, Resource::Lane];

    /// Its index in [`Lines`].
    fn index(self) -> usize {
        match self {
            Resource::Device => 0,
            Resource::Lane => 1,
        }
    }
}

/// The jobs waiting for one resource.
pub(crate) struct Line<X: Executor> {
    /// Waiting jobs in run order, with their announced positions.
    pub(crate) queue: WaitQueue<Waiting<X>>,
    /// The fair order's virtual time and parties, for this resource.
    pub(crate) clock: FairClock,
}

/// One line per resource.
pub(crate) struct Lines<X: Executor>([Line<X>; 2]);

impl<X: Executor> Lines<X> {
    /// Empty lines ordered by `order`.
    pub(crate) fn new(order: QueueOrder) -> Self {
        let line = || Line {
            queue: WaitQueue::default(),
            clock: FairClock::new(order),
        };
        Lines([line(), line()])
    }

    /// The line of `resource`.
    pub(crate) fn get(&self, resource: Resource) -> &Line<X> {
        &self.0[resource.index()]
    }

    /// The line of `resource`, to change.
    pub(crate) fn get_mut(&mut self, resource: Resource) -> &mut Line<X> {
        &mut self.0[resource.index()]
    }

    /// Jobs waiting in every line.
    pub(crate) fn len(&self) -> usize {
        self.0.iter().map(|l| l.queue.len()).sum()
    }
}
