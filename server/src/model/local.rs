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
use super::sampling::{SamplingParams, TextStream};
use super::template::ChatTemplate;
use super::tokenizer::tokenizer_from_gguf;
use crate::device::DeviceHost;
use app::chat::{ChatTurn, FinishReason, Role};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::{ModelWeights, MAX_SEQ_LEN};
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
    /// Test-only faults (a failing or stalling load); `None` outside the server.
    pub faults: Option<Arc<crate::faults::Faults>>,
}

/// A loaded model. Immutable: share it (`Send + Sync`) and call [`LocalModel::generate`] from
/// any number of blocking threads.
pub struct LocalModel {
    /// The file's stem, e.g. `SmolLM2-135M-Instruct.Q8_0`.
    name: String,
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
    /// The context, in tokens: the file's `llama.context_length`, at most what candle's llama
    /// has rotary tables for ([`MAX_SEQ_LEN`]).
    context: usize,
    /// Bytes of weights held (the sum of the tensors' sizes in the file).
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
        let cancelled = || -> Result<(), String> {
            match cancel.is_cancelled() {
                true => Err("the load was cancelled".into()),
                false => Ok(()),
            }
        };
        if let Some(faults) = &self.faults {
            if let Some(stall) = faults.take_load_stall() {
                let until = Instant::now() + stall;
                while Instant::now() < until {
                    cancelled()?;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            if faults.fires(crate::faults::Fault::ModelLoadFail) {
                return Err("injected fault: the model failed to load".into());
            }
        }
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
        cancelled()?;
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
        eos.sort_unstable();
        eos.dedup();
        let context = meta_u32(&content, "llama.context_length")
            .map_or(2048, |n| n as usize)
            .min(MAX_SEQ_LEN);
        let bytes = content
            .tensor_infos
            .values()
            .map(|t| {
                (t.shape.elem_count() / t.ggml_dtype.block_size() * t.ggml_dtype.type_size()) as u64
            })
            .sum();
        cancelled()?;
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
        cancelled()?;
        progress(1.0);
        let name = self
            .path
            .file_stem()
            .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
        Ok(LocalModel {
            name,
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

impl LocalModel {
    /// The model's name: its file's stem.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes of weights held.
    pub fn memory_bytes(&self) -> u64 {
        self.bytes
    }

    /// The context, in tokens: prompt and answer together.
    pub fn context_length(&self) -> usize {
        self.context
    }

    /// The token ids that end an answer.
    pub fn eos_tokens(&self) -> &[u32] {
        &self.eos
    }

    /// The template rendered over `turns`, ready for the answer, as tokens.
    fn encode(&self, turns: &[ChatTurn]) -> Result<Vec<u32>, GenerateError> {
        let text = self
            .template
            .render(turns, true)
            .map_err(GenerateError::Model)?;
        Ok(self
            .tokenizer
            .encode(text, false)
            .map_err(model_err)?
            .get_ids()
            .to_vec())
    }

    /// The prompt's tokens. Leading system messages are always kept; the oldest of the rest are
    /// dropped until the prompt leaves room for `room` tokens of answer (the kept history starts
    /// at a user message where it can). If even the last message leaves no such room, the prompt
    /// is that message alone as long as one token of answer fits.
    fn prompt(&self, messages: &[ChatTurn], room: usize) -> Result<Vec<u32>, GenerateError> {
        let keep = messages
            .iter()
            .take_while(|m| m.role == Role::System)
            .count();
        let (system, rest) = messages.split_at(keep);
        let starts: Vec<usize> = (0..rest.len().max(1))
            .filter(|&i| i == 0 || i + 1 >= rest.len() || rest[i].role == Role::User)
            .collect();
        let with_start = |start: usize| {
            let mut turns = system.to_vec();
            turns.extend_from_slice(&rest[start.min(rest.len())..]);
            self.encode(&turns)
        };
        let fits = |ids: &[u32], room: usize| ids.len() + room.max(1) <= self.context;
        // The whole history, usually.
        let all = with_start(starts[0])?;
        if fits(&all, room) || starts.len() == 1 {
            return if fits(&all, 1) {
                Ok(all)
            } else {
                Err(GenerateError::PromptTooLong {
                    needed: all.len() + 1,
                    context: self.context,
                })
            };
        }
        let last = with_start(starts[starts.len() - 1])?;
        if !fits(&last, room) {
            return if fits(&last, 1) {
                Ok(last)
            } else {
                Err(GenerateError::PromptTooLong {
                    needed: last.len() + 1,
                    context: self.context,
                })
            };
        }
        // Fewer messages, fewer tokens: find the earliest start that fits by bisection.
        let (mut bad, mut good, mut ids) = (0, starts.len() - 1, last);
        while good - bad > 1 {
            let mid = (bad + good) / 2;
            let candidate = with_start(starts[mid])?;
            if fits(&candidate, room) {
                (good, ids) = (mid, candidate);
            } else {
                bad = mid;
            }
        }
        Ok(ids)
    }

    /// Answers `messages` on the calling thread, calling `on_piece` with each new piece of text
    /// (whole characters, never part of a stop sequence). Checks `cancel` before every forward
    /// pass.
    pub fn generate(
        &self,
        messages: &[ChatTurn],
        params: &SamplingParams,
        cancel: &CancellationToken,
        on_piece: &mut dyn FnMut(&str),
    ) -> Result<Generation, GenerateError> {
        let started = Instant::now();
        let prompt = self.prompt(messages, params.max_tokens as usize)?;
        let max_new = (params.max_tokens as usize).min(self.context - prompt.len());
        // A clone shares the weights (reference-counted) and brings an empty KV cache of its own.
        let mut weights = self.weights.clone();
        let mut sampler = params.sampler();
        let mut stream = TextStream::new(&self.tokenizer, &params.stop);
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
                .and_then(|l| params.penalize(l, &generated))
                .map_err(model_err)?;
            position += input.len();
            let next = sampler.sample(&logits).map_err(model_err)?;
            first_token.get_or_insert_with(Instant::now);
            if self.eos.contains(&next) {
                finish = FinishReason::Stop;
                break;
            }
            generated.push(next);
            if stream.push(next, on_piece).map_err(GenerateError::Model)? {
                finish = FinishReason::Stop;
                break;
            }
            input = vec![next];
        }
        let text = stream.finish(on_piece).map_err(GenerateError::Model)?;
        let first = first_token.unwrap_or_else(Instant::now);
        Ok(Generation {
            text,
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
