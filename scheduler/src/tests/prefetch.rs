//! Prefetch by time: beyond the `prefetch` count, device jobs are handed ahead while the
//! expected device time of everything dispatched stays within `prefetch_time`, so many short
//! jobs queue on the device at once while a long one never lets others go ahead of their turn.

use super::*;
use crate::ItemStatus;

/// Waits until the blocker (the first job) holds the device.
async fn started(o: &mut Owner) {
    assert!(matches!(o.next().await, Event::Accepted { .. }));
    assert!(matches!(o.next().await, Event::Started { .. }));
}

#[tokio::test]
async fn short_jobs_are_handed_ahead_while_their_expected_time_fits() {
    let (s, exec) = start(SchedulerConfig {
        prefetch: 0,
        prefetch_time: Duration::from_millis(250),
        ..config()
    });
    let mut blocker = owner();
    let _tb = blocker.submit(&s, job(TestOp::Sleep, 200)).unwrap();
    started(&mut blocker).await;
    // 200 ms on the device; five more of 10 ms fit in 250 ms, the sixth does not.
    let mut owners: Vec<Owner> = (0..6).map(|_| owner()).collect();
    let _tickets: Vec<_> = owners
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let ten_ms = TestJob {
                op: TestOp::Sleep,
                ms: 10,
                label: 100 + i as u64,
            };
            o.submit(&s, ten_ms).unwrap()
        })
        .collect();
    let view = s.view().await.unwrap();
    assert_eq!(view.prefetched, 5, "{view:?}");
    assert_eq!(
        view.waiting, 6,
        "the prefetched count as waiting, with the one left"
    );
    let starting = view
        .items
        .iter()
        .filter(|i| i.status == ItemStatus::Starting)
        .count();
    assert_eq!(starting, 5);
    for o in owners.iter_mut() {
        assert!(o.end().await.is_ok());
    }
    assert_eq!(
        *exec.started.lock(),
        vec![200, 100, 101, 102, 103, 104, 105]
    );
}

#[tokio::test]
async fn a_long_job_on_the_device_lets_only_the_prefetch_count_ahead() {
    let (s, _) = start(SchedulerConfig {
        prefetch: 1,
        prefetch_time: Duration::from_millis(50),
        ..config()
    });
    let mut blocker = owner();
    let _tb = blocker.submit(&s, job(TestOp::Sleep, 300)).unwrap();
    started(&mut blocker).await;
    let owners: Vec<Owner> = (0..4).map(|_| owner()).collect();
    let _tickets: Vec<_> = owners
        .iter()
        .map(|o| o.submit(&s, job(TestOp::Sleep, 1)).unwrap())
        .collect();
    let view = s.view().await.unwrap();
    assert_eq!(view.prefetched, 1, "{view:?}");
    assert_eq!(view.waiting, 4);
}
