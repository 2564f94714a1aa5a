//! The calculator's result cache (seed 001's LRU cache, for results). Calculator jobs are
//! deterministic (generators carry their seed), so an identical job is answered from here without
//! waiting in the queue or taking the device, and its answer says so (`cached: true`). Chat
//! answers are never cached; neither is the test-only `sleep`.
//!
//! Keys are the job's canonical JSON (exact: two jobs share an entry only if they are the same
//! job), so only jobs whose JSON is at most [`MAX_KEY_BYTES`] are cached. Entries expire after the
//! TTL and are evicted least recently used first; the memory bound counts each entry's key and
//! result bytes, and every entry weighs at least `max_bytes / max_entries`, so neither bound is
//! ever passed. The cache itself is `moka`'s; hits and misses are counted here.
//!
//! Concurrency: shared by every connection and the calculator; `moka` is a concurrent cache and
//! the counters are atomics. Nothing here is held across an `.await`.

use app::api::CacheStats;
use app::protocol::{CalcJob, Op};
use app::tensor::Tensor;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Jobs with larger JSON are not cached (big literal operands rarely repeat).
pub const MAX_KEY_BYTES: usize = 64 << 10;

/// A cached answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Cached {
    /// The result.
    pub output: Tensor,
    /// How long it took to compute, the first time.
    pub compute_ms: f64,
}

/// The cache and its counters.
pub struct ResultCache {
    /// Entries by canonical job JSON; `None` when caching is off.
    entries: Option<Cache<String, Arc<Cached>, foldhash::fast::RandomState>>,
    /// Most entries.
    max_entries: u64,
    /// Most bytes.
    max_bytes: u64,
    /// Entry lifetime.
    ttl: Duration,
    /// Lookups answered.
    hits: AtomicU64,
    /// Lookups not answered (cacheable jobs only).
    misses: AtomicU64,
}

/// Bytes an entry holds: its key, its result, and bookkeeping.
fn weight(key: &str, v: &Cached) -> u64 {
    (key.len() + v.output.data.len() * 4 + v.output.shape.len() * 8 + 64) as u64
}

/// The key for `job`, if it is cacheable.
fn key(job: &CalcJob) -> Option<String> {
    if job.op == Op::Sleep {
        return None;
    }
    serde_json::to_string(job)
        .ok()
        .filter(|k| k.len() <= MAX_KEY_BYTES)
}

