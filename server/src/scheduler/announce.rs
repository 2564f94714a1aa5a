//! Position announcements: the prefetched jobs' places among them, and the queue's coalesced
//! changes. Run only on the scheduler task, which owns the positions it announces.

use super::jobs::Running;
use super::task::Task;
use super::JobEvent;
use app::protocol::JobId;
use std::time::Instant;

impl Task {
    /// Tells each prefetched job its place among them (the device starts dispatched jobs in
    /// dispatch order: the first `max_concurrent` run, the k-th after them is at position k),
    /// when it differs from what it was told. At most `prefetch` jobs: no scan of the queue.
    pub(super) fn announce_prefetched(&mut self) {
        if self.prefetched() == 0 {
            return;
        }
        let per_slot = self.stats.avg_run.as_millis() as u64;
        let slots = self.config.max_concurrent.max(1) as u64;
        let mut dispatched: Vec<(&JobId, &mut Running)> = self.running.iter_mut().collect();
        dispatched.sort_by_key(|(_, r)| r.order);
        for (i, (id, r)) in dispatched.into_iter().enumerate() {
            let Some(position) = (i + 1).checked_sub(self.config.max_concurrent) else {
                continue;
            };
            let position = position as u64;
            if position > 0 && r.told != position {
                let eta_ms = position.div_ceil(slots) * per_slot;
                let sink = &r.sink;
                // Never after `started`: a job that began meanwhile has no position any more.
                if r.start.tell_if_waiting(|| {
                    let _ = sink.send(((*id).clone(), JobEvent::Position { position, eta_ms }));
                }) {
                    r.told = position;
                }
            }
        }
    }

    /// Tells every job that moved its new position. Best effort: a sink that is full drops the
    /// update (a later one, or `started`, supersedes it).
    pub(super) fn flush_positions(&mut self) {
        let per_slot = self.stats.avg_run.as_millis() as u64;
        let slots = self.config.max_concurrent.max(1) as u64;
        self.queue.flush_changes(|position, w| {
            let eta_ms = position.div_ceil(slots) * per_slot;
            let _ = w
                .sink
                .send((w.id.clone(), JobEvent::Position { position, eta_ms }));
        });
        self.last_flush = Instant::now();
    }

    pub(super) fn eta_ms(&self, position: u64) -> u64 {
        let slots = self.config.max_concurrent.max(1) as u64;
        position.div_ceil(slots) * self.stats.avg_run.as_millis() as u64
    }
}
