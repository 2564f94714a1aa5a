//! Turnstile's batched llama forward pass.
//!
//! Many conversations, each at its own position, decoded together in one forward pass
//! (continuous batching): [`LlamaModel::forward`] takes a batch of [`Chunk`]s (some tokens of one
//! sequence plus that sequence's [`SeqCache`]), runs every token row of every chunk through each
//! layer together, and returns logits for the chunks that asked for them. On the CPU the
//! projections run through [`kernel`], a Q8_0 matrix-times-matrix kernel that loads each weight
//! block once for the whole batch; on another device the same API runs through candle tensor ops.
//!
//! The native CPU path reproduces candle 0.11.1's `quantized_llama` arithmetic (activation
//! quantization, dot-product lane order, attention sums, norms), so greedy decoding gives
//! candle's tokens.
//!
//! Concurrency: a [`LlamaModel`] is `Send + Sync` and immutable after loading; `forward` takes
//! `&self` and runs on the caller's current rayon pool (install the pool that should do the
//! work). Each [`SeqCache`] belongs to one sequence and is borrowed mutably by the step that
//! extends it.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod attention;
pub mod cache;
pub mod config;
pub mod error;
pub mod kernel;
mod model;
mod native;
mod ops;
pub mod rope;
pub mod sampler;
mod tensor_path;
mod weights;

pub use cache::SeqCache;
pub use config::Config;
pub use error::{Error, Result};
pub use model::{Chunk, ExecPath, LlamaModel, Logits};
pub use sampler::{argmax, Sampler, SamplerConfig};
