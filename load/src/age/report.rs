//! What an ageing run measured, tenth by tenth, and how the last tenth compares with the first.
//!
//! A tenth is a tenth of the jobs by the order they ended (job `n`, counting from 1, of `N` is in
//! tenth `(n - 1) * 10 / N`). Its length runs from the end of the previous tenth (or the start of
//! the run) to the end of its own last job; its latencies are those of the jobs that ended in it;
//! its memory is the server's resident memory read just after, and its CPU per job the server's
//! CPU time since the previous read over its jobs. The first tenth is the warm-up: memory is
//! judged from its end on.
//!
//! Concurrency: plain data, built once after the run.

use super::{AgeOptions, Tally};
use crate::report::{self, Errors, Latency, Table};
use crate::stats::{ServerFigures, Snapshot};
use app::api::ProcessStats;
use serde::Serialize;
use tokio::time::Instant;

/// Tenths in a run.
pub const TENTHS: usize = 10;

/// The tenth (0 to 9) of the `n`th job to end (from 1) out of `jobs`.
pub fn tenth_of(n: u64, jobs: u64) -> usize {
    let t = (n.saturating_sub(1)).saturating_mul(TENTHS as u64) / jobs.max(1);
    (t as usize).min(TENTHS - 1)
}

/// Whether the `n`th job to end is the last of its tenth.
pub fn ends_a_tenth(n: u64, jobs: u64) -> bool {
    n == jobs || tenth_of(n + 1, jobs) != tenth_of(n, jobs)
}

/// The end of one tenth, as the run saw it.
#[derive(Clone, Debug)]
pub struct Boundary {
    /// Which tenth (0 to 9).
    pub tenth: usize,
    /// When its last job ended.
    pub at: Instant,
    /// The server's process figures (memory, CPU time) just after, or why they could not be read.
    pub process: Result<ProcessStats, String>,
}

/// One tenth of the run.
#[derive(Clone, Debug, Serialize)]
pub struct Tenth {
    /// 1 to 10.
    pub tenth: usize,
    /// Whether all its jobs ended (a run cut short leaves its last tenths open).
    pub ended: bool,
    /// Jobs that ended in it with a computed result.
    pub completed: u64,
    /// Seconds from the previous tenth's end (or the start) to its own (or the run's end).
    pub seconds: f64,
    /// `completed / seconds`.
    pub jobs_per_second: f64,
    /// Submission to end, for its computed jobs.
    pub latency: Latency,
    /// The server's resident memory just after its end, bytes (0 when it could not be read).
    pub rss_bytes: u64,
    /// The server's CPU time over the tenth per job that ended in it, microseconds (user plus
    /// system, all its threads; 0 when it could not be read).
    pub server_cpu_us_per_job: f64,
}

/// The last tenth against the first.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Ageing {
    /// Change of jobs/s, last tenth against the first, percent (negative: slower).
    pub jobs_per_second_change_pct: f64,
    /// Change of p99 latency, last against first, percent (positive: slower).
    pub p99_change_pct: f64,
    /// Change of the server's CPU time per job, last against first, percent (positive: more
    /// work per job).
    pub server_cpu_per_job_change_pct: f64,
    /// Resident memory after the last tenth minus after the first (the warm-up), bytes.
    pub rss_growth_after_warmup_bytes: i64,
    /// The same, percent of the memory after the first tenth.
    pub rss_growth_after_warmup_pct: f64,
    /// Resident memory after the last tenth minus after the fifth: the second half's growth
    /// (windows of recent figures on the server fill over its first minute), bytes.
    pub rss_growth_second_half_bytes: i64,
    /// The most resident memory seen after any tenth, bytes.
    pub rss_max_bytes: u64,
    /// The target: the last tenth at most 5 % slower than the first in jobs/s and in p99.
    pub within_5_pct: bool,
}

/// What an ageing run measured.
#[derive(Clone, Debug, Serialize)]
pub struct AgeReport {
    /// Always `age`, so a JSON file says what it holds.
    pub scenario: &'static str,
    /// What was asked.
    pub options: AgeOptions,
    /// Clients that connected.
    pub clients_started: usize,
    /// Jobs that ended with a computed result.
    pub completed: u64,
    /// Jobs the cache answered (not in `completed`; none are expected).
    pub cached: u64,
    /// Jobs still out when the time was up.
    pub unfinished: u64,
    /// Seconds from the first submission to the last client's end.
    pub wall_seconds: f64,
    /// `completed / wall_seconds`.
    pub jobs_per_second: f64,
    /// Submission to end, over the whole run.
    pub latency: Latency,
    /// Failed jobs and lost clients, by code.
    pub errors: Errors,
    /// The server's resident memory before the run, bytes.
    pub rss_before_bytes: u64,
    /// The ten tenths, in order.
    pub tenths: Vec<Tenth>,
    /// The last tenth against the first.
    pub ageing: Ageing,
    /// The server's figures over the whole run.
    pub server: ServerFigures,
}

