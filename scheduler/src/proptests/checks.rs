//! The checks after every step: waiting until the scheduler and the events heard match the
//! model, then the invariants, and each event as an owner hears it.

use super::harness::Harness;
use super::model::{End, Phase};
use super::probe::probe;
use super::script::{Kind, Script};
use super::{MAX_RUN, SETTLE_LIMIT, STALE_FOR, STALE_POSITION, STALE_ROUNDS, STALL, TIMING};
use crate::testkit::{TestError, TestOutput};
use crate::{Error, Event, ItemStatus, JobId, QueueView};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

impl Harness {
    /// Waits until the scheduler and the owners' events match the model, then checks the
    /// invariants.
    pub(super) async fn settle(&mut self) -> Result<(), String> {
        let began = Instant::now();
        let give_up = began + SETTLE_LIMIT;
        let mut diffs: Vec<String> = vec![];
        // Rounds (and since when) in which only positions were wrong.
        let mut stale: Option<(u32, Instant)> = None;
        loop {
            let pending = |e: String, diffs: &[String]| {
                if diffs.is_empty() {
                    e
                } else {
                    format!(
                        "{e} (the scheduler had not reached the state the model predicts: {})",
                        diffs.join("; ")
                    )
                }
            };
            self.drain().map_err(|e| pending(e, &diffs))?;
            let snap = self.view().await?;
            self.drain().map_err(|e| pending(e, &diffs))?;
            diffs = self.diffs(&snap);
            if diffs.is_empty() {
                return self.invariants(&snap);
            }
            if diffs.iter().all(|d| d.contains(STALE_POSITION)) {
                let (rounds, since) = stale.get_or_insert((0, Instant::now()));
                *rounds += 1;
                if *rounds >= STALE_ROUNDS && since.elapsed() >= STALE_FOR {
                    return Err(format!(
                        "positions still wrong {:?} after everything else settled: {}",
                        since.elapsed(),
                        diffs.join("; ")
                    ));
                }
            } else {
                stale = None;
            }
            if Instant::now() >= give_up {
                let invariants = self.invariants(&snap).err().unwrap_or_default();
                return Err(format!(
                    "{TIMING}no settled state matching the model after {SETTLE_LIMIT:?}{}: {} \
                     {invariants}",
                    self.stalls(began, Instant::now()),
                    diffs.join("; ")
                ));
            }
            let asleep = Instant::now();
            tokio::time::sleep(Duration::from_millis(1)).await;
            if asleep.elapsed() >= STALL {
                self.late.push((asleep, Instant::now()));
            }
        }
    }

    /// What the probes saw in `from..to`, for failure reports.
    fn stalls(&self, from: Instant, to: Instant) -> String {
        format!(
            " (meanwhile the stall probe stopped for up to {:?}, the test's runtime woke up to \
             {:?} late)",
            probe().worst(from, to),
            self.worst_late(from, to)
        )
    }

    /// The longest of this runtime's late wake-ups overlapping `from..to`.
    fn worst_late(&self, from: Instant, to: Instant) -> Duration {
        self.late
            .iter()
            .filter(|(a, b)| *a < to && *b > from)
            .map(|(a, b)| (*b).min(to) - (*a).max(from))
            .max()
            .unwrap_or_default()
    }

    /// Invariants 1 and 5 on the scheduler's own view and the executor's count.
    fn invariants(&self, snap: &QueueView) -> Result<(), String> {
        let most = self.script.most_on_device.load(Ordering::SeqCst);
        if most > self.max_concurrent {
            return Err(format!(
                "{most} jobs were on the device at once (max_concurrent {})",
                self.max_concurrent
            ));
        }
        let on = self.script.on_device.load(Ordering::SeqCst);
        if snap.waiting > 0 && (on < self.max_concurrent || snap.running == 0) {
            return Err(format!(
                "{} jobs wait while the device has a free place ({on} of {} on the device, {} \
                 running in the view)",
                snap.waiting, self.max_concurrent, snap.running
            ));
        }
        Ok(())
    }

    /// What the scheduler and the events heard lack, against the model.
    fn diffs(&self, snap: &QueueView) -> Vec<String> {
        let mut d = vec![];
        for (j, job) in self.jobs.iter().enumerate().filter(|(_, j)| !j.gone) {
            let l = job.label;
            if !job.accepted {
                d.push(format!("L{l} not accepted yet"));
                continue;
            }
            match job.phase {
                Phase::Queued | Phase::Dispatched => {
                    let p = self.position_of(j);
                    if job.told != Some(p) {
                        d.push(format!(
                            "L{l} ({:?}) {STALE_POSITION} {:?}, a recount says {p}",
                            job.phase, job.told
                        ));
                    }
                }
                Phase::OnDevice if job.started_heard.is_none() => {
                    d.push(format!("L{l} not started yet"))
                }
                Phase::Ended if job.end.is_none() => {
                    d.push(format!("L{l} has not heard {:?} yet", job.expect_end))
                }
                _ => {}
            }
        }
        let running = self.dispatched.len().min(self.max_concurrent) as u64;
        let prefetched = self.dispatched.len() as u64 - running;
        let queued = self.queue.len() as u64;
        let seen = (snap.running, snap.prefetched, snap.waiting);
        if seen != (running, prefetched, prefetched + queued) {
            d.push(format!(
                "the view's (running, prefetched, waiting) is {seen:?}, the model's {:?}",
                (running, prefetched, prefetched + queued)
            ));
        }
        let count = |s: ItemStatus| snap.items.iter().filter(|i| i.status == s).count() as u64;
        let listed = (
            count(ItemStatus::Running),
            count(ItemStatus::Starting),
            count(ItemStatus::Queued),
        );
        if listed != (running, prefetched, queued.min(100)) {
            d.push(format!("the view lists {listed:?}"));
        }
        let positions: Vec<u64> = snap
            .items
            .iter()
            .filter(|i| i.status != ItemStatus::Running)
            .map(|i| i.position)
            .collect();
        if positions != (1..=positions.len() as u64).collect::<Vec<_>>() {
            d.push(format!("the view lists positions {positions:?}"));
        }
        let on = self.on_device().len();
        let on_seen = self.script.on_device.load(Ordering::SeqCst);
        if on_seen != on {
            d.push(format!("{on_seen} jobs on the device, the model has {on}"));
        }
        let parties: BTreeSet<&str> = self
            .waiting()
            .map(|j| &*self.owners[j.owner].party.key)
            .collect();
        if snap.parties_waiting != parties.len() as u64 {
            d.push(format!(
                "{} parties waiting, the model has {parties:?}",
                snap.parties_waiting
            ));
        }
        let ran = self
            .jobs
            .iter()
            .filter(|j| j.phase == Phase::Ended && j.start_lb.is_some())
            .count() as u64;
        if snap.total_finished != ran {
            d.push(format!(
                "{} jobs processed, the model has {ran}",
                snap.total_finished
            ));
        }
        d
    }

