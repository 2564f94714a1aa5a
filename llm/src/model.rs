//! [`LlamaModel`]: loading, per-sequence caches, and the batched forward step with its inputs
//! ([`Chunk`]) and output ([`Logits`]).
//!
//! A step takes any mix of sequences: some prefilling a piece of their prompt, some decoding one
//! token, each at its own position. The native CPU path ([`crate::native`]) or the tensor path
//! ([`crate::tensor_path`]) does the work; this module validates the batch first so that a bad
//! chunk fails the step before any cache is touched.
//!
//! Concurrency: `LlamaModel` is immutable after loading (`Send + Sync`); `forward(&self, ..)` may
//! run from several threads at once, each with its own chunks and caches. It runs on the
//! caller's current rayon pool.

use crate::cache::{HostKv, SeqCache, Store};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::native::NativeModel;
use crate::rope::Rope;
use crate::tensor_path::TensorModel;
use crate::weights::NativeWeights;
use candle_core::quantized::gguf_file::Content;
use candle_core::Device;
use std::io::{Read, Seek};

/// Which implementation runs the forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecPath {
    /// Our Q8_0 kernel and attention on the CPU (the default on `Device::Cpu`).
    Native,
    /// candle tensor ops on the model's device (the default elsewhere, e.g. CUDA).
    Tensor,
}

/// Some consecutive tokens of one sequence for one step.
pub struct Chunk<'a> {
    /// The tokens, in order; the first goes at position `cache.len()`.
    pub tokens: &'a [u32],
    /// The sequence's cache; the step appends the chunk's keys and values.
    pub cache: &'a mut SeqCache,
    /// Whether to compute logits for the chunk's last token.
    pub want_logits: bool,
}

/// Logits of a step: one row of `vocab` values per chunk that wanted them, in batch order.
#[derive(Clone, Debug, PartialEq)]
pub struct Logits {
    /// Rows.
    rows: usize,
    /// Values per row.
    vocab: usize,
    /// `rows x vocab`, row-major.
    data: Vec<f32>,
}

impl Logits {
    /// Rows (chunks that wanted logits).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Values per row.
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Row `i` (the `i`-th chunk that wanted logits).
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.vocab..(i + 1) * self.vocab]
    }

    /// The index of row `i`'s largest logit (the first on ties): greedy decoding.
    pub fn argmax(&self, i: usize) -> u32 {
        crate::sampler::argmax(self.row(i))
    }

    /// All rows, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The row-major values.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

/// The implementation behind a model.
enum Engine {
    /// Native CPU path.
    Native(NativeModel),
    /// Tensor path on some device.
    Tensor(TensorModel),
}

/// A llama model ready for batched steps.
pub struct LlamaModel {
    /// Hyper-parameters.
    config: Config,
    /// RoPE tables for every position of the context.
    rope: Rope,
    /// The implementation.
    engine: Engine,
}

impl LlamaModel {
    /// Loads a llama GGUF whose 2-D weights are all Q8_0: the native CPU path on
    /// `Device::Cpu`, the tensor path on any other device.
    pub fn from_gguf<R: Read + Seek>(
        content: &Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        let path = if device.is_cpu() {
            ExecPath::Native
        } else {
            ExecPath::Tensor
        };
        Self::from_gguf_with(content, reader, device, path)
    }

    /// Loads with an explicit path; [`ExecPath::Native`] needs `Device::Cpu`.
    pub fn from_gguf_with<R: Read + Seek>(
        content: &Content,
        reader: &mut R,
        device: &Device,
        path: ExecPath,
    ) -> Result<Self> {
        let config = Config::from_gguf(content)?;
        let rope = Rope::new(config.head_dim, config.rope_theta, config.context);
        let engine = match path {
            ExecPath::Native if !device.is_cpu() => {
                return Err(Error::Candle(candle_core::Error::Msg(
                    "the native path runs on the CPU only".into(),
                )))
            }
            ExecPath::Native => Engine::Native(NativeModel::new(NativeWeights::load(
                content, reader, &config,
            )?)),
            ExecPath::Tensor => {
                Engine::Tensor(TensorModel::load(content, reader, &config, &rope, device)?)
            }
        };
        Ok(Self {
            config,
            rope,
            engine,
        })
    }

