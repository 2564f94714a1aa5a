//! The llama hyper-parameters, read from GGUF metadata the way candle's `quantized_llama` reads
//! them.
//!
//! Concurrency: an immutable `Copy` value.

use crate::error::{Error, Result};
use candle_core::quantized::gguf_file::{Content, Value};

/// Shape and numerics of a llama model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Transformer blocks (`llama.block_count`).
    pub n_layer: usize,
    /// Query heads (`llama.attention.head_count`).
    pub n_head: usize,
    /// Key/value heads (`llama.attention.head_count_kv`); `n_head` is a multiple of it.
    pub n_kv_head: usize,
    /// Values per head: `hidden / n_head`.
    pub head_dim: usize,
    /// Residual width (`llama.embedding_length`).
    pub hidden: usize,
    /// Feed-forward width (`llama.feed_forward_length`).
    pub ffn: usize,
    /// Vocabulary size (rows of `token_embd.weight`).
    pub vocab: usize,
    /// Longest sequence the model was trained for (`llama.context_length`); caches are capped
    /// at it and the RoPE tables cover it.
    pub context: usize,
    /// RoPE base frequency (`llama.rope.freq_base`, default 10000).
    pub rope_theta: f32,
    /// RMS-norm epsilon (`llama.attention.layer_norm_rms_epsilon`).
    pub eps: f32,
}

impl Config {
    /// Reads the hyper-parameters of a `general.architecture = llama` GGUF.
    pub fn from_gguf(content: &Content) -> Result<Config> {
        let md = |key: &str| {
            content.metadata.get(key).ok_or_else(|| Error::Metadata {
                key: key.into(),
                reason: "missing".into(),
            })
        };
        let num = |key: &str| -> Result<usize> {
            let v = md(key)?;
            v.to_u32()
                .map(|x| x as usize)
                .or_else(|_| v.to_u64().map(|x| x as usize))
                .map_err(|e| Error::Metadata {
                    key: key.into(),
                    reason: e.to_string(),
                })
        };
        let float = |key: &str| -> Result<f32> {
            md(key)?.to_f32().map_err(|e| Error::Metadata {
                key: key.into(),
                reason: e.to_string(),
            })
        };
        let arch = md("general.architecture")?;
        if !matches!(arch, Value::String(a) if a == "llama") {
            return Err(Error::Metadata {
                key: "general.architecture".into(),
                reason: format!("{arch:?}: only llama is supported"),
            });
        }
        let n_head = num("llama.attention.head_count")?;
        let n_kv_head = num("llama.attention.head_count_kv")?;
        let hidden = num("llama.embedding_length")?;
        let bad = |key: &str, reason: String| Error::Metadata {
            key: key.into(),
            reason,
        };
        if n_head == 0 || n_kv_head == 0 || !n_head.is_multiple_of(n_kv_head) {
            return Err(bad(
                "llama.attention.head_count_kv",
                format!("{n_kv_head} must divide the head count {n_head}"),
            ));
        }
        if !hidden.is_multiple_of(n_head) || !(hidden / n_head).is_multiple_of(2) {
            return Err(bad(
                "llama.embedding_length",
                format!("{hidden} must split into {n_head} heads of even size"),
            ));
        }
        let head_dim = hidden / n_head;
        // candle builds its RoPE tables from this key; it must cover the whole head.
        if let Ok(rope_dim) = num("llama.rope.dimension_count") {
            if rope_dim != head_dim {
                return Err(bad(
                    "llama.rope.dimension_count",
                    format!("{rope_dim}: partial rotary embeddings (head size {head_dim}) are not supported"),
                ));
            }
        }
        let vocab = content
            .tensor_infos
            .get("token_embd.weight")
            .map(|t| t.shape.dims()[0])
            .ok_or_else(|| Error::Tensor {
                name: "token_embd.weight".into(),
                reason: "missing".into(),
            })?;
        if md("llama.expert_count")
            .and_then(|_| num("llama.expert_count"))
            .unwrap_or(0)
            > 1
        {
            return Err(bad(
                "llama.expert_count",
                "mixture-of-experts models are not supported".into(),
            ));
        }
        Ok(Config {
            n_layer: num("llama.block_count")?,
            n_head,
            n_kv_head,
            head_dim,
            hidden,
            ffn: num("llama.feed_forward_length")?,
            vocab,
            context: num("llama.context_length")?,
            rope_theta: float("llama.rope.freq_base").unwrap_or(10000.0),
            eps: float("llama.attention.layer_norm_rms_epsilon")?,
        })
    }

    /// Query heads per key/value head.
    pub fn group(&self) -> usize {
        self.n_head / self.n_kv_head
    }

    /// Width of the key (and of the value) rows: `n_kv_head * head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.n_kv_head * self.head_dim
    }

    /// Bytes of K and V cache per token: f32 keys and values for every layer.
    pub fn kv_bytes_per_token(&self) -> usize {
        2 * self.n_layer * self.kv_dim() * std::mem::size_of::<f32>()
    }
}