    /// Reads every connected owner's events, checking each as it comes.
    fn drain(&mut self) -> Result<(), String> {
        let now = Instant::now();
        for o in 0..self.owners.len() {
            while let Some(conn) = self.owners[o].conn.as_mut() {
                let generation = conn.generation;
                let Ok((id, event)) = conn.rx.try_recv() else {
                    break;
                };
                self.heard(o, generation, id, event, now)?;
            }
        }
        Ok(())
    }

    /// One event, as owner `o`'s connection `generation` heard it at `now`.
    fn heard(
        &mut self,
        o: usize,
        generation: u64,
        id: JobId,
        event: Event<Script>,
        now: Instant,
    ) -> Result<(), String> {
        let Some(&j) = self.by_id.get(&id) else {
            return Err(format!(
                "owner {o} heard about a job nobody was given: {id:?} {event:?}"
            ));
        };
        let check_queue_length = self.check_queue_length;
        let job = &mut self.jobs[j];
        let l = job.label;
        if job.owner != o || job.generation != generation {
            return Err(format!(
                "owner {o} heard {event:?} about L{l}, owner {}'s job",
                job.owner
            ));
        }
        if let Some(end) = &job.end {
            return Err(format!("L{l} heard {event:?} after its end {end:?}"));
        }
        if !job.accepted && !matches!(event, Event::Accepted { .. }) {
            return Err(format!("L{l} heard {event:?} before accepted"));
        }
        match &event {
            Event::Accepted {
                position,
                queue_length,
                ..
            } => {
                if job.accepted {
                    return Err(format!("L{l} accepted twice"));
                }
                let (want, in_all) = job.accepted_as;
                if *position != want {
                    return Err(format!(
                        "L{l} accepted at position {position}, a recount says {want}"
                    ));
                }
                if check_queue_length && *queue_length != in_all {
                    return Err(format!(
                        "L{l} accepted at position {position} of queue_length {queue_length}, \
                         but {in_all} jobs wait in all, this one included"
                    ));
                }
                job.accepted = true;
                job.told = Some(*position);
            }
            Event::Position { position, .. } => {
                if job.started_heard.is_some() {
                    return Err(format!("L{l} heard position {position} after it started"));
                }
                job.told = Some(*position);
            }
            Event::Started { .. } => {
                if job.started_heard.is_some() {
                    return Err(format!("L{l} started twice"));
                }
                if job.start_lb.is_none() {
                    return Err(format!(
                        "L{l} started, but it is {:?} in the model: it was passed, or started \
                         ahead of jobs dispatched before it",
                        job.phase
                    ));
                }
                job.started_heard = Some(now);
            }
            Event::Ended(Ok(output)) => {
                if job.started_heard.is_none() || job.expect_end != Some(End::Done) {
                    return Err(format!(
                        "L{l} heard its result {output:?} (started: {}, fate: {:?})",
                        job.started_heard.is_some(),
                        job.expect_end
                    ));
                }
                if *output != TestOutput::Calc(l) {
                    return Err(format!("L{l} heard the result {output:?}, not its own"));
                }
            }
            Event::Ended(Err(e)) => {
                let timed_out = *e == TestError::Scheduler(Error::RunTimeout(MAX_RUN));
                let ran = job.start_lb.map(|t| now - t);
                if timed_out && ran.is_none_or(|r| r < MAX_RUN) {
                    return Err(format!("L{l} timed out after running {ran:?}"));
                }
                if timed_out && job.expect_end.is_none() {
                    // The test finishes every job well before `max_run` unless it stalls it: a
                    // timeout here means a step took far too long (a slow machine, or a bug).
                    let since = job.start_lb.unwrap_or(now);
                    return Err(format!(
                        "{TIMING}L{l} timed out after {ran:?} on the device, though the test did \
                         not stall it{}",
                        self.stalls(since, now)
                    ));
                }
                // A held job told to finish near its limit may time out first.
                let late = timed_out && job.kind == Kind::Held && job.expect_end.is_some();
                if job.expect_end.as_ref() != Some(&End::Failed(e.clone())) && !late {
                    return Err(format!(
                        "L{l} heard {event:?}, its fate calls for {:?} (phase {:?})",
                        job.expect_end, job.phase
                    ));
                }
            }
            other => return Err(format!("L{l} heard {other:?}")),
        }
        if let Event::Ended(r) = event {
            job.end = Some(match r {
                Ok(_) => End::Done,
                Err(e) => End::Failed(e),
            });
        }
        Ok(())
    }
}
