//! The protocol violations the clients check for: [`Violation`], a kind, and [`Violations`], the
//! tally by kind with the first example of each.

use serde::Serialize;
use std::collections::BTreeMap;

/// A kind of protocol violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A second terminal event for a job.
    DuplicateTerminal,
    /// A job that never got its terminal event.
    MissingTerminal,
    /// A seq that is not the previous one plus one (or a replay not at `last_seq + 1`).
    SeqGap,
    /// A message about a job this client did not submit.
    ForeignEvent,
    /// A result that is not its operands' sum, or a result where none belongs.
    WrongResult,
    /// A message about one of the client's jobs that the connection no longer follows.
    StrayEvent,
}

impl Violation {
    /// The kind's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Violation::DuplicateTerminal => "duplicate_terminal",
            Violation::MissingTerminal => "missing_terminal",
            Violation::SeqGap => "seq_gap",
            Violation::ForeignEvent => "foreign_event",
            Violation::WrongResult => "wrong_result",
            Violation::StrayEvent => "stray_event",
        }
    }
}

/// Protocol violations by kind, with the first example of each.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Violations {
    /// Second terminal events.
    pub duplicate_terminal: u64,
    /// Jobs without a terminal event at the end.
    pub missing_terminal: u64,
    /// Gaps, repeats or reorderings of seq numbers.
    pub seq_gap: u64,
    /// Messages about other clients' jobs.
    pub foreign_event: u64,
    /// Wrong or misplaced results.
    pub wrong_result: u64,
    /// Messages about jobs the connection no longer follows.
    pub stray_event: u64,
    /// The first detail seen of each kind.
    pub examples: BTreeMap<String, String>,
}

impl Violations {
    /// Counts one violation.
    pub fn add(&mut self, kind: Violation, detail: &str) {
        let slot = match kind {
            Violation::DuplicateTerminal => &mut self.duplicate_terminal,
            Violation::MissingTerminal => &mut self.missing_terminal,
            Violation::SeqGap => &mut self.seq_gap,
            Violation::ForeignEvent => &mut self.foreign_event,
            Violation::WrongResult => &mut self.wrong_result,
            Violation::StrayEvent => &mut self.stray_event,
        };
        *slot += 1;
        self.examples
            .entry(kind.as_str().to_owned())
            .or_insert_with(|| detail.chars().take(300).collect());
    }

    /// Adds another tally.
    pub(super) fn merge(&mut self, o: Violations) {
        self.duplicate_terminal += o.duplicate_terminal;
        self.missing_terminal += o.missing_terminal;
        self.seq_gap += o.seq_gap;
        self.foreign_event += o.foreign_event;
        self.wrong_result += o.wrong_result;
        self.stray_event += o.stray_event;
        for (k, v) in o.examples {
            self.examples.entry(k).or_insert(v);
        }
    }

    /// All violations.
    pub fn total(&self) -> u64 {
        self.duplicate_terminal
            + self.missing_terminal
            + self.seq_gap
            + self.foreign_event
            + self.wrong_result
            + self.stray_event
    }

    /// "none", or "kind ×n, ..." for a table.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = [
            (Violation::DuplicateTerminal, self.duplicate_terminal),
            (Violation::MissingTerminal, self.missing_terminal),
            (Violation::SeqGap, self.seq_gap),
            (Violation::ForeignEvent, self.foreign_event),
            (Violation::WrongResult, self.wrong_result),
            (Violation::StrayEvent, self.stray_event),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{} ×{n}", k.as_str()))
        .collect();
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }
}
