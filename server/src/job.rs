//! The work a job does, as the scheduler carries it. A calculator job is the wire [`CalcJob`] as
//! sent; a chat job is what the chat service made of the wire `ChatJob`: the whole conversation
//! the model must read (history from the store plus the new message) and the sampling settings.
//! Plain data; no concurrency of its own.

use app::chat::ChatTurn;
use app::protocol::CalcJob;

/// A job for the device.
#[derive(Clone, Debug, PartialEq)]
pub enum Work {
    /// A tensor calculator job.
    Calc(CalcJob),
    /// A chat completion.
    Chat(ChatWork),
}

impl Work {
    /// A short label for logs, stats and the public queue listing (never the job's content).
    pub fn kind(&self) -> &'static str {
        match self {
            Work::Calc(_) => "calc",
            Work::Chat(_) => "chat",
        }
    }
}

/// A chat completion: the conversation to answer, oldest message first.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatWork {
    /// The messages the model reads; the last is the one it answers.
    pub messages: Vec<ChatTurn>,
    /// How to sample; `None` fields take the configured defaults.
    pub params: ChatParams,
}

/// Sampling settings a request may override.
#[derive(Clone, Debug, Default, PartialEq)]
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

/// The scheduler's executor: calculator jobs on the device, chat jobs through the chat engine.
pub struct JobExecutor {
    /// The tensor calculator.
    pub calc: crate::calc::Calculator,
    /// The chat model.
    pub chat: std::sync::Arc<crate::chat::ChatEngine>,
}

impl crate::scheduler::Executor for JobExecutor {
    fn validate(&self, work: &Work) -> Result<(), crate::error::JobError> {
        match work {
            Work::Calc(c) => self.calc.validate(c),
            Work::Chat(c) => self.chat.validate(c),
        }
    }

    fn resource(&self, work: &Work) -> crate::scheduler::Resource {
        match work {
            Work::Calc(_) => crate::scheduler::Resource::Device,
            Work::Chat(_) => self.chat.resource(),
        }
    }

    fn lane_eta(&self, position: u64) -> Option<std::time::Duration> {
        self.chat.lane_eta(position)
    }

    fn run(
        self: std::sync::Arc<Self>,
        work: Work,
        ctx: crate::scheduler::RunContext,
    ) -> futures::future::BoxFuture<
        'static,
        Result<crate::scheduler::Outcome, crate::error::JobError>,
    > {
        match work {
            Work::Calc(c) => Box::pin(self.calc.run(c, ctx)),
            Work::Chat(c) => Box::pin(std::sync::Arc::clone(&self.chat).run(c, ctx)),
        }
    }
}
