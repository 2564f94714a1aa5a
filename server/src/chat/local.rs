//! Answers with the local model: waits for the model manager (telling the owner "loading model"
//! meanwhile), plans the prompt on a blocking thread, then hands the chat to the step engine,
//! which admits it into a lane (`started`), streams its tokens and replies with the answer.
//!
//! Concurrency: runs as the job's runner future, on the scheduler's task (CPU work goes to a
//! blocking thread); the chat holds a lane, not a device place: the
//! engine's steps share the device with calculator jobs. Cancel, Stop, a timeout or an owner gone
//! past the resume window fire the job's token, and the engine frees the lane within one step.

use super::engine::{Engines, Request};
use crate::error::JobError;
use crate::job::{Outcome, Progress, RunContext};
use crate::model::local::{GenerateError, LocalLoader};
use crate::model::manager::{ModelError, ModelManager};
use crate::model::sampling::SamplingParams;
use app::chat::{ChatTurn, ChatUsage};
use std::sync::Arc;
use tokio::sync::oneshot;

/// A generation error as the job's owner hears it.
fn job_error(e: GenerateError) -> JobError {
    match e {
        GenerateError::Cancelled => JobError::Cancelled,
        GenerateError::PromptTooLong { .. } => JobError::InvalidInput(
            "the conversation is too long for the model's context; start a new one".into(),
        ),
        GenerateError::OverBudget { needed, budget } => JobError::InvalidInput(format!(
            "the answer needs {needed} tokens of memory (prompt and max_tokens); the server \
             holds {budget}: ask for fewer tokens or start a new conversation"
        )),
        GenerateError::DeviceOpen => JobError::DeviceOpen,
        GenerateError::Model(e) => {
            tracing::error!(error = %e, "generation failed");
            JobError::DeviceFailed
        }
    }
}

/// Generates the answer to `messages` with the managed local model, in one of the engine's
/// lanes.
pub async fn run(
    manager: &Arc<ModelManager<LocalLoader>>,
    engines: &Engines,
    params: SamplingParams,
    messages: Vec<ChatTurn>,
    ctx: RunContext,
) -> Result<Outcome, JobError> {
    let events = ctx.events.clone();
    let lease = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => return Err(JobError::Cancelled),
        lease = manager.acquire(|progress| { events.progress(Progress::Loading { progress }); }) => {
            lease.map_err(|ModelError::Unavailable(why)| JobError::ModelUnavailable(why))?
        }
    };
    // Rendering the template and tokenizing a long history is CPU work: off the runtime.
    let model = Arc::clone(lease.model());
    let planned = {
        let params = params.clone();
        tokio::task::spawn_blocking(move || model.plan(&messages, &params))
            .await
            .map_err(|_| JobError::Internal)?
    };
    let plan = planned.map_err(job_error)?;
    let (reply, answer) = oneshot::channel();
    engines.submit(Request {
        plan,
        params,
        ctx,
        lease,
        reply,
    });
    // A dropped reply means the engine lost the lane (its step panicked or the device is gone).
    let generation = answer
        .await
        .map_err(|_| JobError::DeviceFailed)?
        .map_err(job_error)?;
    let decode_secs = generation.decode_time.as_secs_f64();
    let after_first = generation.completion_tokens.saturating_sub(1);
    Ok(Outcome::Chat(ChatUsage {
        prompt_tokens: generation.prompt_tokens,
        completion_tokens: generation.completion_tokens,
        time_to_first_token_ms: generation.time_to_first_token.as_secs_f64() * 1e3,
        tokens_per_second: if decode_secs > 0.0 {
            f64::from(after_first) / decode_secs
        } else {
            0.0
        },
        finish_reason: generation.finish_reason,
    }))
}
