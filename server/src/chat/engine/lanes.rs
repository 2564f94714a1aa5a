//! The engine task and its lanes: admission (arrival order, lanes and KV-cache budget),
//! retirement (ended, cancelled, or nobody waiting), and the step it puts on the device.
//!
//! Concurrency: the task owns `pending` and `lanes`. For a step it moves the lanes into a device
//! task and awaits them back, so only one thread touches a lane at a time; the device thread
//! samples the lanes in parallel on the device's rayon pool, each lane touched by one worker.
//! Cancellation is seen at the next turn of the loop: a cancelled lane is gone within one step.

use super::board::{LaneBoard, LaneLoad};
use super::compose::compose;
use super::{EngineConfig, Request, Slot};
use crate::device::{DeviceHost, DeviceTask};
use crate::job::{Emitter, Progress};
use crate::model::local::{GenerateError, Generation, LocalLoader, LocalModel, Sequence};
use crate::model::manager::ModelLease;
use rayon::prelude::*;
use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Everything an engine task starts with.
pub(super) struct EngineParts {
    /// The model it serves.
    pub model: Arc<LocalModel>,
    /// Its limits.
    pub config: EngineConfig,
    /// Where its steps run.
    pub device: Arc<DeviceHost>,
    /// Where it publishes its lanes.
    pub board: Arc<LaneBoard>,
    /// Its requests.
    pub rx: mpsc::UnboundedReceiver<Request>,
    /// The engines' slot naming the running engine, which it clears as it ends.
    pub slot: Arc<Slot>,
    /// Its number in that slot.
    pub id: u64,
}

/// A conversation being decoded.
struct Lane {
    /// Its answer so far and its KV cache.
    seq: Sequence,
    /// Fires on cancel, Stop, timeout, or its owner gone past the resume window.
    cancel: CancellationToken,
    /// Its owner's events (tokens).
    events: Emitter,
    /// Where the answer goes.
    reply: oneshot::Sender<Result<Generation, GenerateError>>,
    /// Tokens of KV cache it reserves.
    reserved: usize,
    /// Keeps the model loaded while it decodes.
    _lease: ModelLease<LocalLoader>,
    /// Set when sampling it failed on the device.
    error: Option<GenerateError>,
}

/// How a step went, for the board.
struct StepReport {
    /// Time on the device.
    took: Duration,
    /// Prompt tokens read.
    prompt_tokens: usize,
    /// Lanes that decoded a token.
    decodes: usize,
}

struct Engine {
    model: Arc<LocalModel>,
    config: EngineConfig,
    device: Arc<DeviceHost>,
    board: Arc<LaneBoard>,
    rx: mpsc::UnboundedReceiver<Request>,
    slot: Arc<Slot>,
    id: u64,
    /// Requests not yet admitted, in arrival order.
    pending: VecDeque<Request>,
    /// Admitted conversations, in admission order.
    lanes: Vec<Lane>,
    /// Tokens of KV cache the lanes reserve.
    reserved: usize,
}

pub(super) fn spawn(parts: EngineParts) {
    let engine = Engine {
        model: parts.model,
        config: parts.config,
        device: parts.device,
        board: parts.board,
        rx: parts.rx,
        slot: parts.slot,
        id: parts.id,
        pending: VecDeque::new(),
        lanes: Vec::new(),
        reserved: 0,
    };
    tokio::spawn(engine.run());
}

impl Engine {
    async fn run(mut self) {
        loop {
            while let Ok(r) = self.rx.try_recv() {
                self.pending.push_back(r);
            }
            self.retire();
            self.admit();
            if self.lanes.is_empty() {
                if !self.pending.is_empty() {
                    continue; // every pending request was just answered or admitted
                }
                // Idle: end, unless a request arrived meanwhile. Under the slot's lock, so a
                // request is either already in the channel or goes to a new engine.
                let mut slot = self.slot.lock();
                match self.rx.try_recv() {
                    Ok(r) => self.pending.push_back(r),
                    Err(_) => {
                        if slot.as_ref().is_some_and(|r| r.id == self.id) {
                            *slot = None;
                        }
                        break;
                    }
                }
                continue;
            }
            self.step().await;
        }
        self.board.publish(Vec::new());
        tracing::debug!("chat engine idle; stopped");
    }

    /// Ends the lanes that finished, failed, were cancelled or that nobody waits for, and drops
    /// cancelled requests that were not admitted yet.
    fn retire(&mut self) {
        let mut i = 0;
        while i < self.lanes.len() {
            let lane = &self.lanes[i];
            let ended = lane.seq.finished().is_some() || lane.error.is_some();
            if !(ended || lane.cancel.is_cancelled() || lane.reply.is_closed()) {
                i += 1;
                continue;
            }
            let mut lane = self.lanes.remove(i);
            self.reserved -= lane.reserved;
            let result = if let Some(e) = lane.error.take() {
                Err(e)
            } else if !ended {
                Err(GenerateError::Cancelled)
            } else {
                let events = lane.events.clone();
                lane.seq.finish(&mut |piece: &str| {
                    events.progress(Progress::Token { text: piece.into() });
                })
            };
            if let Ok(g) = &result {
                self.board.record_answer(g.completion_tokens as usize);
            }
            let _ = lane.reply.send(result);
        }
        self.pending
            .retain(|r| !r.ctx.cancel.is_cancelled() && !r.reply.is_closed());
    }

