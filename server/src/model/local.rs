//! The local engine: a llama-architecture GGUF (by default the embedded SmolLM2) run with
//! `candle-transformers`' quantized llama on the shared device. [`LocalLoader`] is the model
//! manager's loader; [`LocalModel::generate`] answers one conversation: it renders the model's
//! chat template, trims the oldest history to fit the context, reads the prompt in one forward
//! pass, then samples token by token, handing out text only as whole UTF-8 characters and never
//! any part of a stop sequence.
//!
//! Concurrency: the loaded model is immutable and shared; each generation clones the weights
//! (reference-counted tensors, so cheap) to get a KV cache of its own, and runs on the caller's
//! blocking thread. It checks the cancellation token before every forward pass.

use super::manager::Loader;
use super::sampling::SamplingParams;
use super::template::ChatTemplate;
use super::tokenizer::tokenizer_from_gguf;
use crate::device::DeviceHost;
use app::chat::{ChatTurn, FinishReason, Role};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::quantized_llama::ModelWeights;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Loads a GGUF file onto the device.
pub struct LocalLoader {
    /// The model file.
    pub path: PathBuf,
    /// The device the weights go to.
    pub device: Arc<DeviceHost>,
}

/// A loaded model.
pub struct LocalModel {
    /// The weights (with an empty KV cache; generations clone them).
    weights: ModelWeights,
    /// The file's own tokenizer.
    tokenizer: tokenizers::Tokenizer,
    /// The file's own chat template.
    template: ChatTemplate,
    /// Where the weights live.
    device: Device,
    /// Tokens that end an answer.
    eos: Vec<u32>,
    /// The model's context length, in tokens.
    context: usize,
    /// Bytes of weights held.
    bytes: u64,
}

/// How one generation went.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// The answer (exactly the concatenation of the pieces handed out).
    pub text: String,
    /// Tokens in the prompt.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// From the call to the first generated token.
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
    /// The model or tokenizer failed; the text is for the log.
    #[error("{0}")]
    Model(String),
}

fn model_err(e: impl std::fmt::Display) -> GenerateError {
    GenerateError::Model(e.to_string())
}

fn meta_u32(content: &gguf_file::Content, key: &str) -> Option<u32> {
    content.metadata.get(key).and_then(|v| v.to_u32().ok())
}

fn meta_str<'a>(content: &'a gguf_file::Content, key: &str) -> Option<&'a str> {
    content
        .metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
}

impl Loader for LocalLoader {
    type Model = LocalModel;

    fn load(
        &self,
        progress: &dyn Fn(f32),
        cancel: &CancellationToken,
    ) -> Result<LocalModel, String> {
        let shown = self.path.display();
        let mut file = std::fs::File::open(&self.path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("the model file {shown} is missing (run scripts/model.sh)")
            }
            _ => format!("the model file {shown} cannot be read"),
        })?;
        let content = gguf_file::Content::read(&mut file)
            .map_err(|_| format!("{shown} is not a GGUF file"))?;
        let arch = meta_str(&content, "general.architecture").unwrap_or("unknown");
        if arch != "llama" {
            return Err(format!(
                "unsupported architecture {arch}: only llama is supported"
            ));
        }
        progress(0.05);
        let tokenizer = tokenizer_from_gguf(&content)?;
        let token = |key: &str| {
            meta_u32(&content, key)
                .and_then(|id| tokenizer.id_to_token(id))
                .unwrap_or_default()
        };
        let (bos, eos_text) = (
            token("tokenizer.ggml.bos_token_id"),
            token("tokenizer.ggml.eos_token_id"),
        );
        let template = ChatTemplate::new(
            meta_str(&content, "tokenizer.chat_template"),
            &bos,
            &eos_text,
        )?;
        let mut eos: Vec<u32> = ["<|im_end|>", "<|endoftext|>", "<|eot_id|>"]
            .iter()
            .filter_map(|t| tokenizer.token_to_id(t))
            .collect();
        eos.extend(meta_u32(&content, "tokenizer.ggml.eos_token_id"));
        let context = meta_u32(&content, "llama.context_length").unwrap_or(2048) as usize;
        let bytes = content
            .tensor_infos
            .values()
            .map(|t| {
                (t.shape.elem_count() / t.ggml_dtype.block_size() * t.ggml_dtype.type_size()) as u64
            })
            .sum();
        if cancel.is_cancelled() {
            return Err("the load was cancelled".into());
        }
        progress(0.1);
        let lease = self
            .device
            .lease()
            .map_err(|_| "the device could not be opened".to_string())?;
        let device = lease.device().clone();
        let weights = ModelWeights::from_gguf(content, &mut file, &device).map_err(|e| {
            tracing::error!(error = %e, "loading the weights failed");
            format!("the weights in {shown} could not be loaded")
        })?;
        progress(1.0);
        Ok(LocalModel {
            weights,
            tokenizer,
            template,
            device,
            eos,
            context,
            bytes,
        })
    }
}

/// Hands out text as whole characters, holding back anything that could begin a stop sequence.
struct Detokenizer<'a> {
    tokenizer: &'a tokenizers::Tokenizer,
    stop: &'a [String],
    ids: Vec<u32>,
    /// Bytes of the decoded text already handed out.
    emitted: usize,
    /// Everything handed out.
    text: String,
}