impl ResultCache {
    /// A cache of at most `max_entries` entries and `max_bytes` bytes, each kept for `ttl`.
    /// Zero entries, bytes or TTL turn caching off.
    pub fn new(max_entries: u64, max_bytes: u64, ttl: Duration) -> Arc<Self> {
        let on = max_entries > 0 && max_bytes > 0 && !ttl.is_zero();
        let floor = (max_bytes / max_entries.max(1)).max(1);
        let entries = on.then(|| {
            Cache::builder()
                .max_capacity(max_bytes)
                .weigher(move |k: &String, v: &Arc<Cached>| {
                    weight(k, v).max(floor).min(u64::from(u32::MAX)) as u32
                })
                .time_to_live(ttl)
                .eviction_policy(EvictionPolicy::lru())
                .build_with_hasher(foldhash::fast::RandomState::default())
        });
        Arc::new(ResultCache {
            entries,
            max_entries,
            max_bytes,
            ttl,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// The cached answer to `job`, counting a hit or a miss (uncacheable jobs count as neither).
    pub fn get(&self, job: &CalcJob) -> Option<Arc<Cached>> {
        let entries = self.entries.as_ref()?;
        let key = key(job)?;
        match entries.get(&key) {
            Some(hit) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(hit)
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Remembers the answer to `job` (unless it alone would not fit).
    pub fn put(&self, job: &CalcJob, answer: Cached) {
        if let (Some(entries), Some(key)) = (&self.entries, key(job)) {
            let answer = Arc::new(answer);
            if weight(&key, &answer) <= self.max_bytes {
                entries.insert(key, answer);
            }
        }
    }

    /// Jobs answered from the cache since start.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// The `cache` section of `/api/stats`.
    pub fn stats(&self) -> CacheStats {
        let (size, bytes) = match &self.entries {
            Some(e) => {
                e.run_pending_tasks();
                (e.entry_count(), e.weighted_size())
            }
            None => (0, 0),
        };
        let (hits, misses) = (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        );
        let lookups = hits + misses;
        CacheStats {
            enabled: self.entries.is_some(),
            size,
            max_size: self.max_entries,
            bytes,
            max_bytes: self.max_bytes,
            hits,
            misses,
            hit_rate: if lookups == 0 {
                0.0
            } else {
                100.0 * hits as f64 / lookups as f64
            },
            ttl_seconds: self.ttl.as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::tensor::{Fill, TensorInput};

    fn job(seed: u64) -> CalcJob {
        CalcJob {
            op: Op::Sum,
            a: Some(TensorInput::Generated {
                fill: Fill::Random,
                shape: vec![2, 2],
                seed: Some(seed),
            }),
            b: None,
            dim: None,
            ms: None,
            us: None,
        }
    }

    fn answer(n: usize) -> Cached {
        Cached {
            output: Tensor {
                shape: vec![n],
                data: vec![1.0; n],
            },
            compute_ms: 0.5,
        }
    }

    #[test]
    fn identical_jobs_hit_and_different_ones_miss() {
        let cache = ResultCache::new(100, 1 << 20, Duration::from_secs(60));
        assert!(cache.get(&job(1)).is_none());
        cache.put(&job(1), answer(1));
        assert_eq!(cache.get(&job(1)).unwrap().output.data, vec![1.0]);
        assert!(cache.get(&job(2)).is_none(), "another seed is another job");
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.size), (1, 2, 1));
        assert!((s.hit_rate - 100.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn both_bounds_hold_and_the_least_recent_goes_first() {
        let cache = ResultCache::new(10, 10_000, Duration::from_secs(60));
        for seed in 0..50 {
            cache.put(&job(seed), answer(1));
            let _ = cache.get(&job(0)); // keep the first one recently used
            let _ = cache.stats(); // (moka applies reads and writes in batches; settle them)
        }
        let s = cache.stats();
        assert!(s.size <= 10, "{s:?}");
        assert!(s.bytes <= 10_000, "{s:?}");
        assert!(
            cache.get(&job(0)).is_some(),
            "the recently used entry was evicted"
        );
        // One entry bigger than the whole cache is not kept.
        cache.put(&job(99), answer(100_000));
        assert!(cache.get(&job(99)).is_none());
    }

    #[test]
    fn entries_expire_and_sleep_or_huge_jobs_are_never_cached() {
        let cache = ResultCache::new(10, 1 << 20, Duration::from_millis(50));
        cache.put(&job(1), answer(1));
        std::thread::sleep(Duration::from_millis(80));
        assert!(cache.get(&job(1)).is_none(), "expired");
        let sleep = CalcJob {
            op: Op::Sleep,
            ms: Some(5),
            ..job(0)
        };
        cache.put(&sleep, answer(1));
        assert!(cache.get(&sleep).is_none());
        let huge = CalcJob {
            a: Some(TensorInput::Literal(Tensor {
                shape: vec![20_000],
                data: vec![0.5; 20_000],
            })),
            ..job(0)
        };
        cache.put(&huge, answer(1));
        assert!(cache.get(&huge).is_none());
        assert_eq!(cache.stats().misses, 1, "uncacheable jobs are not misses");
    }

    #[test]
    fn a_disabled_cache_answers_nothing() {
        let cache = ResultCache::new(0, 1 << 20, Duration::from_secs(60));
        cache.put(&job(1), answer(1));
        assert!(cache.get(&job(1)).is_none());
        assert!(!cache.stats().enabled);
    }
}
