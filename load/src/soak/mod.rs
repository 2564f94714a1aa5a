//! The soak scenario: many WebSocket clients, each its own session (`/ws?session=<32 hex>`), run
//! a mix of jobs one after another until `jobs` have been run or `duration` has passed, while a
//! share of them misbehave, and every message they receive is checked against the protocol.
//!
//! **The jobs.** Mostly calculator jobs: 2x2 adds whose operands name the run, the client and the
//! job (so the server's result cache cannot answer them), plus a share (`cached_share`) of a few
//! identical adds that the cache may answer. A share (`chat_share`) are short chats (a new
//! conversation, `max_tokens` tokens). The jobs are dealt to the clients up front, `jobs / clients`
//! each; the chats are dealt round-robin starting with the churning clients, so that even a
//! handful of chats exercises the resume path. Each client has one job out at a time.
//!
//! **Churn.** A share `churn` of the clients misbehave at random moments (a calculator job on its
//! first or second event; a chat while it waits, once it starts, or after its first or second
//! token): on a share `churn_jobs` of their calculator jobs and on every chat they either
//! - drop the connection (a close frame or just the TCP connection, at random) and reconnect with
//!   the same session. A chat is then resumed (`resume` with the last seq the client saw) and must
//!   go on with exactly the events after it: its next message must carry `last_seq + 1`, the
//!   stream must have no gap up to exactly one terminal event, and the answer assembled from the
//!   tokens before and after the drop must be the one the server stored in the conversation. A
//!   calculator job is cancelled by the server when its connection closes; it counts as dropped
//!   (ended by the client's own action), and half the time the client checks that a `resume` of
//!   it is refused with `not_found`. A churning client's first chat is always dropped (after its
//!   first token) and resumed.
//! - or cancel the job (waiting or running) and must then see exactly one terminal event for it:
//!   `error` with `cancelled`, or `done` if it finished first (the server then answers the cancel
//!   with an untagged `not_found`, which is expected).
//!
//! **Checks, per job, on the client side** (each a [`Violations`] kind): exactly one terminal
//! event (`done`, or `error` with the job's id), never two (`duplicate_terminal`), none missing
//! when the run ends (`missing_terminal`); seq numbers 0, 1, 2, … without gaps on each connection,
//! continuing at `last_seq + 1` after a resume (`seq_gap`); no message about a job the client did
//! not submit (`foreign_event`), nor about one of its own jobs that this connection no longer
//! follows (`stray_event`); every result the exact sum of its own operands, one result per
//! calculator job and none for a chat (`wrong_result`).
//!
//! **Refusals.** `rate_limited` and `queue_full` are the server protecting itself: they are counted
//! by code and the job is sent again after `retry_after_ms` (at most 5 s); they are not failures.
//! A `cancel` or `resume` may be refused `rate_limited` too, with no id to say which message it
//! answers, so each is followed by pings until one is answered: every message gets at most one
//! immediate answer, in order, so the untagged errors before that pong tell whether the control
//! message was refused (it is then sent again) or taken. A WebSocket upgrade refused with 429 (the
//! server's rate or connection caps) is counted as `connect_429` and tried again. Other error codes
//! are counted by code; socket and protocol failures by their kind.
//!
//! **The server's side**, from `GET /api/stats`: a warm-up job (and a warm-up chat when chats are
//! planned, so that the model's load is not counted as growth) runs first; then the server's RSS is
//! read, sampled every 250 ms during the run (the peak), and read again once the clients are done
//! and the queue is empty (`queue.length` and `queue.running` both 0, polled for up to `settle`
//! seconds, which also waits for the run's sockets to be closed on the server), then, after
//! `linger` seconds more, a last time: the server keeps ended jobs' event logs for its resume
//! window (up to `--resume-max-bytes`, 64 MiB by default), so memory can only come back once that
//! window has passed. The report gives the three, the end over the start, and whether the end is
//! within 10 % of the start.
//!
//! **Bounds.** Jobs are submitted for at most `duration` seconds; jobs still out then have `grace`
//! seconds more to end (after that they are `missing_terminal`); then every socket is closed.
//! Every read, write and connect is bounded by those deadlines, so a server that stops answering
//! or dies cannot hold the run up (its failures are counted, and the report still comes).
//!
//! **Server flags.** No `--test-mode` is needed (no sleep jobs). All the clients share one
//! address, so for a large soak: `--rate-per-ip 0` (or well above the clients' message rate:
//! the default 200 messages/s for the address paces the whole soak, every refusal being sent
//! again), `--max-connections-per-ip` above `clients` (default 256; upgrades past it get 429 and
//! are tried again), `--max-waiting` above `clients` (e.g. 20000, else `queue_full`), and an
//! open-files limit above `clients` on both sides (`ulimit -n`). `--max-waiting-per-session` can
//! stay: a client has one job out at a time (two for a moment after it dropped one).