impl Detokenizer<'_> {
    /// Adds a token; hands out what became final; true when a stop sequence was reached.
    fn push(&mut self, id: u32, on_piece: &mut dyn FnMut(&str)) -> Result<bool, GenerateError> {
        self.ids.push(id);
        let full = self.tokenizer.decode(&self.ids, true).map_err(model_err)?;
        if full.ends_with('\u{FFFD}') {
            return Ok(false); // half a character so far
        }
        let mut end = full.len();
        let mut stopped = false;
        if let Some(at) = self.stop.iter().filter_map(|s| full.find(s.as_str())).min() {
            end = at;
            stopped = true;
        } else {
            for s in self.stop {
                for (i, _) in s.char_indices().skip(1) {
                    if full.ends_with(&s[..i]) {
                        end = end.min(full.len() - i);
                    }
                }
            }
        }
        if end > self.emitted && full.is_char_boundary(end) && full.is_char_boundary(self.emitted) {
            let piece = &full[self.emitted..end];
            on_piece(piece);
            self.text.push_str(piece);
            self.emitted = end;
        }
        Ok(stopped)
    }
}

impl LocalModel {
    /// Bytes of weights held.
    pub fn memory_bytes(&self) -> u64 {
        self.bytes
    }

    /// The prompt's tokens: the template over the newest messages that fit with room for at
    /// least `room` tokens of answer (system messages are kept).
    fn prompt(&self, messages: &[ChatTurn], room: usize) -> Result<Vec<u32>, GenerateError> {
        let system: Vec<ChatTurn> = messages
            .iter()
            .take_while(|m| m.role == Role::System)
            .cloned()
            .collect();
        let rest = &messages[system.len()..];
        for skip in 0..rest.len().max(1) {
            let mut turns = system.clone();
            turns.extend_from_slice(&rest[skip.min(rest.len())..]);
            let text = self
                .template
                .render(&turns, true)
                .map_err(GenerateError::Model)?;
            let ids = self
                .tokenizer
                .encode(text, false)
                .map_err(model_err)?
                .get_ids()
                .to_vec();
            if ids.len() + room <= self.context {
                return Ok(ids);
            }
            if skip + 1 >= rest.len() {
                return Err(GenerateError::PromptTooLong {
                    needed: ids.len() + room,
                    context: self.context,
                });
            }
        }
        Err(GenerateError::PromptTooLong {
            needed: self.context + 1,
            context: self.context,
        })
    }

    /// Answers `messages`, calling `on_piece` with each new piece of text.
    pub fn generate(
        &self,
        messages: &[ChatTurn],
        params: &SamplingParams,
        cancel: &CancellationToken,
        on_piece: &mut dyn FnMut(&str),
    ) -> Result<Generation, GenerateError> {
        let started = Instant::now();
        let prompt = self.prompt(messages, 1)?;
        let max_new = (params.max_tokens as usize).min(self.context - prompt.len());
        let mut weights = self.weights.clone();
        let sampling = if params.temperature <= 0.0 {
            Sampling::ArgMax
        } else {
            match params.top_p {
                Some(p) if p < 1.0 => Sampling::TopP {
                    p: f64::from(p),
                    temperature: f64::from(params.temperature),
                },
                _ => Sampling::All {
                    temperature: f64::from(params.temperature),
                },
            }
        };
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling);
        let mut detok = Detokenizer {
            tokenizer: &self.tokenizer,
            stop: &params.stop,
            ids: Vec::new(),
            emitted: 0,
            text: String::new(),
        };
        let mut input = prompt.clone();
        let mut position = 0;
        let mut generated: Vec<u32> = Vec::new();
        let mut first_token: Option<Instant> = None;
        let mut finish = FinishReason::Length;
        while generated.len() < max_new {
            if cancel.is_cancelled() {
                return Err(GenerateError::Cancelled);
            }
            let x = Tensor::new(input.as_slice(), &self.device)
                .and_then(|t| t.unsqueeze(0))
                .map_err(model_err)?;
            let logits = weights
                .forward(&x, position)
                .and_then(|l| l.squeeze(0))
                .map_err(model_err)?;
            position += input.len();
            let logits = if params.repeat_penalty == 1.0 || generated.is_empty() {
                logits
            } else {
                let from = generated.len().saturating_sub(params.repeat_last_n);
                candle_transformers::utils::apply_repeat_penalty(
                    &logits,
                    params.repeat_penalty,
                    &generated[from..],
                )
                .map_err(model_err)?
            };
            let next = sampler.sample(&logits).map_err(model_err)?;
            first_token.get_or_insert_with(Instant::now);
            if self.eos.contains(&next) {
                finish = FinishReason::Stop;
                break;
            }
            generated.push(next);
            if detok.push(next, on_piece)? {
                finish = FinishReason::Stop;
                break;
            }
            input = vec![next];
        }
        let first = first_token.unwrap_or_else(Instant::now);
        Ok(Generation {
            text: detok.text,
            prompt_tokens: prompt.len() as u32,
            completion_tokens: generated.len() as u32,
            time_to_first_token: first.duration_since(started),
            decode_time: first.elapsed(),
            finish_reason: finish,
        })
    }
}

#[cfg(test)]
#[path = "local_tests.rs"]
pub(crate) mod tests;
