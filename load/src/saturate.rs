//! The saturate scenario: `clients` clients, each its own session, send calculator jobs back to
//! back (submit, wait for the job's end, submit the next) over the WebSocket or over
//! `POST /api/execute`, until each has sent `jobs_per_client` or `duration` has passed.
//!
//! It measures jobs completed and jobs/s, the latency of each job from submission to its end
//! (HDR histogram, microseconds), errors by code, answers the server's cache gave (counted apart:
//! they never touched the device), and the device's utilization from the server's busy time.
//! WebSocket clients connect first; the clock starts when all are connected.

use crate::client::{Recv, WsClient};
use crate::jobs::{self, CalcKind};
use crate::report::{self, Errors, Latency, Table};
use crate::stats::{self, ServerFigures};
use crate::RunResult;
use app::api::{ErrorBody, ExecuteResponse};
use app::protocol::{CalcJob, ServerMessage};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::Arc;
use tokio::time::Instant;

/// How jobs reach the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// One WebSocket per client, `submit` messages.
    Ws,
    /// `POST /api/execute`, one request per job.
    Http,
}

impl Transport {
    /// The flag's spelling, `ws` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Ws => "ws",
            Transport::Http => "http",
        }
    }
}

/// The saturate scenario's knobs (also its CLI flags).
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct SaturateOptions {
    /// Concurrent clients, each its own session.
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// WebSocket or HTTP.
    #[arg(long, value_enum, default_value_t = Transport::Ws)]
    pub transport: Transport,
    /// `add` (a distinct 2x2 add) or `sleep` (test mode: holds the device `--sleep-us`).
    #[arg(long, value_enum, default_value_t = CalcKind::Add)]
    pub job: CalcKind,
    /// Length of a `sleep` job, microseconds.
    #[arg(long, default_value_t = 1000)]
    pub sleep_us: u64,
    /// Most jobs each client sends.
    #[arg(long, default_value_t = 100)]
    pub jobs_per_client: u64,
    /// Most seconds the run lasts (connecting included); jobs still out then are `unfinished`.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
}

/// What a saturate run measured.
#[derive(Clone, Debug, Serialize)]
pub struct SaturateReport {
    /// Always `saturate`, so a JSON file says what it holds.
    pub scenario: &'static str,
    /// What was asked.
    pub options: SaturateOptions,
    /// Clients that got going (WebSocket: connected).
    pub clients_started: usize,
    /// Jobs that ended with a computed result.
    pub completed: u64,
    /// Jobs the server answered from its result cache (not in `completed` nor the latencies).
    pub cached: u64,
    /// Jobs still out when the time was up.
    pub unfinished: u64,
    /// Seconds from the start of sending to the last client's end.
    pub wall_seconds: f64,
    /// `completed / wall_seconds`.
    pub jobs_per_second: f64,
    /// Submission to end, for completed jobs.
    pub latency: Latency,
    /// Failed jobs and lost clients, by code.
    pub errors: Errors,
    /// The server's figures over the run (utilization = device busy time / wall time).
    pub server: ServerFigures,
}

/// One client's tally, merged into the report at the end.
struct Tally {
    /// Latencies of completed jobs.
    latency: Histogram<u64>,
    /// Computed jobs.
    completed: u64,
    /// Cached answers.
    cached: u64,
    /// Jobs out at the deadline.
    unfinished: u64,
    /// What went wrong.
    errors: Errors,
}

impl Tally {
    /// An empty tally.
    fn new() -> Tally {
        Tally {
            latency: report::histogram(),
            completed: 0,
            cached: 0,
            unfinished: 0,
            errors: Errors::default(),
        }
    }
}

/// The job client `client` sends as its `k`th.
fn make_job(opts: &SaturateOptions, nonce: f32, client: usize, k: u64) -> CalcJob {
    match opts.job {
        CalcKind::Add => jobs::distinct_add(nonce, client, k),
        CalcKind::Sleep => jobs::sleep_us(opts.sleep_us),
    }
}

