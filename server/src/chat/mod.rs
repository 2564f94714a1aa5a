//! Chat: the configured model behind the one queue. [`ChatEngine`] validates chat work, runs it
//! when the scheduler dispatches it (the embedded model through its [`ModelManager`] and the
//! step [`engine`], or a remote Ollama / OpenAI-compatible server), and reports the model's
//! state. [`prepare`] turns a client's chat message into work, reading and writing the
//! conversation in the store first.
//!
//! Concurrency: the chat service is immutable and shared; the model's state is the manager's
//! (its own small lock). A chat on the local model waits in the scheduler's lane line and is
//! decoded in one of the engine's lanes, together with the other chats; a chat on a remote
//! server holds one of the device's places while it streams, like any other job (the server
//! keeps its own concurrency).

mod config;
pub mod engine;
pub mod local;
mod prepare;
pub mod upstream;

pub use config::{BackendKind, ChatConfig};
pub use prepare::{prepare, Prepared};

use crate::error::JobError;
use crate::job::{ChatParams, ChatWork};
use crate::job::{Handler, Outcome, RunContext};
use crate::model::local::LocalLoader;
use crate::model::manager::ModelManager;
use crate::model::sampling::SamplingParams;
use app::api::ModelStats;
use std::sync::Arc;
use std::time::{Duration, Instant};
use turnstile_scheduler::Resource;

/// Where answers come from.
pub enum Backend {
    /// The embedded model (or any llama GGUF), decoded in the step engine's lanes on the shared
    /// device.
    Local {
        /// Loads the model once and keeps it warm.
        manager: Arc<ModelManager<LocalLoader>>,
        /// The step engine of the loaded model.
        engines: engine::Engines,
    },
    /// A remote model server; the queue serializes access to it.
    Upstream(Arc<upstream::Upstream>),
}

/// The limits a chat request must fit.
#[derive(Clone, Debug)]
pub struct ChatLimits {
    /// Most characters in one message.
    pub max_message_chars: usize,
    /// Most tokens one answer may ask for.
    pub max_tokens: u32,
    /// Most messages read as history (older ones are left out).
    pub max_history: usize,
}

/// The configured chat model.
pub struct ChatEngine {
    /// Where answers come from.
    pub backend: Backend,
    /// The model's public name (`/v1/models`, stats).
    pub name: String,
    /// Sampling defaults; requests override them.
    pub defaults: SamplingParams,
    /// Request limits.
    pub limits: ChatLimits,
    /// Seconds a loaded model stays after its last use (for stats).
    pub keep_alive: Duration,
}

