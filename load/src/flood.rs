//! The flood scenario: does one session that floods the queue delay only itself?
//!
//! One session (one connection) submits `flood_jobs` test-mode sleeps of `job_ms` at once. Then
//! `light` other sessions submit one job of the same length each, staggered: light session `i`
//! submits its job once at least `stagger · (i+1)` of the flood's jobs have started, and at
//! least `stagger` since the previous light session's, so that it reaches the server in the
//! middle of a flood job: half a job-time after that job's `started` reached the flood's
//! connection (one that did not come in a burst with the previous one), less the light
//! connection's round trip, measured with a `ping` before the run. So each
//! arrives while the flood's backlog is still long, and always at the same point within a job:
//! the wait is then the average over arrival phases rather than a random draw (with the fair
//! order, a newcomer waits out the rest of the running job, the prefetched one and at most one
//! more of the flood's, so between 2 and 3 job-times depending on the phase; 2.5 mid-job). For each light session the report gives its wait (accepted →
//! started, the `started` message's `waited_ms`) in job-times (wait / `job_ms`); for the flood,
//! its mean wait; and Jain's fairness index `J = (Σx)² / (n·Σx²)` over the sessions' service
//! rates `x_i` = device time session `i` received (its completed jobs × `job_ms`) while it had a
//! job waiting or running, over the length of that period (its first submission to its last
//! job's end). Sessions that completed nothing are left out of `J`.
//!
//! The server's `--queue-order` (fair or fifo) decides the order; the report only says what it
//! measured and which order the server named in `/api/stats`. The server needs `--test-mode` and
//! `--max-waiting-per-session` of at least `flood_jobs` (256 for the default 200).

use crate::client::What;
use crate::fleet::Fleet;
use crate::jobs;
use crate::report::{self, Errors, Table};
use crate::stats::{self, ServerFigures};
use crate::RunResult;
use app::protocol::ServerMessage;
use serde::Serialize;
use std::time::Duration;
use tokio::time::Instant;

/// The flood scenario's knobs (also its CLI flags).
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct FloodOptions {
    /// Jobs the flooding session submits at once.
    #[arg(long, default_value_t = 200)]
    pub flood_jobs: u64,
    /// Other sessions, one job each.
    #[arg(long, default_value_t = 9)]
    pub light: usize,
    /// Length of every job, milliseconds (the "job-time").
    #[arg(long, default_value_t = 20)]
    pub job_ms: u64,
    /// Flood jobs started between two light arrivals.
    #[arg(long, default_value_t = 5)]
    pub stagger: u64,
    /// Most seconds the whole run lasts.
    #[arg(long, default_value_t = 120.0)]
    pub timeout: f64,
}

/// One session's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SessionResult {
    /// Jobs it submitted.
    pub submitted: u64,
    /// Jobs that completed.
    pub completed: u64,
    /// Each started job's `waited_ms`, in order of starting.
    pub waits_ms: Vec<u64>,
    /// Mean of `waits_ms` over `job_ms` (0 when none started).
    pub mean_wait_job_times: f64,
    /// Seconds from its first submission to its last job's end (0 when unfinished).
    pub period_seconds: f64,
    /// Device seconds received over `period_seconds` (None when it completed nothing).
    pub service_rate: Option<f64>,
    /// The connection's round trip (a `ping` before the run), microseconds, if it answered.
    pub ping_rtt_us: Option<u64>,
}

/// What a flood run measured.
#[derive(Clone, Debug, Serialize)]
pub struct FloodReport {
    /// Always `flood`.
    pub scenario: &'static str,
    /// What was asked.
    pub options: FloodOptions,
    /// `fair` or `fifo`, as `/api/stats` says.
    pub queue_order: String,
    /// The flooding session.
    pub flood: SessionResult,
    /// The light sessions, in order of arrival.
    pub light: Vec<SessionResult>,
    /// Jain's index over the service rates of the sessions that completed something.
    pub jain_index: Option<f64>,
    /// Seconds from the flood's submission to the last job's end.
    pub wall_seconds: f64,
    /// What went wrong, by code.
    pub errors: Errors,
    /// The server's figures over the run.
    pub server: ServerFigures,
}

/// The driver's record of one session while the run goes on.
#[derive(Clone, Debug, Default)]
struct Tracker {
    /// Its first submission.
    first_sent: Option<Instant>,
    /// Its last job's end.
    last_end: Option<Instant>,
    /// Jobs that have ended (either way).
    ended: u64,
    /// Its connection failed: nothing more comes.
    lost: bool,
    /// The figures so far.
    result: SessionResult,
}

