//! Issue 14 over real sockets: two web instances and a device worker sharing one fair queue in
//! a real `redis-server` (started here, in a temporary directory). A client of one instance is
//! told its exact place among jobs sent through the other, moves when a job of the other
//! instance leaves the queue, and its job runs on a worker that neither instance owns.

mod common;

use app::protocol::ServerMessage;
use common::*;
use std::time::{Duration, Instant};
use turnstile_cluster::testkit::RedisServer;

/// The next message of `c` that is not `seq`-less chatter, skipping positions when asked.
async fn next_about(c: &mut Client, job: &str) -> ServerMessage {
    loop {
        let m = c.recv().await;
        if m.job_id().map(|j| j.to_string()) == Some(job.to_owned()) {
            return m;
        }
    }
}

fn accepted(m: &ServerMessage) -> (String, u64, u64) {
    match m {
        ServerMessage::Accepted {
            job_id,
            position,
            queue_length,
            ..
        } => (job_id.to_string(), *position, *queue_length),
        other => panic!("expected accepted, got {other:?}"),
    }
}

#[tokio::test]
async fn positions_fairness_and_moves_cross_instances_and_a_worker_runs_the_jobs() {
    let redis = RedisServer::start();
    let url = redis.url();
    let web1 = TestServer::start(&["--queue", &url]).await;
    let web2 = TestServer::start(&["--queue", &url]).await;

    // Party B, through instance 2, queues three jobs while no worker runs: places 1, 2, 3.
    let mut b = web2.ws_as(&new_session()).await;
    let mut b_jobs = vec![];
    for i in 0..3 {
        b.send_json(submit(&format!("b{i}"), sleep_job(150))).await;
        let (id, position, _) = accepted(&b.recv().await);
        assert_eq!(position, i + 1);
        b_jobs.push(id);
    }

    // Party A, through instance 1, arrives later: the fair order puts it right behind B's first
    // job (B's others are tagged by B's own backlog), whichever instance each came through.
    let mut a = web1.ws_as(&new_session()).await;
    a.send_json(submit("a", sleep_job(150))).await;
    let (a_id, position, queue_length) = accepted(&a.recv().await);
    assert_eq!(
        (position, queue_length),
        (2, 4),
        "A's exact place in the shared line"
    );
    let mut conn = redis_conn(&url).await;
    let order: Vec<String> = redis::cmd("ZRANGE")
        .arg("turnstile:line:device:q")
        .arg(0)
        .arg(-1)
        .query_async(&mut conn)
        .await
        .unwrap();
    let rank = order.iter().position(|m| m.ends_with(&a_id));
    assert_eq!(rank, Some(1), "the sorted set agrees");

    // B cancels its first job through instance 2; instance 1's mirror moves A to the front.
    b.send_json(serde_json::json!({"type":"cancel","job_id": b_jobs[0]}))
        .await;
    match next_about(&mut b, &b_jobs[0]).await {
        ServerMessage::Error { code, .. } => {
            assert_eq!(code, app::error_code::ErrorCode::Cancelled)
        }
        other => panic!("expected the cancel's error, got {other:?}"),
    }
    match next_about(&mut a, &a_id).await {
        ServerMessage::Position { position, .. } => assert_eq!(position, 1),
        other => panic!("expected a new position, got {other:?}"),
    }

    // A worker joins: A's job runs first, then B's two.
    let started = Instant::now();
    let _worker = TestWorker::start(&url, &[]).await;
    let mut a_msgs = vec![];
    loop {
        let m = next_about(&mut a, &a_id).await;
        let end = m.is_terminal();
        a_msgs.push(m);
        if end {
            break;
        }
    }
    assert!(
        matches!(a_msgs[0], ServerMessage::Started { .. }),
        "{a_msgs:?}"
    );
    assert!(
        matches!(a_msgs.last(), Some(ServerMessage::Done { .. })),
        "{a_msgs:?}"
    );
    let a_done = started.elapsed();
    let mut b_done = vec![];
    while b_done.len() < 2 {
        let m = b.recv().await;
        if let ServerMessage::Done { job_id, .. } = &m {
            b_done.push((job_id.to_string(), started.elapsed()));
        }
        assert!(
            !matches!(m, ServerMessage::Error { .. }),
            "B's jobs fail: {m:?}"
        );
    }
    assert_eq!(b_done[0].0, b_jobs[1]);
    assert_eq!(b_done[1].0, b_jobs[2]);
    assert!(a_done < b_done[0].1, "A ran before B's second job");
    assert!(b_done[1].1 < Duration::from_secs(20));
    // Each instance counts the requests it served (B's cancelled job never reached a device).
    let served = |v: serde_json::Value| v["total_requests"].as_u64().unwrap();
    assert_eq!(served(web1.get_json("/api/device/queue").await), 1);
    assert_eq!(served(web2.get_json("/api/device/queue").await), 2);
}

