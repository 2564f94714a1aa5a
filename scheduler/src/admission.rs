//! Admission: whether a job may join the queue at all. Two bounds, both checked before the job
//! reaches the scheduler task, so a refusal is immediate: the queue's total (`max_waiting`
//! permits of a semaphore, `queue_full`) and each party's own share (`max_waiting_per_party`,
//! `rate_limited`). Each admitted job carries both of its places and gives them back when it
//! leaves the queue (starts, is cancelled, times out), whoever drops it.
//!
//! Concurrency: the per-party counts sit behind a small mutex, taken once to admit and once to
//! release, never across an `.await`.

use crate::fair::Party;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Jobs waiting per party, against a cap.
pub(crate) struct PartyCaps {
    /// Most jobs one party may have waiting at once (0 = no cap).
    max: usize,
    /// Waiting jobs by party (parties with none are absent).
    counts: Mutex<HashMap<Arc<str>, usize>>,
}

/// One job's place among its party's waiting jobs; dropping it gives the place back.
pub(crate) struct PartyPlace {
    caps: Arc<PartyCaps>,
    key: Arc<str>,
}

impl Drop for PartyPlace {
    fn drop(&mut self) {
        let mut counts = self.caps.counts.lock();
        if let Some(n) = counts.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

impl PartyCaps {
    /// Caps of `max` waiting jobs per party (0 = none).
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(PartyCaps {
            max,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// The cap.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// A place for one more job of `party`, or `None` when it is at its cap.
    pub(crate) fn try_take(self: &Arc<Self>, party: &Party) -> Option<PartyPlace> {
        let mut counts = self.counts.lock();
        let n = counts.entry(Arc::clone(&party.key)).or_insert(0);
        if self.max > 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(PartyPlace {
            caps: Arc::clone(self),
            key: Arc::clone(&party.key),
        })
    }

    /// Parties with jobs waiting now.
    pub(crate) fn parties(&self) -> usize {
        self.counts.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_party_at_its_cap_is_refused_until_a_place_is_given_back() {
        let caps = PartyCaps::new(2);
        let (a, b) = (Party::new("a"), Party::new("b"));
        let first = caps.try_take(&a).unwrap();
        let _second = caps.try_take(&a).unwrap();
        assert!(caps.try_take(&a).is_none(), "over the cap");
        assert!(caps.try_take(&b).is_some(), "others are not affected");
        drop(first);
        assert!(caps.try_take(&a).is_some());
    }

    #[test]
    fn no_cap_means_none_and_empty_parties_are_forgotten() {
        let caps = PartyCaps::new(0);
        let places: Vec<_> = (0..100)
            .map(|_| caps.try_take(&Party::new("a")).unwrap())
            .collect();
        assert_eq!(caps.parties(), 1);
        drop(places);
        assert_eq!(caps.parties(), 0);
    }
}
