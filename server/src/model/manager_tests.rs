//! Model manager tests with a scripted loader.

use super::*;
use std::sync::atomic::{AtomicU32, Ordering};

/// Counts loads; fails the first `fail_first`; each load takes `delay` (checking cancellation).
struct Scripted {
    loads: Arc<AtomicU32>,
    fail_first: u32,
    delay: Duration,
    cancelled: Arc<AtomicU32>,
}

impl Loader for Scripted {
    type Model = u32;
    fn load(&self, progress: &dyn Fn(f32), cancel: &CancellationToken) -> Result<u32, String> {
        let n = self.loads.fetch_add(1, Ordering::SeqCst);
        let until = Instant::now() + self.delay;
        while Instant::now() < until {
            if cancel.is_cancelled() {
                self.cancelled.fetch_add(1, Ordering::SeqCst);
                return Err("cancelled".into());
            }
            progress(0.5);
            std::thread::sleep(Duration::from_millis(2));
        }
        if n < self.fail_first {
            Err("the model file is missing".into())
        } else {
            Ok(n)
        }
    }
}

fn manager(
    fail_first: u32,
    delay_ms: u64,
    keep_alive: Duration,
) -> (Arc<ModelManager<Scripted>>, Arc<AtomicU32>, Arc<AtomicU32>) {
    let loads = Arc::new(AtomicU32::new(0));
    let cancelled = Arc::new(AtomicU32::new(0));
    let m = ModelManager::new(
        Scripted {
            loads: loads.clone(),
            fail_first,
            delay: Duration::from_millis(delay_ms),
            cancelled: cancelled.clone(),
        },
        ManagerConfig {
            keep_alive,
            load_timeout: Duration::from_secs(5),
        },
    );
    (m, loads, cancelled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_cause_exactly_one_load() {
    let (m, loads, _) = manager(0, 50, Duration::from_secs(60));
    let mut tasks = vec![];
    for _ in 0..10 {
        let m = m.clone();
        tasks.push(tokio::spawn(async move {
            let mut saw_loading = false;
            let lease = m.acquire(|_| saw_loading = true).await.unwrap();
            (*lease, saw_loading)
        }));
    }
    for t in tasks {
        let (model, saw_loading) = t.await.unwrap();
        assert_eq!(model, 0, "every request got the one loaded copy");
        assert!(
            saw_loading,
            "a request that waited was told the model is loading"
        );
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(m.status().state, "loaded");
}

#[tokio::test]
async fn a_failed_load_fails_every_waiter_and_the_next_request_retries() {
    let (m, loads, _) = manager(1, 30, Duration::from_secs(60));
    let (a, b) = tokio::join!(m.acquire(|_| {}), m.acquire(|_| {}));
    for r in [a.err(), b.err()] {
        assert_eq!(
            r,
            Some(ModelError::Unavailable("the model file is missing".into()))
        );
    }
    let st = m.status();
    assert_eq!((st.state, st.load_failures), ("unloaded", 1));
    assert_eq!(*m.acquire(|_| {}).await.unwrap(), 1);
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn keep_alive_unloads_and_a_later_request_reloads() {
    let (m, loads, _) = manager(0, 1, Duration::from_millis(40));
    let lease = m.acquire(|_| {}).await.unwrap();
    assert!(
        !m.unload_if_idle(Instant::now() + Duration::from_secs(3600)),
        "unloaded while in use"
    );
    drop(lease);
    assert!(
        !m.unload_if_idle(Instant::now()),
        "unloaded before its keep-alive"
    );
    assert!(m.unload_if_idle(Instant::now() + Duration::from_millis(50)));
    assert_eq!(m.status().state, "unloaded");
    let _again = m.acquire(|_| {}).await.unwrap();
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_load_everyone_abandoned_is_cancelled_but_a_preload_is_not() {
    let (m, _, cancelled) = manager(0, 2_000, Duration::from_secs(60));
    let wait = tokio::time::timeout(Duration::from_millis(50), m.acquire(|_| {})).await;
    assert!(wait.is_err(), "the load should still be running");
    for _ in 0..100 {
        if cancelled.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        cancelled.load(Ordering::SeqCst),
        1,
        "the abandoned load kept running"
    );

    let (m, loads, cancelled) = manager(0, 100, Duration::from_secs(60));
    m.preload();
    let wait = tokio::time::timeout(Duration::from_millis(20), m.acquire(|_| {})).await;
    assert!(wait.is_err());
    let lease = m.acquire(|_| {}).await.unwrap();
    assert_eq!(*lease, 0);
    assert_eq!(
        (
            loads.load(Ordering::SeqCst),
            cancelled.load(Ordering::SeqCst)
        ),
        (1, 0)
    );
}

#[tokio::test]
async fn a_load_past_its_timeout_is_unavailable_and_retried() {
    let loads = Arc::new(AtomicU32::new(0));
    let m = ModelManager::new(
        Scripted {
            loads: loads.clone(),
            fail_first: 0,
            delay: Duration::from_millis(300),
            cancelled: Arc::new(AtomicU32::new(0)),
        },
        ManagerConfig {
            keep_alive: Duration::from_secs(60),
            load_timeout: Duration::from_millis(50),
        },
    );
    match m.acquire(|_| {}).await {
        Err(ModelError::Unavailable(why)) => assert!(why.contains("longer than"), "{why}"),
        Ok(_) => panic!("a load past its timeout succeeded"),
    }
    assert_eq!(m.status().state, "unloaded");
    assert!(
        m.acquire(|_| {}).await.is_err(),
        "retried (and timed out again)"
    );
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}
