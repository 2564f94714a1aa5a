//! The hold scenario: what thousands of waiting clients cost the server, and how fast a queue
//! change reaches all of them.
//!
//! One blocker connection submits a long test-mode `sleep` and waits until it holds the device.
//! The server's RSS is read; then `waiters` connections, each its own session, each queue one
//! long sleep; once all are accepted the RSS is read again (the difference per waiter, in KiB,
//! is what one waiting client costs). Then `rounds` times: the job holding the device is
//! cancelled on the connection that owns it (the one that received `started`), so every waiter
//! moves up one place; the lag is from sending the `cancel` to the moment the last affected
//! waiter heard of it (`started` for the next in line, `position` for everyone else), using the
//! instants each connection's task stamped on arrival.
//!
//! The server needs `--test-mode`, `--max-run` and `--max-wait` above the jobs' length and the
//! run's time (e.g. `1h`), `--max-waiting` above `waiters`, and, for 10,000 waiters, an open-files
//! limit above that (`ulimit -n`) in the shell that starts it. Rounds are spaced by `round_gap_ms`,
//! longer than the server's `--position-interval` (100 ms by default), so that a position change
//! is never held back by the coalescing of the previous round's.

use crate::client::{self, Event, What};
use crate::fleet::Fleet;
use crate::jobs;
use crate::report::{self, Errors, Latency, Table};
use crate::stats;
use crate::RunResult;
use app::error_code::ErrorCode;
use app::protocol::{ClientMessage, JobId, ServerMessage};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// The hold scenario's knobs (also its CLI flags).
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct HoldOptions {
    /// Waiting connections, each its own session with one long job queued.
    #[arg(long, default_value_t = 1000)]
    pub waiters: usize,
    /// Queue changes (cancels of the running job) to measure.
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
    /// Length of every sleep job (blocker and waiters), milliseconds; must fit `--max-run`.
    #[arg(long, default_value_t = 600_000)]
    pub job_ms: u64,
    /// Pause between rounds, milliseconds (longer than the server's `--position-interval`).
    #[arg(long, default_value_t = 250)]
    pub round_gap_ms: u64,
    /// Most seconds the whole run lasts.
    #[arg(long, default_value_t = 300.0)]
    pub timeout: f64,
}

/// What a hold run measured.
#[derive(Clone, Debug, Serialize)]
pub struct HoldReport {
    /// Always `hold`.
    pub scenario: &'static str,
    /// What was asked.
    pub options: HoldOptions,
    /// Waiters whose job was accepted.
    pub waiters_queued: usize,
    /// Seconds from the first waiter's connection to the last acceptance.
    pub queue_seconds: f64,
    /// Server RSS with the blocker running and no waiter yet, bytes.
    pub rss_before_bytes: u64,
    /// Server RSS with every waiter queued, bytes.
    pub rss_after_bytes: u64,
    /// `(after - before) / waiters_queued`, KiB: what one waiting client costs the server.
    pub rss_per_waiter_kib: f64,
    /// Open WebSocket connections the server counted with everyone queued.
    pub server_websocket_connections: u64,
    /// Rounds whose lag was measured.
    pub rounds_measured: usize,
    /// Each round's lag, microseconds.
    pub lags_us: Vec<u64>,
    /// Percentiles of the lags.
    pub lag: Latency,
    /// What went wrong, by code.
    pub errors: Errors,
}

/// What the driver knows of one connection's job.
#[derive(Clone, Debug, Default)]
struct JobState {
    /// Its id, once accepted.
    job: Option<JobId>,
    /// Its last announced position.
    position: Option<u64>,
    /// It holds (or held) the device.
    started: bool,
    /// Nothing more will happen to it.
    ended: bool,
    /// The driver cancelled it (so `cancelled` is expected, not an error).
    cancelling: bool,
}

/// The collector's view of every connection.
struct Hold {
    /// The connections: 0 is the blocker, 1..=waiters the waiters.
    fleet: Fleet,
    /// Per connection.
    jobs: Vec<JobState>,
    /// What went wrong.
    errors: Errors,
}

