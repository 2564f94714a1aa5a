//! How figures are summarised and shown: latency percentiles from an HDR histogram (microsecond
//! resolution), error tallies by code or failure kind, Jain's fairness index, the plain-text
//! tables printed to stdout, and the JSON file written with `--json`.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// A latency histogram in microseconds, from 1 µs to one hour, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    // Constant bounds that hdrhistogram always accepts (low >= 1, high >= 2 * low, sigfig <= 5).
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant, valid bounds")
}

/// Records `d` into `h` (clamped into its range, never failing).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    h.saturating_record(us);
}

/// Percentiles of a set of durations, in microseconds (all 0 when nothing was recorded).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// How many values.
    pub count: u64,
    /// Their mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 95th percentile.
    pub p95_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Largest.
    pub max_us: u64,
}

impl Latency {
    /// The percentiles of `h`.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.50),
            p95_us: h.value_at_quantile(0.95),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        }
    }

    /// "p50 / p95 / p99 / max" in milliseconds with microsecond precision.
    pub fn summary_ms(&self) -> String {
        if self.count == 0 {
            return "no samples".into();
        }
        format!(
            "p50 {} · p95 {} · p99 {} · max {} ms (n={})",
            ms(self.p50_us),
            ms(self.p95_us),
            ms(self.p99_us),
            ms(self.max_us),
            self.count
        )
    }
}

/// Microseconds as milliseconds with three decimals.
pub fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// The spread of a handful of values (e.g. each chat stream's tokens/s).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Spread {
    /// How many values.
    pub count: usize,
    /// Their mean (0 when none).
    pub mean: f64,
    /// The smallest (0 when none).
    pub min: f64,
    /// The largest (0 when none).
    pub max: f64,
}

impl Spread {
    /// The spread of `values`.
    pub fn of(values: &[f64]) -> Spread {
        if values.is_empty() {
            return Spread::default();
        }
        Spread {
            count: values.len(),
            mean: values.iter().sum::<f64>() / values.len() as f64,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// Errors counted by code (the server's `code`) or failure kind (`connect_failed`, ...), with one
/// example message per key so a person can see what happened.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Errors {
    /// How many of each.
    pub counts: BTreeMap<String, u64>,
    /// The first message seen for each key.
    pub examples: BTreeMap<String, String>,
}

impl Errors {
    /// Counts one error under `key`.
    pub fn add(&mut self, key: &str, detail: &str) {
        *self.counts.entry(key.to_owned()).or_default() += 1;
        self.examples
            .entry(key.to_owned())
            .or_insert_with(|| detail.chars().take(300).collect());
    }

    /// Adds another tally to this one.
    pub fn merge(&mut self, other: Errors) {
        for (key, n) in other.counts {
            *self.counts.entry(key).or_default() += n;
        }
        for (key, example) in other.examples {
            self.examples.entry(key).or_insert(example);
        }
    }

    /// All errors counted.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// "none", or "code ×n, ..." for a table.
    pub fn summary(&self) -> String {
        if self.counts.is_empty() {
            return "none".into();
        }
        self.counts
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Jain's fairness index `(Σx)² / (n·Σx²)` of the rates `x`: 1 when all are equal, `1/n` when
/// one has everything; `None` when there is nothing to compare (no rates, or all zero).
pub fn jain(x: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let sum: f64 = x.iter().sum();
    let squares: f64 = x.iter().map(|v| v * v).sum();
    (n > 0.0 && squares > 0.0).then(|| sum * sum / (n * squares))
}

/// A plain-text table: a title, a header row and rows, columns padded to their widest cell.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// Printed above the table.
    pub title: String,
    /// Column names.
    pub header: Vec<String>,
    /// The cells, row by row.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A two-column "what / value" table.
    pub fn new(title: &str) -> Table {
        Table {
            title: title.to_owned(),
            header: vec!["figure".into(), "value".into()],
            rows: vec![],
        }
    }

    /// A table with the given columns.
    pub fn with_columns(title: &str, header: &[&str]) -> Table {
        Table {
            title: title.to_owned(),
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: vec![],
        }
    }

    /// Adds a "what / value" row.
    pub fn row(&mut self, what: &str, value: impl ToString) -> &mut Self {
        self.rows.push(vec![what.to_owned(), value.to_string()]);
        self
    }

    /// Adds a row of cells.
    pub fn cells(&mut self, cells: Vec<String>) -> &mut Self {
        self.rows.push(cells);
        self
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let columns = std::iter::once(&self.header)
            .chain(&self.rows)
            .map(Vec::len)
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |row: &[String]| {
            let mut out = String::new();
            for (i, cell) in row.iter().enumerate() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                let _ = write!(out, "{cell}{}  ", " ".repeat(pad));
            }
            out.trim_end().to_owned()
        };
        writeln!(f, "{}", self.title)?;
        writeln!(f, "{}", line(&self.header))?;
        let rule: usize = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
        writeln!(f, "{}", "-".repeat(rule))?;
        for row in &self.rows {
            writeln!(f, "{}", line(row))?;
        }
        Ok(())
    }
}

/// Writes `report` as pretty JSON to `path`.
pub fn write_json(path: &std::path::Path, report: &impl Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| format!("cannot encode the report: {e}"))?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_is_one_for_equal_rates_and_one_over_n_for_a_monopoly() {
        assert_eq!(jain(&[0.5, 0.5, 0.5]), Some(1.0));
        let monopoly = jain(&[1.0, 0.0, 0.0, 0.0]).unwrap();
        assert!((monopoly - 0.25).abs() < 1e-12);
        assert_eq!(jain(&[]), None);
        assert_eq!(jain(&[0.0, 0.0]), None);
    }

    #[test]
    fn percentiles_come_from_the_recorded_values() {
        let mut h = histogram();
        for us in 1..=1000u64 {
            record(&mut h, Duration::from_micros(us));
        }
        let l = Latency::of(&h);
        assert_eq!(l.count, 1000);
        assert!((499..=501).contains(&l.p50_us), "{l:?}");
        assert!((989..=991).contains(&l.p99_us), "{l:?}");
        assert_eq!(l.max_us, 1000);
        assert_eq!(Latency::of(&histogram()), Latency::default());
        let mut zeros = histogram();
        record(&mut zeros, Duration::ZERO);
        assert_eq!(
            (Latency::of(&zeros).count, Latency::of(&zeros).max_us),
            (1, 0)
        );
    }

    #[test]
    fn errors_tally_by_key_and_keep_the_first_example() {
        let mut e = Errors::default();
        e.add("timeout", "first");
        e.add("timeout", "second");
        let mut other = Errors::default();
        other.add("queue_full", "full");
        e.merge(other);
        assert_eq!(e.total(), 3);
        assert_eq!(e.examples["timeout"], "first");
        assert_eq!(e.summary(), "queue_full ×1, timeout ×2");
    }

    #[test]
    fn tables_align_their_columns() {
        let mut t = Table::new("T");
        t.row("a", 1).row("longer", "x");
        let text = t.to_string();
        assert!(text.contains("a       1"), "{text}");
        assert!(text.contains("longer  x"), "{text}");
    }
}