impl Tracker {
    /// Whether it has nothing more to wait for.
    fn finished(&self) -> bool {
        self.lost || (self.first_sent.is_some() && self.ended >= self.result.submitted)
    }
}

/// Runs the scenario against `addr` (`host:port`).
pub async fn run(addr: &str, opts: &FloodOptions) -> RunResult<FloodReport> {
    let deadline = Instant::now() + crate::seconds(opts.timeout);
    let http = stats::http_client()?;
    let mut errors = Errors::default();
    let mut fleet = Fleet::new(addr, deadline);
    for _ in 0..=opts.light {
        fleet.add();
    }
    let mut sessions = vec![Tracker::default(); fleet.len()];
    for (i, outcome) in fleet.wait_connected().await.into_iter().enumerate() {
        if let Err(failure) = outcome {
            errors.add(failure.kind, &failure.detail);
            sessions[i].lost = true;
        }
    }
    let open: Vec<bool> = sessions.iter().map(|t| !t.lost).collect();
    let (rtts, others) = fleet.ping(&open).await;
    for event in others {
        if let What::Failed(failure) = event.what {
            errors.add(failure.kind, &failure.detail);
            if let Some(tracker) = sessions.get_mut(event.conn) {
                tracker.lost = true;
            }
        }
    }
    for (tracker, rtt) in sessions.iter_mut().zip(&rtts) {
        tracker.result.ping_rtt_us = rtt.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }
    let before = stats::fetch(&http, addr).await?;

    // The flood, all at once, on connection 0.
    let start = Instant::now();
    sessions[0].first_sent = Some(start);
    for k in 0..opts.flood_jobs {
        if fleet.send(
            0,
            jobs::submit_calc(format!("f{k}"), jobs::sleep_ms(opts.job_ms)),
        ) {
            sessions[0].result.submitted += 1;
        }
    }
    let half_job = Duration::from_micros(opts.job_ms.saturating_mul(500));
    let mut flood_started = 0u64;
    // When the flood's last `started` arrived, and how many had when the last light went.
    let mut last_flood_start: Option<Instant> = None;
    let mut started_at_last_light = 0u64;
    let mut next_light = 1usize;
    let mut light_due: Option<Instant> = None;
    let mut last_end = start;

    loop {
        // Once the flood cannot trigger more arrivals, the remaining light sessions go now.
        if light_due.is_none() && next_light <= opts.light && sessions[0].finished() {
            light_due = Some(Instant::now());
        }
        if next_light > opts.light && sessions.iter().all(Tracker::finished) {
            break;
        }
        let due = light_due.unwrap_or(deadline);
        let event = tokio::select! {
            event = fleet.next() => match event {
                Some(event) => Some(event),
                None => break,
            },
            _ = tokio::time::sleep_until(due), if light_due.is_some() => None,
        };
        let Some(event) = event else {
            // A light session's turn.
            let i = next_light;
            let tracker = &mut sessions[i];
            if !tracker.lost
                && fleet.send(
                    i,
                    jobs::submit_calc(format!("l{i}"), jobs::sleep_ms(opts.job_ms)),
                )
            {
                tracker.first_sent = Some(Instant::now());
                tracker.result.submitted = 1;
                started_at_last_light = flood_started;
            } else {
                tracker.lost = true;
            }
            next_light += 1;
            light_due = None;
            continue;
        };
        let Some(tracker) = sessions.get_mut(event.conn) else {
            continue;
        };

        match event.what {
            What::Connected => {}
            What::Failed(failure) => {
                errors.add(failure.kind, &failure.detail);
                tracker.lost = true;
            }
            What::Message(ServerMessage::Started { waited_ms, .. }) => {
                tracker.result.waits_ms.push(waited_ms);
                if event.conn == 0 {
                    flood_started += 1;
                    // Only a `started` that came on its own (not in a burst with the previous
                    // one, as when the client fell behind) says when its job began.
                    let fresh =
                        last_flood_start.is_none_or(|t| event.at.duration_since(t) >= half_job);
                    last_flood_start = Some(event.at);
                    let stagger = opts.stagger.max(1);
                    let due = flood_started >= stagger * next_light as u64
                        && flood_started >= started_at_last_light + stagger;
                    if next_light <= opts.light && light_due.is_none() && fresh && due {
                        // Aim the job at the middle of the flood job that just started: half a
                        // job-time, less the light connection's round trip.
                        let rtt = rtts.get(next_light).copied().flatten().unwrap_or_default();
                        light_due = Some(event.at + half_job.saturating_sub(rtt));
                    }
                }
            }
            What::Message(ServerMessage::Done { .. }) => {
                tracker.ended += 1;
                tracker.result.completed += 1;
                tracker.last_end = Some(event.at);
                last_end = last_end.max(event.at);
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
                    tracker.ended += 1;
                }
            }
            What::Message(_) => {}
        }
    }
    for tracker in &sessions {
        if !tracker.finished() {
            errors.add(
                "unfinished",
                "a session's jobs had not all ended by the timeout",
            );
        }
    }
    let after = stats::fetch(&http, addr).await?;
    let job_seconds = opts.job_ms as f64 / 1000.0;
    let results: Vec<SessionResult> = sessions
        .into_iter()
        .map(|t| finish(t, opts.job_ms, job_seconds))
        .collect();
    let rates: Vec<f64> = results.iter().filter_map(|r| r.service_rate).collect();
    let mut results = results.into_iter();
    let flood = results.next().unwrap_or_default();
    let server = ServerFigures::between(&before, &after);
    Ok(FloodReport {
        scenario: "flood",
        options: opts.clone(),
        queue_order: server.queue_order.clone(),
        flood,
        light: results.collect(),
        jain_index: report::jain(&rates),
        wall_seconds: last_end.duration_since(start).as_secs_f64(),
        errors,
        server,
    })
}

