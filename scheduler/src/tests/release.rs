//! Running jobs that end early (cancelled, past `max_run`, panicking) free the device for the
//! next one.

use super::*;

#[tokio::test]
async fn cancelling_a_running_job_frees_the_device() {
    let (s, _) = start(config());
    let (mut a, mut b) = (owner(), owner());
    let ta = s
        .submit(job(Op::Sleep, 10_000), a.party.clone(), a.tx.clone())
        .unwrap();
    let _tb = s
        .submit(job(Op::Sleep, 1), b.party.clone(), b.tx.clone())
        .unwrap();
    assert!(matches!(a.next().await, JobEvent::Accepted { .. }));
    assert!(matches!(a.next().await, JobEvent::Started { .. }));
    let t = Instant::now();
    ta.cancel();
    assert_eq!(
        a.until_end().await.last(),
        Some(&JobEvent::Failed(JobError::Cancelled))
    );
    assert!(matches!(b.until_end().await.last(), Some(JobEvent::Done)));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_job_that_runs_too_long_times_out_and_the_next_runs() {
    let (s, _) = start(SchedulerConfig {
        max_run: Duration::from_millis(100),
        ..config()
    });
    let (mut a, mut b) = (owner(), owner());
    let _ta = s
        .submit(job(Op::Sleep, 5_000), a.party.clone(), a.tx.clone())
        .unwrap();
    let _tb = s
        .submit(job(Op::Sleep, 1), b.party.clone(), b.tx.clone())
        .unwrap();
    assert_eq!(
        a.until_end().await.last(),
        Some(&JobEvent::Failed(JobError::RunTimeout(
            Duration::from_millis(100)
        )))
    );
    assert!(matches!(b.until_end().await.last(), Some(JobEvent::Done)));
}

#[tokio::test]
async fn a_panicking_job_releases_the_device_and_the_next_runs() {
    let (s, exec) = start(config());
    let (mut a, mut b) = (owner(), owner());
    let _ta = s
        .submit(job(Op::Exp, 7), a.party.clone(), a.tx.clone())
        .unwrap();
    let _tb = s
        .submit(job(Op::Sleep, 8), b.party.clone(), b.tx.clone())
        .unwrap();
    assert_eq!(
        a.until_end().await.last(),
        Some(&JobEvent::Failed(JobError::DeviceFailed))
    );
    assert!(matches!(b.until_end().await.last(), Some(JobEvent::Done)));
    assert_eq!(*exec.started.lock(), vec![7, 8]);
    let snap = s.snapshot().await.unwrap();
    assert_eq!(snap.device_queue.running, 0);
    assert_eq!(snap.device_queue.total_requests, 2);
}
