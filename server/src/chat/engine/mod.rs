//! The step engine: many conversations decoded together on one loaded model (continuous
//! batching, after text-generation-inference's router and llama.cpp's server loop).
//!
//! Chats come from the scheduler's lane line (the fair queue is the order of admission): a chat
//! job, once its model is loaded and its prompt planned, hands the engine a [`Request`] and
//! waits for its answer. The engine runs a loop while any conversation is active. Each turn:
//! drop lanes that ended or were cancelled, admit waiting requests in arrival order up to
//! `lanes` and the KV-cache budget (each reserves its prompt plus its `max_tokens`), compose one
//! batch (every decoding lane's next token, then prompt chunks up to `max_step_tokens`), run one
//! forward pass on the device, sample every lane in parallel and stream each new piece at once.
//!
//! Each step is one task on the device's FIFO queue, so calculator jobs queued meanwhile run
//! between two steps: a calculator job waits for at most the step in progress, not for answers.
//!
//! Concurrency: one engine task per loaded model owns the lanes and the waiting requests; it
//! moves the lanes onto a device thread for a step and gets them back through a oneshot, so
//! exactly one side touches them at a time. Requests reach it through an unbounded channel. An
//! engine with nothing to do closes its channel and ends (dropping its hold on the model, which
//! may then be unloaded); the next request starts a new one. [`LaneBoard`] is the engine's
//! published view of its lanes for waits and stats, behind a small lock never held across an
//! `.await`.

mod board;
mod compose;
mod lanes;
#[cfg(test)]
mod tests;

pub use board::LaneBoard;

use crate::device::DeviceHost;
use crate::job::RunContext;
use crate::model::local::{GenerateError, Generation, LocalLoader, LocalModel, Plan};
use crate::model::manager::ModelLease;
use crate::model::sampling::SamplingParams;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The engine's limits.
#[derive(Clone, Copy, Debug)]
pub struct EngineConfig {
    /// Conversations decoded at once.
    pub lanes: usize,
    /// Tokens of KV cache all lanes together may reserve.
    pub kv_cache_tokens: usize,
    /// Most tokens one step feeds the model (decodes first, then prompt chunks).
    pub max_step_tokens: usize,
    /// Test mode only: a pause per step on the device, for deterministically slow answers.
    pub step_delay: Duration,
}

/// A chat handed to the engine.
pub struct Request {
    /// The prompt and the answer's length.
    pub plan: Plan,
    /// How to sample.
    pub params: SamplingParams,
    /// The job's context: [`RunContext::begin`] at admission, its cancellation and its events.
    pub ctx: RunContext,
    /// Keeps the model loaded (and marks it used when the answer ends).
    pub lease: ModelLease<LocalLoader>,
    /// Where the answer goes; a dropped receiver means nobody waits any more.
    pub reply: oneshot::Sender<Result<Generation, GenerateError>>,
}

/// A running engine: its queue of requests, and the model it serves.
pub(crate) struct Running {
    /// Requests to the engine task.
    tx: mpsc::UnboundedSender<Request>,
    /// The model it serves (a new load gets a new engine).
    model: std::sync::Weak<LocalModel>,
    /// Which engine this is (it clears the slot only if it still names it).
    id: u64,
}

/// The running engine, if any. An engine with nothing to do clears it as it ends, under its
/// lock, so a request is either handed to a live engine or starts a new one.
pub(crate) type Slot = Mutex<Option<Running>>;

/// Starts engines on demand, one per loaded model, and hands them requests.
pub struct Engines {
    /// The limits every engine runs with.
    config: EngineConfig,
    /// The device the steps run on.
    device: Arc<DeviceHost>,
    /// The engine now running, if any.
    running: Arc<Slot>,
    /// Engines started so far (their ids).
    started: std::sync::atomic::AtomicU64,
    /// The lanes' published state (shared by successive engines).
    board: Arc<LaneBoard>,
}

impl Engines {
    /// No engine yet; one starts with the first request.
    pub fn new(config: EngineConfig, device: Arc<DeviceHost>) -> Self {
        Engines {
            board: Arc::new(LaneBoard::new(config.lanes)),
            config,
            device,
            running: Arc::new(Mutex::new(None)),
            started: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The engines' limits.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The lanes' published state: waits and stats.
    pub fn board(&self) -> &Arc<LaneBoard> {
        &self.board
    }

    /// Hands `request` to the engine of its model, starting one if none runs (or the one that
    /// runs serves an older load). Must be called within the Tokio runtime.
    pub fn submit(&self, mut request: Request) {
        let model = Arc::clone(request.lease.model());
        let mut running = self.running.lock();
        if let Some(r) = running.as_ref() {
            if r.model.upgrade().is_some_and(|m| Arc::ptr_eq(&m, &model)) {
                match r.tx.send(request) {
                    Ok(()) => return,
                    // Its task is gone (it panicked): start another.
                    Err(mpsc::error::SendError(back)) => request = back,
                }
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(request);
        let id = self
            .started
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *running = Some(Running {
            tx,
            model: Arc::downgrade(&model),
            id,
        });
        lanes::spawn(lanes::EngineParts {
            model,
            config: self.config,
            device: Arc::clone(&self.device),
            board: Arc::clone(&self.board),
            rx,
            slot: Arc::clone(&self.running),
            id,
        });
    }
}
