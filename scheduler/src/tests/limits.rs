//! Admission limits and the wait deadline: a full queue, a party at its cap, a job that waits
//! too long.

use super::*;

#[tokio::test]
async fn a_full_queue_refuses_at_once() {
    let (s, _) = start(SchedulerConfig {
        max_waiting: 2,
        ..config()
    });
    let o = owner();
    let _t1 = s
        .submit(job(Op::Sleep, 500), o.party.clone(), o.tx.clone())
        .unwrap();
    let _t2 = s
        .submit(job(Op::Sleep, 1), o.party.clone(), o.tx.clone())
        .unwrap();
    let r = s.submit(job(Op::Sleep, 1), o.party.clone(), o.tx.clone());
    assert_eq!(r.err(), Some(JobError::QueueFull(2)));
}

#[tokio::test]
async fn a_job_that_waits_too_long_times_out() {
    let (s, _) = start(SchedulerConfig {
        max_wait: Duration::from_millis(100),
        ..config()
    });
    let (a, mut b) = (owner(), owner());
    let _ta = s
        .submit(job(Op::Sleep, 1000), a.party.clone(), a.tx.clone())
        .unwrap();
    let _tb = s
        .submit(job(Op::Sleep, 1), b.party.clone(), b.tx.clone())
        .unwrap();
    let t = Instant::now();
    let events = b.until_end().await;
    assert_eq!(
        events.last(),
        Some(&JobEvent::Failed(JobError::WaitTimeout(
            Duration::from_millis(100)
        )))
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
        tickets.push(
            s.submit(job(Op::Sleep, 300), a.party.clone(), a.tx.clone())
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    match s.submit(job(Op::Sleep, 1), a.party.clone(), a.tx.clone()) {
        Err(JobError::RateLimited {
            waiting: 3,
            retry_after,
        }) => {
            assert!(retry_after >= Duration::from_secs(1))
        }
        other => panic!(
            "expected rate_limited, got {:?}",
            other.map(|t| t.id().clone())
        ),
    }
    assert!(s
        .submit(job(Op::Sleep, 1), b.party.clone(), b.tx.clone())
        .is_ok());
}