/// `(new - old) / old` in percent (0 when `old` is 0).
fn change_pct(old: f64, new: f64) -> f64 {
    if old > 0.0 {
        (new - old) / old * 100.0
    } else {
        0.0
    }
}

impl AgeReport {
    /// The report of a run from `span.0` to `span.1`.
    pub(crate) fn build(
        opts: &AgeOptions,
        clients_started: usize,
        mut total: Tally,
        span: (Instant, Instant),
        boundaries: &[Boundary],
        before: &Snapshot,
        after: &Snapshot,
    ) -> AgeReport {
        let (start, end) = span;
        let mut all = report::histogram();
        let mut tenths = Vec::with_capacity(TENTHS);
        let mut from = start;
        let mut cpu_from = before.stats.process.cpu_seconds;
        for (i, h) in total.latency.iter().enumerate() {
            let _ = all.add(h);
            let boundary = boundaries.iter().find(|b| b.tenth == i);
            let to = boundary.map_or(end, |b| b.at).max(from);
            let seconds = to.duration_since(from).as_secs_f64();
            let process = match boundary.map(|b| b.process.clone()) {
                Some(Ok(p)) => Some(p),
                Some(Err(e)) => {
                    total.errors.add("stats_unreadable", &e);
                    None
                }
                None => Some(after.stats.process.clone()),
            };
            let (rss, cpu_us) = match process {
                Some(p) => {
                    let used = (p.cpu_seconds - cpu_from).max(0.0);
                    cpu_from = p.cpu_seconds;
                    let per_job = if !h.is_empty() {
                        used * 1e6 / h.len() as f64
                    } else {
                        0.0
                    };
                    (p.rss_bytes, per_job)
                }
                None => (0, 0.0),
            };
            tenths.push(Tenth {
                tenth: i + 1,
                ended: boundary.is_some(),
                completed: h.len(),
                seconds,
                jobs_per_second: if seconds > 0.0 {
                    h.len() as f64 / seconds
                } else {
                    0.0
                },
                latency: Latency::of(h),
                rss_bytes: rss,
                server_cpu_us_per_job: cpu_us,
            });
            from = to;
        }
        let wall = end.duration_since(start).as_secs_f64();
        AgeReport {
            scenario: "age",
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
            latency: Latency::of(&all),
            errors: total.errors,
            rss_before_bytes: before.stats.process.rss_bytes,
            ageing: Ageing::of(&tenths),
            tenths,
            server: ServerFigures::between(before, after),
        }
    }

    /// The human-readable tables: one row per tenth, then the comparison.
    pub fn table(&self) -> String {
        let o = &self.options;
        let mut t = Table::with_columns(
            &format!(
                "age: {} distinct 2x2 adds from {} clients over the WebSocket, by tenth",
                o.jobs, o.clients
            ),
            &[
                "tenth",
                "jobs",
                "seconds",
                "jobs/s",
                "p50 ms",
                "p99 ms",
                "max ms",
                "RSS MiB",
                "server CPU µs/job",
            ],
        );
        for x in &self.tenths {
            t.cells(vec![
                format!("{}{}", x.tenth, if x.ended { "" } else { " (open)" }),
                x.completed.to_string(),
                format!("{:.2}", x.seconds),
                format!("{:.0}", x.jobs_per_second),
                report::ms(x.latency.p50_us),
                report::ms(x.latency.p99_us),
                report::ms(x.latency.max_us),
                report::mib(x.rss_bytes),
                format!("{:.1}", x.server_cpu_us_per_job),
            ]);
        }
        let a = &self.ageing;
        let mut s = Table::new("age: the last tenth against the first");
        s.row("clients started", self.clients_started)
            .row("jobs completed", self.completed)
            .row("cached answers", self.cached)
            .row("unfinished at the deadline", self.unfinished)
            .row("errors", self.errors.summary())
            .row("wall time (s)", format!("{:.1}", self.wall_seconds))
            .row("jobs/s (whole run)", format!("{:.0}", self.jobs_per_second))
            .row("latency (whole run)", self.latency.summary_ms())
            .row(
                "jobs/s, last vs first tenth",
                format!("{:+.1} %", a.jobs_per_second_change_pct),
            )
            .row(
                "p99, last vs first tenth",
                format!("{:+.1} %", a.p99_change_pct),
            )
            .row(
                "server CPU per job, last vs first tenth",
                format!("{:+.1} %", a.server_cpu_per_job_change_pct),
            )
            .row(
                "RSS before the run (MiB)",
                report::mib(self.rss_before_bytes),
            )
            .row(
                "RSS growth after the first tenth",
                format!(
                    "{:+.1} MiB ({:+.1} %), most {} MiB",
                    a.rss_growth_after_warmup_bytes as f64 / (1024.0 * 1024.0),
                    a.rss_growth_after_warmup_pct,
                    report::mib(a.rss_max_bytes)
                ),
            )
            .row(
                "RSS growth over the second half",
                format!(
                    "{:+.1} MiB",
                    a.rss_growth_second_half_bytes as f64 / (1024.0 * 1024.0)
                ),
            )
            .row(
                "last tenth within 5 % of the first",
                if a.within_5_pct { "yes" } else { "no" },
            );
        format!("{t}\n{s}")
    }
}

