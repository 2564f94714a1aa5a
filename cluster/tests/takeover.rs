//! Resuming through another instance, against a real `redis-server`: copies of wire messages are
//! taken only from a job's owner, a take-over checks the session (another session's job is as
//! unknown as none), moves the job with its copies in one step, tells the old owner, refuses a
//! trimmed history, and a cancel from the old owner no longer touches the job.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use turnstile_cluster::testkit::RedisServer;
use turnstile_cluster::{
    follow, CancelOutcome, Followed, NewJob, QueueConfig, SharedQueue, Takeover, WireEntry,
};

fn copy(job: &str, seq: u64, q: u64) -> WireEntry {
    WireEntry {
        job: job.to_owned(),
        seq,
        q,
        message: Arc::from(format!("m{seq}")),
    }
}

#[tokio::test]
async fn a_take_over_moves_a_job_with_its_copies_for_its_own_session_only() {
    let redis = RedisServer::start();
    let q = SharedQueue::connect(&redis.url(), QueueConfig::default())
        .await
        .unwrap();
    let job = NewJob {
        id: "chat",
        line: "lane",
        party: "p1",
        weight: 1,
        cost_us: 1000,
        owner: "web1",
        payload: b"job",
        session: "s1",
        meta: b"{}",
    };
    q.enqueue(job).await.unwrap().unwrap();
    let calc = NewJob {
        id: "calc",
        session: "",
        meta: b"",
        ..job
    };
    q.enqueue(calc).await.unwrap().unwrap();
    let claimed = q.claim("lane", "w1").await.unwrap().unwrap();
    q.emit("chat", claimed.fence, b"started", false, false)
        .await
        .unwrap();
    // web1 copies seq 0..=2 (2 is replaced once); web2's copy is dropped (not the owner).
    let copies = [copy("chat", 0, 0), copy("chat", 1, 0), copy("chat", 2, 1)];
    assert_eq!(q.copy_wire("web1", &copies).await.unwrap(), 3);
    assert_eq!(q.copy_wire("web2", &[copy("chat", 3, 1)]).await.unwrap(), 0);
    assert_eq!(q.copy_wire("web1", &[copy("chat", 2, 1)]).await.unwrap(), 1);

    let stop = CancellationToken::new();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let streams = vec![q.keys().instance("web1")];
    let follower = follow(q.client(), streams, tx, stop.clone()).await.unwrap();

    for (id, session) in [("chat", "s2"), ("calc", ""), ("calc", "s1"), ("none", "s1")] {
        assert_eq!(
            q.take_over(id, "web2", session, 0).await.unwrap(),
            Takeover::Unknown,
            "{id} for {session:?}"
        );
    }
    assert_eq!(
        q.take_over("chat", "web1", "s1", 0).await.unwrap(),
        Takeover::Mine
    );
    let Takeover::Moved(moved) = q.take_over("chat", "web2", "s1", 2).await.unwrap() else {
        panic!("expected a move");
    };
    assert_eq!(
        (moved.state.as_str(), moved.meta.as_slice(), moved.moves),
        ("running", b"{}".as_slice(), 1)
    );
    assert_eq!((moved.next_seq, moved.last_q), (3, 1));
    assert_eq!(
        moved.messages,
        vec![(2, 1, "m2".to_owned()), (2, 1, "m2".to_owned())]
    );
    // The old owner is told, and its copies and cancels no longer count; the new owner's do.
    let Some(Followed::Entry { fields, .. }) =
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
    else {
        panic!("the follower stopped")
    };
    assert_eq!(turnstile_cluster::follow::number(&fields, "moved"), Some(1));
    assert_eq!(q.copy_wire("web1", &[copy("chat", 3, 2)]).await.unwrap(), 0);
    assert_eq!(q.copy_wire("web2", &[copy("chat", 3, 2)]).await.unwrap(), 1);
    assert_eq!(
        q.cancel_owned("chat", b"cancelled", "web1").await.unwrap(),
        CancelOutcome::Moved
    );
    assert_eq!(
        q.take_over("chat", "web2", "s1", 0).await.unwrap(),
        Takeover::Mine
    );

    // A history trimmed before the asked seq is refused, and the job does not move.
    let mut conn = q.connection();
    let _: () = redis::cmd("XTRIM")
        .arg(q.keys().wire("chat"))
        .arg("MAXLEN")
        .arg(1)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        q.take_over("chat", "web1", "s1", 1).await.unwrap(),
        Takeover::Gone { first: 3 }
    );
    assert_eq!(
        q.take_over("chat", "web2", "s1", 0).await.unwrap(),
        Takeover::Mine
    );
    assert_eq!(
        q.cancel_owned("chat", b"cancelled", "web2").await.unwrap(),
        CancelOutcome::Signalled
    );
    stop.cancel();
    follower.await.unwrap();
}
