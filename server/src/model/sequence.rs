//! One answer being generated: its prompt (read into its own KV cache in chunks), its sampler,
//! the tokens it generated and the text handed out so far. The step engine keeps one per lane
//! and feeds all of them to one forward pass per step; [`super::local::LocalModel::generate`]
//! drives a single one. Both use the same three calls: [`Sequence::chunk`] (what to feed next),
//! then, after the forward pass, [`Sequence::fed`] and, when the chunk asked for logits,
//! [`Sequence::accept`].
//!
//! Concurrency: plain data owned by whoever steps it (moved onto the device thread for a step
//! and back); its KV cache is freed when it is dropped.

use super::sampling::{SamplingParams, TextStream};
use app::chat::FinishReason;
use std::time::{Duration, Instant};
use turnstile_llm::{Chunk, Sampler, SeqCache};

/// How one generation went.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// The answer (exactly the concatenation of the pieces handed out).
    pub text: String,
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// From the start (admission into a lane) to the first generated token.
    pub time_to_first_token: Duration,
    /// From the first generated token to the end.
    pub decode_time: Duration,
    /// Why it ended.
    pub finish_reason: FinishReason,
}

/// Why a generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The cancellation token fired.
    #[error("cancelled")]
    Cancelled,
    /// Even the last message alone does not fit the context with room to answer.
    #[error("the prompt needs {needed} tokens; the context holds {context}")]
    PromptTooLong {
        /// Tokens needed (prompt plus at least one to generate).
        needed: usize,
        /// The model's context.
        context: usize,
    },
    /// The answer's KV cache (prompt plus `max_tokens`) is larger than the whole budget.
    #[error("the answer needs {needed} tokens of KV cache; the server holds {budget}")]
    OverBudget {
        /// Tokens the answer reserves.
        needed: usize,
        /// The engine's KV-cache budget, in tokens.
        budget: usize,
    },
    /// The device could not be opened for a step.
    #[error("the device failed to open")]
    DeviceOpen,
    /// The model or tokenizer failed; the text is for the log.
    #[error("{0}")]
    Model(String),
}

/// One answer in progress.
pub struct Sequence {
    /// The prompt's tokens.
    prompt: Vec<u32>,
    /// How many of them are in the cache.
    prefilled: usize,
    /// The last token sampled: the next input once the prompt is read.
    last: u32,
    /// This sequence's keys and values, sized for the prompt plus `max_new`.
    cache: SeqCache,
    /// Picks each token.
    sampler: Sampler,
    /// Turns tokens into pieces of text (whole characters, never a stop sequence).
    stream: TextStream,
    /// Tokens generated so far (the repeat penalty reads the recent ones).
    generated: Vec<u32>,
    /// Most tokens to generate.
    max_new: usize,
    /// Tokens that end the answer.
    eos: Vec<u32>,
    /// When it started (for the time to first token).
    started: Instant,
    /// When its first token was sampled.
    first_token: Option<Instant>,
    /// Why it ended, once it has.
    finish: Option<FinishReason>,
}

impl Sequence {
    /// A sequence that will read `prompt` into `cache` and answer with at most `max_new` tokens.
    pub(crate) fn new(
        prompt: Vec<u32>,
        max_new: usize,
        cache: SeqCache,
        params: &SamplingParams,
        stream: TextStream,
        eos: Vec<u32>,
    ) -> Self {
        Sequence {
            prompt,
            prefilled: 0,
            last: 0,
            cache,
            sampler: Sampler::new(&params.sampler()),
            stream,
            generated: Vec::new(),
            max_new,
            eos,
            started: Instant::now(),
            first_token: None,
            finish: None,
        }
    }

    /// Restarts the clock for the time to first token (at admission into a lane).
    pub fn restart_clock(&mut self) {
        self.started = Instant::now();
    }

    /// Tokens in the prompt.
    pub fn prompt_len(&self) -> usize {
        self.prompt.len()
    }

    /// Prompt tokens not yet read.
    pub fn prompt_left(&self) -> usize {
        self.prompt.len() - self.prefilled
    }

    /// Tokens of KV cache this sequence reserves (prompt plus its most tokens of answer).
    pub fn reserved_tokens(&self) -> usize {
        self.cache.capacity()
    }

    /// Tokens generated so far.
    pub fn generated(&self) -> usize {
        self.generated.len()
    }

    /// The most tokens it may still generate.
    pub fn max_new(&self) -> usize {
        self.max_new
    }

    /// Why it ended, if it has.
    pub fn finished(&self) -> Option<FinishReason> {
        self.finish
    }

    /// What to feed next: up to `budget` (at least 1) prompt tokens while the prompt is being
    /// read, else the last sampled token. Logits are wanted when the chunk ends the prompt or is
    /// a decode.
    pub fn chunk(&mut self, budget: usize) -> Chunk<'_> {
        if self.prefilled < self.prompt.len() {
            let end = self
                .prefilled
                .saturating_add(budget.max(1))
                .min(self.prompt.len());
            Chunk {
                tokens: &self.prompt[self.prefilled..end],
                cache: &mut self.cache,
                want_logits: end == self.prompt.len(),
            }
        } else {
            Chunk {
                tokens: std::slice::from_ref(&self.last),
                cache: &mut self.cache,
                want_logits: true,
            }
        }
    }

    /// Records that the chunk of `n` tokens from [`Sequence::chunk`] went through the model.
    pub fn fed(&mut self, n: usize) {
        if self.prefilled < self.prompt.len() {
            self.prefilled = (self.prefilled + n).min(self.prompt.len());
        }
    }

    /// Samples the next token from `logits` (the row for this sequence's last chunk), hands out
    /// what became final text, and says whether the answer ended (end of text, a stop sequence,
    /// or `max_new` tokens).
    pub fn accept(
        &mut self,
        logits: &mut [f32],
        on_piece: &mut dyn FnMut(&str),
    ) -> Result<Option<FinishReason>, GenerateError> {
        if self.finish.is_some() {
            return Ok(self.finish);
        }
        let next = self.sampler.sample(logits, &self.generated);
        self.first_token.get_or_insert_with(Instant::now);
        if self.eos.contains(&next) {
            self.finish = Some(FinishReason::Stop);
            return Ok(self.finish);
        }
        self.generated.push(next);
        self.last = next;
        if self
            .stream
            .push(next, on_piece)
            .map_err(GenerateError::Model)?
        {
            self.finish = Some(FinishReason::Stop);
        } else if self.generated.len() >= self.max_new {
            self.finish = Some(FinishReason::Length);
        }
        Ok(self.finish)
    }

    /// Ends the answer: hands out any text held back for a stop sequence that never came, and
    /// reports how it went. (A sequence ended early, e.g. by a shutdown, reports `length`.)
    pub fn finish(self, on_piece: &mut dyn FnMut(&str)) -> Result<Generation, GenerateError> {
        let text = self.stream.finish(on_piece).map_err(GenerateError::Model)?;
        let first = self.first_token.unwrap_or_else(Instant::now);
        Ok(Generation {
            text,
            prompt_tokens: self.prompt.len() as u32,
            completion_tokens: self.generated.len() as u32,
            time_to_first_token: first.saturating_duration_since(self.started),
            decode_time: first.elapsed(),
            finish_reason: self.finish.unwrap_or(FinishReason::Length),
        })
    }
}
