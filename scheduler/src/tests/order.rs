//! Run order and announced positions: arrival order, the fair order against a flood, and exact
//! positions as jobs are cancelled, vanish, start or wait prefetched.

use super::*;
use crate::{ItemStatus, QueueOrder};

#[tokio::test]
async fn jobs_run_in_arrival_order() {
    let (s, exec) = start(config());
    let mut owners: Vec<Owner> = (0..5).map(|_| owner()).collect();
    let mut tickets = vec![];
    for (i, o) in owners.iter().enumerate() {
        tickets.push(o.submit(&s, job(TestOp::Sleep, 20 + i as u64)).unwrap());
    }
    for (i, o) in owners.iter_mut().enumerate() {
        assert_eq!(o.end().await, Ok(TestOutput::Calc(20 + i as u64)));
    }
    assert_eq!(*exec.started.lock(), vec![20, 21, 22, 23, 24]);
}

#[tokio::test]
async fn cancelling_a_waiting_job_moves_the_others_up() {
    let (s, exec) = start(config());
    let (mut a, mut b, mut c) = (owner(), owner(), owner());
    let _ta = a.submit(&s, job(TestOp::Sleep, 300)).unwrap();
    let tb = b.submit(&s, job(TestOp::Sleep, 1)).unwrap();
    let _tc = c.submit(&s, job(TestOp::Sleep, 2)).unwrap();
    assert!(matches!(
        a.next().await,
        Event::Accepted { position: 1, .. }
    ));
    assert!(matches!(
        b.next().await,
        Event::Accepted { position: 1, .. } | Event::Accepted { position: 2, .. }
    ));
    assert!(matches!(c.next().await, Event::Accepted { .. }));
    tb.cancel();
    assert_eq!(b.end().await, failed(Error::Cancelled));
    assert!(matches!(
        c.next().await,
        Event::Position { position: 1, .. }
    ));
    assert_eq!(c.end().await, Ok(TestOutput::Calc(2)));
    assert_eq!(
        *exec.started.lock(),
        vec![300, 2],
        "the cancelled job never ran"
    );
}

#[tokio::test]
async fn a_vanished_owner_leaves_the_queue() {
    let (s, exec) = start(config());
    let (mut a, b, mut c) = (owner(), owner(), owner());
    let _ta = a.submit(&s, job(TestOp::Sleep, 200)).unwrap();
    let tb = b.submit(&s, job(TestOp::Sleep, 1)).unwrap();
    let _tc = c.submit(&s, job(TestOp::Sleep, 2)).unwrap();
    assert!(matches!(
        c.next().await,
        Event::Accepted { position: 2, .. }
    ));
    drop(tb);
    drop(b);
    assert!(matches!(
        c.next().await,
        Event::Position { position: 1, .. }
    ));
    a.until_end().await;
    c.until_end().await;
    assert_eq!(*exec.started.lock(), vec![200, 2]);
}

/// A waiter: its ticket while the test holds it, its owner, the position it was last told.
type Waiter = (Option<JobTicket<Scripted>>, Owner, u64);

#[tokio::test]
async fn announced_positions_are_exact_after_every_kind_of_change() {
    let (s, _) = start(config());
    let blocker = owner();
    let blocker_ticket = blocker.submit(&s, job(TestOp::Sleep, 10_000)).unwrap();
    // Twelve waiters, each with its own sink, in arrival order.
    let mut waiters: Vec<Waiter> = vec![];
    for i in 0..12 {
        let o = owner();
        let t = o.submit(&s, job(TestOp::Sleep, 5_000 + i)).unwrap();
        waiters.push((Some(t), o, 0));
    }
    let settle = || tokio::time::sleep(Duration::from_millis(60));
    let check = |waiters: &mut Vec<Waiter>| {
        let mut expected = 0;
        for (t, o, last) in waiters.iter_mut() {
            if t.is_some() {
                expected += 1;
                *last = o.last_position(*last);
                assert_eq!(*last, expected, "stale position");
            }
        }
    };
    settle().await;
    check(&mut waiters);
    // An explicit cancel in the middle, a vanished owner near the front, one at the back.
    waiters[5].0.take().unwrap().cancel();
    let _ = waiters[5].1.rx.recv().await;
    settle().await;
    check(&mut waiters);
    drop(waiters[1].0.take());
    drop(waiters[11].0.take());
    settle().await;
    check(&mut waiters);
    // The running job leaves: everyone moves up once more; the front one starts.
    blocker_ticket.cancel();
    settle().await;
    let front = &mut waiters[0];
    assert!(matches!(
        front.1.rx.recv().await.unwrap().1,
        Event::Started { .. }
    ));
    front.0.take().unwrap().disarm();
    check(&mut waiters);
}