#[tokio::test]
async fn a_job_nobody_runs_ends_at_max_wait_and_leaves_the_shared_line() {
    let redis = RedisServer::start();
    let url = redis.url();
    // No worker at all: the job can only wait.
    let web = TestServer::start(&["--queue", &url, "--max-wait", "300ms"]).await;
    let mut c = web.ws_as(&new_session()).await;
    c.send_json(submit("lonely", sleep_job(10))).await;
    let (id, _, _) = accepted(&c.recv().await);
    let t = Instant::now();
    match next_about(&mut c, &id).await {
        ServerMessage::Error { code, .. } => assert_eq!(code, app::error_code::ErrorCode::Timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    let mut conn = redis_conn(&url).await;
    // The cancel reaches Redis right after the client heard the timeout.
    let mut left = 1;
    for _ in 0..50 {
        left = redis::cmd("ZCARD")
            .arg("turnstile:line:device:q")
            .query_async(&mut conn)
            .await
            .unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0, "the job left the shared line");
}

#[tokio::test]
async fn a_client_sees_its_exact_place_fall_as_another_instances_jobs_run_on_two_workers() {
    let redis = RedisServer::start();
    let url = redis.url();
    let web1 = TestServer::start(&["--queue", &url]).await;
    let web2 = TestServer::start(&["--queue", &url]).await;
    // Four parties, one job each, through instance 2; then A through instance 1: place 5.
    let mut others = vec![];
    for i in 0..4u64 {
        let mut b = web2.ws_as(&new_session()).await;
        b.send_json(submit(&format!("b{i}"), sleep_job(500))).await;
        assert_eq!(accepted(&b.recv().await).1, i + 1);
        others.push(b);
    }
    let mut a = web1.ws_as(&new_session()).await;
    a.send_json(submit("a", sleep_job(50))).await;
    let (a_id, position, _) = accepted(&a.recv().await);
    assert_eq!(position, 5);

    // Two workers take the first two; A is told 3, then 1 when the next two are taken.
    let _w1 = TestWorker::start(&url, &[]).await;
    let _w2 = TestWorker::start(&url, &[]).await;
    let mut told = vec![position];
    loop {
        match next_about(&mut a, &a_id).await {
            ServerMessage::Position { position, .. } => told.push(position),
            ServerMessage::Started { .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        told.windows(2).all(|w| w[1] < w[0]),
        "A's place only falls: {told:?}"
    );
    assert_eq!(*told.last().unwrap(), 1, "{told:?}");
    assert!(
        told.contains(&3),
        "the two workers took two jobs at once: {told:?}"
    );
    assert!(matches!(
        next_about(&mut a, &a_id).await,
        ServerMessage::Result { .. }
    ));
    for b in &mut others {
        while !b.recv().await.is_terminal() {}
    }
}

#[tokio::test]
async fn a_refusal_comes_at_once_for_the_submission_as_in_one_process() {
    let redis = RedisServer::start();
    let url = redis.url();
    let web = TestServer::start(&["--queue", &url, "--max-waiting-per-session", "1"]).await;
    let mut c = web.ws_as(&new_session()).await;
    c.send_json(submit("first", sleep_job(10))).await;
    accepted(&c.recv().await);
    c.send_json(submit("second", sleep_job(10))).await;
    match c.recv().await {
        ServerMessage::Error {
            job_id: None,
            client_ref: Some(r),
            code,
            ..
        } => {
            assert_eq!(r, "second");
            assert_eq!(code, app::error_code::ErrorCode::RateLimited);
        }
        other => panic!("expected the submission's refusal, got {other:?}"),
    }
}
