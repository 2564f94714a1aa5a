//! The waiting line: jobs ordered by [`QueueKey`], with O(log n) positions and a record of which
//! positions changed since they were last announced.
//!
//! Complexity (n waiting jobs, k of them behind the earliest change since the last flush):
//! - `push`, `remove`, `pop_first`, `position`: O(log n) (an order-statistics B-tree, `indexset`,
//!   whose Fenwick index gives ranks without scanning).
//! - `flush_changes`: O(k log n). Only jobs at or behind the earliest insertion or removal can
//!   have moved, so only they are visited; each visit is one indexed lookup (a Fenwick-tree
//!   descent) and yields at most one message.
//!   When the front job starts, every waiter moves up and must be told (k = n); that is the
//!   minimum work for exact positions, and the scheduler calls `flush_changes` at most once per
//!   coalescing interval, so 10,000 waiters cost at most 10,000 cheap visits per interval, not
//!   10,000 scans per change.
//!
//! Concurrency: plain data, owned by the scheduler task alone.

use indexset::BTreeMap;

/// A job's place in the run order. In FIFO mode `tag` is the arrival sequence; `seq` breaks ties
/// and keeps keys unique.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueKey {
    /// The ordering tag (smaller runs first).
    pub tag: u64,
    /// Arrival sequence number, unique per job.
    pub seq: u64,
}

/// A waiting entry's bookkeeping that the queue maintains.
pub trait Announced {
    /// The position this entry's owner was last told (0 = never).
    fn last_announced(&mut self) -> &mut u64;
}

/// Waiting jobs in run order.
pub struct WaitQueue<V> {
    /// The waiting entries, in the order they will run.
    order: BTreeMap<QueueKey, V>,
    /// The smallest key inserted or removed since the last flush: positions from here on may be
    /// stale. `None` when every announced position is current.
    dirty_from: Option<QueueKey>,
    /// Jobs ahead of the whole queue (handed to the device, not yet started): positions are
    /// `offset` + rank.
    offset: u64,
}

impl<V: Announced> Default for WaitQueue<V> {
    fn default() -> Self {
        WaitQueue {
            order: BTreeMap::new(),
            dirty_from: None,
            offset: 0,
        }
    }
}

impl<V: Announced> WaitQueue<V> {
    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no job is waiting.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Sets how many jobs are ahead of the whole queue. A change moves everyone: all are marked
    /// for a new announcement.
    pub fn set_offset(&mut self, offset: u64) {
        if offset != self.offset {
            self.offset = offset;
            if let Some(first) = self.order.iter().next().map(|(k, _)| *k) {
                self.mark(first);
            }
        }
    }

    /// Jobs ahead of the whole queue.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Adds an entry and returns its 1-based position. The entry counts as announced at that
    /// position; entries behind it (if any) are marked for a new announcement.
    pub fn push(&mut self, key: QueueKey, mut value: V) -> u64 {
        let rank = self.order.rank(&key);
        let position = self.offset + rank as u64 + 1;
        *value.last_announced() = position;
        self.order.insert(key, value);
        if rank + 1 < self.order.len() {
            self.mark(key);
        }
        position
    }

    /// Removes an entry wherever it is; those behind it move up.
    pub fn remove(&mut self, key: &QueueKey) -> Option<V> {
        let v = self.order.remove(key)?;
        self.mark(*key);
        Some(v)
    }

    /// Takes the entry that runs next.
    pub fn pop_first(&mut self) -> Option<(QueueKey, V)> {
        let (k, v) = self.order.pop_first()?;
        self.mark(k);
        Some((k, v))
    }

    /// The 1-based position of `key`, if it is waiting, in O(log n). (The scheduler reads
    /// positions through `push` and `flush_changes`; this direct query serves the recount checks
    /// and the benchmarks.)
    pub fn position(&self, key: &QueueKey) -> Option<u64> {
        self.order
            .contains_key(key)
            .then(|| self.offset + self.order.rank(key) as u64 + 1)
    }

