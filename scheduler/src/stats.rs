//! Statistics over a sliding window: latency percentiles from per-second HDR histograms (a ring of
//! buckets, so memory is bounded however long the server runs), counters since start, and a
//! short history of queue length and waits for the stats page's chart.
//!
//! Concurrency: plain data, owned by the scheduler task, which records every job's wait and run
//! time; readers get copies through the scheduler's snapshot command.

use crate::view::{HistoryPoint, Performance};
use hdrhistogram::Histogram;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Seconds of history the window covers.
pub const WINDOW_SECS: u64 = 60;
/// Points kept for the chart (one per second: five minutes).
pub const HISTORY_POINTS: usize = 300;

/// A histogram of durations over the last [`WINDOW_SECS`] seconds.
pub struct WindowedHistogram {
    /// One histogram per second, newest last; microseconds, 3 significant figures.
    buckets: VecDeque<(u64, Histogram<u64>)>,
}

impl Default for WindowedHistogram {
    fn default() -> Self {
        WindowedHistogram {
            buckets: VecDeque::with_capacity(WINDOW_SECS as usize + 1),
        }
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

impl WindowedHistogram {
    /// Records `d` in the bucket for second `now_s` (seconds since start).
    pub fn record(&mut self, now_s: u64, d: Duration) {
        self.expire(now_s);
        if self.buckets.back().map(|(s, _)| *s) != Some(now_s) {
            self.buckets.push_back((now_s, new_histogram()));
        }
        let micros = (d.as_micros() as u64).clamp(1, 3_600_000_000);
        if let Some((_, h)) = self.buckets.back_mut() {
            h.saturating_record(micros);
        }
    }

    /// Drops buckets older than the window.
    fn expire(&mut self, now_s: u64) {
        while self
            .buckets
            .front()
            .is_some_and(|(s, _)| s + WINDOW_SECS <= now_s)
        {
            self.buckets.pop_front();
        }
    }

    /// All samples of the window, merged.
    pub fn merged(&mut self, now_s: u64) -> Histogram<u64> {
        self.expire(now_s);
        let mut all = new_histogram();
        for (_, h) in &self.buckets {
            all.add(h).expect("same bounds");
        }
        all
    }
}

/// What the scheduler measures.
pub struct Stats {
    /// When the server started: the origin of `now_s`.
    started: Instant,
    /// Response time (wait + run) of finished jobs.
    response: WindowedHistogram,
    /// Queue wait of started jobs.
    wait: WindowedHistogram,
    /// Jobs finished since start.
    pub total_finished: u64,
    /// Longest wait since start.
    pub max_wait: Duration,
    /// Jobs cancelled since start.
    pub cancelled: u64,
    /// Moving average of run times, for ETAs.
    pub avg_run: Duration,
    /// Refusals and failures by error code.
    pub rejected: std::collections::BTreeMap<&'static str, u64>,
    /// Chart history, oldest first.
    history: VecDeque<HistoryPoint>,
    /// The step being accumulated: (second, wait sum, starts, finished).
    step: (u64, Duration, u64, u64),
}

impl Stats {
    /// Empty statistics starting now. `initial_run` is the ETA's guess before any job has run.
    pub fn new(initial_run: Duration) -> Self {
        Stats {
            started: Instant::now(),
            response: WindowedHistogram::default(),
            wait: WindowedHistogram::default(),
            total_finished: 0,
            max_wait: Duration::ZERO,
            cancelled: 0,
            avg_run: initial_run,
            rejected: Default::default(),
            history: VecDeque::with_capacity(HISTORY_POINTS),
            step: (0, Duration::ZERO, 0, 0),
        }
    }

    /// Seconds since start.
    pub fn now_s(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// A job started after waiting `waited`.
    pub fn on_start(&mut self, waited: Duration) {
        let now = self.now_s();
        self.wait.record(now, waited);
        self.max_wait = self.max_wait.max(waited);
        self.step.1 += waited;
        self.step.2 += 1;
    }

    /// A job left the device after `run`; `response` is its wait plus run.
    pub fn on_finish(&mut self, run: Duration, response: Duration) {
        let now = self.now_s();
        self.response.record(now, response);
        self.total_finished += 1;
        self.step.3 += 1;
        // Exponential moving average, weight 1/5 on the newest run.
        self.avg_run = (self.avg_run * 4 + run) / 5;
    }

    /// A refusal or failure with this code.
    pub fn on_rejected(&mut self, code: &'static str) {
        *self.rejected.entry(code).or_default() += 1;
    }

    /// Closes history steps up to now; `queue_length` is the length at this moment.
    pub fn roll_history(&mut self, queue_length: u64) {
        let now = self.now_s();
        while self.step.0 < now {
            let (t, wait_sum, starts, finished) = self.step;
            let avg_wait = if starts > 0 {
                wait_sum.as_secs_f64() / starts as f64
            } else {
                0.0
            };
            if self.history.len() == HISTORY_POINTS {
                self.history.pop_front();
            }
            self.history.push_back(HistoryPoint {
                t,
                queue_length,
                avg_wait,
                finished,
            });
            self.step = (t + 1, Duration::ZERO, 0, 0);
        }
    }

    /// The chart history.
    pub fn history(&self) -> Vec<HistoryPoint> {
        self.history.iter().cloned().collect()
    }

    /// The `performance` section.
    pub fn performance(&mut self) -> Performance {
        let now = self.now_s();
        let h = self.response.merged(now);
        let window = now.clamp(1, WINDOW_SECS);
        let secs = |micros: u64| micros as f64 / 1e6;
        Performance {
            requests_per_second: h.len() as f64 / window as f64,
            avg_response_time: if h.is_empty() { 0.0 } else { h.mean() / 1e6 },
            p50_response_time: secs(h.value_at_quantile(0.50)),
            p95_response_time: secs(h.value_at_quantile(0.95)),
            p99_response_time: secs(h.value_at_quantile(0.99)),
            total_requests: self.total_finished,
            window_seconds: WINDOW_SECS,
        }
    }

    /// Median and 95th percentile queue wait over the window, seconds.
    pub fn wait_percentiles(&mut self) -> (Duration, Duration) {
        let h = self.wait.merged(self.now_s());
        (
            Duration::from_micros(h.value_at_quantile(0.5)),
            Duration::from_micros(h.value_at_quantile(0.95)),
        )
    }
}

/// The device's utilization over the last [`UTILIZATION_WINDOW`]: busy time over wall time,
/// from samples of its busy-time counter taken about once a second.
#[derive(Default)]
pub struct UtilizationWindow {
    /// (wall, busy) since the device's start, oldest first.
    samples: VecDeque<(Duration, Duration)>,
}

/// How far back utilization looks.
pub const UTILIZATION_WINDOW: Duration = Duration::from_secs(10);

impl UtilizationWindow {
    /// Records a sample.
    pub fn sample(&mut self, now: crate::device::Busy) {
        self.samples.push_back((now.wall, now.busy));
        while self
            .samples
            .front()
            .is_some_and(|(w, _)| now.wall.saturating_sub(*w) > UTILIZATION_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Utilization (0 to 1) between the oldest sample in the window and `now`, and the span it
    /// covers (since start, while the window is not full yet).
    pub fn utilization(&self, now: crate::device::Busy) -> (f64, Duration) {
        let (wall0, busy0) = self
            .samples
            .front()
            .copied()
            .unwrap_or((Duration::ZERO, Duration::ZERO));
        let span = now.wall.saturating_sub(wall0);
        if span.is_zero() {
            return (0.0, span);
        }
        let busy = now.busy.saturating_sub(busy0);
        ((busy.as_secs_f64() / span.as_secs_f64()).min(1.0), span)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_forgets_old_samples_and_keeps_memory_bounded() {
        let mut w = WindowedHistogram::default();
        for s in 0..1000 {
            w.record(s, Duration::from_millis(10));
        }
        assert!(w.buckets.len() <= WINDOW_SECS as usize);
        assert_eq!(w.merged(999).len(), WINDOW_SECS);
        assert_eq!(w.merged(999 + WINDOW_SECS).len(), 0);
    }

    #[test]
    fn utilization_is_busy_over_wall_in_the_window() {
        let at = |wall: u64, busy: u64| crate::device::Busy {
            wall: Duration::from_secs(wall),
            busy: Duration::from_secs(busy),
        };
        let mut u = UtilizationWindow::default();
        assert_eq!(
            u.utilization(at(5, 5)).0,
            1.0,
            "since start before any sample"
        );
        for s in 0..=30 {
            // Idle for the first 20 s, then fully busy.
            u.sample(at(s, s.saturating_sub(20)));
        }
        let (util, span) = u.utilization(at(30, 10));
        assert_eq!(span, Duration::from_secs(10));
        assert!((util - 1.0).abs() < 1e-9, "{util}");
        let (util, _) = u.utilization(at(30, 5));
        assert!(util < 0.6, "{util}");
    }

    #[test]
    fn percentiles_reflect_recorded_times() {
        let mut s = Stats::new(Duration::from_millis(100));
        for i in 1..=100u64 {
            s.on_finish(Duration::from_millis(i), Duration::from_millis(i));
        }
        let p = s.performance();
        assert_eq!(p.total_requests, 100);
        assert!((p.p50_response_time - 0.050).abs() < 0.001, "{p:?}");
        assert!((p.p99_response_time - 0.099).abs() < 0.001, "{p:?}");
        assert!((p.avg_response_time - 0.0505).abs() < 0.001, "{p:?}");
    }
}
