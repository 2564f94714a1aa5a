//! Step engine tests on the embedded model: admission up to the lanes in arrival order, the KV
//! budget (a head that does not fit holds later requests back; one that never fits fails),
//! cancellation mid-batch without disturbing the others, and batched answers identical to the
//! same answers generated alone.

use super::*;
use crate::device::{CpuBackend, WorkerConfig};
use crate::job::{Emitter, EventSink, JobEvent, Progress};
use crate::model::local::tests::embedded_path;
use crate::model::manager::{Loader, ManagerConfig, ModelManager};
use app::chat::{ChatTurn, FinishReason, Role};
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use turnstile_scheduler::JobId;

/// A device, a manager of the embedded model, and engines with these limits.
struct Rig {
    manager: Arc<ModelManager<LocalLoader>>,
    engines: Engines,
    device: Arc<DeviceHost>,
}

fn rig(lanes: usize, kv_cache_tokens: usize, max_step_tokens: usize) -> Rig {
    let device = DeviceHost::with_workers(
        Box::new(CpuBackend),
        Duration::from_secs(60),
        WorkerConfig {
            slots: 1,
            compute_threads: 1,
        },
    );
    let manager = ModelManager::new(
        LocalLoader {
            path: embedded_path(),
            device: Arc::clone(&device),
            faults: None,
        },
        ManagerConfig {
            keep_alive: Duration::from_secs(60),
            load_timeout: Duration::from_secs(60),
        },
    );
    let engines = Engines::new(
        EngineConfig {
            lanes,
            kv_cache_tokens,
            max_step_tokens,
            step_delay: Duration::ZERO,
        },
        Arc::clone(&device),
    );
    Rig {
        manager,
        engines,
        device,
    }
}

/// A job id that spells a short label (at most 16 bytes), so tests can name chats.
fn labelled(label: &str) -> JobId {
    let mut bytes = [0u8; 16];
    bytes[..label.len()].copy_from_slice(label.as_bytes());
    JobId(u128::from_be_bytes(bytes))
}

/// The label a [`labelled`] id spells.
fn label_of(id: JobId) -> String {
    let bytes = id.0.to_be_bytes();
    String::from_utf8_lossy(&bytes)
        .trim_end_matches('\0')
        .to_owned()
}

fn greedy(max_tokens: u32) -> SamplingParams {
    SamplingParams {
        max_tokens,
        temperature: 0.0,
        ..SamplingParams::default()
    }
}

fn ask(text: &str) -> Vec<ChatTurn> {
    vec![ChatTurn {
        role: Role::User,
        content: text.into(),
    }]
}

/// One chat handed to the engine: its events and its answer.
struct Chat {
    events: tokio::sync::mpsc::UnboundedReceiver<(JobId, JobEvent)>,
    answer: oneshot::Receiver<Result<Generation, GenerateError>>,
    cancel: CancellationToken,
}

impl Chat {
    /// The answer, and the text its token events add up to.
    async fn finish(mut self) -> (Result<Generation, GenerateError>, String, Vec<JobEvent>) {
        let answer = self.answer.await.expect("the engine replies");
        let mut text = String::new();
        let mut seen = vec![];
        while let Ok((_, e)) = self.events.try_recv() {
            if let JobEvent::Progress(Progress::Token { text: t }) = &e {
                text.push_str(t);
            }
            seen.push(e);
        }
        (answer, text, seen)
    }
}

impl Rig {
    async fn submit(&self, label: &str, messages: Vec<ChatTurn>, params: SamplingParams) -> Chat {
        let (sink, events) = tokio::sync::mpsc::unbounded_channel();
        self.submit_to(Arc::new(sink), events, label, messages, params)
            .await
    }

    /// Submits with events going to `sink` (which several chats may share).
    async fn submit_to(
        &self,
        sink: EventSink,
        events: tokio::sync::mpsc::UnboundedReceiver<(JobId, JobEvent)>,
        label: &str,
        messages: Vec<ChatTurn>,
        params: SamplingParams,
    ) -> Chat {
        let lease = self.manager.acquire(|_| {}).await.expect("the model loads");
        let plan = lease.plan(&messages, &params).expect("a plan");
        let ctx = RunContext::detached(
            Arc::clone(&self.device),
            Emitter::new(labelled(label), sink),
        );
        let cancel = ctx.cancel.clone();
        let (reply, answer) = oneshot::channel();
        self.engines.submit(Request {
            plan,
            params,
            ctx,
            lease,
            reply,
        });
        Chat {
            events,
            answer,
            cancel,
        }
    }

    /// The answer to `text` generated alone, outside the engine.
    fn alone(&self, text: &str, params: &SamplingParams) -> String {
        let model = LocalLoader {
            path: embedded_path(),
            device: Arc::clone(&self.device),
            faults: None,
        }
        .load(&|_| {}, &CancellationToken::new())
        .unwrap();
        model
            .generate(&ask(text), params, &CancellationToken::new(), &mut |_| {})
            .unwrap()
            .text
    }
}

