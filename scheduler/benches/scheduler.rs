//! The scheduler's own operations at 10, 1,000 and 100,000 waiting jobs: submit (tag in the fair
//! clock + insert), cancel (remove anywhere), next (take the first + advance virtual time), and
//! a position query. Each measurement times one operation at a fixed queue size (the size is
//! restored, untimed, after each one), so the figures show how the cost grows with n: the claim
//! is O(log n) for all four (docs/benchmarks.md records them).
//!
//! `cargo bench -p turnstile-scheduler --bench scheduler`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};
use turnstile_scheduler::fair::{FairClock, Party, QueueOrder, Tags};
use turnstile_scheduler::queue::{Announced, QueueKey, WaitQueue};

/// A waiting entry, as small as the scheduler's bookkeeping needs.
struct Entry {
    told: u64,
    tags: Tags,
}

impl Announced for Entry {
    fn last_announced(&mut self) -> &mut u64 {
        &mut self.told
    }
}

struct Bench {
    clock: FairClock,
    queue: WaitQueue<Entry>,
    keys: Vec<QueueKey>,
    parties: Vec<Party>,
    seq: u64,
    rng: rand_chacha::ChaCha8Rng,
}

impl Bench {
    /// A queue of `n` jobs from 1,000 parties.
    fn new(n: usize) -> Self {
        let mut b = Bench {
            clock: FairClock::new(QueueOrder::Fair),
            queue: WaitQueue::default(),
            keys: Vec::with_capacity(n + 1),
            parties: (0..1000).map(|i| Party::new(format!("p{i}"))).collect(),
            seq: 0,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(1),
        };
        for _ in 0..n {
            b.submit();
        }
        b
    }

    fn submit(&mut self) -> QueueKey {
        let party = &self.parties[self.rng.random_range(0..self.parties.len())];
        let tags = self.clock.tag(party, 1000, self.seq);
        self.seq += 1;
        self.queue.push(tags.key, Entry { told: 0, tags });
        self.keys.push(tags.key);
        tags.key
    }

    fn random_key(&mut self) -> (usize, QueueKey) {
        let i = self.rng.random_range(0..self.keys.len());
        (i, self.keys[i])
    }

    /// Removes `keys[i]` from the list of keys (order does not matter).
    fn forget(&mut self, i: usize) {
        self.keys.swap_remove(i);
    }
}

fn ops(c: &mut Criterion) {
    let mut group = c.benchmark_group("scheduler");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for n in [10usize, 1_000, 100_000] {
        group.bench_with_input(BenchmarkId::new("submit", n), &n, |bch, &n| {
            let mut b = Bench::new(n);
            bch.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let key = b.submit();
                    total += t.elapsed();
                    // Restore the size, untimed.
                    b.queue.remove(&key);
                    b.keys.pop();
                }
                total
            })
        });
        group.bench_with_input(BenchmarkId::new("cancel", n), &n, |bch, &n| {
            let mut b = Bench::new(n);
            bch.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (i, key) = b.random_key();
                    let t = Instant::now();
                    let gone = b.queue.remove(&key);
                    total += t.elapsed();
                    assert!(gone.is_some());
                    b.forget(i);
                    b.submit();
                }
                total
            })
        });
        group.bench_with_input(BenchmarkId::new("next", n), &n, |bch, &n| {
            let mut b = Bench::new(n);
            bch.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    let (_, entry) = b.queue.pop_first().expect("not empty");
                    b.clock.dispatched(&entry.tags);
                    total += t.elapsed();
                    b.submit(); // (this benchmark never looks keys up, so `keys` just grows)
                }
                total
            })
        });
        group.bench_with_input(BenchmarkId::new("position", n), &n, |bch, &n| {
            let mut b = Bench::new(n);
            bch.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (_, key) = b.random_key();
                    let t = Instant::now();
                    let p = b.queue.position(&key);
                    total += t.elapsed();
                    assert!(p.is_some());
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ops);
criterion_main!(benches);