/// A session's figures once the run is over.
fn finish(t: Tracker, job_ms: u64, job_seconds: f64) -> SessionResult {
    let mut r = t.result;
    if !r.waits_ms.is_empty() && job_ms > 0 {
        let mean = r.waits_ms.iter().sum::<u64>() as f64 / r.waits_ms.len() as f64;
        r.mean_wait_job_times = mean / job_ms as f64;
    }
    if let (Some(first), Some(last)) = (t.first_sent, t.last_end) {
        r.period_seconds = last.duration_since(first).as_secs_f64();
        if r.completed > 0 && r.period_seconds > 0.0 {
            r.service_rate = Some(r.completed as f64 * job_seconds / r.period_seconds);
        }
    }
    r
}

impl FloodReport {
    /// The human-readable tables: the summary, then one row per session.
    pub fn table(&self) -> String {
        let o = &self.options;
        let mut t = Table::new(&format!(
            "flood: {} jobs of {} ms from one session, {} light sessions (one every {} job-times)",
            o.flood_jobs, o.job_ms, o.light, o.stagger
        ));
        t.row("server queue order", &self.queue_order)
            .row(
                "flood completed",
                format!("{} of {}", self.flood.completed, self.flood.submitted),
            )
            .row(
                "flood mean wait (job-times)",
                format!("{:.2}", self.flood.mean_wait_job_times),
            )
            .row(
                "Jain's fairness index J",
                self.jain_index
                    .map_or("n/a".to_owned(), |j| format!("{j:.3}")),
            )
            .row("wall time (s)", format!("{:.3}", self.wall_seconds))
            .row(
                "device utilization",
                format!("{:.1} %", self.server.utilization * 100.0),
            )
            .row("errors", self.errors.summary());
        let mut sessions = Table::with_columns(
            "sessions",
            &[
                "session",
                "jobs",
                "wait (ms)",
                "wait (job-times)",
                "service rate",
            ],
        );
        let rate = |r: &SessionResult| r.service_rate.map_or("n/a".into(), |x| format!("{x:.3}"));
        sessions.cells(vec![
            "flood".into(),
            format!("{}/{}", self.flood.completed, self.flood.submitted),
            mean_ms(&self.flood.waits_ms),
            format!("{:.2} (mean)", self.flood.mean_wait_job_times),
            rate(&self.flood),
        ]);
        for (i, l) in self.light.iter().enumerate() {
            sessions.cells(vec![
                format!("light {}", i + 1),
                format!("{}/{}", l.completed, l.submitted),
                mean_ms(&l.waits_ms),
                format!("{:.2}", l.mean_wait_job_times),
                rate(l),
            ]);
        }
        format!(
            "{t}\n{sessions}\nJ = (Σx)² / (n·Σx²) over the sessions' service rates x_i = device time \
             session i received while it had a job waiting or running / the length of that period."
        )
    }
}

/// The mean of some waits in ms, for a table cell.
fn mean_ms(waits: &[u64]) -> String {
    if waits.is_empty() {
        return "n/a".into();
    }
    format!(
        "{:.1}",
        waits.iter().sum::<u64>() as f64 / waits.len() as f64
    )
}
