//! The local model: a llama-architecture GGUF (by default the embedded SmolLM2) with its own
//! tokenizer and chat template, run by the project's batched forward pass (`turnstile-llm`; the
//! GGUF is read with candle). [`LocalLoader`] is the model manager's loader. [`LocalModel::plan`]
//! turns a conversation into a prompt: it renders the chat template and trims the oldest history
//! to fit the context. [`LocalModel::sequence`] gives that prompt a KV cache of its own, and the
//! step engine decodes many such sequences together ([`LocalModel::forward`]).
//! [`LocalModel::generate`] answers one conversation alone (tests, the decode benchmark).
//!
//! Concurrency: the loaded model is immutable and shared (`Send + Sync`); every sequence owns its
//! KV cache, so any number of them can be stepped, by one forward pass at a time per caller.

use super::manager::Loader;
use super::sampling::{SamplingParams, TextStream};
pub use super::sequence::{GenerateError, Generation, Sequence};
use super::template::ChatTemplate;
use super::tokenizer::tokenizer_from_gguf;
use crate::device::DeviceHost;
use app::chat::{ChatTurn, Role};
use candle_core::quantized::gguf_file;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use turnstile_llm::{Chunk, LlamaModel, Logits};

/// Loads a GGUF file onto the device.
pub struct LocalLoader {
    /// The model file.
    pub path: PathBuf,
    /// The device the weights go to.
    pub device: Arc<DeviceHost>,
    /// Test-only faults (a failing or stalling load); `None` outside the server.
    pub faults: Option<Arc<crate::faults::Faults>>,
}

/// A loaded model. Immutable: share it (`Send + Sync`).
pub struct LocalModel {
    /// The file's stem, e.g. `SmolLM2-135M-Instruct.Q8_0`.
    name: String,
    /// The weights and the batched forward pass.
    llm: LlamaModel,
    /// The file's own tokenizer (shared with every answer's text stream).
    tokenizer: Arc<tokenizers::Tokenizer>,
    /// The file's own chat template.
    template: ChatTemplate,
    /// Tokens that end an answer.
    eos: Vec<u32>,
    /// The context, in tokens: the file's `llama.context_length`, at most [`MAX_CONTEXT`].
    context: usize,
    /// Bytes of weights held (the sum of the tensors' sizes in the file).
    bytes: u64,
}

/// The longest context used, whatever the file says (a KV cache is sized per answer, so this
/// only bounds one answer's reservation).
pub const MAX_CONTEXT: usize = 8192;

/// A conversation made ready for the model: the prompt's tokens and how many may follow.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The rendered, trimmed prompt.
    pub prompt: Vec<u32>,
    /// Most tokens of answer (the request's `max_tokens`, less if the context is short).
    pub max_new: usize,
}

impl Plan {
    /// Tokens of KV cache the answer reserves.
    pub fn reserve(&self) -> usize {
        self.prompt.len() + self.max_new
    }
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
            .min(MAX_CONTEXT);
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
        let llm = LlamaModel::from_gguf(&content, &mut file, &device).map_err(|e| {
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
            llm,
            tokenizer: Arc::new(tokenizer),
            template,
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

    /// The prompt for `messages` and the answer's length under `params`.
    pub fn plan(
        &self,
        messages: &[ChatTurn],
        params: &SamplingParams,
    ) -> Result<Plan, GenerateError> {
        let prompt = self.prompt(messages, params.max_tokens as usize)?;
        let max_new = (params.max_tokens as usize)
            .min(self.context - prompt.len())
            .max(1);
        Ok(Plan { prompt, max_new })
    }

    /// A sequence for `plan` with its own KV cache (allocated now, for the whole reservation).
    pub fn sequence(&self, plan: Plan, params: &SamplingParams) -> Result<Sequence, GenerateError> {
        let cache = self.llm.new_cache(plan.reserve()).map_err(model_err)?;
        Ok(Sequence::new(
            plan.prompt,
            plan.max_new,
            cache,
            params,
            TextStream::new(Arc::clone(&self.tokenizer), &params.stop),
            self.eos.clone(),
        ))
    }

    /// One forward pass over every chunk (each sequence's next tokens), on the calling thread
    /// and the rayon pool it runs in: the logits of each chunk that wants them, in order.
    pub fn forward(&self, chunks: &mut [Chunk<'_>]) -> Result<Logits, GenerateError> {
        self.llm.forward(chunks).map_err(model_err)
    }

    /// Bytes of KV cache one token takes (for the budget's accounting).
    pub fn kv_bytes_per_token(&self) -> usize {
        self.llm.kv_bytes_per_token()
    }

    /// Answers `messages` alone on the calling thread, calling `on_piece` with each new piece of
    /// text (whole characters, never part of a stop sequence). Reads the prompt in one pass and
    /// checks `cancel` before every forward pass.
    pub fn generate(
        &self,
        messages: &[ChatTurn],
        params: &SamplingParams,
        cancel: &CancellationToken,
        on_piece: &mut dyn FnMut(&str),
    ) -> Result<Generation, GenerateError> {
        let plan = self.plan(messages, params)?;
        let mut seq = self.sequence(plan, params)?;
        while seq.finished().is_none() {
            if cancel.is_cancelled() {
                return Err(GenerateError::Cancelled);
            }
            let (logits, fed) = {
                let mut chunks = [seq.chunk(usize::MAX)];
                let fed = chunks[0].tokens.len();
                (self.forward(&mut chunks)?, fed)
            };
            seq.fed(fed);
            if logits.rows() > 0 {
                let vocab = logits.vocab();
                let mut row = logits.into_vec();
                seq.accept(&mut row[..vocab], on_piece)?;
            }
        }
        seq.finish(on_piece)
    }
}

#[cfg(test)]
#[path = "local_tests.rs"]
pub(crate) mod tests;
