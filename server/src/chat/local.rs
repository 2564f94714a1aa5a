//! Answers with the local model: waits for the model manager (telling the owner "loading model"
//! meanwhile), then generates on a blocking thread with a device lease, sending each piece of text
//! as a token event as soon as it is whole UTF-8.
//!
//! Concurrency: runs on a device thread (the model wait through the runtime's handle), so the job
//! holds its place on the device throughout.
//! Generation checks the job's cancellation token before every token, so a cancel or a
//! disconnect frees the device within one token.

use crate::error::JobError;
use crate::model::local::{GenerateError, LocalLoader};
use crate::model::manager::{ModelError, ModelManager};
use crate::model::sampling::SamplingParams;
use crate::scheduler::{JobEvent, Outcome, RunContext};
use app::chat::{ChatTurn, ChatUsage};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Generates the answer to `messages` with the managed local model.
pub async fn run(
    manager: &Arc<ModelManager<LocalLoader>>,
    params: SamplingParams,
    messages: Vec<ChatTurn>,
    token_delay: Duration,
    ctx: RunContext,
) -> Result<Outcome, JobError> {
    let manager = Arc::clone(manager);
    let runtime = tokio::runtime::Handle::current();
    let (cancel, events) = (ctx.cancel.clone(), ctx.events.clone());
    // The whole answer, model load included, happens on the device thread: the job holds the
    // device from its start, and `started` precedes `loading` and every token.
    let (generation, started, generate_started) = ctx
        .on_device(move |_device| {
            let started = Instant::now();
            let model = runtime.block_on(async {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => Err(JobError::Cancelled),
                    model = manager.acquire(|progress| { events.send(JobEvent::Loading { progress }); }) => {
                        model.map_err(|ModelError::Unavailable(why)| JobError::ModelUnavailable(why))
                    }
                }
            })?;
            let t = Instant::now();
            let mut on_piece = |piece: &str| {
                events.send(JobEvent::Token {
                    text: piece.to_owned(),
                });
                if !token_delay.is_zero() {
                    std::thread::sleep(token_delay);
                }
            };
            match model.generate(&messages, &params, &cancel, &mut on_piece) {
                Ok(g) => Ok((g, started, t)),
                Err(GenerateError::Cancelled) => Err(JobError::Cancelled),
                Err(GenerateError::PromptTooLong { .. }) => Err(JobError::InvalidInput(
                    "the conversation is too long for the model's context; start a new one".into(),
                )),
                Err(e) => {
                    tracing::error!(error = %e, "generation failed");
                    Err(JobError::DeviceFailed)
                }
            }
        })
        .await?;
    let ttft = generate_started.duration_since(started) + generation.time_to_first_token;
    let decode_secs = generation.decode_time.as_secs_f64();
    let after_first = generation.completion_tokens.saturating_sub(1);
    Ok(Outcome::Chat(ChatUsage {
        prompt_tokens: generation.prompt_tokens,
        completion_tokens: generation.completion_tokens,
        time_to_first_token_ms: ttft.as_secs_f64() * 1e3,
        tokens_per_second: if decode_secs > 0.0 {
            f64::from(after_first) / decode_secs
        } else {
            0.0
        },
        finish_reason: generation.finish_reason,
    }))
}
