//! The chat scenario: `clients` concurrent chat clients, each a session of its own, each sending
//! `rounds` chats one after another (a new conversation each time, `prompt`, at most `max_tokens`
//! tokens of answer), the first ones `stagger_ms` apart; optionally a calculator probe submitting
//! a 2x2 add every `calc_every_ms` while the chats run.
//!
//! It measures the time to first token (submission → first `token` message, as the client sees
//! it, queue wait and any model load included), split into chats sent while no other chat was
//! streaming and chats that joined others already streaming; each stream's decode speed
//! (`done.usage`'s tokens/s, the server's figure); the total throughput (every completion token
//! over the wall time from the first submission to the last answer's end); the queue waits
//! (`started.waited_ms`) and how far the wait promised on arrival (`accepted.eta_ms`) was from
//! them; and the calculator probe's latency under the chat load. The server's
//! `--chat-max-tokens` caps `max_tokens`.

mod track;

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
use track::{median_p90, Client, Measured};

/// The chat scenario's knobs (also its CLI flags).
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct ChatOptions {
    /// Concurrent chat clients, each its own session.
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
    /// Chats each client sends, one after another.
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// Milliseconds between two clients' first chats (0: all at once).
    #[arg(long, default_value_t = 0)]
    pub stagger_ms: u64,
    /// A calculator probe (a 2x2 add) every this many milliseconds while chats run (0: none).
    #[arg(long, default_value_t = 0)]
    pub calc_every_ms: u64,
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
    /// The same, for chats sent while no other chat was streaming.
    pub time_to_first_token_alone: Latency,
    /// The same, for chats that arrived while others were streaming.
    pub time_to_first_token_joined: Latency,
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
    /// |`accepted.eta_ms` − real wait|, for chats that were promised or had a wait.
    pub eta_error: Latency,
    /// The same error relative to the real wait, in percent: median and 90th percentile.
    pub eta_error_percent_p50_p90: (f64, f64),
    /// Calculator probe jobs while the chats ran: submission to `done`.
    pub calc_latency: Latency,
    /// Seconds from the first submission to the last answer's end.
    pub wall_seconds: f64,
    /// What went wrong, by code.
    pub errors: Errors,
    /// The server's figures over the run.
    pub server: ServerFigures,
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
    let probe = (opts.calc_every_ms > 0).then(|| fleet.add());
    let mut clients = vec![Client::default(); opts.clients];
    for (i, outcome) in fleet.wait_connected().await.into_iter().enumerate() {
        if let Err(failure) = outcome {
            errors.add(failure.kind, &failure.detail);
            if let Some(c) = clients.get_mut(i) {
                c.done = true;
            }
        }
    }
    let before = stats::fetch(&http, addr).await?;

    let start = Instant::now();
    let nonce = jobs::run_nonce();
    let stagger = Duration::from_millis(opts.stagger_ms);
    // Clients whose first chat is not sent yet, with when to send it.
    let mut first_sends: Vec<(Instant, usize)> = (0..clients.len())
        .map(|i| (start + stagger * i as u32, i))
        .collect();
    let every = Duration::from_millis(opts.calc_every_ms.max(1));
    let (mut next_probe, mut probe_sent, mut probes) = (start + every, None::<Instant>, 0u64);
    let mut m = Measured::new();
    let (mut completed, mut total_tokens, mut token_messages) = (0, 0u64, 0u64);
    let mut last_end = start;
    let send_chat = |clients: &mut Vec<Client>, fleet: &Fleet, i: usize| {
        let joined = clients.iter().any(Client::streaming);
        let c = &mut clients[i];
        let job = jobs::chat(&opts.prompt, opts.max_tokens);
        let reference = format!("c{i}-{}", c.sent_count);
        if fleet.send(i, jobs::submit_chat(reference, job)) {
            c.sent_count += 1;
            c.sent = Some(Instant::now());
            c.joined_streams = joined;
            c.promised = None;
            c.first_token = None;
        } else {
            c.done = true;
        }
    };
    while clients.iter().any(|c| !c.done) {
        let now = Instant::now();
        for &(_, i) in first_sends.iter().filter(|(at, _)| *at <= now) {
            if !clients[i].done {
                send_chat(&mut clients, &fleet, i);
            }
        }
        first_sends.retain(|(at, _)| *at > now);
        if let Some(p) = probe {
            if probe_sent.is_none() && next_probe <= now {
                let job = jobs::distinct_add(nonce, p, probes);
                if fleet.send(p, jobs::submit_calc(format!("p{probes}"), job)) {
                    probe_sent = Some(now);
                    probes += 1;
                }
                next_probe = now + every;
            }
        }
        let wake = first_sends
            .iter()
            .map(|(at, _)| *at)
            .chain(probe.map(|_| next_probe))
            .min()
            .unwrap_or(deadline);
        let Some(event) = fleet.next_until(wake).await else {
            if Instant::now() < deadline {
                continue; // a timer is due
            }
            let open = clients.iter().filter(|c| !c.done).count();
            errors.add(
                "unfinished",
                &format!("{open} chat clients had not ended by the timeout"),
            );
            break;
        };
        if Some(event.conn) == probe {
            match event.what {
                What::Message(ServerMessage::Done { .. }) => {
                    if let Some(sent) = probe_sent.take() {
                        report::record(&mut m.calc, event.at.duration_since(sent));
                    }
                }
                What::Message(ServerMessage::Error { code, message, .. }) => {
                    errors.add(code.as_str(), &message);
                    probe_sent = None;
                }
                What::Failed(failure) => errors.add(failure.kind, &failure.detail),
                _ => {}
            }
            continue;
        }
        let i = event.conn;
        let Some(client) = clients.get_mut(i) else {
            continue;
        };
        let mut ended = false;
        match event.what {
            What::Connected => {}
            What::Failed(failure) => {
                if !client.done {
                    errors.add(failure.kind, &failure.detail);
                }
                client.done = true;
            }
            What::Message(ServerMessage::Accepted { eta_ms, .. }) => {
                client.promised = Some(Duration::from_millis(eta_ms));
            }
            What::Message(ServerMessage::Started { waited_ms, .. }) => {
                m.started(client.promised, Duration::from_millis(waited_ms));
            }
            What::Message(ServerMessage::Token { .. }) => {
                token_messages += 1;
                if let (None, Some(sent)) = (client.first_token, client.sent) {
                    client.first_token = Some(event.at);
                    let ttft = event.at.duration_since(sent);
                    let h = if client.joined_streams {
                        &mut m.ttft_joined
                    } else {
                        &mut m.ttft_first
                    };
                    report::record(h, ttft);
                }
            }
            What::Message(ServerMessage::Done { usage, .. }) => {
                completed += 1;
                ended = true;
                last_end = last_end.max(event.at);
                if let Some(usage) = usage {
                    total_tokens += u64::from(usage.completion_tokens);
                    m.speeds.push(usage.tokens_per_second);
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
                ended = job_id.is_some() || client_ref.is_some();
            }
            What::Message(_) => {}
        }
        if ended {
            client.sent = None;
            client.first_token = None;
            if client.sent_count >= opts.rounds.max(1) {
                client.done = true;
            } else {
                send_chat(&mut clients, &fleet, i);
            }
        }
    }
    let wall = last_end.duration_since(start).as_secs_f64();
    let after = stats::fetch(&http, addr).await?;
    let mut ttft = m.ttft_first.clone();
    ttft.add(&m.ttft_joined).ok();
    Ok(ChatReport {
        scenario: "chat",
        options: opts.clone(),
        completed,
        time_to_first_token: Latency::of(&ttft),
        time_to_first_token_alone: Latency::of(&m.ttft_first),
        time_to_first_token_joined: Latency::of(&m.ttft_joined),
        stream_tokens_per_second: Spread::of(&m.speeds),
        total_tokens,
        total_tokens_per_second: if wall > 0.0 {
            total_tokens as f64 / wall
        } else {
            0.0
        },
        token_messages,
        queue_wait: Latency::of(&m.waits),
        eta_error: Latency::of(&m.eta_error),
        eta_error_percent_p50_p90: median_p90(&m.eta_error_percent),
        calc_latency: Latency::of(&m.calc),
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
            "chat: {} concurrent clients, {} chats each, up to {} tokens each",
            o.clients, o.rounds, o.max_tokens
        ));
        let (eta_p50, eta_p90) = self.eta_error_percent_p50_p90;
        t.row("answers completed", self.completed)
            .row("time to first token", self.time_to_first_token.summary_ms())
            .row(
                "  sent while no other chat streamed",
                self.time_to_first_token_alone.summary_ms(),
            )
            .row(
                "  sent while others streamed",
                self.time_to_first_token_joined.summary_ms(),
            )
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
            .row(
                "ETA error |promised - real wait|",
                self.eta_error.summary_ms(),
            )
            .row(
                "ETA error relative to the real wait",
                format!("median {eta_p50:.0} % · p90 {eta_p90:.0} %"),
            )
            .row("calculator probe latency", self.calc_latency.summary_ms())
            .row("wall time (s)", format!("{:.3}", self.wall_seconds))
            .row(
                "device utilization",
                format!("{:.1} %", self.server.utilization * 100.0),
            )
            .row("errors", self.errors.summary());
        t
    }
}
