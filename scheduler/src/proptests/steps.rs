//! The steps: each operation done to the real scheduler (a submission, a command to a job on the
//! device, a cancel, a disconnect, a stall) and to the model alike.

use super::harness::{Conn, Harness};
use super::model::{End, Job, Phase};
use super::script::{Cmd, Kind};
use super::MAX_RUN;
use crate::testkit::{TestError, TestJob, TestOp};
use crate::{Error, Failure};
use std::collections::BTreeMap;
use std::time::Duration;

/// The same refusal, whatever the retry hint.
fn same_refusal(a: &TestError, b: &TestError) -> bool {
    use TestError::Scheduler as S;
    match (a, b) {
        (S(Error::RateLimited { waiting: x, .. }), S(Error::RateLimited { waiting: y, .. })) => {
            x == y
        }
        _ => a == b,
    }
}

impl Harness {
    pub(super) fn submit(&mut self, owner: usize, kind: Kind, cost_ms: u64) -> Result<(), String> {
        let label = self.next_label;
        self.next_label += 1;
        self.script.kinds.lock().insert(label, kind);
        let conn = self.connect(owner);
        let (generation, sink) = (conn.generation, conn.tx.clone());
        let party = self.owners[owner].party.clone();
        let expected = self.admission(&party, true);
        // On a multi-thread runtime the burst's first jobs may have started meanwhile.
        let also = self.multi_thread.then(|| self.admission(&party, false));
        let work = TestJob {
            op: TestOp::Sleep,
            ms: cost_ms,
            label,
        };
        let ticket = match (expected, self.scheduler.submit(work, party.clone(), sink)) {
            (Ok(()), Ok(ticket)) => ticket,
            (Err(want), Err(got))
                if same_refusal(&want, &got)
                    || also
                        .as_ref()
                        .is_some_and(|a| a.as_ref().is_err_and(|a| same_refusal(a, &got))) =>
            {
                self.trace
                    .push(format!("(L{label} refused: {})", got.code()));
                return Ok(());
            }
            (Err(_), Ok(ticket)) if also.as_ref().is_some_and(|a| a.is_ok()) => ticket,
            (want, got) => {
                return Err(format!(
                    "admission of L{label} for owner {owner}: the model expects {want:?}, the \
                     scheduler answered {:?}",
                    got.map(|t| t.id())
                ))
            }
        };
        // The scheduler tags the job, queues it, says `accepted`, then dispatches.
        let cost_us = Duration::from_millis(cost_ms).as_micros() as u64;
        let tags = self.clock.tag(&party, cost_us, self.next_seq);
        self.next_seq += 1;
        let offset = self.dispatched.len().saturating_sub(self.max_concurrent) as u64;
        let position = offset + self.queue.range(..tags.key).count() as u64 + 1;
        let j = self.jobs.len();
        self.queue.insert(tags.key, j);
        let in_all = offset + self.queue.len() as u64;
        self.by_id.insert(ticket.id(), j);
        self.jobs.push(Job {
            label,
            owner,
            generation,
            kind,
            tags,
            phase: Phase::Queued,
            gone: false,
            accepted_as: (position, in_all),
            expect_end: None,
            start_lb: None,
            ops_on_device: 0,
            accepted: false,
            told: None,
            started_heard: None,
            end: None,
        });
        self.owners[owner]
            .conn
            .as_mut()
            .expect("connected")
            .tickets
            .insert(j, ticket);
        self.burst.push(j);
        self.advance();
        Ok(())
    }

    pub(super) fn command(&mut self, n: usize, cmd: Cmd) {
        let on = self.on_device();
        if on.is_empty() {
            return;
        }
        let j = on[n % on.len()];
        self.trace.push(format!("(L{})", self.jobs[j].label));
        self.script.command(self.jobs[j].label, cmd);
        let end = match cmd {
            Cmd::Finish => End::Done,
            Cmd::Panic => End::failed(Error::DeviceFailed),
        };
        self.end(j, Some(end));
        self.advance();
    }

    pub(super) fn cancel(&mut self, n: usize) {
        let held: Vec<(usize, usize)> = self
            .owners
            .iter()
            .enumerate()
            .filter_map(|(o, owner)| owner.conn.as_ref().map(|c| (o, c)))
            .flat_map(|(o, c)| c.tickets.keys().map(move |&j| (j, o)))
            .collect::<BTreeMap<_, _>>()
            .into_iter()
            .collect();
        if held.is_empty() {
            return;
        }
        let (j, o) = held[n % held.len()];
        self.trace.push(format!(
            "(L{} {:?})",
            self.jobs[j].label, self.jobs[j].phase
        ));
        let ticket = self.owners[o]
            .conn
            .as_mut()
            .and_then(|c| c.tickets.remove(&j))
            .expect("held ticket");
        ticket.cancel();
        let cancelled = Some(End::failed(Error::Cancelled));
        match self.jobs[j].phase {
            Phase::Queued => self.withdraw(j, cancelled),
            Phase::Dispatched | Phase::OnDevice => self.end(j, cancelled),
            Phase::Ended => {}
        }
        self.advance();
    }

    pub(super) fn disconnect(&mut self, owner: usize) {
        let Some(conn) = self.owners[owner].conn.take() else {
            return;
        };
        let Conn {
            generation,
            tx,
            rx,
            tickets,
        } = conn;
        drop(rx);
        drop(tx);
        // Tickets drop in submission order; the scheduler handles their cancels in that order.
        for (j, ticket) in tickets {
            drop(ticket);
            match self.jobs[j].phase {
                Phase::Queued => self.withdraw(j, None),
                Phase::Dispatched | Phase::OnDevice => self.end(j, None),
                Phase::Ended => {}
            }
        }
        for job in self.jobs.iter_mut().filter(|j| j.generation == generation) {
            job.gone = true;
        }
        self.advance();
    }

    /// Every held job on the device runs past `max_run`.
    pub(super) async fn stall(&mut self) {
        let on = self.on_device();
        let Some(latest) = on.iter().filter_map(|&j| self.jobs[j].started_heard).max() else {
            return;
        };
        tokio::time::sleep_until((latest + MAX_RUN + Duration::from_millis(1)).into()).await;
        for j in on {
            self.end(j, Some(End::failed(Error::RunTimeout(MAX_RUN))));
        }
        self.advance();
    }
}
