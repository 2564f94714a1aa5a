//! Running jobs that end early (cancelled, past `max_run`, panicking) free the device for the
//! next one.

use super::*;

#[tokio::test]
async fn cancelling_a_running_job_frees_the_device() {
    let (s, _) = start(config());
    let (mut a, mut b) = (owner(), owner());
    let ta = a.submit(&s, job(TestOp::Sleep, 10_000)).unwrap();
    let _tb = b.submit(&s, job(TestOp::Sleep, 1)).unwrap();
    assert!(matches!(a.next().await, Event::Accepted { .. }));
    assert!(matches!(a.next().await, Event::Started { .. }));
    let t = Instant::now();
    ta.cancel();
    assert_eq!(a.end().await, failed(Error::Cancelled));
    assert_eq!(b.end().await, Ok(TestOutput::Calc(1)));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_job_that_runs_too_long_times_out_and_the_next_runs() {
    let (s, _) = start(SchedulerConfig {
        max_run: Duration::from_millis(100),
        ..config()
    });
    let (mut a, mut b) = (owner(), owner());
    let _ta = a.submit(&s, job(TestOp::Sleep, 5_000)).unwrap();
    let _tb = b.submit(&s, job(TestOp::Sleep, 1)).unwrap();
    assert_eq!(
        a.end().await,
        failed(Error::RunTimeout(Duration::from_millis(100)))
    );
    assert_eq!(b.end().await, Ok(TestOutput::Calc(1)));
}

#[tokio::test]
async fn a_panicking_job_releases_the_device_and_the_next_runs() {
    let (s, exec) = start(config());
    let (mut a, mut b) = (owner(), owner());
    let _ta = a.submit(&s, job(TestOp::Panic, 7)).unwrap();
    let _tb = b.submit(&s, job(TestOp::Sleep, 8)).unwrap();
    assert_eq!(a.end().await, failed(Error::DeviceFailed));
    assert_eq!(b.end().await, Ok(TestOutput::Calc(8)));
    assert_eq!(*exec.started.lock(), vec![7, 8]);
    let view = s.view().await.unwrap();
    assert_eq!(view.running, 0);
    assert_eq!(view.total_finished, 2);
}