    /// Admits waiting requests in arrival order while a lane is free and the head's reservation
    /// fits the KV budget (a later, smaller request does not pass the head: no starvation).
    fn admit(&mut self) {
        while self.lanes.len() < self.config.lanes.max(1) {
            let Some(front) = self.pending.front() else {
                return;
            };
            let need = front.plan.reserve();
            let budget = self.config.kv_cache_tokens;
            if need > budget {
                let r = self.pending.pop_front().expect("front exists");
                let _ = r.reply.send(Err(GenerateError::OverBudget {
                    needed: need,
                    budget,
                }));
                continue;
            }
            if self.reserved + need > budget {
                return;
            }
            let r = self.pending.pop_front().expect("front exists");
            if !r.ctx.begin() {
                let _ = r.reply.send(Err(GenerateError::Cancelled));
                continue;
            }
            let (prompt_len, max_new) = (r.plan.prompt.len(), r.plan.max_new);
            match self.model.sequence(r.plan, &r.params) {
                Ok(seq) => {
                    self.board.record_admitted(prompt_len, max_new);
                    self.reserved += need;
                    self.lanes.push(Lane {
                        seq,
                        cancel: r.ctx.cancel.clone(),
                        events: r.ctx.events.clone(),
                        reply: r.reply,
                        reserved: need,
                        _lease: r.lease,
                        error: None,
                    });
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not allocate a KV cache");
                    let _ = r.reply.send(Err(e));
                }
            }
        }
    }

    /// Runs one step on the device: every lane forward by one chunk.
    async fn step(&mut self) {
        let mut lanes = std::mem::take(&mut self.lanes);
        let model = Arc::clone(&self.model);
        let (budget, delay) = (self.config.max_step_tokens, self.config.step_delay);
        let (tx, rx) = oneshot::channel();
        let task: DeviceTask = Box::new(move |host| {
            let result = match host.lease() {
                Err(e) => {
                    tracing::error!(error = %e, "device failed to open");
                    host.report(Err("the device failed to open; the next job tries again"));
                    Err(GenerateError::DeviceOpen)
                }
                Ok(lease) => {
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        step(&model, &mut lanes, budget)
                    }))
                    .unwrap_or_else(|_| Err(GenerateError::Model("a step panicked".into())));
                    if !delay.is_zero() {
                        std::thread::sleep(delay);
                    }
                    drop(lease);
                    match &result {
                        Ok(_) => host.report(Ok(())),
                        Err(_) => host.report(Err("the device failed during a chat step")),
                    }
                    result
                }
            };
            let _ = tx.send((lanes, result));
        });
        if !self.device.submit(task) {
            // The device threads are gone (shutting down): the lanes went with the task, and
            // their dropped replies tell each job.
            self.reserved = 0;
            return;
        }
        match rx.await {
            Ok((lanes, Ok(report))) => {
                self.lanes = lanes;
                self.board
                    .record_step(report.took, report.prompt_tokens, report.decodes);
            }
            Ok((lanes, Err(e))) => {
                tracing::error!(error = %e, "a chat step failed; its lanes fail");
                for lane in lanes {
                    let e = match &e {
                        GenerateError::DeviceOpen => GenerateError::DeviceOpen,
                        other => GenerateError::Model(other.to_string()),
                    };
                    let _ = lane.reply.send(Err(e));
                }
                self.reserved = 0;
            }
            // The task was dropped unrun: its lanes' dropped replies tell each job.
            Err(_) => self.reserved = 0,
        }
        self.board.publish(
            self.lanes
                .iter()
                .map(|l| LaneLoad {
                    prompt_left: l.seq.prompt_left(),
                    generated: l.seq.generated(),
                    max_new: l.seq.max_new(),
                })
                .collect(),
        );
    }
}

/// One step on the device thread: composes the batch, runs the forward pass, then samples every
/// lane that got logits, in parallel on the current (the device's) rayon pool, streaming each
/// new piece to its owner at once.
fn step(
    model: &LocalModel,
    lanes: &mut [Lane],
    budget: usize,
) -> Result<StepReport, GenerateError> {
    let started = Instant::now();
    let lefts: Vec<usize> = lanes.iter().map(|l| l.seq.prompt_left()).collect();
    let plan = compose(&lefts, budget);
    let mut fed = vec![0usize; lanes.len()];
    let mut wants = vec![false; lanes.len()];
    let logits = {
        let mut chunks = Vec::with_capacity(lanes.len());
        for (i, lane) in lanes.iter_mut().enumerate() {
            if plan[i] == 0 {
                continue;
            }
            let chunk = lane.seq.chunk(plan[i]);
            fed[i] = chunk.tokens.len();
            wants[i] = chunk.want_logits;
            chunks.push(chunk);
        }
        model.forward(&mut chunks)?
    };
    let mut report = StepReport {
        took: Duration::ZERO,
        prompt_tokens: 0,
        decodes: 0,
    };
    for (i, lane) in lanes.iter_mut().enumerate() {
        if lefts[i] > 0 {
            report.prompt_tokens += fed[i];
        } else if fed[i] > 0 {
            report.decodes += 1;
        }
        lane.seq.fed(fed[i]);
    }
    let vocab = logits.vocab().max(1);
    let mut rows = logits.into_vec();
    let work: Vec<(&mut Lane, &mut [f32])> = lanes
        .iter_mut()
        .zip(&wants)
        .filter(|(_, want)| **want)
        .map(|(lane, _)| lane)
        .zip(rows.chunks_exact_mut(vocab))
        .collect();
    work.into_par_iter().for_each(|(lane, row)| {
        let events = &lane.events;
        let mut on_piece = |piece: &str| {
            events.progress(Progress::Token { text: piece.into() });
        };
        if let Err(e) = lane.seq.accept(row, &mut on_piece) {
            lane.error = Some(e);
        }
    });
    report.took = started.elapsed();
    Ok(report)
}
