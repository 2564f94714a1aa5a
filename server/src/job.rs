//! The work a job does, as the scheduler carries it, and the server's one executor. A calculator
//! job is the wire [`CalcJob`] as sent; a chat job is what the chat service made of the wire
//! `ChatJob`: the whole conversation the model must read (history from the store plus the new
//! message) and the sampling settings.
//!
//! The executor ([`JobExecutor`]) only dispatches: the calculator and the chat service register
//! themselves as [`Handler`]s, so this module knows neither (they depend on it, not the other way
//! round). The type aliases name the scheduler's generic types for this server's jobs.
//!
//! Concurrency: plain data and immutable handlers shared by `Arc`.

use crate::device::Device;
use crate::error::JobError;
use app::chat::{ChatTurn, ChatUsage};
use app::protocol::CalcJob;
use app::tensor::Tensor;
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use turnstile_scheduler::{Executor, Job, Resource};

/// The in-process scheduler, for this server's jobs.
pub type LocalScheduler = turnstile_scheduler::Scheduler<JobExecutor>;
/// A job submitted to the in-process scheduler; dropping it cancels the job.
pub type LocalTicket = turnstile_scheduler::JobTicket<JobExecutor>;
/// What a dispatched job may use (device, cancellation, events).
pub type RunContext = turnstile_scheduler::RunContext<JobExecutor>;
/// Sends one job's events.
pub type Emitter = turnstile_scheduler::Emitter<JobExecutor>;
/// A job's event, as its owner hears it.
pub type JobEvent = turnstile_scheduler::Event<JobExecutor>;
/// Where a job's events go.
pub type EventSink = turnstile_scheduler::EventSink<JobExecutor>;

/// A job for the device. (Serialized only to cross between machines in the shared queue.)
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Work {
    /// A tensor calculator job.
    Calc(CalcJob),
    /// A chat completion.
    Chat(ChatWork),
}

impl Job for Work {
    fn kind(&self) -> &'static str {
        match self {
            Work::Calc(_) => "calc",
            Work::Chat(_) => "chat",
        }
    }

    /// A test-mode `sleep` job says how long it holds the device.
    fn cost_hint(&self) -> Option<Duration> {
        match self {
            Work::Calc(c) if c.op == app::protocol::Op::Sleep => c.sleep_duration(),
            _ => None,
        }
    }
}

/// A chat completion: the conversation to answer, oldest message first.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChatWork {
    /// The messages the model reads; the last is the one it answers.
    pub messages: Vec<ChatTurn>,
    /// How to sample; `None` fields take the configured defaults.
    pub params: ChatParams,
}

/// Sampling settings a request may override.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChatParams {
    /// Most tokens to generate (capped by the server's maximum).
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    pub top_p: Option<f32>,
    /// Stop sequences.
    pub stop: Vec<String>,
}

/// What a running job reports before its end.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Progress {
    /// (Chat) waiting for the model to load, with the fraction done when known.
    Loading {
        /// Fraction loaded.
        progress: Option<f32>,
    },
    /// (Chat) the next piece of the answer: whole UTF-8 characters.
    Token {
        /// The text to append.
        text: String,
    },
}

/// What a finished job produced.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// A calculator result.
    Tensor {
        /// The computed tensor.
        output: Tensor,
        /// Time spent computing.
        compute_ms: f64,
    },
    /// A chat answer, already streamed as tokens.
    Chat(ChatUsage),
}

/// Runs one kind of job for the executor.
pub trait Handler<J>: Send + Sync + 'static {
    /// Cheap checks at submission.
    fn validate(&self, job: &J) -> Result<(), JobError>;
    /// What the job waits for.
    fn resource(&self) -> Resource {
        Resource::Device
    }
    /// The expected wait at `position` of the lane line (lane jobs only).
    fn lane_eta(&self, _position: u64) -> Option<Duration> {
        None
    }
    /// Runs the job (see [`Executor::run`]'s contract).
    fn run(
        self: Arc<Self>,
        job: J,
        ctx: RunContext,
    ) -> BoxFuture<'static, Result<Outcome, JobError>>;
}

/// The scheduler's executor: calculator jobs on the device, chat jobs through the chat service.
pub struct JobExecutor {
    /// The tensor calculator.
    pub calc: Arc<dyn Handler<CalcJob>>,
    /// The chat service.
    pub chat: Arc<dyn Handler<ChatWork>>,
    /// Told each answered chat's usage (the server's metrics count them).
    pub on_answer: Arc<dyn Fn(&ChatUsage) + Send + Sync>,
}

impl Executor for JobExecutor {
    type Job = Work;
    type Device = Device;
    type Progress = Progress;
    type Output = Outcome;
    type Error = JobError;

    fn validate(&self, work: &Work) -> Result<(), JobError> {
        match work {
            Work::Calc(c) => self.calc.validate(c),
            Work::Chat(c) => self.chat.validate(c),
        }
    }

    fn resource(&self, work: &Work) -> Resource {
        match work {
            Work::Calc(_) => self.calc.resource(),
            Work::Chat(_) => self.chat.resource(),
        }
    }

    fn lane_eta(&self, position: u64) -> Option<Duration> {
        self.chat.lane_eta(position)
    }

    fn run(
        self: Arc<Self>,
        work: Work,
        ctx: RunContext,
    ) -> BoxFuture<'static, Result<Outcome, JobError>> {
        match work {
            Work::Calc(c) => Arc::clone(&self.calc).run(c, ctx),
            Work::Chat(c) => {
                let answer = Arc::clone(&self.chat).run(c, ctx);
                let on_answer = Arc::clone(&self.on_answer);
                Box::pin(async move {
                    let outcome = answer.await;
                    if let Ok(Outcome::Chat(usage)) = &outcome {
                        on_answer(usage);
                    }
                    outcome
                })
            }
        }
    }
}