impl ChatEngine {
    /// Checks one new message and the request's settings (before anything is stored).
    pub fn validate_request(&self, message: &str, params: &ChatParams) -> Result<(), JobError> {
        let chars = message.chars().count();
        if chars > self.limits.max_message_chars {
            return Err(JobError::InvalidInput(format!(
                "the message has {chars} characters; the limit is {}",
                self.limits.max_message_chars
            )));
        }
        if let Some(n) = params.max_tokens {
            if n == 0 || n > self.limits.max_tokens {
                return Err(JobError::InvalidInput(format!(
                    "max_tokens must be between 1 and {}",
                    self.limits.max_tokens
                )));
            }
        }
        if let Some(t) = params.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(JobError::InvalidInput(
                    "temperature must be between 0 and 2".into(),
                ));
            }
        }
        if let Some(p) = params.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(JobError::InvalidInput(
                    "top_p must be above 0 and at most 1".into(),
                ));
            }
        }
        if params.stop.len() > 4 || params.stop.iter().any(|s| s.is_empty() || s.len() > 64) {
            return Err(JobError::InvalidInput(
                "stop takes at most 4 sequences of 1 to 64 bytes".into(),
            ));
        }
        Ok(())
    }

    /// Checks chat work at submission.
    pub fn validate(&self, work: &ChatWork) -> Result<(), JobError> {
        let Some(last) = work.messages.last() else {
            return Err(JobError::InvalidInput(
                "a chat needs at least one message".into(),
            ));
        };
        if work.messages.len() > self.limits.max_history + 1 {
            return Err(JobError::InvalidInput(format!(
                "at most {} messages per request",
                self.limits.max_history + 1
            )));
        }
        if last.content.trim().is_empty() {
            return Err(JobError::InvalidInput("the message is empty".into()));
        }
        for m in &work.messages {
            self.validate_request(&m.content, &ChatParams::default())?;
        }
        self.validate_request("", &work.params)
    }

    /// The sampling settings for a request: the defaults with its overrides, a fresh seed.
    pub fn sampling(&self, params: &ChatParams) -> SamplingParams {
        let mut s = self.defaults.clone();
        if let Some(n) = params.max_tokens {
            s.max_tokens = n;
        }
        s.max_tokens = s.max_tokens.min(self.limits.max_tokens);
        if let Some(t) = params.temperature {
            s.temperature = t;
        }
        if let Some(p) = params.top_p {
            s.top_p = Some(p);
        }
        s.stop = params.stop.clone();
        s.seed = rand::random();
        s
    }

    /// Answers `work` while the job holds the device.
    pub async fn run(
        self: Arc<Self>,
        work: ChatWork,
        ctx: RunContext,
    ) -> Result<Outcome, JobError> {
        let params = self.sampling(&work.params);
        match &self.backend {
            Backend::Local { manager, engines } => {
                local::run(manager, engines, params, work.messages, ctx).await
            }
            Backend::Upstream(up) => {
                // A remote model server takes turns like the device: the job holds one of its
                // places while the answer streams.
                let (up, inner) = (Arc::clone(up), ctx.clone());
                ctx.in_slot(async move { up.run(work.messages, params, inner).await })
                    .await
            }
        }
    }

    /// Unloads an idle local model after its keep-alive. Called periodically.
    pub fn housekeeping(&self, now: Instant) {
        if let Backend::Local { manager, .. } = &self.backend {
            manager.unload_if_idle(now);
        }
    }

    /// Starts loading the local model now (the preload flag).
    pub fn preload(&self) {
        if let Backend::Local { manager, .. } = &self.backend {
            manager.preload();
        }
    }

    /// What a chat waits for: a lane of the step engine (local model), or a device place (a
    /// remote server, which takes turns).
    pub fn resource(&self) -> Resource {
        match &self.backend {
            Backend::Local { .. } => Resource::Lane,
            Backend::Upstream(_) => Resource::Device,
        }
    }

    /// The expected wait of the chat at `position` of the lane line, from the engine's lanes.
    pub fn lane_eta(&self, position: u64) -> Option<Duration> {
        match &self.backend {
            Backend::Local { engines, .. } => Some(engines.board().eta(position)),
            Backend::Upstream(_) => None,
        }
    }

    /// The model's state for `/api/stats` and `/health`.
    pub fn stats(&self) -> ModelStats {
        let mut stats = ModelStats {
            name: self.name.clone(),
            keep_alive_seconds: self.keep_alive.as_secs_f64(),
            ..ModelStats::default()
        };
        match &self.backend {
            Backend::Local {
                manager: m,
                engines,
            } => {
                stats.lanes = engines.board().lanes() as u64;
                stats.lanes_in_use = engines.board().occupied() as u64;
                let s = m.status();
                stats.backend = "local".into();
                stats.state = s.state.into();
                stats.load_time_seconds = s.last_load_time.map(|d| d.as_secs_f64());
                stats.idle_seconds = s.idle_for.map(|d| d.as_secs_f64());
                stats.memory_bytes = m.loaded().map(|model| model.memory_bytes());
                stats.waiting = s.waiting as u64;
                stats.loads = s.loads;
                stats.load_failures = s.load_failures;
                stats.last_error = s.last_error;
            }
            Backend::Upstream(up) => {
                stats.backend = up.flavor.as_str().into();
                stats.state = "remote".into();
                stats.last_error = up.last_error();
            }
        }
        stats
    }
}

/// The embedded default model's file, under the data directory.
pub const DEFAULT_MODEL_FILE: &str = "models/SmolLM2-135M-Instruct.Q8_0.gguf";