impl Ageing {
    /// The comparison over `tenths` (all zero with fewer than two).
    fn of(tenths: &[Tenth]) -> Ageing {
        let (Some(first), Some(last)) = (tenths.first(), tenths.last()) else {
            return Ageing::default();
        };
        if tenths.len() < 2 {
            return Ageing::default();
        }
        let jps = change_pct(first.jobs_per_second, last.jobs_per_second);
        let p99 = change_pct(first.latency.p99_us as f64, last.latency.p99_us as f64);
        let growth = last.rss_bytes as i64 - first.rss_bytes as i64;
        let middle = &tenths[(tenths.len() - 1) / 2];
        Ageing {
            jobs_per_second_change_pct: jps,
            p99_change_pct: p99,
            server_cpu_per_job_change_pct: change_pct(
                first.server_cpu_us_per_job,
                last.server_cpu_us_per_job,
            ),
            rss_growth_after_warmup_bytes: growth,
            rss_growth_second_half_bytes: last.rss_bytes as i64 - middle.rss_bytes as i64,
            rss_growth_after_warmup_pct: change_pct(first.rss_bytes as f64, last.rss_bytes as f64),
            rss_max_bytes: tenths.iter().map(|t| t.rss_bytes).max().unwrap_or(0),
            within_5_pct: last.ended && jps >= -5.0 && p99 <= 5.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_fall_into_tenths_by_the_order_they_end() {
        let tenths: Vec<usize> = (1..=20).map(|n| tenth_of(n, 20)).collect();
        assert_eq!(
            tenths,
            [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]
        );
        let ends: Vec<u64> = (1..=20).filter(|&n| ends_a_tenth(n, 20)).collect();
        assert_eq!(ends, [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
        // Uneven: 13 jobs still make ten tenths, each ending once, the last at the last job.
        let ends: Vec<u64> = (1..=13).filter(|&n| ends_a_tenth(n, 13)).collect();
        assert_eq!(ends.len(), 10);
        assert_eq!(ends.last(), Some(&13));
        let sizes: Vec<usize> = (0..10)
            .map(|t| (1..=13).filter(|&n| tenth_of(n, 13) == t).count())
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), 13);
        assert!(sizes.iter().all(|&s| s >= 1));
        assert_eq!(tenth_of(1_000_000, 1_000_000), 9);
        assert_eq!(tenth_of(100_000, 1_000_000), 0);
        assert_eq!(tenth_of(100_001, 1_000_000), 1);
    }

    fn tenth(jps: f64, p99_us: u64, rss: u64) -> Tenth {
        Tenth {
            tenth: 1,
            ended: true,
            completed: 10,
            seconds: 1.0,
            jobs_per_second: jps,
            latency: Latency {
                p99_us,
                ..Latency::default()
            },
            rss_bytes: rss,
            server_cpu_us_per_job: 100.0,
        }
    }

    #[test]
    fn the_target_is_the_last_tenth_no_more_than_5_pct_slower() {
        let a = Ageing::of(&[tenth(1000.0, 1000, 100), tenth(960.0, 1040, 110)]);
        assert!((a.jobs_per_second_change_pct + 4.0).abs() < 1e-9);
        assert!((a.p99_change_pct - 4.0).abs() < 1e-9);
        assert_eq!(a.rss_growth_after_warmup_bytes, 10);
        assert_eq!(
            a.rss_growth_second_half_bytes, 10,
            "the middle of two is the first"
        );
        assert_eq!(a.rss_max_bytes, 110);
        assert!(a.within_5_pct);
        assert!(!Ageing::of(&[tenth(1000.0, 1000, 0), tenth(940.0, 1000, 0)]).within_5_pct);
        assert!(!Ageing::of(&[tenth(1000.0, 1000, 0), tenth(1000.0, 1060, 0)]).within_5_pct);
        assert!(
            Ageing::of(&[tenth(1000.0, 1000, 0), tenth(2000.0, 500, 0)]).within_5_pct,
            "faster is within"
        );
        assert!(!Ageing::of(&[tenth(1.0, 1, 0)]).within_5_pct);
    }
}