const QUESTIONS: [&str; 4] = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three prime numbers.",
    "Explain in one sentence what a tensor is, for a child who likes trains and numbers.",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_answers_equal_the_same_answers_alone_and_stream_only_their_own_tokens() {
    // Prompts read in one chunk each, as `generate` does (chunked prefill against a single pass
    // is turnstile-llm's parity test).
    let rig = rig(8, 16384, 128);
    let params = greedy(24);
    let mut chats = vec![];
    for (i, q) in QUESTIONS.iter().enumerate() {
        chats.push(rig.submit(&format!("c{i}"), ask(q), params.clone()).await);
    }
    for (i, chat) in chats.into_iter().enumerate() {
        let (answer, streamed, events) = chat.finish().await;
        let g = answer.expect("answered");
        assert_eq!(streamed, g.text, "the token events add up to the answer");
        assert!(matches!(events.first(), Some(JobEvent::Started { .. })));
        assert_eq!(g.text, rig.alone(QUESTIONS[i], &params), "question {i}");
        assert!(g.completion_tokens > 0 && g.completion_tokens <= 24);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_cap_the_chats_decoded_at_once_and_admit_in_arrival_order() {
    let rig = rig(2, 16384, 128);
    // Every chat's events go to one channel: its order is the order they happened in.
    let (sink, mut all) = tokio::sync::mpsc::unbounded_channel();
    let mut answers = vec![];
    for i in 0..5 {
        let (_, unused) = tokio::sync::mpsc::unbounded_channel();
        let chat = rig
            .submit_to(
                Arc::new(sink.clone()),
                unused,
                &format!("c{i}"),
                ask(QUESTIONS[i % 4]),
                greedy(12),
            )
            .await;
        answers.push(chat.answer);
    }
    for a in answers {
        a.await.unwrap().expect("answered");
    }
    drop(sink);
    let mut log = vec![];
    while let Some((id, e)) = all.recv().await {
        log.push((label_of(id), e));
    }
    let starts: Vec<&str> = log
        .iter()
        .filter(|(_, e)| matches!(e, JobEvent::Started { .. }))
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        starts,
        ["c0", "c1", "c2", "c3", "c4"],
        "admitted in arrival order"
    );
    // Each chat is busy from its start to its last token; never more than two at once.
    let span = |id: &str| {
        let first = log.iter().position(|(i, _)| i == id).unwrap();
        let last = log.iter().rposition(|(i, _)| i == id).unwrap();
        (first, last)
    };
    let spans: Vec<(usize, usize)> = (0..5).map(|i| span(&format!("c{i}"))).collect();
    for at in 0..log.len() {
        let busy = spans.iter().filter(|(a, b)| *a <= at && at <= *b).count();
        assert!(busy <= 2, "{busy} chats decoding at event {at}");
    }
    assert!(
        spans[2].0 > spans[0].1.min(spans[1].1),
        "the third starts only after one of the first two ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_the_kv_budget_fails_and_one_that_must_wait_holds_later_ones_back() {
    // Room for one answer at a time: a ~30-token prompt plus 16 tokens.
    let rig = rig(8, 64, 128);
    let too_big = rig.submit("big", ask(QUESTIONS[3]), greedy(100)).await;
    let (answer, _, _) = too_big.finish().await;
    assert!(
        matches!(answer, Err(GenerateError::OverBudget { budget: 64, .. })),
        "{answer:?}"
    );
    let first = rig.submit("first", ask(QUESTIONS[0]), greedy(16)).await;
    let second = rig.submit("second", ask(QUESTIONS[1]), greedy(16)).await;
    let (a, _, _) = first.finish().await;
    let (b, _, _) = second.finish().await;
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_lane_ends_within_a_step_and_the_others_are_undisturbed() {
    let rig = rig(8, 16384, 128);
    let long = SamplingParams {
        max_tokens: 400,
        temperature: 0.0,
        ..SamplingParams::default()
    };
    let victim = rig
        .submit(
            "victim",
            ask("Write a long essay about the history of computing."),
            long,
        )
        .await;
    let params = greedy(20);
    let others = vec![
        rig.submit("a", ask(QUESTIONS[0]), params.clone()).await,
        rig.submit("b", ask(QUESTIONS[2]), params.clone()).await,
    ];
    // Let the victim stream a little, then cancel it.
    let mut victim = victim;
    let mut tokens = 0;
    while tokens < 3 {
        if let Some((_, JobEvent::Progress(Progress::Token { .. }))) = victim.events.recv().await {
            tokens += 1;
        }
    }
    let cancelled_at = Instant::now();
    victim.cancel.cancel();
    let (answer, _, _) = victim.finish().await;
    assert!(
        matches!(answer, Err(GenerateError::Cancelled)),
        "{answer:?}"
    );
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(2),
        "freed within a step: {:?}",
        cancelled_at.elapsed()
    );
    for (chat, q) in others.into_iter().zip([QUESTIONS[0], QUESTIONS[2]]) {
        let (answer, streamed, _) = chat.finish().await;
        let g = answer.expect("answered");
        assert_eq!(streamed, g.text);
        assert_eq!(g.text, rig.alone(q, &params));
        assert!(matches!(
            g.finish_reason,
            FinishReason::Stop | FinishReason::Length
        ));
    }
}