/// Runs the scenario against `addr` (`host:port`).
pub async fn run(addr: &str, opts: &SaturateOptions) -> RunResult<SaturateReport> {
    let deadline = Instant::now() + crate::seconds(opts.duration);
    let http = stats::http_client()?;
    let nonce = jobs::run_nonce();
    let opts_arc = Arc::new(opts.clone());
    let mut setup = Tally::new();

    // WebSocket clients connect before the clock starts.
    let mut sockets: Vec<Option<WsClient>> = Vec::new();
    if opts.transport == Transport::Ws {
        sockets = WsClient::connect_many(addr, opts.clients, deadline, &mut setup.errors)
            .await
            .into_iter()
            .map(Some)
            .collect();
    }

    let before = stats::fetch(&http, addr).await?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    match opts.transport {
        Transport::Ws => {
            for (client, socket) in sockets.iter_mut().enumerate() {
                let Some(ws) = socket.take() else { continue };
                let opts = Arc::clone(&opts_arc);
                tasks.push(tokio::spawn(async move {
                    ws_client(ws, &opts, nonce, client, deadline).await
                }));
            }
        }
        Transport::Http => {
            for client in 0..opts.clients {
                let (opts, http) = (Arc::clone(&opts_arc), http.clone());
                let url = format!(
                    "http://{}/api/execute",
                    crate::client::nth_addr(addr, client)
                );
                tasks.push(tokio::spawn(async move {
                    http_client(&http, &url, &opts, nonce, client, deadline).await
                }));
            }
        }
    }
    let clients_started = tasks.len();
    let mut total = setup;
    for task in tasks {
        match task.await {
            Ok(tally) => {
                let _ = total.latency.add(&tally.latency);
                total.completed += tally.completed;
                total.cached += tally.cached;
                total.unfinished += tally.unfinished;
                total.errors.merge(tally.errors);
            }
            Err(e) => total.errors.add("task_failed", &e.to_string()),
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let after = stats::fetch(&http, addr).await?;
    Ok(SaturateReport {
        scenario: "saturate",
        options: opts.clone(),
        clients_started,
        completed: total.completed,
        cached: total.cached,
        unfinished: total.unfinished,
        wall_seconds: wall,
        jobs_per_second: if wall > 0.0 {
            total.completed as f64 / wall
        } else {
            0.0
        },
        latency: Latency::of(&total.latency),
        errors: total.errors,
        server: ServerFigures::between(&before, &after),
    })
}

/// One WebSocket client's loop: submit, read until the job ends, repeat.
async fn ws_client(
    mut ws: WsClient,
    opts: &SaturateOptions,
    nonce: f32,
    client: usize,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::new();
    'jobs: for k in 0..opts.jobs_per_client {
        if Instant::now() >= deadline {
            break;
        }
        let sent = Instant::now();
        let submit = jobs::submit_calc(k.to_string(), make_job(opts, nonce, client, k));
        if let Err(failure) = ws.send(&submit).await {
            tally.errors.add(failure.kind, &failure.detail);
            return tally;
        }
        let mut cached = false;
        loop {
            match ws.recv(deadline).await {
                Recv::Message(ServerMessage::Result { cached: c, .. }) => cached = c,
                Recv::Message(ServerMessage::Done { .. }) => {
                    if cached {
                        tally.cached += 1;
                    } else {
                        tally.completed += 1;
                        report::record(&mut tally.latency, sent.elapsed());
                    }
                    continue 'jobs;
                }
                Recv::Message(ServerMessage::Error { code, message, .. }) => {
                    tally.errors.add(code.as_str(), &message);
                    continue 'jobs;
                }
                Recv::Message(_) => {}
                Recv::TimedOut => {
                    tally.unfinished += 1;
                    break 'jobs;
                }
                Recv::Failed(failure) => {
                    tally.errors.add(failure.kind, &failure.detail);
                    return tally;
                }
            }
        }
    }
    ws.close().await;
    tally
}

/// One HTTP client's loop: `POST /api/execute` as its own session, one job after another.
async fn http_client(
    http: &reqwest::Client,
    url: &str,
    opts: &SaturateOptions,
    nonce: f32,
    client: usize,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::new();
    let session = crate::client::new_session();
    for k in 0..opts.jobs_per_client {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let sent = Instant::now();
        let request = http
            .post(url)
            .header("x-turnstile-session", &session)
            .json(&make_job(opts, nonce, client, k))
            .timeout(deadline - now)
            .send();
        let response = match request.await {
            Ok(response) => response,
            Err(e) if e.is_timeout() => {
                tally.unfinished += 1;
                break;
            }
            Err(e) => {
                tally.errors.add("transport_error", &e.to_string());
                break;
            }
        };
        let status = response.status();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(e) if e.is_timeout() => {
                tally.unfinished += 1;
                break;
            }
            Err(e) => {
                tally.errors.add("transport_error", &e.to_string());
                break;
            }
        };
        if status.is_success() {
            match serde_json::from_slice::<ExecuteResponse>(&body) {
                Ok(answer) if answer.cached => tally.cached += 1,
                Ok(_) => {
                    tally.completed += 1;
                    report::record(&mut tally.latency, sent.elapsed());
                }
                Err(e) => tally.errors.add("undecodable_message", &e.to_string()),
            }
        } else {
            match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(error) => tally
                    .errors
                    .add(error.error.code.as_str(), &error.error.message),
                Err(_) => tally.errors.add(
                    &format!("http_{}", status.as_u16()),
                    &String::from_utf8_lossy(&body),
                ),
            }
        }
    }
    tally
}

impl SaturateReport {
    /// The human-readable table.
    pub fn table(&self) -> Table {
        let o = &self.options;
        let job = match o.job {
            CalcKind::Add => "add (distinct 2x2)".to_owned(),
            CalcKind::Sleep => format!("sleep {} µs", o.sleep_us),
        };
        let mut t = Table::new(&format!(
            "saturate: {} clients over {}, {job}, up to {} jobs each, {} s",
            o.clients,
            o.transport.as_str(),
            o.jobs_per_client,
            o.duration
        ));
        t.row("clients started", self.clients_started)
            .row("jobs completed", self.completed)
            .row("cached answers", self.cached)
            .row("unfinished at the deadline", self.unfinished)
            .row("wall time (s)", format!("{:.3}", self.wall_seconds))
            .row("jobs/s", format!("{:.1}", self.jobs_per_second))
            .row("latency (submit → done)", self.latency.summary_ms())
            .row(
                "latency mean (ms)",
                format!("{:.3}", self.latency.mean_us / 1000.0),
            )
            .row("errors", self.errors.summary())
            .row(
                "device utilization",
                format!(
                    "{:.1} % ({:.3} s busy over {:.3} s)",
                    self.server.utilization * 100.0,
                    self.server.busy_seconds,
                    self.server.interval_seconds
                ),
            )
            .row("server cache hits", self.server.cache_hits)
            .row(
                "server RSS after (MiB)",
                report::mib(self.server.rss_after_bytes),
            );
        t
    }
}