impl Hold {
    /// Updates the state from one event.
    fn apply(&mut self, event: &Event) {
        let Some(state) = self.jobs.get_mut(event.conn) else {
            return;
        };
        match &event.what {
            What::Connected => {}
            What::Failed(failure) => {
                if !state.ended {
                    self.errors.add(failure.kind, &failure.detail);
                }
                state.ended = true;
            }
            What::Message(msg) => match msg {
                ServerMessage::Accepted {
                    job_id, position, ..
                } => {
                    state.job = Some(job_id.clone());
                    state.position = Some(*position);
                }
                ServerMessage::Position { position, .. } => state.position = Some(*position),
                ServerMessage::Started { .. } => state.started = true,
                ServerMessage::Done { .. } => state.ended = true,
                ServerMessage::Error { code, message, .. } => {
                    if !(state.cancelling && *code == ErrorCode::Cancelled) {
                        self.errors.add(code.as_str(), message);
                    }
                    state.ended = true;
                }
                _ => {}
            },
        }
    }

    /// Applies events until `until` passes.
    async fn drain_until(&mut self, until: Instant) {
        while let Some(event) = self.fleet.next_until(until).await {
            self.apply(&event);
        }
    }

    /// The connection whose job holds the device now, if any.
    fn running(&self) -> Option<usize> {
        self.jobs
            .iter()
            .position(|j| j.started && !j.ended && !j.cancelling && j.job.is_some())
    }
}

/// Runs the scenario against `addr` (`host:port`).
pub async fn run(addr: &str, opts: &HoldOptions) -> RunResult<HoldReport> {
    let deadline = Instant::now() + crate::seconds(opts.timeout);
    let gap = Duration::from_millis(opts.round_gap_ms);
    let http = stats::http_client()?;
    let mut errors = Errors::default();
    let want = opts.waiters as u64 + 256;
    match client::raise_open_files(want) {
        Ok(limit) if limit < want => errors.add(
            "open_files_limit",
            &format!("RLIMIT_NOFILE is {limit}, below the {want} this run needs"),
        ),
        Ok(_) => {}
        Err(e) => errors.add("open_files_limit", &e),
    }
    let mut hold = Hold {
        fleet: Fleet::new(addr, deadline),
        jobs: vec![JobState::default(); opts.waiters + 1],
        errors,
    };

    // The blocker takes the device.
    let blocker = hold.fleet.add();
    hold.fleet.send(
        blocker,
        jobs::submit_calc("blocker", jobs::sleep_ms(opts.job_ms)),
    );
    while !hold.jobs[blocker].started {
        if hold.jobs[blocker].ended {
            return Err(format!(
                "the blocker's job did not start: {}",
                hold.errors.summary()
            ));
        }
        let Some(event) = hold.fleet.next().await else {
            return Err("the blocker's job did not start before the timeout".into());
        };
        hold.apply(&event);
    }
    hold.drain_until(Instant::now() + gap).await;
    let before = stats::fetch(&http, addr).await?;

    // The waiters queue, each on its own connection and session.
    let queue_start = Instant::now();
    for _ in 0..opts.waiters {
        let id = hold.fleet.add();
        hold.fleet.send(
            id,
            jobs::submit_calc(format!("w{id}"), jobs::sleep_ms(opts.job_ms)),
        );
    }
    let mut unsettled = opts.waiters;
    let mut queued_at = queue_start;
    while unsettled > 0 {
        let Some(event) = hold.fleet.next().await else {
            hold.errors.add(
                "queue_timeout",
                &format!("{unsettled} waiters were neither accepted nor refused in time"),
            );
            break;
        };
        let was = settled(&hold.jobs[event.conn]);
        hold.apply(&event);
        if event.conn != blocker && !was && settled(&hold.jobs[event.conn]) {
            unsettled -= 1;
            queued_at = event.at;
        }
    }
    let queue_seconds = queued_at.duration_since(queue_start).as_secs_f64();
    hold.drain_until(Instant::now() + gap).await;
    let after = stats::fetch(&http, addr).await?;
    let waiters_queued = hold.jobs[1..]
        .iter()
        .filter(|j| j.job.is_some() && !j.ended)
        .count();

    // Rounds: cancel the running job; everyone behind moves up one.
    let mut lags = Vec::new();
    let mut histogram = report::histogram();
    for round in 0..opts.rounds {
        if Instant::now() >= deadline {
            break;
        }
        match measure_round(&mut hold, round).await {
            Some(lag) => {
                report::record(&mut histogram, lag);
                lags.push(u64::try_from(lag.as_micros()).unwrap_or(u64::MAX));
            }
            None => break,
        }
        hold.drain_until(Instant::now() + gap).await;
    }

    let rss_before = before.stats.process.rss_bytes;
    let rss_after = after.stats.process.rss_bytes;
    Ok(HoldReport {
        scenario: "hold",
        options: opts.clone(),
        waiters_queued,
        queue_seconds,
        rss_before_bytes: rss_before,
        rss_after_bytes: rss_after,
        rss_per_waiter_kib: if waiters_queued > 0 {
            (rss_after as f64 - rss_before as f64) / waiters_queued as f64 / 1024.0
        } else {
            0.0
        },
        server_websocket_connections: after.stats.process.websocket_connections,
        rounds_measured: lags.len(),
        lags_us: lags,
        lag: Latency::of(&histogram),
        errors: hold.errors,
    })
}

