//! The model of the queue: each job's phase and what its owner heard, and how the scheduler and
//! the device move jobs along (admission, dispatch, start, end), recounting positions from it.

use super::harness::Harness;
use super::script::Kind;
use crate::fair::{Party, Tags};
use crate::testkit::TestError;
use crate::Error;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// In the scheduler's queue.
    Queued,
    /// Handed to the device, not started (prefetched).
    Dispatched,
    /// Inside its device closure.
    OnDevice,
    /// Left the scheduler (or will, once its runner reports).
    Ended,
}

/// How a job ends, as its owner hears it (the terminal event, comparable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum End {
    /// It ran and produced its result.
    Done,
    /// It failed with this error.
    Failed(TestError),
}

impl End {
    /// A failure the scheduler decides.
    pub(super) fn failed(e: Error) -> End {
        End::Failed(e.into())
    }
}

pub(super) struct Job {
    pub(super) label: u64,
    pub(super) owner: usize,
    /// The connection it was submitted on.
    pub(super) generation: u64,
    pub(super) kind: Kind,
    pub(super) tags: Tags,
    pub(super) phase: Phase,
    /// Its owner disconnected: nothing more is heard.
    pub(super) gone: bool,
    /// `accepted`'s position, and the jobs waiting in all, this one included.
    pub(super) accepted_as: (u64, u64),
    /// The terminal event its fate calls for (once it has one).
    pub(super) expect_end: Option<End>,
    /// The earliest it can have started on the device.
    pub(super) start_lb: Option<Instant>,
    /// Operations it has spent on the device.
    pub(super) ops_on_device: u32,
    // What its owner heard.
    pub(super) accepted: bool,
    pub(super) told: Option<u64>,
    pub(super) started_heard: Option<Instant>,
    pub(super) end: Option<End>,
}

impl Harness {
    fn room(&self) -> usize {
        self.config.max_concurrent + self.config.prefetch
    }

    /// Jobs holding a place among the waiting (queued or prefetched).
    pub(super) fn waiting(&self) -> impl Iterator<Item = &Job> {
        self.jobs
            .iter()
            .filter(|j| matches!(j.phase, Phase::Queued | Phase::Dispatched))
    }

    /// What admission answers `party`; `burst`: counting the jobs of the burst so far as still
    /// waiting.
    pub(super) fn admission(&self, party: &Party, burst: bool) -> Result<(), TestError> {
        let holding: Vec<&Job> = self
            .jobs
            .iter()
            .enumerate()
            .filter(|(i, j)| {
                matches!(j.phase, Phase::Queued | Phase::Dispatched)
                    || (burst && self.burst.contains(i))
            })
            .map(|(_, j)| j)
            .collect();
        let cap = self.config.max_waiting_per_party;
        let mine = holding
            .iter()
            .filter(|j| self.owners[j.owner].party.key == party.key)
            .count();
        if cap > 0 && mine >= cap {
            return Err(Error::RateLimited {
                waiting: cap,
                retry_after: Duration::from_secs(1),
            }
            .into());
        }
        if holding.len() >= self.config.max_waiting {
            return Err(Error::QueueFull(self.config.max_waiting).into());
        }
        Ok(())
    }

    /// The job leaves the scheduler; `end` is what its owner must hear last.
    pub(super) fn end(&mut self, j: usize, end: Option<End>) {
        self.dispatched.retain(|&k| k != j);
        if self.jobs[j].phase == Phase::Queued {
            self.queue.remove(&self.jobs[j].tags.key);
        }
        self.jobs[j].phase = Phase::Ended;
        self.jobs[j].expect_end = end;
    }

    /// Takes the job out of the queue without running it (the scheduler's cancel).
    pub(super) fn withdraw(&mut self, j: usize, end: Option<End>) {
        let party = self.owners[self.jobs[j].owner].party.clone();
        let tags = self.jobs[j].tags;
        self.clock.withdrawn(&party, &tags);
        self.end(j, end);
    }

    /// The scheduler and the device move on until nothing changes: the device starts dispatched
    /// jobs in dispatch order while it has a free place, the scheduler dispatches while it has
    /// room.
    pub(super) fn advance(&mut self) {
        loop {
            let on_device = self
                .dispatched
                .iter()
                .filter(|&&j| self.jobs[j].phase == Phase::OnDevice)
                .count();
            let next = self
                .dispatched
                .iter()
                .copied()
                .find(|&j| self.jobs[j].phase == Phase::Dispatched);
            if let Some(j) = next.filter(|_| on_device < self.max_concurrent) {
                self.jobs[j].phase = Phase::OnDevice;
                self.jobs[j].start_lb = Some(self.step_began);
                if self.jobs[j].kind == Kind::Quick {
                    self.end(j, Some(End::Done));
                }
                continue;
            }
            if self.dispatched.len() < self.room() {
                if let Some((_, j)) = self.queue.pop_first() {
                    let tags = self.jobs[j].tags;
                    self.clock.dispatched(&tags);
                    self.dispatched.push(j);
                    self.jobs[j].phase = Phase::Dispatched;
                    if self.jobs[j].kind == Kind::EarlyPanic {
                        self.end(j, Some(End::failed(Error::DeviceFailed)));
                    }
                    continue;
                }
            }
            return;
        }
    }

    /// Held jobs on the device, in dispatch order.
    pub(super) fn on_device(&self) -> Vec<usize> {
        self.dispatched
            .iter()
            .copied()
            .filter(|&j| self.jobs[j].phase == Phase::OnDevice)
            .collect()
    }

    /// 1 + the jobs ahead of a waiting job that have not started.
    pub(super) fn position_of(&self, j: usize) -> u64 {
        let not_started = |js: &[usize]| {
            js.iter()
                .filter(|&&k| self.jobs[k].phase == Phase::Dispatched)
                .count() as u64
        };
        match self.jobs[j].phase {
            Phase::Dispatched => {
                let at = self
                    .dispatched
                    .iter()
                    .position(|&k| k == j)
                    .expect("dispatched");
                not_started(&self.dispatched[..at]) + 1
            }
            _ => {
                not_started(&self.dispatched)
                    + self.queue.range(..self.jobs[j].tags.key).count() as u64
                    + 1
            }
        }
    }
}
