//! Leases, fencing, the reaper, cancel from anywhere, the follower and a Redis restart, against a
//! real `redis-server`.

use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use turnstile_cluster::testkit::RedisServer;
use turnstile_cluster::{
    follow, CancelOutcome, Followed, NewJob, QueueConfig, Reaped, Renewal, SharedQueue,
};

fn job<'a>(id: &'a str, party: &'a str) -> NewJob<'a> {
    NewJob {
        id,
        line: "device",
        party,
        weight: 1,
        cost_us: 1000,
        owner: "web1",
        payload: id.as_bytes(),
        session: "",
        meta: b"",
    }
}

async fn queue(redis: &RedisServer, lease_ms: u64) -> SharedQueue {
    let config = QueueConfig {
        lease: Duration::from_millis(lease_ms),
        ..QueueConfig::default()
    };
    SharedQueue::connect(&redis.url(), config).await.unwrap()
}

#[tokio::test]
async fn a_fenced_out_worker_can_neither_append_nor_finish_and_a_job_is_retried_once() {
    let redis = RedisServer::start();
    let q = queue(&redis, 100).await;
    q.enqueue(job("a", "p1")).await.unwrap().unwrap();
    q.enqueue(job("b", "p2")).await.unwrap().unwrap();
    let first = q.claim("device", "w1").await.unwrap().unwrap();
    assert_eq!((first.id.as_str(), first.attempts), ("a", 0));
    assert_eq!(q.renew("a", first.fence).await.unwrap(), Renewal::Kept);
    assert_eq!(
        q.emit("a", first.fence, b"started", false, false)
            .await
            .unwrap(),
        Some(1)
    );

    // The worker stalls past its lease: the reaper takes the job back, to its original place
    // (ahead of b, which arrived later).
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        q.reap(b"failed", b"cancelled", 100).await.unwrap(),
        Reaped {
            requeued: 1,
            failed: 0
        }
    );
    assert_eq!(
        q.emit("a", first.fence, b"late", false, false)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        q.emit("a", first.fence, b"done", true, false)
            .await
            .unwrap(),
        None
    );
    assert_eq!(q.renew("a", first.fence).await.unwrap(), Renewal::Lost);
    let again = q.claim("device", "w2").await.unwrap().unwrap();
    assert_eq!((again.id.as_str(), again.attempts), ("a", 1));
    assert!(again.fence > first.fence);

    // Lost a second time: it fails (never a third run).
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        q.reap(b"failed", b"cancelled", 100).await.unwrap(),
        Reaped {
            requeued: 0,
            failed: 1
        }
    );
    assert_eq!(
        q.emit("a", again.fence, b"done", true, false)
            .await
            .unwrap(),
        None
    );
    let events: Vec<Vec<u8>> = q
        .events_after("a", 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert_eq!(events, vec![b"started".to_vec(), b"failed".to_vec()]);
    assert_eq!(
        q.cancel("a", b"cancelled").await.unwrap(),
        CancelOutcome::Ended
    );
    // b was untouched.
    assert_eq!(q.claim("device", "w2").await.unwrap().unwrap().id, "b");
}

#[tokio::test]
async fn a_job_that_streamed_output_fails_instead_of_running_again() {
    let redis = RedisServer::start();
    let q = queue(&redis, 80).await;
    q.enqueue(job("chat", "p1")).await.unwrap().unwrap();
    let c = q.claim("device", "w1").await.unwrap().unwrap();
    assert_eq!(
        q.emit("chat", c.fence, b"token", false, true)
            .await
            .unwrap(),
        Some(1)
    );
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        q.reap(b"failed", b"cancelled", 100).await.unwrap(),
        Reaped {
            requeued: 0,
            failed: 1
        }
    );
    assert!(q.claim("device", "w1").await.unwrap().is_none());
    let seqs: Vec<u64> = q
        .events_after("chat", 0)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(q.events_after("chat", 1).await.unwrap()[0].1, b"failed");
}