    /// The entry that runs next, without taking it.
    pub fn first(&self) -> Option<&V> {
        self.order.iter().next().map(|(_, v)| v)
    }

    /// Entries in run order, with their positions.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &QueueKey, &V)> {
        self.order
            .iter()
            .enumerate()
            .map(|(i, (k, v))| (self.offset + i as u64 + 1, k, v))
    }

    /// Whether some announced position may be stale.
    pub fn is_dirty(&self) -> bool {
        self.dirty_from.is_some()
    }

    /// Calls `announce(position, entry)` for every entry whose position differs from the one its
    /// owner was last told, records the new one, and clears the dirty mark. O(k log n).
    pub fn flush_changes(&mut self, mut announce: impl FnMut(u64, &mut V)) {
        let Some(from) = self.dirty_from.take() else {
            return;
        };
        // Walk by index: indexset 0.12's `range_mut` stops at the end of the first node.
        for index in self.order.rank(&from)..self.order.len() {
            let position = self.offset + index as u64 + 1;
            let Some(v) = self.order.get_mut_index(index) else {
                break;
            };
            let last = v.last_announced();
            if *last != position {
                *last = position;
                announce(position, v);
            }
        }
    }

    fn mark(&mut self, key: QueueKey) {
        self.dirty_from = Some(self.dirty_from.map_or(key, |d| d.min(key)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[derive(Debug)]
    struct E {
        id: u64,
        told: u64,
    }

    impl Announced for E {
        fn last_announced(&mut self) -> &mut u64 {
            &mut self.told
        }
    }

    fn key(seq: u64) -> QueueKey {
        QueueKey { tag: seq, seq }
    }

    #[test]
    fn fifo_positions_and_moves() {
        let mut q = WaitQueue::default();
        for i in 0..5 {
            assert_eq!(q.push(key(i), E { id: i, told: 0 }), i + 1);
        }
        assert!(!q.is_dirty(), "appending moves nobody");
        q.remove(&key(2));
        let mut told = vec![];
        q.flush_changes(|p, e| told.push((e.id, p)));
        assert_eq!(
            told,
            vec![(3, 3), (4, 4)],
            "only those behind the removal move"
        );
        assert_eq!(q.pop_first().unwrap().1.id, 0);
        told.clear();
        q.flush_changes(|p, e| told.push((e.id, p)));
        assert_eq!(told, vec![(1, 1), (3, 2), (4, 3)]);
        told.clear();
        q.flush_changes(|p, e| told.push((e.id, p)));
        assert!(told.is_empty(), "a clean queue announces nothing");
    }

    /// Random pushes (also into the middle), removals and pops, checked against a naive recount:
    /// after every flush each entry's last announced position equals its true position.
    #[test]
    fn announced_positions_match_a_recount() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
        let mut q: WaitQueue<E> = WaitQueue::default();
        let mut naive: Vec<QueueKey> = vec![];
        for seq in 0..3000u64 {
            match rng.random_range(0..10) {
                0..=4 => {
                    let k = QueueKey {
                        tag: rng.random_range(0..500),
                        seq,
                    };
                    q.push(k, E { id: seq, told: 0 });
                    naive.push(k);
                }
                5..=6 if !naive.is_empty() => {
                    let k = naive.remove(rng.random_range(0..naive.len()));
                    assert!(q.remove(&k).is_some());
                }
                7 if !naive.is_empty() => {
                    naive.sort();
                    let k = naive.remove(0);
                    assert_eq!(q.pop_first().unwrap().0, k);
                }
                _ => {}
            }
            if rng.random_bool(0.3) {
                q.flush_changes(|_, _| {});
                naive.sort();
                for (i, k) in naive.iter().enumerate() {
                    assert_eq!(q.position(k), Some(i as u64 + 1));
                }
                let mut it = q.order.iter();
                for k in &naive {
                    let (qk, e) = it.next().unwrap();
                    assert_eq!(qk, k);
                    assert_eq!(e.told, q.position(k).unwrap(), "stale announced position");
                }
            }
        }
    }
}