/// Thirty 5 ms jobs from one party, then one job from another: where the newcomer ran.
async fn newcomer_index(order: QueueOrder) -> usize {
    let (s, exec) = start(SchedulerConfig { order, ..config() });
    let mut flood = owner();
    let mut tickets = vec![];
    for _ in 0..30 {
        tickets.push(flood.submit(&s, job(TestOp::Sleep, 5)).unwrap());
    }
    // The flood's owner reads its events as they come.
    let drain = tokio::spawn(async move { while flood.rx.recv().await.is_some() {} });
    // Let the flood start, then the newcomer arrives.
    tokio::time::sleep(Duration::from_millis(8)).await;
    let mut light = owner();
    let _t = light.submit(&s, job(TestOp::Sleep, 777)).unwrap();
    assert_eq!(light.end().await, Ok(TestOutput::Calc(777)));
    for _ in 0..500 {
        if exec.started.lock().len() == 31 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    drain.abort();
    let started = exec.started.lock().clone();
    assert_eq!(started.len(), 31, "every job ran");
    started.iter().position(|&ms| ms == 777).unwrap()
}

#[tokio::test]
async fn a_flood_delays_only_its_own_jobs() {
    // Fair: only the flood's jobs already on the device (running, prefetched, or started while
    // the newcomer was being submitted) go first.
    let fair = newcomer_index(QueueOrder::Fair).await;
    assert!(fair <= 4, "the newcomer waited for {fair} flood jobs");
    // FIFO (the comparison): it waits for the whole flood.
    assert_eq!(newcomer_index(QueueOrder::Fifo).await, 30);
}

#[tokio::test]
async fn a_prefetched_job_starts_the_moment_the_device_is_free_and_can_still_be_cancelled() {
    let (s, exec) = start(config());
    let (mut a, mut b, mut c) = (owner(), owner(), owner());
    let _ta = a.submit(&s, job(TestOp::Sleep, 200)).unwrap();
    assert!(matches!(
        a.next().await,
        Event::Accepted { position: 1, .. }
    ));
    assert!(matches!(a.next().await, Event::Started { .. }));
    // b is handed to the device at once (prefetched) and still counts as waiting, first in line.
    let tb = b.submit(&s, job(TestOp::Sleep, 1)).unwrap();
    assert!(matches!(
        b.next().await,
        Event::Accepted { position: 1, .. }
    ));
    let _tc = c.submit(&s, job(TestOp::Sleep, 2)).unwrap();
    assert!(matches!(
        c.next().await,
        Event::Accepted { position: 2, .. }
    ));
    let view = s.view().await.unwrap();
    assert_eq!((view.running, view.waiting, view.prefetched), (1, 2, 1));
    let statuses: Vec<(ItemStatus, u64)> =
        view.items.iter().map(|i| (i.status, i.position)).collect();
    assert_eq!(
        statuses,
        [
            (ItemStatus::Running, 0),
            (ItemStatus::Starting, 1),
            (ItemStatus::Queued, 2)
        ]
    );
    // Cancelled while prefetched: answered at once, not when the device gets to it.
    let t = Instant::now();
    tb.cancel();
    assert_eq!(b.end().await, failed(Error::Cancelled));
    assert!(
        t.elapsed() < Duration::from_millis(100),
        "cancel waited for the device"
    );
    assert!(matches!(
        c.next().await,
        Event::Position { position: 1, .. }
    ));
    assert_eq!(c.end().await, Ok(TestOutput::Calc(2)));
    assert_eq!(
        *exec.started.lock(),
        vec![200, 2],
        "the cancelled job never ran"
    );
}
