//! One client's figures ([`Tally`]): its counts, refusals, violations, errors and latencies,
//! merged into the run's at the end.

use super::counts::{ChatCounts, ChurnCounts, JobCounts};
use super::violations::Violations;
use crate::report::{self, Errors};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use tokio::time::Instant;

/// One client's figures, merged into the report at the end.
pub(super) struct Tally {
    /// Where its jobs went.
    pub(super) counts: JobCounts,
    /// Refusals sent again, by code.
    pub(super) refused: BTreeMap<String, u64>,
    /// Its chats.
    pub(super) chats: ChatCounts,
    /// Its misbehaviour.
    pub(super) churn: ChurnCounts,
    /// What it saw wrong.
    pub(super) violations: Violations,
    /// Failures and error codes.
    pub(super) errors: Errors,
    /// Computed calculator jobs, submission to `done`.
    pub(super) calc_latency: Histogram<u64>,
    /// Chats, submission to `done`.
    pub(super) chat_latency: Histogram<u64>,
    /// It connected at least once.
    pub(super) connected: bool,
    /// When its last job ended.
    pub(super) last_end: Option<Instant>,
}

impl Tally {
    /// An empty tally.
    pub(super) fn new() -> Tally {
        Tally {
            counts: JobCounts::default(),
            refused: BTreeMap::new(),
            chats: ChatCounts::default(),
            churn: ChurnCounts::default(),
            violations: Violations::default(),
            errors: Errors::default(),
            calc_latency: report::histogram(),
            chat_latency: report::histogram(),
            connected: false,
            last_end: None,
        }
    }

    /// Adds another client's tally.
    pub(super) fn merge(&mut self, o: Tally) {
        self.counts.merge(&o.counts);
        for (k, n) in o.refused {
            *self.refused.entry(k).or_default() += n;
        }
        self.chats.merge(o.chats);
        self.churn.merge(&o.churn);
        self.violations.merge(o.violations);
        self.errors.merge(o.errors);
        let _ = self.calc_latency.add(&o.calc_latency);
        let _ = self.chat_latency.add(&o.chat_latency);
        self.last_end = match (self.last_end, o.last_end) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}
