//! The order waiting jobs run in: start-time fair queuing across parties (a party is whoever the
//! caller says: a session, an API key, an address), or plain arrival
//! order when configured so.
//!
//! Fair order. The clock keeps a virtual time `V` and, per party, the finish tag `F` of its last
//! queued job. A new job of party `p` with expected cost `c` (microseconds of device time) and
//! weight `w` gets the start tag `S = max(V, F[p])` and moves `F[p]` to `S + c / w`; waiting jobs
//! run in order of `S`; at an equal `S`, a job tagged at the virtual time (`F[p] <= V`: its party
//! had nothing ahead of it) goes before one tagged by its party's own backlog, then by arrival. When a job is handed to the device, `V` becomes the
//! largest finish tag handed over so far. Consequences (each tested below and in the scheduler's
//! tests):
//! - A party whose only waiting job was tagged after its previous job was handed over gets
//!   `S <= V`, and every later arrival gets `S >= V`: it is never passed, so its position never
//!   goes up, whatever the costs and weights.
//! - A party that floods the queue spaces its own jobs `c / w` apart; a newcomer gets `S = V`,
//!   which is where the flood's next job is, and goes before it: it waits only for the jobs
//!   already handed to the device.
//! - Parties with one job at a time, or equal parties submitting in turn, run in arrival order.
//! - A party with weight 4 gets four jobs' worth of device time to another's one while both wait.
//!
//! Keys never change once given, so the queue's order-statistics tree gives exact positions.
//! Memory: one entry per party with a finish tag ahead of `V` (parties that have fallen behind are
//! indistinguishable from new ones and are forgotten by [`FairClock::forget_idle`]).
//!
//! Concurrency: plain data, owned by the scheduler task alone.

use crate::queue::QueueKey;
use std::collections::HashMap;
use std::sync::Arc;

/// How waiting jobs are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueOrder {
    /// Start-time fair queuing across parties (the default).
    Fair,
    /// Arrival order, whoever sent the job (for comparison).
    Fifo,
}

impl QueueOrder {
    /// Its lowercase name, as configured.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueOrder::Fair => "fair",
            QueueOrder::Fifo => "fifo",
        }
    }
}

impl std::str::FromStr for QueueOrder {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fair" => Ok(QueueOrder::Fair),
            "fifo" => Ok(QueueOrder::Fifo),
            other => Err(format!("unknown queue order {other:?} (fair or fifo)")),
        }
    }
}

/// Who a job is for, as the fair order sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Party {
    /// The party's identity (never sent to clients).
    pub key: Arc<str>,
    /// Its share of the device relative to others (1 unless an API key says otherwise).
    pub weight: u32,
}

impl Party {
    /// A party of weight 1.
    pub fn new(key: impl Into<Arc<str>>) -> Party {
        Party {
            key: key.into(),
            weight: 1,
        }
    }
}

/// The tags a job was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tags {
    /// Its place in the queue.
    pub key: QueueKey,
    /// Its finish tag (virtual time once it has run).
    pub finish: u64,
    /// Its party's finish tag before it (restored if it is cancelled while still the last).
    pub previous: u64,
}

/// Virtual time and each party's last finish tag.
pub struct FairClock {
    /// Fair or FIFO.
    order: QueueOrder,
    /// The largest finish tag handed to the device so far.
    virtual_time: u64,
    /// Each party's last finish tag, while it is ahead of the virtual time.
    last: HashMap<Arc<str>, u64>,
}

impl FairClock {
    /// A clock at virtual time zero.
    pub fn new(order: QueueOrder) -> Self {
        FairClock {
            order,
            virtual_time: 0,
            last: HashMap::new(),
        }
    }

    /// Tags the job numbered `seq` (arrival order, unique) of `party`, expected to cost `cost`
    /// microseconds of device time.
    pub fn tag(&mut self, party: &Party, cost: u64, seq: u64) -> Tags {
        if self.order == QueueOrder::Fifo {
            return Tags {
                key: QueueKey { tag: seq, seq },
                finish: 0,
                previous: 0,
            };
        }
        let previous = self.last.get(&party.key).copied().unwrap_or(0);
        let start = self.virtual_time.max(previous);
        let finish = start.saturating_add((cost / u64::from(party.weight.max(1))).max(1));
        self.last.insert(Arc::clone(&party.key), finish);
        // Twice the start tag, plus one when the tag comes from the party's own backlog: at an
        // equal start tag, a job tagged at the virtual time goes first.
        let backlog = u64::from(previous > self.virtual_time);
        Tags {
            key: QueueKey {
                tag: start.saturating_mul(2).saturating_add(backlog),
                seq,
            },
            finish,
            previous,
        }
    }

    /// A job with these tags was handed to the device.
    pub fn dispatched(&mut self, tags: &Tags) {
        self.virtual_time = self.virtual_time.max(tags.finish);
    }

    /// A job with these tags left the queue without running. If it was its party's last, the
    /// party is not charged for it.
    pub fn withdrawn(&mut self, party: &Party, tags: &Tags) {
        if let Some(last) = self.last.get_mut(&party.key) {
            if *last == tags.finish {
                *last = tags.previous;
            }
        }
    }

    /// Forgets parties whose last finish tag the virtual time has passed (they would be tagged
    /// exactly like new ones).
    pub fn forget_idle(&mut self) {
        let v = self.virtual_time;
        self.last.retain(|_, f| *f > v);
    }

