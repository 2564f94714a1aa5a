//! The task's periodic chores: expiring jobs that waited past their deadline, closing the idle
//! device, and sampling utilization and history. Run only on the scheduler task.

use crate::error::Error;
use crate::event::Event;
use crate::executor::Executor;
use crate::line::Resource;
use crate::task::Task;
use std::time::Instant;

impl<X: Executor> Task<X> {
    pub(crate) fn housekeeping(&mut self, now: Instant) {
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
                let failed = Error::WaitTimeout(self.config.max_wait).into();
                let _ = w.sink.send(w.id, Event::Ended(Err(failed)));
            }
        }
        if self.running.is_empty() {
            self.device.close_if_idle(now);
        }
        for resource in Resource::ALL {
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
