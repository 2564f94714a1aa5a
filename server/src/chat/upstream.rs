//! Remote model servers behind the same queue: Ollama (`POST /api/chat`, newline-delimited JSON)
//! and any OpenAI-compatible server (`POST /v1/chat/completions`, server-sent events). The queue
//! serializes access to them with its configured concurrency (Ollama's default is one at a time).
//! Their failures map to Turnstile's codes: unreachable, refused or broken mid-stream →
//! `model_unavailable`; silent for longer than the idle limit → `timeout`.
//!
//! Concurrency: a job streams its answer on its runner's task; the only shared state is the last
//! error, behind a small lock, for `/health`.

use crate::error::JobError;
use crate::job::{Outcome, Progress, RunContext};
use crate::model::sampling::SamplingParams;
use app::chat::{ChatTurn, ChatUsage, FinishReason};
use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Which API the server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Flavor {
    /// Ollama's `/api/chat`.
    Ollama,
    /// OpenAI's `/v1/chat/completions`.
    Openai,
}

impl Flavor {
    /// `ollama` or `openai`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::Ollama => "ollama",
            Flavor::Openai => "openai",
        }
    }
}

/// A remote model server.
pub struct Upstream {
    /// Its API.
    pub flavor: Flavor,
    /// Base URL, e.g. `http://127.0.0.1:11434`.
    pub base_url: String,
    /// The model name it knows.
    pub model: String,
    /// Sent as `Authorization: Bearer` (OpenAI-compatible servers).
    pub api_key: Option<String>,
    /// Longest silence (connect, first byte, between chunks) before `timeout`.
    pub idle_timeout: Duration,
    /// Shared HTTP client (connection pool).
    pub client: reqwest::Client,
    /// The last failure, for `/health`; cleared by a success.
    pub last_error: Mutex<Option<String>>,
}

/// One parsed piece of an upstream stream.
#[derive(Debug, Default, PartialEq)]
struct Piece {
    text: Option<String>,
    finish: Option<FinishReason>,
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
    end: bool,
}

impl Upstream {
    /// The last failure, if the last request failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().clone()
    }

    /// Streams the answer to `messages`, sending each piece as a token event.
    pub async fn run(
        &self,
        messages: Vec<ChatTurn>,
        params: SamplingParams,
        ctx: RunContext,
    ) -> Result<Outcome, JobError> {
        let result = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => Err(JobError::Cancelled),
            r = self.stream(&messages, &params, &ctx) => r,
        };
        match &result {
            Ok(_) => *self.last_error.lock() = None,
            Err(JobError::Cancelled) => {}
            Err(e) => *self.last_error.lock() = Some(e.to_string()),
        }
        result
    }

    fn request(&self, messages: &[ChatTurn], p: &SamplingParams) -> reqwest::RequestBuilder {
        let base = self.base_url.trim_end_matches('/');
        let (url, body) = match self.flavor {
            Flavor::Ollama => (
                format!("{base}/api/chat"),
                json!({
                    "model": self.model, "messages": messages, "stream": true,
                    "options": {
                        "temperature": p.temperature, "top_p": p.top_p, "num_predict": p.max_tokens,
                        "repeat_penalty": p.repeat_penalty, "stop": p.stop, "seed": p.seed,
                    },
                }),
            ),
            Flavor::Openai => (
                format!("{base}/v1/chat/completions"),
                json!({
                    "model": self.model, "messages": messages, "stream": true,
                    "max_tokens": p.max_tokens, "temperature": p.temperature, "top_p": p.top_p,
                    "stop": if p.stop.is_empty() { Value::Null } else { json!(p.stop) },
                    "stream_options": {"include_usage": true},
                }),
            ),
        };
        let mut req = self.client.post(url).json(&body);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        req
    }

    async fn stream(
        &self,
        messages: &[ChatTurn],
        params: &SamplingParams,
        ctx: &RunContext,
    ) -> Result<Outcome, JobError> {
        let started = Instant::now();
        let unreachable = |e: reqwest::Error| {
            tracing::warn!(error = %e, "model server unreachable");
            JobError::ModelUnavailable(format!(
                "the model server at {} could not be reached",
                self.base_url
            ))
        };
        let response =
            tokio::time::timeout(self.idle_timeout, self.request(messages, params).send())
                .await
                .map_err(|_| JobError::UpstreamTimeout(self.idle_timeout))?
                .map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            tracing::warn!(%status, "model server refused the request");
            return Err(JobError::ModelUnavailable(format!(
                "the model server answered HTTP {}",
                status.as_u16()
            )));
        }
        let mut body = response.bytes_stream();
        let mut buffer: Vec<u8> = Vec::new();
        let mut usage = ChatUsage {
            prompt_tokens: 0,
            completion_tokens: 0,
            time_to_first_token_ms: 0.0,
            tokens_per_second: 0.0,
            finish_reason: FinishReason::Stop,
        };
        let mut first_token: Option<Instant> = None;
        let mut pieces = 0u32;
        loop {
            let chunk = tokio::time::timeout(self.idle_timeout, body.next())
                .await
                .map_err(|_| JobError::UpstreamTimeout(self.idle_timeout))?;
            let chunk = match chunk {
                Some(Ok(bytes)) => bytes,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "model server stream broke");
                    return Err(broken());
                }
                None => return Err(broken()),
            };
            buffer.extend_from_slice(&chunk);
            while let Some(nl) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line);
                let Some(piece) = parse_line(self.flavor, line.trim())? else {
                    continue;
                };
                if let Some(text) = piece.text.filter(|t| !t.is_empty()) {
                    first_token.get_or_insert_with(Instant::now);
                    pieces += 1;
                    if !ctx.events.progress(Progress::Token { text }) {
                        return Err(JobError::Cancelled);
                    }
                }
                if let Some(f) = piece.finish {
                    usage.finish_reason = f;
                }
                if let Some(n) = piece.prompt_tokens {
                    usage.prompt_tokens = n;
                }
                if let Some(n) = piece.completion_tokens {
                    usage.completion_tokens = n;
                }
                if piece.end {
                    if usage.completion_tokens == 0 {
                        usage.completion_tokens = pieces;
                    }
                    if let Some(first) = first_token {
                        usage.time_to_first_token_ms =
                            first.duration_since(started).as_secs_f64() * 1e3;
                        let decode = first.elapsed().as_secs_f64();
                        if decode > 0.0 {
                            usage.tokens_per_second =
                                f64::from(usage.completion_tokens.saturating_sub(1)) / decode;
                        }
                    }
                    return Ok(Outcome::Chat(usage));
                }
            }
        }
    }
}