mod client;
mod control;
mod counts;
mod dispatch;
mod finish;
mod plan;
mod report;
mod server_side;
mod tally;
mod track;
mod violations;

#[cfg(test)]
mod tests;

pub use counts::{ChatCounts, ChurnCounts, JobCounts, ReplayRecord, SoakServer};
pub use report::SoakReport;
pub use violations::{Violation, Violations};

use crate::client::{new_session, CONNECT_CONCURRENCY};
use crate::jobs;
use crate::report::{Errors, Latency};
use crate::stats::{self, Snapshot};
use crate::RunResult;
use client::{Client, Shared};
use plan::{deal, Kind};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::Serialize;
use server_side::{fetch_patiently, sample, warm_up};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tally::Tally;
use tokio::sync::{oneshot, Semaphore};
use tokio::time::Instant;

/// How many distinct identical-job operands there are (the cache may answer their repeats).
const SAME_JOBS: u8 = 4;
/// How often the server's stats are sampled during the run.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Most time the warm-up jobs (one add, one chat that may load the model) may take.
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest pause before a refused job is sent again, whatever the server's hint.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);
/// How long a client waits for the answer to a `resume` it expects to be refused, or to its
/// final `ping`.
const REPLY_WAIT: Duration = Duration::from_secs(3);

/// The soak scenario's knobs (also its CLI flags).
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct SoakOptions {
    /// Concurrent clients, each its own session, one job out at a time.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Jobs in all (dealt evenly to the clients).
    #[arg(long, default_value_t = 10_000)]
    pub jobs: u64,
    /// Share of the jobs that are chats (0 to 1); chats are slow on a CPU, keep it small.
    #[arg(long, default_value_t = 0.02)]
    pub chat_share: f64,
    /// Share of the calculator jobs that are identical adds the server's cache may answer.
    #[arg(long, default_value_t = 0.05)]
    pub cached_share: f64,
    /// Share of the clients that misbehave (drop their connection, cancel jobs).
    #[arg(long, default_value_t = 0.10)]
    pub churn: f64,
    /// Share of a misbehaving client's calculator jobs it misbehaves on (it does on every chat).
    #[arg(long, default_value_t = 0.3)]
    pub churn_jobs: f64,
    /// Most tokens per chat answer.
    #[arg(long, default_value_t = 4)]
    pub max_tokens: u32,
    /// The message every chat sends (each in a new conversation).
    #[arg(long, default_value = "Say hello.")]
    pub prompt: String,
    /// Most seconds during which jobs are submitted (connecting included).
    #[arg(long, default_value_t = 300.0)]
    pub duration: f64,
    /// Seconds after `duration` that jobs still out may take to end.
    #[arg(long, default_value_t = 10.0)]
    pub grace: f64,
    /// Most seconds to wait, after the clients are done, for the server's queue to be empty.
    #[arg(long, default_value_t = 10.0)]
    pub settle: f64,
    /// Seconds to wait once the queue is empty before the last memory reading, so that what the
    /// server keeps on purpose for a while (ended jobs' event logs, for the resume window) has
    /// been let go: set it past the server's `--resume-window`.
    #[arg(long, default_value_t = 0.0)]
    pub linger: f64,
    /// Seed of the run's random choices (random when absent; the report gives the one used).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Runs the scenario against `addr` (`host:port`).
pub async fn run(addr: &str, opts: &SoakOptions) -> RunResult<SoakReport> {
    let http = stats::http_client()?;
    let seed = opts.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let (plans, churning) = deal(opts, &mut rng);
    let nonce = jobs::run_nonce();
    let mut errors = Errors::default();

    let warm = jobs::submit_calc("warmup", jobs::distinct_add(nonce, opts.clients, 0));
    warm_up(addr, warm, &mut errors).await;
    if plans.iter().flatten().any(|k| *k == Kind::Chat) {
        let chat = jobs::submit_chat("warmup", jobs::chat(&opts.prompt, opts.max_tokens));
        warm_up(addr, chat, &mut errors).await;
    }
    let before = fetch_patiently(&http, addr).await?;

    let start = Instant::now();
    let submit_until = start + crate::seconds(opts.duration);
    let hard_deadline = submit_until + crate::seconds(opts.grace);
    let shared = Arc::new(Shared {
        addr: addr.to_owned(),
        opts: opts.clone(),
        nonce,
        gate: Semaphore::new(CONNECT_CONCURRENCY),
        http: http.clone(),
        submit_until,
        hard_deadline,
    });
    let (stop_sampling, stopped) = oneshot::channel();
    let sampler = tokio::spawn(sample(http.clone(), addr.to_owned(), stopped));
    let mut tasks = Vec::with_capacity(plans.len());
    for (id, plan) in plans.into_iter().enumerate() {
        let client = Client {
            id,
            session: new_session(),
            churner: churning[id],
            had_chat: false,
            rng: StdRng::seed_from_u64(seed ^ (id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            ws: None,
            nonce: 0,
            probing: None,
            past: HashSet::new(),
            tally: Tally::new(),
            shared: Arc::clone(&shared),
        };
        tasks.push(tokio::spawn(client.run(plan)));
    }
    let mut total = Tally::new();
    total.errors = errors;
    let mut clients_connected = 0;
    // Every read and write of a client is bounded by the hard deadline; past it (and its close),
    // a client still running is stuck in something unbounded and is stopped.
    let give_up = hard_deadline + REPLY_WAIT + Duration::from_secs(5);
    for mut task in tasks {
        match tokio::time::timeout_at(give_up, &mut task).await {
            Ok(Ok(tally)) => {
                clients_connected += usize::from(tally.connected);
                total.merge(tally);
            }
            Ok(Err(e)) => total.errors.add("client_task_failed", &e.to_string()),
            Err(_) => {
                task.abort();
                total
                    .errors
                    .add("client_stuck", "a client had not ended after the run's end");
            }
        }
    }
    let wall = total
        .last_end
        .map_or(0.0, |end| end.duration_since(start).as_secs_f64());
    let jobs_per_second = if wall > 0.0 {
        total.counts.completed as f64 / wall
    } else {
        0.0
    };
    let _ = stop_sampling.send(());
    let samples = sampler.await.unwrap_or_default();

    // The server's side: its queue must empty, its sockets close, its memory come back.
    let settle_start = Instant::now();
    let settle_until = settle_start + crate::seconds(opts.settle);
    let mut back_to_zero: Option<f64> = None;
    let mut last: Option<Snapshot> = None;
    loop {
        // Each read is bounded too, so a server that hangs cannot hold the report up.
        let read = tokio::time::timeout_at(
            settle_until + Duration::from_secs(1),
            stats::fetch(&http, addr),
        );
        if let Ok(Ok(snap)) = read.await {
            let q = &snap.stats.queue;
            if back_to_zero.is_none() && q.length == 0 && q.running == 0 {
                back_to_zero = Some(settle_start.elapsed().as_secs_f64());
            }
            let closed = snap.stats.process.websocket_connections
                <= before.stats.process.websocket_connections;
            last = Some(snap);
            if back_to_zero.is_some() && closed {
                break;
            }
        }
        if Instant::now() >= settle_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What the server keeps for its resume window is let go once the window has passed.
    if opts.linger > 0.0 && last.is_some() {
        tokio::time::sleep(crate::seconds(opts.linger)).await;
        if let Ok(Ok(snap)) =
            tokio::time::timeout(Duration::from_secs(5), stats::fetch(&http, addr)).await
        {
            last = Some(snap);
        }
    }
    // A server that died during the run still gets a report: the clients' side of it.
    let after = last;
    if after.is_none() {
        total.errors.add(
            "stats_unreadable_after_the_run",
            &format!(
                "no read of /api/stats succeeded within the settle time of {} s",
                opts.settle
            ),
        );
    }
    let rss_start = before.stats.process.rss_bytes;
    let rss_end = after.as_ref().map_or(0, |a| a.stats.process.rss_bytes);
    let ratio = if rss_start > 0 {
        rss_end as f64 / rss_start as f64
    } else {
        0.0
    };
    let server = SoakServer {
        rss_start_bytes: rss_start,
        rss_peak_bytes: samples.rss_peak.max(rss_start).max(rss_end),
        rss_end_bytes: rss_end,
        rss_end_over_start: ratio,
        rss_within_10_percent: rss_start > 0 && (ratio - 1.0).abs() <= 0.10,
        queue_back_to_zero: back_to_zero.is_some(),
        queue_settle_seconds: back_to_zero.unwrap_or(opts.settle),
        queue_length_peak: samples.queue_peak,
        websocket_connections_start: before.stats.process.websocket_connections,
        websocket_connections_end: after
            .as_ref()
            .map_or(0, |a| a.stats.process.websocket_connections),
        cache_hits: after.as_ref().map_or(0, |a| {
            a.stats.cache.hits.saturating_sub(before.stats.cache.hits)
        }),
        readable_after: after.is_some(),
        samples: samples.reads,
        sample_failures: samples.failures,
    };
    Ok(SoakReport {
        scenario: "soak",
        options: opts.clone(),
        seed,
        clients_connected,
        churning_clients: churning.iter().filter(|c| **c).count(),
        every_job_accounted: total.counts.ended() == total.counts.submitted
            && total.counts.submitted + total.counts.not_run == total.counts.planned,
        jobs: total.counts,
        refused: total.refused,
        chats: total.chats,
        churn: total.churn,
        violations: total.violations,
        wall_seconds: wall,
        jobs_per_second,
        calc_latency: Latency::of(&total.calc_latency),
        chat_latency: Latency::of(&total.chat_latency),
        errors: total.errors,
        server,
    })
}
