//! The chat settings, flattened into the server's [`crate::config::Config`]: which backend answers,
//! the model file, its keep-alive and load timeout, request limits, and the resume window.

use super::upstream::Flavor;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Where answers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// A GGUF model run with candle on the shared device (default: the embedded SmolLM2).
    Local,
    /// An Ollama server (`/api/chat`).
    Ollama,
    /// An OpenAI-compatible server (`/v1/chat/completions`).
    Openai,
}

impl BackendKind {
    /// The upstream flavor, for remote backends.
    pub fn flavor(self) -> Option<Flavor> {
        match self {
            BackendKind::Local => None,
            BackendKind::Ollama => Some(Flavor::Ollama),
            BackendKind::Openai => Some(Flavor::Openai),
        }
    }
}

/// Chat settings.
#[derive(Clone, Debug, Args)]
pub struct ChatConfig {
    /// Where answers come from: local, ollama or openai.
    #[arg(
        long,
        env = "TURNSTILE_CHAT_BACKEND",
        value_enum,
        default_value = "local"
    )]
    pub chat_backend: BackendKind,

    /// The GGUF model for the local backend (llama architecture). Default: the embedded
    /// SmolLM2-135M-Instruct that setup puts in `<data-dir>/models`.
    #[arg(long, env = "TURNSTILE_MODEL")]
    pub model: Option<PathBuf>,

    /// The model's public name (`/v1/models`); default: the file's name, or the upstream model.
    #[arg(long, env = "TURNSTILE_MODEL_NAME")]
    pub model_name: Option<String>,

    /// Load the local model at start-up instead of on first use.
    #[arg(long, env = "TURNSTILE_PRELOAD_MODEL", default_value_t = false)]
    pub preload_model: bool,

    /// How long a loaded model stays in memory after its last use.
    #[arg(long, env = "TURNSTILE_MODEL_KEEP_ALIVE", default_value = "5m", value_parser = humantime::parse_duration)]
    pub model_keep_alive: Duration,

    /// Longest a model load may take before waiting requests get `model_unavailable`.
    #[arg(long, env = "TURNSTILE_MODEL_LOAD_TIMEOUT", default_value = "120s", value_parser = humantime::parse_duration)]
    pub model_load_timeout: Duration,

    /// Base URL of the Ollama or OpenAI-compatible server (default: Ollama's http://127.0.0.1:11434).
    #[arg(long, env = "TURNSTILE_UPSTREAM_URL")]
    pub upstream_url: Option<String>,

    /// The model name the upstream server knows (required for remote backends).
    #[arg(long, env = "TURNSTILE_UPSTREAM_MODEL")]
    pub upstream_model: Option<String>,

    /// API key sent to an OpenAI-compatible upstream as a bearer token.
    #[arg(long, env = "TURNSTILE_UPSTREAM_API_KEY", hide_env_values = true)]
    pub upstream_api_key: Option<String>,

    /// Longest the upstream may stay silent (connecting, or between chunks) before `timeout`.
    #[arg(long, env = "TURNSTILE_UPSTREAM_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub upstream_timeout: Duration,

    /// Most tokens one answer may ask for.
    #[arg(long, env = "TURNSTILE_CHAT_MAX_TOKENS", default_value_t = 1024)]
    pub chat_max_tokens: u32,

    /// Most characters in one chat message.
    #[arg(long, env = "TURNSTILE_CHAT_MAX_MESSAGE_CHARS", default_value_t = 8000)]
    pub chat_max_message_chars: usize,

    /// Most earlier messages the model reads (older ones are left out).
    #[arg(long, env = "TURNSTILE_CHAT_MAX_HISTORY", default_value_t = 64)]
    pub chat_max_history: usize,

    /// How long a chat job waits for its owner to reconnect and `resume` it before it is
    /// cancelled; 0 cancels on disconnect.
    #[arg(long, env = "TURNSTILE_RESUME_WINDOW", default_value = "60s", value_parser = humantime::parse_duration)]
    pub resume_window: Duration,

    /// Most events kept per job for resume.
    #[arg(long, env = "TURNSTILE_RESUME_MAX_EVENTS", default_value_t = 4096)]
    pub resume_max_events: usize,

    /// Most bytes of events kept for resume across all jobs (the oldest finished jobs' go first).
    #[arg(long, env = "TURNSTILE_RESUME_MAX_BYTES", default_value_t = 64 << 20)]
    pub resume_max_bytes: usize,

    /// Conversations the local model decodes at once (continuous batching); more wait their turn
    /// in the fair queue.
    #[arg(long, env = "TURNSTILE_CHAT_LANES", default_value_t = 8)]
    pub chat_lanes: usize,

    /// Tokens of KV cache all lanes together may reserve (each chat reserves its prompt plus its
    /// `max_tokens`; SmolLM2-135M takes about 46 KB per token).
    #[arg(long, env = "TURNSTILE_KV_CACHE_TOKENS", default_value_t = 16384)]
    pub kv_cache_tokens: usize,

    /// Most tokens one step of the engine feeds the model: every decoding chat's next token,
    /// then prompt chunks, so a long prompt is read between the others' tokens.
    #[arg(long, env = "TURNSTILE_MAX_STEP_TOKENS", default_value_t = 128)]
    pub max_step_tokens: usize,

    /// Test mode only: pause after each step of the engine (each token of every chat), so
    /// answers are deterministically slow.
    #[arg(long, env = "TURNSTILE_TEST_TOKEN_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub test_token_delay: Duration,
}