    /// Parties remembered now.
    pub fn parties(&self) -> usize {
        self.last.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;

    /// A queue driven by the clock alone: keys in a sorted map, as the scheduler's queue orders
    /// them, with one device.
    struct Sim {
        clock: FairClock,
        queue: BTreeMap<QueueKey, (usize, Tags)>,
        seq: u64,
    }

    impl Sim {
        fn new() -> Self {
            Sim {
                clock: FairClock::new(QueueOrder::Fair),
                queue: BTreeMap::new(),
                seq: 0,
            }
        }
        fn submit(&mut self, party: usize, weight: u32, cost: u64) -> QueueKey {
            let p = Party {
                key: format!("p{party}").into(),
                weight,
            };
            let tags = self.clock.tag(&p, cost, self.seq);
            self.seq += 1;
            self.queue.insert(tags.key, (party, tags));
            tags.key
        }
        /// Hands the next job to the device; returns its party.
        fn next(&mut self) -> Option<usize> {
            let (_, (party, tags)) = self.queue.pop_first()?;
            self.clock.dispatched(&tags);
            Some(party)
        }
        fn position(&self, key: &QueueKey) -> usize {
            self.queue.range(..=key).count()
        }
    }

    #[test]
    fn equal_parties_run_in_arrival_order() {
        let mut sim = Sim::new();
        // Three parties, three rounds, submitted in turn.
        let mut order = vec![];
        for _round in 0..3 {
            for p in 0..3 {
                sim.submit(p, 1, 1000);
                order.push(p);
            }
        }
        let ran: Vec<usize> = std::iter::from_fn(|| sim.next()).collect();
        assert_eq!(ran, order);
    }

    #[test]
    fn a_flood_only_delays_its_own_later_jobs() {
        let mut sim = Sim::new();
        for _ in 0..200 {
            sim.submit(0, 1, 1000);
        }
        let mut flood_ran = 0;
        // Nine newcomers, one at a time, while the flood runs: each goes before the flood's
        // next job (its tag equals the virtual time, where the flood's next one is too).
        for light in 1..=9 {
            for _ in 0..5 {
                assert_eq!(sim.next(), Some(0));
                flood_ran += 1;
            }
            sim.submit(light, 1, 1000);
            let mut ahead = 0;
            loop {
                match sim.next() {
                    Some(0) => ahead += 1,
                    Some(p) => {
                        assert_eq!(p, light);
                        break;
                    }
                    None => panic!("the newcomer never ran"),
                }
            }
            assert_eq!(ahead, 0, "newcomer {light} waited for {ahead} flood jobs");
            flood_ran += ahead;
        }
        let rest = std::iter::from_fn(|| sim.next()).count();
        assert_eq!(flood_ran + rest, 200, "every flood job still runs");
    }

    #[test]
    fn weights_share_the_device_in_proportion() {
        let mut sim = Sim::new();
        for _ in 0..100 {
            sim.submit(0, 4, 1000);
            sim.submit(1, 1, 1000);
        }
        let first_50: Vec<usize> = (0..50).filter_map(|_| sim.next()).collect();
        let heavy = first_50.iter().filter(|&&p| p == 0).count();
        assert_eq!(heavy, 40, "weight 4 gets four jobs to one: {first_50:?}");
    }

    /// Random arrivals (random parties, costs and weights) and dispatches: a party's only
    /// waiting job, once its previous job was handed over, never moves back.
    #[test]
    fn a_lone_waiting_job_is_never_passed_whatever_the_costs() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut sim = Sim::new();
        let mut watched: BTreeMap<usize, (QueueKey, usize)> = BTreeMap::new();
        for _ in 0..4_000 {
            if rng.random_bool(0.52) {
                let party = rng.random_range(0..40);
                let weight = [1, 1, 2, 4][rng.random_range(0..4)];
                let cost = rng.random_range(1..100_000);
                let alone = !sim.queue.values().any(|(p, _)| *p == party);
                let key = sim.submit(party, weight, cost);
                if alone {
                    let pos = sim.position(&key);
                    watched.insert(party, (key, pos));
                } else {
                    watched.remove(&party);
                }
            } else if let Some(p) = sim.next() {
                watched.remove(&p);
            }
            for (party, (key, last)) in watched.iter_mut() {
                let now = sim.position(key);
                assert!(
                    now <= *last,
                    "party {party} moved back from {last} to {now}"
                );
                *last = now;
            }
        }
    }

    #[test]
    fn fifo_ignores_parties_and_idle_parties_are_forgotten() {
        let mut fifo = FairClock::new(QueueOrder::Fifo);
        let a = fifo.tag(&Party::new("a"), 5, 0);
        let b = fifo.tag(&Party::new("a"), 5, 1);
        assert!(a.key < b.key);
        assert_eq!(fifo.parties(), 0);

        let mut fair = FairClock::new(QueueOrder::Fair);
        let t = fair.tag(&Party::new("a"), 10, 0);
        assert_eq!(fair.parties(), 1);
        fair.forget_idle();
        assert_eq!(fair.parties(), 1, "still ahead of virtual time");
        fair.dispatched(&t);
        fair.forget_idle();
        assert_eq!(fair.parties(), 0);
        // A withdrawn last job is not charged: the next one starts where it would have.
        let t1 = fair.tag(&Party::new("b"), 10, 1);
        fair.withdrawn(&Party::new("b"), &t1);
        let t2 = fair.tag(&Party::new("b"), 10, 2);
        assert_eq!(t2.key.tag, t1.key.tag);
    }
}