fn broken() -> JobError {
    JobError::ModelUnavailable("the model server closed the stream before the answer ended".into())
}

fn finish_reason(s: &str) -> FinishReason {
    if s == "length" {
        FinishReason::Length
    } else {
        FinishReason::Stop
    }
}

/// Parses one line of the upstream's stream; `None` for lines that carry nothing.
fn parse_line(flavor: Flavor, line: &str) -> Result<Option<Piece>, JobError> {
    if line.is_empty() {
        return Ok(None);
    }
    let bad = |e: serde_json::Error| {
        tracing::warn!(error = %e, "model server sent an unreadable line");
        JobError::ModelUnavailable("the model server sent an unreadable answer".into())
    };
    match flavor {
        Flavor::Ollama => {
            let v: Value = serde_json::from_str(line).map_err(bad)?;
            if let Some(err) = v.get("error").and_then(Value::as_str) {
                tracing::warn!(error = err, "model server reported an error");
                return Err(JobError::ModelUnavailable(
                    "the model server reported an error".into(),
                ));
            }
            let done = v.get("done").and_then(Value::as_bool).unwrap_or(false);
            Ok(Some(Piece {
                text: v["message"]["content"].as_str().map(str::to_owned),
                finish: v
                    .get("done_reason")
                    .and_then(Value::as_str)
                    .map(finish_reason),
                prompt_tokens: v["prompt_eval_count"].as_u64().map(|n| n as u32),
                completion_tokens: v["eval_count"].as_u64().map(|n| n as u32),
                end: done,
            }))
        }
        Flavor::Openai => {
            let Some(data) = line.strip_prefix("data:").map(str::trim) else {
                return Ok(None); // comments, `event:` lines
            };
            if data == "[DONE]" {
                return Ok(Some(Piece {
                    end: true,
                    ..Piece::default()
                }));
            }
            let v: Value = serde_json::from_str(data).map_err(bad)?;
            if v.get("error").is_some() {
                tracing::warn!(error = %v["error"], "model server reported an error");
                return Err(JobError::ModelUnavailable(
                    "the model server reported an error".into(),
                ));
            }
            let choice = &v["choices"][0];
            Ok(Some(Piece {
                text: choice["delta"]["content"].as_str().map(str::to_owned),
                finish: choice["finish_reason"].as_str().map(finish_reason),
                prompt_tokens: v["usage"]["prompt_tokens"].as_u64().map(|n| n as u32),
                completion_tokens: v["usage"]["completion_tokens"].as_u64().map(|n| n as u32),
                end: false,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_lines_parse() {
        let p = parse_line(
            Flavor::Ollama,
            r#"{"model":"m","message":{"role":"assistant","content":"Hi"},"done":false}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.text.as_deref(), Some("Hi"));
        assert!(!p.end);
        let p = parse_line(
            Flavor::Ollama,
            r#"{"message":{"role":"assistant","content":""},"done":true,"done_reason":"length","prompt_eval_count":12,"eval_count":7}"#,
        )
        .unwrap()
        .unwrap();
        assert!(p.end);
        assert_eq!(p.finish, Some(FinishReason::Length));
        assert_eq!((p.prompt_tokens, p.completion_tokens), (Some(12), Some(7)));
        assert!(matches!(
            parse_line(Flavor::Ollama, r#"{"error":"model not found"}"#),
            Err(JobError::ModelUnavailable(_))
        ));
        assert!(parse_line(Flavor::Ollama, "not json").is_err());
    }

    #[test]
    fn openai_lines_parse() {
        assert_eq!(parse_line(Flavor::Openai, ": keep-alive").unwrap(), None);
        let p = parse_line(
            Flavor::Openai,
            r#"data: {"choices":[{"index":0,"delta":{"content":"é"},"finish_reason":null}]}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.text.as_deref(), Some("é"));
        let p = parse_line(
            Flavor::Openai,
            r#"data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.finish, Some(FinishReason::Stop));
        assert_eq!(p.completion_tokens, Some(2));
        assert!(
            parse_line(Flavor::Openai, "data: [DONE]")
                .unwrap()
                .unwrap()
                .end
        );
    }
}
