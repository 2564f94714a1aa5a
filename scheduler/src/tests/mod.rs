//! Scheduler unit tests with the scripted executor ([`crate::testkit::Scripted`]): `Sleep` jobs
//! hold the device for `ms` (checking for cancellation), `Panic` jobs panic on it, chats hold a
//! lane. Each job's `ms` doubles as its label in the executor's start log and its output. Here:
//! the common setup and [`Owner`], one job owner with its own event sink.

use crate::device::{DeviceHost, Places};
use crate::testkit::{Scripted, TestError, TestJob, TestOp, TestOutput};
use crate::{Error, Event, EventSink, JobId, JobTicket, Party, Scheduler, SchedulerConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod lanes;
mod limits;
mod order;
mod prefetch;
mod release;

/// An event of a unit test's job.
type Ev = Event<Scripted>;

fn config() -> SchedulerConfig {
    SchedulerConfig {
        max_waiting: 100,
        max_wait: Duration::from_secs(30),
        position_interval: Duration::from_millis(10),
        initial_run_estimate: Duration::from_millis(100),
        max_waiting_per_party: 0,
        ..SchedulerConfig::default()
    }
}

fn start(config: SchedulerConfig) -> (Scheduler<Scripted>, Arc<Scripted>) {
    let exec = Arc::new(Scripted::default());
    let device = DeviceHost::new(Box::new(Places), Duration::from_secs(60));
    let s = Scheduler::spawn(
        config,
        device,
        exec.clone(),
        Arc::new(()),
        CancellationToken::new(),
    );
    (s, exec)
}

/// A device job labelled `ms`.
fn job(op: TestOp, ms: u64) -> TestJob {
    TestJob::new(op, ms)
}

/// The failure the scheduler decides.
fn failed(e: Error) -> Result<TestOutput, TestError> {
    Err(TestError::Scheduler(e))
}

/// One owner: a sink of its own and the receiving end.
struct Owner {
    party: Party,
    tx: EventSink<Scripted>,
    rx: mpsc::UnboundedReceiver<(JobId, Ev)>,
}

fn owner() -> Owner {
    let (tx, rx) = mpsc::unbounded_channel();
    Owner {
        party: Party::new(uuid::Uuid::new_v4().to_string()),
        tx: Arc::new(tx),
        rx,
    }
}

impl Owner {
    /// Submits `job` for this owner.
    fn submit(
        &self,
        s: &Scheduler<Scripted>,
        job: TestJob,
    ) -> Result<JobTicket<Scripted>, TestError> {
        s.submit(job, self.party.clone(), self.tx.clone())
    }

    async fn next(&mut self) -> Ev {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("event in time")
            .unwrap()
            .1
    }

    /// Events until the terminal one.
    async fn until_end(&mut self) -> Vec<Ev> {
        let mut out = vec![];
        loop {
            let e = self.next().await;
            let end = e.is_terminal();
            out.push(e);
            if end {
                return out;
            }
        }
    }

    /// How the job ended: the result its terminal event carries.
    async fn end(&mut self) -> Result<TestOutput, TestError> {
        match self.until_end().await.pop() {
            Some(Event::Ended(r)) => r,
            other => unreachable!("until_end ends with the terminal event, not {other:?}"),
        }
    }

    /// The last position this owner was told (accepted or position), draining what is queued.
    fn last_position(&mut self, mut last: u64) -> u64 {
        while let Ok((_, e)) = self.rx.try_recv() {
            match e {
                Event::Accepted { position, .. } | Event::Position { position, .. } => {
                    last = position
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        last
    }
}
