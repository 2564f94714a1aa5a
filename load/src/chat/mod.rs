//! The chat scenario: `clients` concurrent chats, each a session of its own starting a new
//! conversation with `prompt` and at most `max_tokens` tokens of answer.
//!
//! It measures the time to first token (submission → first `token` message, as the client sees
//! it, queue wait and any model load included), each stream's decode speed (`done.usage`'s
//! tokens/s, the server's figure), the total throughput (every completion token over the wall
//! time from the first submission to the last answer's end), and the queue waits
//! (`started.waited_ms`). The server's `--chat-max-tokens` caps `max_tokens`.

use crate::client::What;
use crate::fleet::Fleet;
use crate::jobs;
use crate::report::{self, Errors, Latency, Spread, Table};
use crate::stats::{self, ServerFigures};
use crate::RunResult;
use app::protocol::ServerMessage;
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

/// The chat scenario's knobs (also its CLI flags).
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct ChatOptions {
    /// Concurrent chats, each its own session.
    #[arg(long, default_value_t = 2)]
    pub clients: usize,
    /// Most tokens per answer.
    #[arg(long, default_value_t = 32)]
    pub max_tokens: u32,
    /// The message every chat sends.
    #[arg(long, default_value = "Explain in one sentence what a tensor is.")]
    pub prompt: String,
    /// Most seconds the whole run lasts.
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
}

/// What a chat run measured.
#[derive(Clone, Debug, Serialize)]
pub struct ChatReport {
    /// Always `chat`.
    pub scenario: &'static str,
    /// What was asked.
    pub options: ChatOptions,
    /// Answers that ended with `done`.
    pub completed: usize,
    /// Submission to first token, per chat that got one.
    pub time_to_first_token: Latency,
    /// Each finished stream's decode speed (`done.usage.tokens_per_second`).
    pub stream_tokens_per_second: Spread,
    /// Completion tokens over all answers (`done.usage.completion_tokens`).
    pub total_tokens: u64,
    /// `total_tokens / wall_seconds`.
    pub total_tokens_per_second: f64,
    /// `token` messages received (a message may carry more than one token).
    pub token_messages: u64,
    /// Queue waits (`started.waited_ms`), as durations.
    pub queue_wait: Latency,
    /// Seconds from the first submission to the last answer's end.
    pub wall_seconds: f64,
    /// What went wrong, by code.
    pub errors: Errors,
    /// The server's figures over the run.
    pub server: ServerFigures,
}

/// One chat while it runs.
#[derive(Clone, Debug, Default)]
struct Stream {
    /// When it was submitted.
    sent: Option<Instant>,
    /// Its first token.
    first_token: Option<Instant>,
    /// It has ended (either way).
    ended: bool,
}

/// Runs the scenario against `addr` (`host:port`).
pub async fn run(addr: &str, opts: &ChatOptions) -> RunResult<ChatReport> {
    let deadline = Instant::now() + crate::seconds(opts.timeout);
    let http = stats::http_client()?;
    let mut errors = Errors::default();
    let mut fleet = Fleet::new(addr, deadline);
    for _ in 0..opts.clients {
        fleet.add();
    }
    let mut streams = vec![Stream::default(); fleet.len()];
    for (i, outcome) in fleet.wait_connected().await.into_iter().enumerate() {
        if let Err(failure) = outcome {
            errors.add(failure.kind, &failure.detail);
            streams[i].ended = true;
        }
    }
    let before = stats::fetch(&http, addr).await?;

    let start = Instant::now();
    for (i, stream) in streams.iter_mut().enumerate() {
        if stream.ended {
            continue;
        }
        let job = jobs::chat(&opts.prompt, opts.max_tokens);
        if fleet.send(i, jobs::submit_chat(format!("c{i}"), job)) {
            stream.sent = Some(Instant::now());
        } else {
            stream.ended = true;
        }
    }

    let (mut ttft, mut waits) = (report::histogram(), report::histogram());
    let mut speeds = Vec::new();
    let (mut completed, mut total_tokens, mut token_messages) = (0, 0u64, 0u64);
    let mut last_end = start;
    while streams.iter().any(|s| !s.ended) {
        let Some(event) = fleet.next().await else {
            let open = streams.iter().filter(|s| !s.ended).count();
            errors.add(
                "unfinished",
                &format!("{open} chats had not ended by the timeout"),
            );
            break;
        };
        let Some(stream) = streams.get_mut(event.conn) else {
            continue;
        };
        match event.what {
            What::Connected => {}
            What::Failed(failure) => {
                if !stream.ended {
                    errors.add(failure.kind, &failure.detail);
                }
                stream.ended = true;
            }
            What::Message(ServerMessage::Started { waited_ms, .. }) => {
                report::record(&mut waits, Duration::from_millis(waited_ms));
            }
            What::Message(ServerMessage::Token { .. }) => {
                token_messages += 1;
                if let (None, Some(sent)) = (stream.first_token, stream.sent) {
                    stream.first_token = Some(event.at);
                    report::record(&mut ttft, event.at.duration_since(sent));
                }
            }
            What::Message(ServerMessage::Done { usage, .. }) => {
                completed += 1;
                stream.ended = true;
                last_end = last_end.max(event.at);
                if let Some(usage) = usage {
                    total_tokens += u64::from(usage.completion_tokens);
                    speeds.push(usage.tokens_per_second);
                }
            }
            What::Message(ServerMessage::Error {
                code,
                message,
                job_id,
                client_ref,
                ..
            }) => {
                errors.add(code.as_str(), &message);
                if job_id.is_some() || client_ref.is_some() {
                    stream.ended = true;
                }
            }
            What::Message(_) => {}
        }
    }
    let wall = last_end.duration_since(start).as_secs_f64();
    let after = stats::fetch(&http, addr).await?;
    Ok(ChatReport {
        scenario: "chat",
        options: opts.clone(),
        completed,
        time_to_first_token: Latency::of(&ttft),
        stream_tokens_per_second: Spread::of(&speeds),
        total_tokens,
        total_tokens_per_second: if wall > 0.0 {
            total_tokens as f64 / wall
        } else {
            0.0
        },
        token_messages,
        queue_wait: Latency::of(&waits),
        wall_seconds: wall,
        errors,
        server: ServerFigures::between(&before, &after),
    })
}

impl ChatReport {
    /// The human-readable table.
    pub fn table(&self) -> Table {
        let o = &self.options;
        let s = &self.stream_tokens_per_second;
        let mut t = Table::new(&format!(
            "chat: {} concurrent chats, up to {} tokens each",
            o.clients, o.max_tokens
        ));
        t.row("answers completed", self.completed)
            .row("time to first token", self.time_to_first_token.summary_ms())
            .row(
                "tokens/s per stream (server's decode speed)",
                format!("mean {:.1} · min {:.1} · max {:.1}", s.mean, s.min, s.max),
            )
            .row("completion tokens", self.total_tokens)
            .row(
                "tokens/s in total (all tokens / wall)",
                format!("{:.1}", self.total_tokens_per_second),
            )
            .row("queue wait", self.queue_wait.summary_ms())
            .row("wall time (s)", format!("{:.3}", self.wall_seconds))
            .row(
                "device utilization",
                format!("{:.1} %", self.server.utilization * 100.0),
            )
            .row("errors", self.errors.summary());
        t
    }
}
