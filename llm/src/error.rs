//! The crate's one error type: what can go wrong loading a model or stepping a batch.
//!
//! Concurrency: plain data, `Send + Sync`; errors carry no references into the model.

/// Everything `turnstile-llm` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// candle failed (reading the GGUF, a tensor op on the device path).
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// A metadata key the llama architecture needs is missing or has the wrong type.
    #[error("GGUF metadata `{key}`: {reason}")]
    Metadata {
        /// The GGUF metadata key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A weight tensor is missing, has an unexpected shape, or a dtype this crate cannot run.
    #[error("tensor `{name}`: {reason}")]
    Tensor {
        /// The GGUF tensor name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A chunk in a batch has no tokens.
    #[error("chunk {chunk} has no tokens")]
    EmptyChunk {
        /// Index of the chunk in the batch.
        chunk: usize,
    },
    /// A token id is outside the vocabulary.
    #[error("chunk {chunk}: token id {token} is not below the vocabulary size {vocab}")]
    TokenOutOfRange {
        /// Index of the chunk in the batch.
        chunk: usize,
        /// The offending token id.
        token: u32,
        /// The model's vocabulary size.
        vocab: usize,
    },
    /// Appending the chunk would overflow its sequence cache.
    #[error("chunk {chunk}: {len} cached + {new} new tokens exceed the cache capacity {capacity}")]
    CacheFull {
        /// Index of the chunk in the batch.
        chunk: usize,
        /// Tokens already in the cache.
        len: usize,
        /// Tokens in the chunk.
        new: usize,
        /// The cache's capacity in tokens.
        capacity: usize,
    },
    /// The cache was made for another model (shape) or another execution path.
    #[error("chunk {chunk}: {reason}")]
    CacheMismatch {
        /// Index of the chunk in the batch.
        chunk: usize,
        /// Why the cache does not fit this model.
        reason: String,
    },
    /// A cache larger than the model's context (or one of zero tokens) was requested.
    #[error("cache capacity {capacity} must be between 1 and the model context {context}")]
    BadCapacity {
        /// The requested capacity.
        capacity: usize,
        /// The model's context length.
        context: usize,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
