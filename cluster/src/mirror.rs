//! An instance's mirror of the shared lines: the same order as the sorted sets in Redis, kept
//! from their snapshot and the change stream, so the exact position of every job this instance
//! watches is known without asking Redis (the scheduler's order-statistics queue, one per line).
//!
//! Changes are numbered without gaps (`cseq`); a gap (a trimmed stream, a lost connection) is
//! reported, and the owner reloads a snapshot. Announcements are the scheduler's: only jobs at or
//! behind the earliest change are visited, each told at most once per flush.
//!
//! Concurrency: plain data, owned by one task (the instance's follower).

use crate::keys::split_member;
use crate::queue::Snapshot;
use std::collections::{HashMap, HashSet};
use turnstile_scheduler::queue::{Announced, WaitQueue};
use turnstile_scheduler::QueueKey;

/// One change of a line's order, as the change stream carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Its number (consecutive).
    pub cseq: u64,
    /// Added (true) or removed.
    pub added: bool,
    /// The line.
    pub line: String,
    /// The member (`seq:id`).
    pub member: String,
    /// Its score.
    pub score: u64,
}

impl Change {
    /// Reads a change stream entry.
    pub fn from_fields(fields: &HashMap<String, redis::Value>) -> Option<Change> {
        use crate::follow::{number, text};
        Some(Change {
            cseq: number(fields, "c")?,
            added: text(fields, "op")? == "add",
            line: text(fields, "l")?,
            member: text(fields, "m")?,
            score: number(fields, "s")?,
        })
    }
}

/// The mirror fell behind: a change is missing. Reload a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the mirror missed changes {expected} to {got}")]
pub struct Gap {
    /// The change expected next.
    pub expected: u64,
    /// The change that came.
    pub got: u64,
}

/// A mirrored waiting job.
struct Entry {
    /// Its id.
    id: String,
    /// Whether this instance reports its position.
    watched: bool,
    /// The position last reported (0 = none).
    told: u64,
}

impl Announced for Entry {
    fn last_announced(&mut self) -> &mut u64 {
        &mut self.told
    }
}

/// The mirror of every line.
#[derive(Default)]
pub struct Mirror {
    /// Each line's order.
    lines: HashMap<String, WaitQueue<Entry>>,
    /// The last change applied.
    cseq: u64,
    /// Jobs whose positions this instance reports (its own waiting jobs).
    watched: HashSet<String>,
}

fn key_of(member: &str, score: u64) -> Option<(QueueKey, &str)> {
    let (seq, id) = split_member(member)?;
    Some((QueueKey { tag: score, seq }, id))
}

impl Mirror {
    /// Replaces every line's order with `snapshot`'s. Returns the watched jobs whose position
    /// differs from the one last reported (to report now).
    pub fn load(&mut self, snapshot: &Snapshot) -> Vec<(String, u64)> {
        let mut told: HashMap<String, u64> = HashMap::new();
        for q in self.lines.values() {
            for (_, _, e) in q.iter() {
                if e.watched {
                    told.insert(e.id.clone(), e.told);
                }
            }
        }
        let mut moved = vec![];
        self.lines.clear();
        for (line, order) in &snapshot.lines {
            let mut q = WaitQueue::default();
            for (member, score) in order {
                let Some((key, id)) = key_of(member, *score) else {
                    continue;
                };
                let watched = self.watched.contains(id);
                let position = q.push(
                    key,
                    Entry {
                        id: id.to_owned(),
                        watched,
                        told: 0,
                    },
                );
                if watched && told.get(id) != Some(&position) {
                    moved.push((id.to_owned(), position));
                }
            }
            self.lines.insert(line.clone(), q);
        }
        self.cseq = snapshot.cseq;
        moved
    }

    /// Applies one change (those at or before the last applied are ignored).
    pub fn apply(&mut self, change: &Change) -> Result<(), Gap> {
        if change.cseq <= self.cseq {
            return Ok(());
        }
        if change.cseq != self.cseq + 1 {
            return Err(Gap {
                expected: self.cseq + 1,
                got: change.cseq,
            });
        }
        self.cseq = change.cseq;
        let Some((key, id)) = key_of(&change.member, change.score) else {
            return Ok(());
        };
        let q = self.lines.entry(change.line.clone()).or_default();
        if change.added {
            let watched = self.watched.contains(id);
            q.push(
                key,
                Entry {
                    id: id.to_owned(),
                    watched,
                    told: 0,
                },
            );
        } else {
            q.remove(&key);
        }
        Ok(())
    }

    /// Reports the positions of watched jobs: `told(id, position)` for each whose position
    /// changed since it was last reported (or since it joined).
    pub fn flush(&mut self, mut told: impl FnMut(&str, u64)) {
        for q in self.lines.values_mut() {
            q.flush_changes(|position, e| {
                if e.watched {
                    told(&e.id, position);
                }
            });
        }
    }

    /// Starts reporting `id`'s position (call before its job is queued, so its own change marks
    /// it; the position the queue answered is the one already reported).
    pub fn watch(&mut self, id: &str) {
        self.watched.insert(id.to_owned());
    }

    /// Stops reporting `id`'s position.
    pub fn unwatch(&mut self, id: &str) {
        self.watched.remove(id);
    }

    /// The 1-based position of the job `member` with `score` in `line`, if it waits.
    pub fn position(&self, line: &str, member: &str, score: u64) -> Option<u64> {
        let (key, _) = key_of(member, score)?;
        self.lines.get(line)?.position(&key)
    }

    /// Jobs waiting in `line`.
    pub fn len(&self, line: &str) -> usize {
        self.lines.get(line).map_or(0, |q| q.len())
    }

    /// Each line's jobs in run order (ids).
    pub fn order(&self, line: &str) -> Vec<String> {
        self.lines
            .get(line)
            .map(|q| q.iter().map(|(_, _, e)| e.id.clone()).collect())
            .unwrap_or_default()
    }

    /// The last change applied.
    pub fn cseq(&self) -> u64 {
        self.cseq
    }
}
