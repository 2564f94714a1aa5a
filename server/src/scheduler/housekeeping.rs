//! The task's periodic chores: expiring jobs that waited past their deadline, closing the idle
//! device, and sampling utilization and history. Run only on the scheduler task.

use super::task::{deliver, Task};
use super::JobEvent;
use crate::error::JobError;
use std::time::Instant;

impl Task {
    pub(super) fn housekeeping(&mut self, now: Instant) {
        while let Some(&(deadline, key)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(w) = self.queue.remove(&key) {
                self.left_queue(&w);
                self.clock.withdrawn(&w.party, &w.tags);
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
        self.clock.forget_idle();
        self.utilization.sample(self.device.busy());
        self.stats.roll_history(self.queue.len() as u64);
        if self.queue.is_dirty()
            && now.duration_since(self.last_flush) >= self.config.position_interval
        {
            self.flush_positions();
        }
    }
}
