//! One chat client's bookkeeping while the chat scenario runs: its current chat (when it was
//! sent, its position and promised wait on arrival, its first token), how many it has finished,
//! and what the run measured across all chats. Owned by the scenario's driver alone.

use crate::report;
use hdrhistogram::Histogram;
use std::time::Duration;
use tokio::time::Instant;

/// One client's current chat.
#[derive(Clone, Debug, Default)]
pub struct Client {
    /// Chats it has sent (the current one included).
    pub sent_count: u32,
    /// When the current chat was sent (`None` between chats and when the client is done).
    pub sent: Option<Instant>,
    /// Whether other chats were streaming when the current one was sent.
    pub joined_streams: bool,
    /// The wait `accepted` promised (`eta_ms`), for the current chat.
    pub promised: Option<Duration>,
    /// The current chat's first token.
    pub first_token: Option<Instant>,
    /// No more chats (its rounds are over, or its connection failed).
    pub done: bool,
}

impl Client {
    /// Whether its current chat is streaming (has a first token and has not ended).
    pub fn streaming(&self) -> bool {
        self.sent.is_some() && self.first_token.is_some()
    }
}

/// What the run measured, across every chat.
pub struct Measured {
    /// Submission to first token, chats sent while no other chat streamed.
    pub ttft_first: Histogram<u64>,
    /// Submission to first token, chats sent while others were streaming.
    pub ttft_joined: Histogram<u64>,
    /// `started.waited_ms`.
    pub waits: Histogram<u64>,
    /// |promised wait − real wait| for chats that were told they would wait (eta_ms > 0) or did
    /// wait (waited > 50 ms).
    pub eta_error: Histogram<u64>,
    /// The same errors, relative to the real wait (percent).
    pub eta_error_percent: Vec<f64>,
    /// Each finished answer's decode speed (`done.usage.tokens_per_second`).
    pub speeds: Vec<f64>,
    /// Calculator probe jobs: submission to `done`.
    pub calc: Histogram<u64>,
}

impl Measured {
    pub fn new() -> Self {
        Measured {
            ttft_first: report::histogram(),
            ttft_joined: report::histogram(),
            waits: report::histogram(),
            eta_error: report::histogram(),
            eta_error_percent: Vec::new(),
            speeds: Vec::new(),
            calc: report::histogram(),
        }
    }

    /// A chat's `started`: its real wait against the promise.
    pub fn started(&mut self, promised: Option<Duration>, waited: Duration) {
        report::record(&mut self.waits, waited);
        if let Some(p) = promised {
            if p > Duration::ZERO || waited > Duration::from_millis(50) {
                let error = p.abs_diff(waited);
                report::record(&mut self.eta_error, error);
                let real = waited.as_secs_f64().max(1e-3);
                self.eta_error_percent
                    .push(error.as_secs_f64() / real * 100.0);
            }
        }
    }
}

impl Default for Measured {
    fn default() -> Self {
        Self::new()
    }
}

/// The median and 90th percentile of `values` (0, 0 when empty).
pub fn median_p90(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_errors_count_only_chats_that_waited_or_were_told_to() {
        let mut m = Measured::new();
        m.started(Some(Duration::ZERO), Duration::from_millis(3));
        assert_eq!(m.eta_error.len(), 0, "no wait promised or had");
        m.started(Some(Duration::from_secs(2)), Duration::from_secs(3));
        m.started(Some(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(m.eta_error.len(), 2);
        let [a, b] = m.eta_error_percent[..] else {
            panic!("{:?}", m.eta_error_percent)
        };
        assert!((a - 100.0 / 3.0).abs() < 1e-9 && (b - 100.0).abs() < 1e-9);
        assert_eq!(median_p90(&[5.0, 1.0, 3.0]), (3.0, 5.0));
    }
}
