//! The task's periodic chores: expiring jobs that waited past their deadline, closing the idle
//! device, and sampling utilization and history. Run only on the scheduler task.

use super::task::{deliver, Task};
use super::JobEvent;
use crate::error::JobError;
use std::time::Instant;

impl Task {
    pub(super) fn housekeeping(&mut self, now: Instant) {
        while let Some(&(deadline, resource, key)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            let line = self.lines.get_mut(resource);
            if let Some(w) = line.queue.remove(&key) {
                line.clock.withdrawn(&w.party, &w.tags);
                self.left_queue(&w);
                self.waiting_ids.remove(&w.id);
                self.reject("timeout");
                tracing::info!(job_id = %w.id, "job timed out waiting");
                deliver(
                    &w.sink,
                    &w.id,
                    JobEvent::Failed(JobError::WaitTimeout(self.config.max_wait)),
                );
            }
        }
        if self.running.is_empty() {
            self.device.close_if_idle(now);
        }
        for resource in super::Resource::ALL {
            self.lines.get_mut(resource).clock.forget_idle();
        }
        self.utilization.sample(self.device.busy());
        self.stats.roll_history(self.lines.len() as u64);
        if self.any_dirty() && now.duration_since(self.last_flush) >= self.config.position_interval
        {
            self.flush_positions();
        }
    }
}
