//! Admission limits and the wait deadline: a full queue, a party at its cap, a job the executor
//! refuses, a job that waits too long.

use super::*;
use crate::testkit::LONGEST_MS;

#[tokio::test]
async fn a_full_queue_refuses_at_once() {
    let (s, _) = start(SchedulerConfig {
        max_waiting: 2,
        ..config()
    });
    let o = owner();
    let _t1 = o.submit(&s, job(TestOp::Sleep, 500)).unwrap();
    let _t2 = o.submit(&s, job(TestOp::Sleep, 1)).unwrap();
    let r = o.submit(&s, job(TestOp::Sleep, 1));
    assert_eq!(r.err(), Some(TestError::Scheduler(Error::QueueFull(2))));
}

#[tokio::test]
async fn a_job_the_executor_refuses_never_queues_and_is_counted() {
    let (s, _) = start(config());
    let mut o = owner();
    let r = o.submit(&s, job(TestOp::Sleep, LONGEST_MS + 1));
    assert!(
        matches!(r.err(), Some(TestError::InvalidInput(_))),
        "refused by validate"
    );
    let view = s.view().await.unwrap();
    assert_eq!(view.rejected, [("invalid_input", 1)]);
    assert_eq!((view.waiting, view.running), (0, 0));
    assert!(o.rx.try_recv().is_err(), "a refused job has no events");
}

#[tokio::test]
async fn a_job_that_waits_too_long_times_out() {
    let (s, _) = start(SchedulerConfig {
        max_wait: Duration::from_millis(100),
        ..config()
    });
    let (a, mut b) = (owner(), owner());
    let _ta = a.submit(&s, job(TestOp::Sleep, 1000)).unwrap();
    let _tb = b.submit(&s, job(TestOp::Sleep, 1)).unwrap();
    let t = Instant::now();
    assert_eq!(
        b.end().await,
        failed(Error::WaitTimeout(Duration::from_millis(100)))
    );
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "timed out only after the running job ended"
    );
}

#[tokio::test]
async fn a_party_at_its_cap_is_rate_limited_and_others_are_not() {
    let (s, _) = start(SchedulerConfig {
        max_waiting_per_party: 3,
        ..config()
    });
    let (a, b) = (owner(), owner());
    // One runs; three wait (one of them prefetched, which still counts as waiting): the fifth
    // is over the cap of three.
    let mut tickets = vec![];
    for _ in 0..4 {
        tickets.push(a.submit(&s, job(TestOp::Sleep, 300)).unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    match a.submit(&s, job(TestOp::Sleep, 1)) {
        Err(TestError::Scheduler(Error::RateLimited {
            waiting: 3,
            retry_after,
        })) => {
            assert!(retry_after >= Duration::from_secs(1))
        }
        other => panic!("expected rate_limited, got {:?}", other.map(|t| t.id())),
    }
    assert!(b.submit(&s, job(TestOp::Sleep, 1)).is_ok());
}
