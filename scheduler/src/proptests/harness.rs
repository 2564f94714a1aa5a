//! The harness: the real scheduler on a device host with real device threads and the scripted
//! executor, the owners and their connections, the model beside them, and the run of a case.

use super::model::{End, Job, Phase};
use super::probe::probe;
use super::script::{Cmd, Kind, Script};
use super::strategy::{Op, Setup, Variant};
use super::{AUTO_FINISH_AFTER, AUTO_FINISH_OPS, INTERVAL, MAX_RUN, OWNERS};
use crate::device::{DeviceHost, Places, WorkerConfig};
use crate::fair::FairClock;
use crate::SchedulerConfig;
use crate::{Event, EventSink, JobId, JobTicket, Party, QueueKey, QueueView, Scheduler};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What an owner's connection receives.
pub(super) type Item = (JobId, Event<Script>);

pub(super) struct Conn {
    pub(super) generation: u64,
    pub(super) tx: EventSink<Script>,
    pub(super) rx: mpsc::UnboundedReceiver<Item>,
    pub(super) tickets: BTreeMap<usize, JobTicket<Script>>,
}

pub(super) struct Owner {
    pub(super) party: Party,
    pub(super) conn: Option<Conn>,
}

pub(super) struct Harness {
    pub(super) max_concurrent: usize,
    pub(super) check_queue_length: bool,
    pub(super) multi_thread: bool,
    pub(super) config: SchedulerConfig,
    pub(super) scheduler: Scheduler<Script>,
    pub(super) script: Arc<Script>,
    pub(super) owners: Vec<Owner>,
    pub(super) jobs: Vec<Job>,
    pub(super) by_id: HashMap<JobId, usize>,
    pub(super) clock: FairClock,
    pub(super) queue: BTreeMap<QueueKey, usize>,
    /// The scheduler's dispatched set (running and prefetched), in dispatch order.
    pub(super) dispatched: Vec<usize>,
    pub(super) next_seq: u64,
    pub(super) next_label: u64,
    pub(super) next_generation: u64,
    /// The jobs of the burst being submitted: none has started yet (on a current-thread
    /// runtime; on a multi-thread one, some may have), so they still hold their waiting places.
    pub(super) burst: Vec<usize>,
    /// When the current step began (no job can have started before, for jobs it starts).
    pub(super) step_began: Instant,
    pub(super) trace: Vec<String>,
    /// The runtime's own late wake-ups (as the probe's gaps): the test's 1 ms sleeps that took
    /// `STALL` or more.
    pub(super) late: Vec<(Instant, Instant)>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.script.aborted.store(true, Ordering::SeqCst);
        self.script.wake.notify_all();
    }
}

impl Harness {
    pub(super) fn new(v: &Variant, setup: &Setup) -> Harness {
        probe();
        let config = SchedulerConfig {
            max_concurrent: v.max_concurrent,
            // Every scripted job takes a device place (the lanes are tested in `tests::lanes`).
            lanes: 1,
            max_waiting: setup.max_waiting,
            max_wait: Duration::from_secs(60),
            max_run: MAX_RUN,
            position_interval: INTERVAL,
            initial_run_estimate: Duration::from_millis(10),
            order: setup.order,
            max_waiting_per_party: setup.max_waiting_per_party,
            prefetch: v.prefetch,
            // The model hands ahead by count only; prefetch by time has its own tests
            // (`tests::prefetch`).
            prefetch_time: Duration::ZERO,
        };
        let script = Arc::new(Script::default());
        // As the server does: one device thread per place on the device. A short keep-alive
        // closes and reopens the device between jobs.
        let device = DeviceHost::with_workers(
            Box::new(Places),
            Duration::from_millis(2),
            WorkerConfig {
                slots: v.max_concurrent,
                compute_threads: v.max_concurrent,
            },
        );
        let scheduler = Scheduler::spawn(
            config.clone(),
            device,
            script.clone(),
            Arc::new(()),
            CancellationToken::new(),
        );
        let owners = (0..OWNERS)
            .map(|i| Owner {
                party: Party {
                    key: format!("party-{i}").into(),
                    weight: setup.weights[i],
                },
                conn: None,
            })
            .collect();
        Harness {
            max_concurrent: v.max_concurrent,
            check_queue_length: v.check_queue_length,
            multi_thread: v.multi_thread,
            clock: FairClock::new(setup.order),
            config,
            scheduler,
            script,
            owners,
            jobs: vec![],
            by_id: HashMap::new(),
            queue: BTreeMap::new(),
            dispatched: vec![],
            next_seq: 0,
            next_label: 1,
            next_generation: 1,
            burst: vec![],
            step_began: Instant::now(),
            trace: vec![],
            late: vec![],
        }
    }

