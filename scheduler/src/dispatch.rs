//! Dispatch: handing waiting jobs to the device (or their engine) while their resource has room
//! (the device's places plus `prefetch`, and more tiny ones while they fit in `prefetch_time`),
//! and taking them back when their runner ends. Run only on the scheduler task (see `task`).

use crate::context::{Emitter, JobStart};
use crate::executor::{Executor, Job};
use crate::jobs::Running;
use crate::line::Resource;
use crate::runner::{self, Ended, RunSpec};
use crate::task::Task;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

impl<X: Executor> Task<X> {
    /// A runner completed: the job left its resource. Bookkeeping first, then its owner hears
    /// the end (see [`Ended::last`]).
    pub(crate) fn ended(&mut self, ended: Ended<X>) {
        let Ended {
            id,
            waited,
            run,
            failure,
            last,
        } = ended;
        if let Some(r) = self.running.remove(&id) {
            self.running_by[r.resource as usize] -= 1;
            if r.resource == Resource::Device {
                self.device_cost = self.device_cost.saturating_sub(r.cost);
                if let Some(i) = self.device_order.iter().position(|d| *d == id) {
                    self.device_order.remove(i);
                    self.device_order_moved = true;
                }
            }
            if let Some(run) = run {
                self.observer.finished(r.kind, waited, run);
                self.stats.on_start(waited);
                self.stats.on_finish(run, waited + run);
                self.avg_run_us
                    .store(self.stats.avg_run.as_micros() as u64, Ordering::Relaxed);
                let avg = &mut self.avg_run_by[r.resource as usize];
                *avg = (*avg * 4 + run) / 5;
                let cost = self.costs.entry(r.kind).or_insert(run);
                *cost = (*cost * 4 + run) / 5;
            }
            if let Some(code) = failure {
                self.reject(code);
            }
        }
        // Hand the freed place on before the owner hears, so the next job is on its way.
        self.dispatch();
        if let Some((events, last)) = last {
            events.send(last);
        }
    }

    /// Expected device time of a job: its own hint, or the moving average of its kind.
    pub(crate) fn expected_cost(&self, job: &X::Job) -> Duration {
        job.cost_hint().unwrap_or_else(|| {
            self.costs
                .get(job.kind())
                .copied()
                .unwrap_or(self.config.initial_run_estimate)
        })
    }

    /// Device jobs dispatched beyond `max_concurrent`: handed to the device, waiting for a
    /// place. (Lane jobs are never prefetched: a dispatched one is in its engine's hands.)
    pub(crate) fn prefetched(&self, resource: Resource) -> usize {
        match resource {
            Resource::Device => self.running_by[Resource::Device as usize]
                .saturating_sub(self.config.max_concurrent),
            Resource::Lane => 0,
        }
    }

    /// Jobs dispatched at once for `resource`: the device's places plus the prefetch, or the
    /// engine's lanes.
    pub(crate) fn room(&self, resource: Resource) -> usize {
        match resource {
            Resource::Device => self.config.max_concurrent + self.config.prefetch,
            Resource::Lane => self.config.lanes.max(1),
        }
    }

    /// Whether some announced position in any line may be stale.
    pub(crate) fn any_dirty(&self) -> bool {
        Resource::ALL
            .iter()
            .any(|r| self.lines.get(*r).queue.is_dirty())
    }

    /// Hands waiting jobs to the device (or their engine) while their resource has room.
    pub(crate) fn dispatch(&mut self) {
        for resource in Resource::ALL {
            self.dispatch_line(resource);
        }
        let offset = self.prefetched(Resource::Device) as u64;
        self.lines
            .get_mut(Resource::Device)
            .queue
            .set_offset(offset);
        self.announce_prefetched();
    }

    /// The expected device time of `resource`'s next waiting job (zero for a lane job), if it may
    /// be dispatched now: within the resource's room, or (device jobs) within the prefetch time.
    /// `None` when the line is empty or full.
    pub(crate) fn next_to_dispatch(&self, resource: Resource) -> Option<Duration> {
        let next = self.lines.get(resource).queue.first()?;
        if resource == Resource::Lane {
            return (self.running_by[resource as usize] < self.room(resource))
                .then_some(Duration::ZERO);
        }
        let cost = self.expected_cost(&next.job);
        let dispatched = self.running_by[resource as usize];
        let by_count = dispatched < self.room(resource);
        let by_time = !self.config.prefetch_time.is_zero()
            && dispatched < self.config.max_concurrent + crate::config::MAX_PREFETCH
            && self.device_cost + cost <= self.config.prefetch_time;
        (by_count || by_time).then_some(cost)
    }

    pub(crate) fn dispatch_line(&mut self, resource: Resource) {
        while !self.draining {
            let Some(cost) = self.next_to_dispatch(resource) else {
                break;
            };
            let line = self.lines.get_mut(resource);
            let Some((key, mut w)) = line.queue.pop_first() else {
                break;
            };
            let owner_gone = w.sink.is_closed();
            if owner_gone {
                line.clock.withdrawn(&w.party, &w.tags);
            } else {
                line.clock.dispatched(&w.tags);
            }
            self.left_queue(&w);
            self.waiting_ids.remove(&w.id);
            self.deadlines.remove(&(w.deadline, resource, key));
            if owner_gone {
                continue;
            }
            let cancel = CancellationToken::new();
            let start = Arc::new(JobStart::new(w.enqueued, w.places.take()));
            self.running.insert(
                w.id,
                Running {
                    cancel: cancel.clone(),
                    kind: w.job.kind(),
                    enqueued_wall: w.enqueued_wall,
                    order: self.dispatched,
                    sink: Arc::clone(&w.sink),
                    told: w.told,
                    start: Arc::clone(&start),
                    resource,
                    cost,
                },
            );
            if resource == Resource::Device {
                self.device_order.push_back(w.id);
                self.device_order_moved = true;
                self.device_cost += cost;
            }
            self.running_by[resource as usize] += 1;
            self.dispatched += 1;
            self.runners.push(runner::run(RunSpec {
                id: w.id,
                job: w.job,
                events: Emitter::new(w.id, w.sink),
                start,
                // A device job takes its place in the device's order now; a lane job has none
                // (its engine puts its steps on the device).
                place: (resource == Resource::Device).then(|| self.device.reserve()),
                cancel,
                device: Arc::clone(&self.device),
                executor: Arc::clone(&self.executor),
                max_run: self.config.max_run,
                max_wait: self.config.max_wait,
            }));
        }
    }
}
