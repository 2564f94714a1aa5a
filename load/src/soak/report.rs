//! The soak run's report: [`SoakReport`], everything a run measured, and its human-readable
//! table.

use super::counts::{ChatCounts, ChurnCounts, JobCounts, SoakServer};
use super::plan::share;
use super::violations::Violations;
use super::SoakOptions;
use crate::report::{self, Errors, Latency, Table};
use serde::Serialize;
use std::collections::BTreeMap;

/// What a soak run measured.
#[derive(Clone, Debug, Serialize)]
pub struct SoakReport {
    /// Always `soak`.
    pub scenario: &'static str,
    /// What was asked.
    pub options: SoakOptions,
    /// The seed used (pass it as `--seed` to deal the same jobs and churn again).
    pub seed: u64,
    /// Clients that connected at least once.
    pub clients_connected: usize,
    /// Clients that misbehaved.
    pub churning_clients: usize,
    /// Where every job went.
    pub jobs: JobCounts,
    /// Whether every submitted job is in exactly one of the outcome counts.
    pub every_job_accounted: bool,
    /// Submissions refused by the server protecting itself, by code (sent again, not failures).
    pub refused: BTreeMap<String, u64>,
    /// Chats, and the resumes among them.
    pub chats: ChatCounts,
    /// What the misbehaving clients did.
    pub churn: ChurnCounts,
    /// Protocol violations seen by the clients, by kind.
    pub violations: Violations,
    /// Seconds from the first submission to the last client's end.
    pub wall_seconds: f64,
    /// Completed jobs (cached answers included) per wall second.
    pub jobs_per_second: f64,
    /// Submission to `done` of calculator jobs the device computed.
    pub calc_latency: Latency,
    /// Submission to `done` of chats that were not dropped or cancelled.
    pub chat_latency: Latency,
    /// Failed jobs by code, and socket and protocol failures by kind.
    pub errors: Errors,
    /// What the server reported.
    pub server: SoakServer,
}

impl SoakReport {
    /// The human-readable table.
    pub fn table(&self) -> Table {
        let o = &self.options;
        let j = &self.jobs;
        let c = &self.chats;
        let ch = &self.churn;
        let s = &self.server;
        let mut t = Table::new(&format!(
            "soak: {} clients, {} jobs ({:.2} % chats of {} tokens), churn {:.0} %, {} s (+{} s grace), seed {}",
            o.clients,
            o.jobs,
            share(o.chat_share) * 100.0,
            o.max_tokens,
            share(o.churn) * 100.0,
            o.duration,
            o.grace,
            self.seed
        ));
        let refused = if self.refused.is_empty() {
            "none".to_owned()
        } else {
            self.refused
                .iter()
                .map(|(k, n)| format!("{k} ×{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        t.row(
            "clients connected (churning)",
            format!("{} ({})", self.clients_connected, self.churning_clients),
        )
        .row(
            "jobs planned / submitted / not run",
            format!("{} / {} / {}", j.planned, j.submitted, j.not_run),
        )
        .row(
            "completed (of which cached)",
            format!("{} ({})", j.completed, j.cached),
        )
        .row("cancelled", j.cancelled)
        .row("dropped by disconnect", j.dropped_by_disconnect)
        .row(
            "failed / lost / unfinished / gave up",
            format!(
                "{} / {} / {} / {}",
                j.failed, j.lost, j.unfinished, j.gave_up
            ),
        )
        .row(
            "every job accounted for",
            if self.every_job_accounted {
                "yes"
            } else {
                "NO"
            },
        )
        .row("refused and sent again", refused)
        .row(
            "chats submitted / completed / cancelled",
            format!("{} / {} / {}", c.submitted, c.completed, c.cancelled),
        )
        .row(
            "chats resumed (exact replay / not)",
            format!(
                "{} ({} / {})",
                c.resumed, c.replays_exact, c.replays_inexact
            ),
        )
        .row(
            "resumed in the middle of the answer",
            c.replays
                .iter()
                .filter(|r| r.dropped_after == "token")
                .count(),
        )
        .row("replay problems", c.replay_problems.summary())
        .row(
            "disconnects / reconnects",
            format!("{} / {}", ch.disconnects, ch.reconnects),
        )
        .row(
            "cancels sent (too late)",
            format!("{} ({})", ch.cancels_sent, ch.cancels_too_late),
        )
        .row(
            "calc resumes refused / tried",
            format!("{} / {}", ch.calc_resume_refused, ch.calc_resume_probes),
        )
        .row("violations", self.violations.summary())
        .row("wall time (s)", format!("{:.3}", self.wall_seconds))
        .row("jobs/s (completed)", format!("{:.1}", self.jobs_per_second))
        .row("calc latency", self.calc_latency.summary_ms())
        .row("chat latency", self.chat_latency.summary_ms())
        .row("errors", self.errors.summary())
        .row(
            "server queue back to zero",
            if s.queue_back_to_zero {
                format!("yes, after {:.3} s", s.queue_settle_seconds)
            } else {
                format!("NO within {:.0} s", s.queue_settle_seconds)
            },
        )
        .row(
            "server stats readable after the run",
            if s.readable_after { "yes" } else { "NO" },
        )
        .row("server queue peak", s.queue_length_peak)
        .row(
            "server sockets before / after",
            format!(
                "{} / {}",
                s.websocket_connections_start, s.websocket_connections_end
            ),
        )
        .row("server cache hits", s.cache_hits)
        .row(
            "server RSS start / peak / end (MiB)",
            format!(
                "{} / {} / {}",
                report::mib(s.rss_start_bytes),
                report::mib(s.rss_peak_bytes),
                report::mib(s.rss_end_bytes)
            ),
        )
        .row(
            "server RSS end / start",
            format!(
                "{:.3} ({} 10 %)",
                s.rss_end_over_start,
                if s.rss_within_10_percent {
                    "within"
                } else {
                    "NOT within"
                }
            ),
        );
        t
    }
}