    /// Runs the operations, then finishes everything and checks the end state.
    pub(super) async fn run(&mut self, ops: &[Op]) -> Result<(), String> {
        for op in ops {
            self.auto_finish().await?;
            for j in &self.dispatched {
                if self.jobs[*j].phase == Phase::OnDevice {
                    self.jobs[*j].ops_on_device += 1;
                }
            }
            self.step_began = Instant::now();
            self.burst.clear();
            self.trace.push(format!("{op:?}"));
            match op {
                Op::Wait(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
                Op::Submit {
                    owner,
                    kind,
                    cost_ms,
                } => self.submit(*owner, *kind, *cost_ms)?,
                Op::Burst(jobs) => {
                    for (owner, cost_ms) in jobs {
                        self.submit(*owner, Kind::Held, *cost_ms)?;
                    }
                }
                Op::Finish(n) => self.command(*n, Cmd::Finish),
                Op::Panic(n) => self.command(*n, Cmd::Panic),
                Op::Cancel(n) => self.cancel(*n),
                Op::Disconnect(owner) => self.disconnect(*owner),
                Op::Stall => self.stall().await,
            }
            self.settle().await?;
        }
        self.finish_everything().await
    }

    /// Finishes the jobs that have been on the device long enough to near `max_run`.
    async fn auto_finish(&mut self) -> Result<(), String> {
        loop {
            let now = Instant::now();
            let old = self.dispatched.iter().copied().find(|&j| {
                let job = &self.jobs[j];
                job.phase == Phase::OnDevice
                    && (job.ops_on_device >= AUTO_FINISH_OPS
                        || job.start_lb.is_some_and(|t| now - t >= AUTO_FINISH_AFTER))
            });
            let Some(j) = old else { return Ok(()) };
            self.step_began = now;
            self.trace.push(format!("(finish L{})", self.jobs[j].label));
            self.script.command(self.jobs[j].label, Cmd::Finish);
            self.end(j, Some(End::Done));
            self.advance();
            self.settle().await?;
        }
    }

    /// The owner's connection, made anew if it was dropped.
    pub(super) fn connect(&mut self, owner: usize) -> &mut Conn {
        let generation = self.next_generation;
        let o = &mut self.owners[owner];
        if o.conn.is_none() {
            self.next_generation += 1;
            let (tx, rx) = mpsc::unbounded_channel();
            o.conn = Some(Conn {
                generation,
                tx: Arc::new(tx),
                rx,
                tickets: BTreeMap::new(),
            });
        }
        o.conn.as_mut().expect("connected")
    }

    /// Finishes every job left, then checks that everyone heard the end and the scheduler is
    /// idle.
    async fn finish_everything(&mut self) -> Result<(), String> {
        self.trace.push("(finish everything)".into());
        for _ in 0..=self.jobs.len() {
            let on = self.on_device();
            if on.is_empty() {
                break;
            }
            self.step_began = Instant::now();
            for j in on {
                self.script.command(self.jobs[j].label, Cmd::Finish);
                self.end(j, Some(End::Done));
            }
            self.advance();
            self.settle().await?;
        }
        if !self.queue.is_empty() || !self.dispatched.is_empty() {
            return Err("jobs are left waiting with nothing on the device".into());
        }
        // Anything sent after a terminal event shows up now.
        tokio::time::sleep(INTERVAL * 3).await;
        self.settle().await?;
        for job in self.jobs.iter().filter(|j| !j.gone) {
            if job.end.is_none() {
                return Err(format!("L{} never heard its end", job.label));
            }
        }
        let view = self.view().await?;
        if view.waiting != 0 || view.running != 0 || view.parties_waiting != 0 {
            return Err(format!(
                "not idle at the end: {} waiting, {} running, {} parties waiting, listed {:?}",
                view.waiting, view.running, view.parties_waiting, view.items
            ));
        }
        Ok(())
    }

    pub(super) async fn view(&self) -> Result<QueueView, String> {
        self.scheduler
            .view()
            .await
            .ok_or_else(|| "the scheduler stopped".to_string())
    }
}