    /// Hyper-parameters.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Which implementation runs [`LlamaModel::forward`].
    pub fn path(&self) -> ExecPath {
        match self.engine {
            Engine::Native(_) => ExecPath::Native,
            Engine::Tensor(_) => ExecPath::Tensor,
        }
    }

    /// The device the weights (and caches) live on.
    pub fn device(&self) -> Device {
        match &self.engine {
            Engine::Native(_) => Device::Cpu,
            Engine::Tensor(t) => t.device().clone(),
        }
    }

    /// Bytes of K/V cache one token takes.
    pub fn kv_bytes_per_token(&self) -> usize {
        self.config.kv_bytes_per_token()
    }

    /// An empty cache for a sequence of up to `capacity` tokens (at most the context length),
    /// allocated up front.
    pub fn new_cache(&self, capacity: usize) -> Result<SeqCache> {
        let c = &self.config;
        if capacity == 0 || capacity > c.context {
            return Err(Error::BadCapacity {
                capacity,
                context: c.context,
            });
        }
        let store = match &self.engine {
            Engine::Native(_) => {
                Store::Host(HostKv::new(c.n_layer, c.n_kv_head, c.head_dim, capacity))
            }
            Engine::Tensor(t) => t.new_cache(c, capacity)?,
        };
        Ok(SeqCache {
            len: 0,
            capacity,
            store,
        })
    }

    /// One step for a batch of chunks (each of a different sequence): appends every chunk's
    /// tokens to its cache and returns logits for the last token of each chunk with
    /// `want_logits`. On error nothing is appended.
    pub fn forward(&self, batch: &mut [Chunk<'_>]) -> Result<Logits> {
        self.validate(batch)?;
        let vocab = self.config.vocab;
        let data = match &self.engine {
            Engine::Native(n) => n.forward(&self.config, &self.rope, batch),
            Engine::Tensor(t) => t.forward(&self.config, batch)?,
        };
        Ok(Logits {
            rows: data.len() / vocab,
            vocab,
            data,
        })
    }

    /// Checks every chunk before anything runs.
    fn validate(&self, batch: &[Chunk<'_>]) -> Result<()> {
        let c = &self.config;
        for (i, chunk) in batch.iter().enumerate() {
            if chunk.tokens.is_empty() {
                return Err(Error::EmptyChunk { chunk: i });
            }
            if let Some(&token) = chunk.tokens.iter().find(|&&t| t as usize >= c.vocab) {
                return Err(Error::TokenOutOfRange {
                    chunk: i,
                    token,
                    vocab: c.vocab,
                });
            }
            let cache = &chunk.cache;
            if cache.len + chunk.tokens.len() > cache.capacity {
                return Err(Error::CacheFull {
                    chunk: i,
                    len: cache.len,
                    new: chunk.tokens.len(),
                    capacity: cache.capacity,
                });
            }
            let mismatch = |reason: &str| Error::CacheMismatch {
                chunk: i,
                reason: reason.into(),
            };
            match (&self.engine, &cache.store) {
                (Engine::Native(_), Store::Host(h)) => {
                    if (h.layers, h.kv_heads, h.head_dim) != (c.n_layer, c.n_kv_head, c.head_dim) {
                        return Err(mismatch("the cache was made for a model of another shape"));
                    }
                }
                (Engine::Tensor(_), Store::Device(d)) => {
                    let want = [1, c.n_kv_head, cache.capacity, c.head_dim];
                    if d.k.len() != c.n_layer || d.k.iter().chain(&d.v).any(|t| t.dims() != want) {
                        return Err(mismatch("the cache was made for a model of another shape"));
                    }
                }
                _ => return Err(mismatch("the cache was made for the other execution path")),
            }
        }
        Ok(())
    }
}
