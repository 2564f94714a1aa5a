//! Position announcements: the prefetched device jobs' places among them, and each line's
//! coalesced changes, with their estimated waits. Run only on the scheduler task, which owns the
//! positions it announces.
//!
//! Waits: a device job at position p waits for ceil(p / max_concurrent) average runs; a lane job
//! asks the executor, which knows how long its engine's lanes have left (with the same formula,
//! lanes for places, when it does not say).

use crate::event::Event;
use crate::executor::Executor;
use crate::line::Resource;
use crate::task::Task;
use std::time::Instant;

impl<X: Executor> Task<X> {
    /// Tells each prefetched job its place among them (the device starts dispatched jobs in
    /// dispatch order: the first `max_concurrent` run, the k-th after them is at position k),
    /// when it differs from what it was told, once the dispatched set changed. At most
    /// `max_concurrent + MAX_PREFETCH` jobs: no scan of the queue, no sort.
    pub(crate) fn announce_prefetched(&mut self) {
        if !std::mem::take(&mut self.device_order_moved) {
            return;
        }
        let per_slot = self.stats.avg_run.as_millis() as u64;
        let slots = self.config.max_concurrent.max(1) as u64;
        let ahead = self.config.max_concurrent;
        for (i, id) in self.device_order.iter().enumerate().skip(ahead) {
            let position = (i + 1 - ahead) as u64;
            let Some(r) = self.running.get_mut(id) else {
                continue;
            };
            if r.told != position {
                let eta_ms = position.div_ceil(slots) * per_slot;
                let sink = &r.sink;
                // Never after `started`: a job that began meanwhile has no position any more.
                if r.start.tell_if_waiting(|| {
                    let _ = sink.send(*id, Event::Position { position, eta_ms });
                }) {
                    r.told = position;
                }
            }
        }
    }

    /// Tells every job that moved its new position. Best effort: a sink that is full drops the
    /// update (a later one, or `started`, supersedes it).
    pub(crate) fn flush_positions(&mut self) {
        for resource in Resource::ALL {
            if !self.lines.get(resource).queue.is_dirty() {
                continue;
            }
            let eta = self.eta_fn(resource);
            self.lines
                .get_mut(resource)
                .queue
                .flush_changes(|position, w| {
                    let eta_ms = eta(position);
                    let _ = w.sink.send(w.id, Event::Position { position, eta_ms });
                });
        }
        self.last_flush = Instant::now();
    }

    /// The estimated wait, in milliseconds, of the job at `position` of `resource`'s line.
    pub(crate) fn eta_ms(&self, resource: Resource, position: u64) -> u64 {
        self.eta_fn(resource)(position)
    }

    /// Estimated waits by position for one line (captures what it needs, so the line can be
    /// borrowed mutably while it is used).
    fn eta_fn(&self, resource: Resource) -> impl Fn(u64) -> u64 {
        let per_run = self.avg_run_by[resource as usize].as_millis() as u64;
        let (places, executor) = match resource {
            Resource::Device => (self.config.max_concurrent, None),
            Resource::Lane => (
                self.config.lanes,
                Some(std::sync::Arc::clone(&self.executor)),
            ),
        };
        let places = places.max(1) as u64;
        move |position| {
            executor
                .as_ref()
                .and_then(|e| e.lane_eta(position))
                .map(|d| d.as_millis() as u64)
                .unwrap_or_else(|| position.div_ceil(places) * per_run)
        }
    }
}