impl ChatEngine {
    /// The engine the configuration asks for. The model is not loaded here (unless preloading
    /// is on): a missing model file fails its first request with `model_unavailable`, not the
    /// server's start.
    pub fn from_config(
        c: &ChatConfig,
        data_dir: &std::path::Path,
        test_mode: bool,
        device: Arc<crate::device::DeviceHost>,
        faults: Arc<crate::faults::Faults>,
    ) -> Result<Arc<ChatEngine>, String> {
        let limits = ChatLimits {
            max_message_chars: c.chat_max_message_chars,
            max_tokens: c.chat_max_tokens.max(1),
            max_history: c.chat_max_history,
        };
        let (backend, name) = match c.chat_backend.flavor() {
            None => {
                let path = c
                    .model
                    .clone()
                    .unwrap_or_else(|| data_dir.join(DEFAULT_MODEL_FILE));
                let name = c.model_name.clone().unwrap_or_else(|| {
                    let stem = path
                        .file_stem()
                        .map_or_else(|| "model".to_string(), |s| s.to_string_lossy().into_owned());
                    // "SmolLM2-135M-Instruct.Q8_0" → "SmolLM2-135M-Instruct"
                    stem.split('.').next().unwrap_or(&stem).to_owned()
                });
                let manager = ModelManager::new(
                    LocalLoader {
                        path,
                        device: Arc::clone(&device),
                        faults: Some(faults),
                    },
                    crate::model::manager::ManagerConfig {
                        keep_alive: c.model_keep_alive,
                        load_timeout: c.model_load_timeout,
                    },
                );
                let engines = engine::Engines::new(
                    engine::EngineConfig {
                        lanes: c.chat_lanes.max(1),
                        kv_cache_tokens: c.kv_cache_tokens.max(1),
                        max_step_tokens: c.max_step_tokens.max(1),
                        step_delay: if test_mode {
                            c.test_token_delay
                        } else {
                            Duration::ZERO
                        },
                    },
                    device,
                );
                (Backend::Local { manager, engines }, name)
            }
            Some(flavor) => {
                let model = c.upstream_model.clone().ok_or_else(|| {
                    format!(
                        "--upstream-model is required with --chat-backend {}",
                        flavor.as_str()
                    )
                })?;
                let base_url = c
                    .upstream_url
                    .clone()
                    .unwrap_or_else(|| "http://127.0.0.1:11434".into());
                let client = reqwest::Client::builder()
                    .connect_timeout(c.upstream_timeout)
                    .build()
                    .map_err(|e| format!("could not build the HTTP client: {e}"))?;
                let name = c.model_name.clone().unwrap_or_else(|| model.clone());
                (
                    Backend::Upstream(Arc::new(upstream::Upstream {
                        flavor,
                        base_url,
                        model,
                        api_key: c.upstream_api_key.clone(),
                        idle_timeout: c.upstream_timeout,
                        client,
                        last_error: parking_lot::Mutex::new(None),
                    })),
                    name,
                )
            }
        };
        let engine = Arc::new(ChatEngine {
            backend,
            name,
            defaults: SamplingParams::default(),
            limits,
            keep_alive: c.model_keep_alive,
        });
        if c.preload_model {
            engine.preload();
        }
        Ok(engine)
    }
}

/// The chat service as the executor's handler of chat jobs.
impl Handler<ChatWork> for ChatEngine {
    fn validate(&self, work: &ChatWork) -> Result<(), JobError> {
        ChatEngine::validate(self, work)
    }

    fn resource(&self) -> Resource {
        ChatEngine::resource(self)
    }

    fn lane_eta(&self, position: u64) -> Option<Duration> {
        ChatEngine::lane_eta(self, position)
    }

    fn run(
        self: Arc<Self>,
        work: ChatWork,
        ctx: RunContext,
    ) -> futures::future::BoxFuture<'static, Result<Outcome, JobError>> {
        Box::pin(ChatEngine::run(self, work, ctx))
    }
}