/// Whether a waiter's submission has had its answer (accepted, refused or failed).
fn settled(job: &JobState) -> bool {
    job.job.is_some() || job.ended
}

/// One round: cancels the running job and waits until every waiter has moved up. Returns the
/// lag, or `None` (with the reason counted) when the round could not be measured.
async fn measure_round(hold: &mut Hold, round: usize) -> Option<Duration> {
    let Some(owner) = hold.running() else {
        hold.errors.add(
            "no_running_job",
            &format!("round {round}: no job of ours holds the device"),
        );
        return None;
    };
    // Every waiter not yet started moves up by one; the one at position 1 starts.
    let mut pending: HashMap<usize, u64> = hold
        .jobs
        .iter()
        .enumerate()
        .filter(|(i, j)| *i != owner && !j.started && !j.ended && j.job.is_some())
        .filter_map(|(i, j)| j.position.map(|p| (i, p.saturating_sub(1))))
        .collect();
    if pending.is_empty() {
        return None;
    }
    let job_id = hold.jobs[owner].job.clone()?;
    hold.jobs[owner].cancelling = true;
    let sent = Instant::now();
    if !hold.fleet.send(owner, ClientMessage::Cancel { job_id }) {
        hold.errors.add(
            "send_failed",
            &format!("round {round}: the owner's connection is gone"),
        );
        return None;
    }
    let mut last = sent;
    while !pending.is_empty() {
        let Some(event) = hold.fleet.next().await else {
            hold.errors.add(
                "round_timeout",
                &format!(
                    "round {round}: {} waiters had not moved up by the deadline",
                    pending.len()
                ),
            );
            return None;
        };
        hold.apply(&event);
        let Some(&target) = pending.get(&event.conn) else {
            continue;
        };
        let job = &hold.jobs[event.conn];
        let moved = job.started || job.position.is_some_and(|p| p <= target);
        if moved || job.ended {
            pending.remove(&event.conn);
            if moved {
                last = last.max(event.at);
            }
        }
    }
    Some(last.duration_since(sent))
}

impl HoldReport {
    /// The human-readable table.
    pub fn table(&self) -> Table {
        let o = &self.options;
        let mut t = Table::new(&format!(
            "hold: {} waiters, {} rounds, jobs of {} ms",
            o.waiters, o.rounds, o.job_ms
        ));
        t.row("waiters queued", self.waiters_queued)
            .row(
                "time to queue them (s)",
                format!("{:.3}", self.queue_seconds),
            )
            .row(
                "server RSS before waiters (MiB)",
                report::mib(self.rss_before_bytes),
            )
            .row(
                "server RSS all queued (MiB)",
                report::mib(self.rss_after_bytes),
            )
            .row(
                "RSS per waiter (KiB)",
                format!("{:.1}", self.rss_per_waiter_kib),
            )
            .row(
                "server WebSocket connections",
                self.server_websocket_connections,
            )
            .row("rounds measured", self.rounds_measured)
            .row(
                "queue-change lag (cancel → last waiter told)",
                self.lag.summary_ms(),
            )
            .row("errors", self.errors.summary());
        t
    }
}
