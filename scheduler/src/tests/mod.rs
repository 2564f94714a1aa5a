//! Scheduler unit tests with a scripted executor: `sleep` ops hold the device for `ms` (checking
//! for cancellation), `exp` panics, anything else returns at once. Each job's `ms` doubles as its
//! label in the executor's start log.

use super::*;
use crate::device::CpuBackend;
use app::protocol::{CalcJob, Op};
use parking_lot::Mutex;
use std::time::Instant;

mod lanes;
mod limits;
mod order;
mod release;

struct Scripted {
    started: Mutex<Vec<u64>>,
}

impl Scripted {
    fn compute(&self, c: &CalcJob, cancel: &CancellationToken) -> Result<Tensor, JobError> {
        let ms = c.ms.unwrap_or(0);
        self.started.lock().push(ms);
        match c.op {
            Op::Exp => panic!("scripted panic"),
            Op::Sleep => {
                let until = Instant::now() + Duration::from_millis(ms);
                while Instant::now() < until {
                    if cancel.is_cancelled() {
                        return Err(JobError::Cancelled);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(Tensor {
                    shape: vec![],
                    data: vec![ms as f32],
                })
            }
            _ => Ok(Tensor {
                shape: vec![],
                data: vec![ms as f32],
            }),
        }
    }
}

impl Executor for Scripted {
    fn validate(&self, _job: &Work) -> Result<(), JobError> {
        Ok(())
    }

    fn run(
        self: Arc<Self>,
        work: Work,
        ctx: RunContext,
    ) -> BoxFuture<'static, Result<Outcome, JobError>> {
        Box::pin(async move {
            let Work::Calc(c) = work else {
                return Err(JobError::InvalidInput("calc only".into()));
            };
            let cancel = ctx.cancel.clone();
            let output = ctx.on_device(move |_d| self.compute(&c, &cancel)).await?;
            Ok(Outcome::Tensor {
                output,
                compute_ms: 0.0,
            })
        })
    }
}

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

fn start(config: SchedulerConfig) -> (Scheduler, Arc<Scripted>) {
    let exec = Arc::new(Scripted {
        started: Mutex::new(vec![]),
    });
    let device = DeviceHost::new(Box::new(CpuBackend), Duration::from_secs(60));
    let s = Scheduler::spawn(
        config,
        device,
        exec.clone(),
        Arc::new(crate::metrics::Metrics::new()),
        CancellationToken::new(),
    );
    (s, exec)
}

fn job(op: Op, ms: u64) -> Work {
    Work::Calc(CalcJob {
        op,
        a: None,
        b: None,
        dim: None,
        ms: Some(ms),
        us: None,
    })
}

/// One owner: a sink of its own and the receiving end.
struct Owner {
    party: Party,
    tx: EventSink,
    rx: mpsc::UnboundedReceiver<(JobId, JobEvent)>,
}

fn owner() -> Owner {
    let (tx, rx) = mpsc::unbounded_channel();
    Owner {
        party: Party::new(uuid::Uuid::new_v4().to_string()),
        tx,
        rx,
    }
}

impl Owner {
    async fn next(&mut self) -> JobEvent {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("event in time")
            .unwrap()
            .1
    }

    /// Events until the terminal one.
    async fn until_end(&mut self) -> Vec<JobEvent> {
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

    /// The last position this owner was told (accepted or position), draining what is queued.
    fn last_position(&mut self, mut last: u64) -> u64 {
        while let Ok((_, e)) = self.rx.try_recv() {
            match e {
                JobEvent::Accepted { position, .. } | JobEvent::Position { position, .. } => {
                    last = position
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        last
    }
}
