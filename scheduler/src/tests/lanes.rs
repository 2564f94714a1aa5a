//! Lane jobs (chats on a batching engine) beside device jobs: each resource has its own line, so
//! a calculator job never waits behind chats waiting for a lane; at most `lanes` lane jobs are
//! dispatched at once; a lane job starts when its executor says so (`RunContext::begin`), and a
//! waiting one hears its position among the lane jobs only, with the executor's estimate.

use super::*;
use app::chat::{ChatTurn, ChatUsage, FinishReason, Role};

/// Chats take a lane and hold it for their `max_tokens` in milliseconds; calculator jobs hold
/// the device for their `ms`. Lane waits are estimated at 7 s per position.
struct Lanes;

impl Executor for Lanes {
    fn validate(&self, _job: &Work) -> Result<(), JobError> {
        Ok(())
    }

    fn resource(&self, work: &Work) -> Resource {
        match work {
            Work::Chat(_) => Resource::Lane,
            Work::Calc(_) => Resource::Device,
        }
    }

    fn lane_eta(&self, position: u64) -> Option<Duration> {
        Some(Duration::from_secs(7 * position))
    }

    fn run(
        self: Arc<Self>,
        work: Work,
        ctx: RunContext,
    ) -> BoxFuture<'static, Result<Outcome, JobError>> {
        Box::pin(async move {
            match work {
                Work::Chat(c) => {
                    if !ctx.begin() {
                        return Err(JobError::Cancelled);
                    }
                    let ms = u64::from(c.params.max_tokens.unwrap_or(0));
                    tokio::select! {
                        _ = ctx.cancel.cancelled() => return Err(JobError::Cancelled),
                        _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
                    }
                    Ok(Outcome::Chat(ChatUsage {
                        prompt_tokens: 1,
                        completion_tokens: 1,
                        time_to_first_token_ms: 0.0,
                        tokens_per_second: 0.0,
                        finish_reason: FinishReason::Stop,
                    }))
                }
                Work::Calc(c) => {
                    let ms = c.ms.unwrap_or(0);
                    ctx.on_device(move |_| {
                        std::thread::sleep(Duration::from_millis(ms));
                        Ok(())
                    })
                    .await?;
                    Ok(Outcome::Tensor {
                        output: Tensor {
                            shape: vec![],
                            data: vec![ms as f32],
                        },
                        compute_ms: 0.0,
                    })
                }
            }
        })
    }
}

fn chat(ms: u32) -> Work {
    Work::Chat(crate::job::ChatWork {
        messages: vec![ChatTurn {
            role: Role::User,
            content: "hi".into(),
        }],
        params: crate::job::ChatParams {
            max_tokens: Some(ms),
            ..Default::default()
        },
    })
}

fn start_lanes(lanes: usize) -> Scheduler {
    Scheduler::spawn(
        SchedulerConfig { lanes, ..config() },
        DeviceHost::new(Box::new(CpuBackend), Duration::from_secs(60)),
        Arc::new(Lanes),
        Arc::new(crate::metrics::Metrics::new()),
        CancellationToken::new(),
    )
}

#[tokio::test]
async fn lanes_cap_dispatched_chats_and_waiting_ones_count_only_chats_ahead() {
    let s = start_lanes(2);
    let mut chats: Vec<Owner> = (0..4).map(|_| owner()).collect();
    let mut tickets = vec![];
    for o in &chats {
        tickets.push(s.submit(chat(400), o.party.clone(), o.tx.clone()).unwrap());
    }
    // Two take the lanes at once; the third and fourth wait, at positions 1 and 2 among chats,
    // with the executor's estimate.
    for o in &mut chats[..2] {
        assert!(matches!(o.next().await, JobEvent::Accepted { .. }));
        assert!(matches!(o.next().await, JobEvent::Started { .. }));
    }
    let mut told = vec![];
    for o in &mut chats[2..] {
        let JobEvent::Accepted { position, .. } = o.next().await else {
            panic!("accepted first")
        };
        let last = o.last_position(position);
        told.push(last);
    }
    assert_eq!(told, [1, 2]);
    // A calculator job is not behind the waiting chats: it starts at once.
    let mut calc = owner();
    let _t = s
        .submit(job(Op::Sleep, 5), calc.party.clone(), calc.tx.clone())
        .unwrap();
    let events = calc.until_end().await;
    assert!(
        matches!(events[0], JobEvent::Accepted { position: 1, .. }),
        "{events:?}"
    );
    assert!(matches!(events.last(), Some(JobEvent::Done)));
    let snapshot = s.snapshot().await.unwrap();
    assert_eq!(snapshot.stats.queue.running, 2, "two chats in lanes");
    assert_eq!(snapshot.stats.queue.length, 2, "two chats waiting");
    // Every chat ends; the waiting ones started only as lanes freed.
    for o in &mut chats {
        let events = o.until_end().await;
        assert!(
            matches!(events.last(), Some(JobEvent::Answered(_))),
            "{events:?}"
        );
    }
}

#[tokio::test]
async fn a_waiting_chat_hears_the_executors_estimate_and_moves_up_as_lanes_free() {
    let s = start_lanes(1);
    let (mut a, mut b, mut c) = (owner(), owner(), owner());
    let _ta = s.submit(chat(300), a.party.clone(), a.tx.clone()).unwrap();
    assert!(matches!(a.next().await, JobEvent::Accepted { .. }));
    assert!(matches!(a.next().await, JobEvent::Started { .. }));
    let tb = s.submit(chat(300), b.party.clone(), b.tx.clone()).unwrap();
    let _tc = s.submit(chat(10), c.party.clone(), c.tx.clone()).unwrap();
    assert_eq!(
        b.next().await,
        JobEvent::Accepted {
            position: 1,
            queue_length: 1,
            eta_ms: 7000
        }
    );
    assert_eq!(
        c.next().await,
        JobEvent::Accepted {
            position: 2,
            queue_length: 2,
            eta_ms: 14000
        }
    );
    // b leaves: c moves up to position 1 with the matching estimate.
    tb.cancel();
    assert_eq!(
        c.next().await,
        JobEvent::Position {
            position: 1,
            eta_ms: 7000
        }
    );
    assert!(matches!(c.next().await, JobEvent::Started { .. }));
    assert!(matches!(
        c.until_end().await.last(),
        Some(JobEvent::Answered(_))
    ));
}
