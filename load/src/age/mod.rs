//! The ageing scenario: does a server that has run a million jobs answer as fast as a fresh one?
//! `clients` WebSocket clients, each its own session, send tiny calculator jobs back to back (a
//! 2x2 add made distinct per job, so the result cache answers none) until `jobs` have ended. The
//! run is cut into tenths by the order in which jobs end: for each tenth it records the jobs/s,
//! the latency percentiles (submission to end), and the server's resident memory and the CPU time
//! it used per job (from `/api/stats`' `process`, read just after the tenth's last job), then
//! compares the last tenth with the first ([`report`]). The server's CPU per job is the figure
//! that other processes on the machine do not move; jobs/s and latency are what clients feel.
//!
//! Concurrency: the clients take job numbers from one atomic counter and count ends on another;
//! the client whose job ends a tenth stamps the instant and hands it to one monitor task, which
//! reads the server's memory, so no client waits for a stats read. Each client keeps its own
//! latency histograms, merged at the end.

pub mod report;

use crate::client::{Recv, WsClient};
use crate::report::{histogram, Errors};
use crate::stats;
use crate::{jobs, RunResult};
use app::protocol::ServerMessage;
use hdrhistogram::Histogram;
use report::{AgeReport, Boundary, TENTHS};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The ageing scenario's knobs (also its CLI flags).
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct AgeOptions {
    /// Jobs in all (at least 10, one tenth each; at most 16,777,215, so every job's number is
    /// exact in its operands).
    #[arg(long, default_value_t = 1_000_000)]
    pub jobs: u64,
    /// Concurrent clients, each its own session.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Most seconds the run lasts (connecting included); jobs still out then are `unfinished`.
    #[arg(long, default_value_t = 3600.0)]
    pub duration: f64,
}

/// Most jobs: job numbers travel as `f32` operands, exact below 2^24.
pub const MAX_JOBS: u64 = (1 << 24) - 1;

/// What every client shares.
struct Shared {
    /// Jobs in all.
    jobs: u64,
    /// The next job number to send.
    next: AtomicU64,
    /// Jobs that have ended (result or error), in order of ending.
    ended: AtomicU64,
    /// Where a tenth's end goes, for the monitor to read the server's memory.
    boundaries: mpsc::UnboundedSender<(usize, Instant)>,
}

impl Shared {
    /// Counts one job's end; returns the tenth it falls in.
    fn end_one(&self) -> usize {
        let n = self.ended.fetch_add(1, Ordering::Relaxed) + 1;
        let tenth = report::tenth_of(n, self.jobs);
        if report::ends_a_tenth(n, self.jobs) {
            let _ = self.boundaries.send((tenth, Instant::now()));
        }
        tenth
    }
}

/// One client's tally, merged into the report at the end.
pub(crate) struct Tally {
    /// Latencies of computed jobs, by tenth.
    pub latency: Vec<Histogram<u64>>,
    /// Computed jobs.
    pub completed: u64,
    /// Jobs the cache answered (none are expected: every job is distinct).
    pub cached: u64,
    /// Jobs out at the deadline.
    pub unfinished: u64,
    /// What went wrong.
    pub errors: Errors,
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Tally {
        Tally {
            latency: (0..TENTHS).map(|_| histogram()).collect(),
            completed: 0,
            cached: 0,
            unfinished: 0,
            errors: Errors::default(),
        }
    }

    /// Adds another client's tally to this one.
    pub fn merge(&mut self, other: Tally) {
        for (mine, theirs) in self.latency.iter_mut().zip(&other.latency) {
            let _ = mine.add(theirs);
        }
        self.completed += other.completed;
        self.cached += other.cached;
        self.unfinished += other.unfinished;
        self.errors.merge(other.errors);
    }
}

/// Runs the scenario against `addr` (`host:port`).
pub async fn run(addr: &str, opts: &AgeOptions) -> RunResult<AgeReport> {
    if !(10..=MAX_JOBS).contains(&opts.jobs) {
        return Err(format!(
            "--jobs must be between 10 (one per tenth) and {MAX_JOBS}"
        ));
    }
    let deadline = Instant::now() + crate::seconds(opts.duration);
    let http = stats::http_client()?;
    let nonce = jobs::run_nonce();
    let mut total = Tally::new();

    let sockets = WsClient::connect_many(addr, opts.clients, deadline, &mut total.errors).await;

    let before = stats::fetch(&http, addr).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let monitor = {
        let (http, addr) = (http.clone(), addr.to_owned());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some((tenth, at)) = rx.recv().await {
                let process = stats::fetch(&http, &addr).await.map(|s| s.stats.process);
                seen.push(Boundary { tenth, at, process });
            }
            seen
        })
    };
    let shared = Arc::new(Shared {
        jobs: opts.jobs,
        next: AtomicU64::new(0),
        ended: AtomicU64::new(0),
        boundaries: tx,
    });
    let start = Instant::now();
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(client, ws)| {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move { client_loop(ws, &shared, nonce, client, deadline).await })
        })
        .collect();
    let clients_started = tasks.len();
    for task in tasks {
        match task.await {
            Ok(tally) => total.merge(tally),
            Err(e) => total.errors.add("task_failed", &e.to_string()),
        }
    }
    let end = Instant::now();
    drop(shared);
    let boundaries = monitor
        .await
        .map_err(|e| format!("the memory monitor failed: {e}"))?;
    let after = stats::fetch(&http, addr).await?;
    Ok(AgeReport::build(
        opts,
        clients_started,
        total,
        (start, end),
        &boundaries,
        &before,
        &after,
    ))
}

/// One client's loop: take the next job number, submit, read until the job ends, repeat.
async fn client_loop(
    mut ws: WsClient,
    shared: &Shared,
    nonce: f32,
    client: usize,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::new();
    loop {
        if Instant::now() >= deadline {
            break;
        }
        let k = shared.next.fetch_add(1, Ordering::Relaxed);
        if k >= shared.jobs {
            break;
        }
        let sent = Instant::now();
        let submit = jobs::submit_calc(k.to_string(), jobs::distinct_add(nonce, client, k));
        if let Err(failure) = ws.send(&submit).await {
            shared.end_one();
            tally.errors.add(failure.kind, &failure.detail);
            return tally;
        }
        let mut cached = false;
        loop {
            match ws.recv(deadline).await {
                Recv::Message(ServerMessage::Result { cached: c, .. }) => cached = c,
                Recv::Message(ServerMessage::Done { .. }) => {
                    let tenth = shared.end_one();
                    if cached {
                        tally.cached += 1;
                    } else {
                        tally.completed += 1;
                        crate::report::record(&mut tally.latency[tenth], sent.elapsed());
                    }
                    break;
                }
                Recv::Message(ServerMessage::Error { code, message, .. }) => {
                    shared.end_one();
                    tally.errors.add(code.as_str(), &message);
                    break;
                }
                Recv::Message(_) => {}
                Recv::TimedOut => {
                    tally.unfinished += 1;
                    ws.close().await;
                    return tally;
                }
                Recv::Failed(failure) => {
                    shared.end_one();
                    tally.errors.add(failure.kind, &failure.detail);
                    return tally;
                }
            }
        }
    }
    ws.close().await;
    tally
}