#[tokio::test]
async fn cancel_works_from_anywhere_and_reaches_the_running_worker() {
    let redis = RedisServer::start();
    let q = queue(&redis, 5000).await;
    let other = queue(&redis, 5000).await;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let streams = vec![q.keys().control("w1"), q.keys().instance("web1")];
    let follower = follow(q.client(), streams, tx, stop.clone()).await.unwrap();

    q.enqueue(job("run", "p1")).await.unwrap().unwrap();
    q.enqueue(job("wait", "p2")).await.unwrap().unwrap();
    let running = q.claim("device", "w1").await.unwrap().unwrap();
    assert_eq!(
        other.cancel("wait", b"cancelled").await.unwrap(),
        CancelOutcome::Removed
    );
    assert_eq!(
        other.cancel("run", b"cancelled").await.unwrap(),
        CancelOutcome::Signalled
    );
    assert_eq!(
        other.cancel("nope", b"cancelled").await.unwrap(),
        CancelOutcome::Unknown
    );
    assert_eq!(
        q.renew("run", running.fence).await.unwrap(),
        Renewal::CancelRequested
    );

    // The owner instance hears the waiting job's end; the worker hears the running one's cancel.
    let mut heard = vec![];
    while heard.len() < 2 {
        let Some(Followed::Entry { stream, fields }) =
            tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
        else {
            panic!("the follower stopped")
        };
        let id = turnstile_cluster::follow::text(&fields, "j").unwrap();
        heard.push((stream, id));
    }
    heard.sort();
    assert_eq!(
        heard,
        vec![
            (q.keys().control("w1"), "run".to_owned()),
            (q.keys().instance("web1"), "wait".to_owned()),
        ]
    );
    assert_eq!(
        q.emit("run", running.fence, b"cancelled", true, false)
            .await
            .unwrap(),
        Some(1)
    );
    stop.cancel();
    follower.await.unwrap();
}

#[tokio::test]
async fn the_queue_survives_a_redis_restart_from_its_append_only_file() {
    let mut redis = RedisServer::start();
    let q = queue(&redis, 5000).await;
    for (id, party) in [("x", "p1"), ("y", "p2"), ("z", "p1")] {
        q.enqueue(job(id, party)).await.unwrap().unwrap();
    }
    let x = q.claim("device", "w1").await.unwrap().unwrap();
    redis.restart();
    // The same handle reconnects on its own (a failed call may come first).
    let mut claimed = None;
    for _ in 0..50 {
        match q.claim("device", "w1").await {
            Ok(c) => {
                claimed = c;
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    assert_eq!(claimed.unwrap().id, "y", "the order survived");
    assert_eq!(
        q.renew("x", x.fence).await.unwrap(),
        Renewal::Kept,
        "so did the lease"
    );
    let snapshot = q.snapshot(&["device"]).await.unwrap();
    assert_eq!(snapshot.lines[0].1.len(), 1);
}

#[tokio::test]
async fn the_jobs_of_an_instance_gone_past_the_resume_window_are_cancelled() {
    let redis = RedisServer::start();
    let q = queue(&redis, 5000).await;
    q.heartbeat("web1").await.unwrap();
    q.heartbeat("web2").await.unwrap();
    q.enqueue(job("run", "p1")).await.unwrap().unwrap();
    q.enqueue(job("wait", "p2")).await.unwrap().unwrap();
    let mut other = job("theirs", "p3");
    other.owner = "web2";
    q.enqueue(other).await.unwrap().unwrap();
    let running = q.claim("device", "w1").await.unwrap().unwrap();
    let window = Duration::from_millis(200);
    assert_eq!(
        q.cancel_orphans(window, b"cancelled", 100).await.unwrap(),
        0,
        "all alive"
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    q.heartbeat("web2").await.unwrap();
    // web1 went silent: its waiting job ends, its running one is told to stop; web2's stays.
    assert_eq!(
        q.cancel_orphans(window, b"cancelled", 100).await.unwrap(),
        2
    );
    assert_eq!(q.events_after("wait", 0).await.unwrap()[0].1, b"cancelled");
    assert_eq!(
        q.renew("run", running.fence).await.unwrap(),
        Renewal::CancelRequested
    );
    let order = q.snapshot(&["device"]).await.unwrap();
    assert_eq!(order.lines[0].1.len(), 1, "only web2's job waits");
    // Once the running job ends, web1 is forgotten (its stream too).
    q.emit("run", running.fence, b"cancelled", true, false)
        .await
        .unwrap();
    q.cancel_orphans(window, b"cancelled", 100).await.unwrap();
    let alive: Vec<String> = redis::cmd("ZRANGE")
        .arg(q.keys().instances())
        .arg(0)
        .arg(-1)
        .query_async(&mut q.connection())
        .await
        .unwrap();
    assert_eq!(alive, vec!["web2".to_owned()]);
}
