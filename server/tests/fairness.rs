//! Issue 5 over real sockets: the fair order across sessions, the per-session cap, the result
//! cache, and the device's utilization in the stats.

mod common;

use app::error_code::ErrorCode;
use app::protocol::ServerMessage;
use common::*;
use serde_json::json;

/// A session that floods the queue, then a newcomer: where the newcomer is placed.
async fn newcomer_position(flags: &[&str]) -> u64 {
    let server = TestServer::start(flags).await;
    // Each person is a session of their own (anonymous sockets share one party per address).
    let mut flood = server.ws_as(&new_session()).await;
    for i in 0..20 {
        flood
            .send_json(submit(&format!("f{i}"), sleep_job(200)))
            .await;
    }
    // Wait until all twenty are queued (their accepted messages) and the first has started.
    let mut accepted = 0;
    let mut started = false;
    while accepted < 20 || !started {
        match flood.recv().await {
            ServerMessage::Accepted { .. } => accepted += 1,
            ServerMessage::Started { .. } => started = true,
            _ => {}
        }
    }
    let mut newcomer = server.ws_as(&new_session()).await;
    newcomer
        .send_json(submit("n", json!({"kind":"calc","op":"sleep","ms":1})))
        .await;
    match newcomer.recv().await {
        ServerMessage::Accepted { position, .. } => position,
        m => panic!("expected accepted, got {m:?}"),
    }
}

#[tokio::test]
async fn a_flooding_session_delays_only_its_own_jobs() {
    // Fair (the default): behind the prefetched flood job and at most one more of the flood's.
    let fair = newcomer_position(&["--max-waiting-per-session", "100"]).await;
    assert!(fair <= 3, "the newcomer was placed at {fair}");
    // FIFO: behind all nineteen waiting.
    let fifo =
        newcomer_position(&["--max-waiting-per-session", "100", "--queue-order", "fifo"]).await;
    assert_eq!(fifo, 20);
}

#[tokio::test]
async fn a_session_over_its_cap_is_rate_limited_with_a_retry_time() {
    let server = TestServer::start(&["--max-waiting-per-session", "2"]).await;
    let mut c = server.ws_as(&new_session()).await;
    c.send_json(submit("run", sleep_job(1_000))).await;
    while !matches!(c.recv().await, ServerMessage::Started { .. }) {}
    // Two waiting (the first of them handed to the device ahead of its turn) fill the cap.
    c.send_json(submit("w1", sleep_job(10))).await;
    c.send_json(submit("w2", sleep_job(10))).await;
    c.send_json(submit("over", sleep_job(10))).await;
    loop {
        match c.recv().await {
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                client_ref: Some(r),
                retry_after_ms: Some(ms),
                ..
            } => {
                assert_eq!(r, "over");
                assert!(ms >= 1000, "{ms}");
                break;
            }
            ServerMessage::Error { code, .. } => panic!("unexpected {code}"),
            _ => {}
        }
    }
    // Another session is not affected.
    let mut other = server.ws_as(&new_session()).await;
    other.send_json(submit("x", sleep_job(10))).await;
    assert!(matches!(other.recv().await, ServerMessage::Accepted { .. }));

    // Over HTTP: an anonymous client shares by address. One job runs, two wait: the fourth is
    // refused with 429 and a Retry-After.
    let server = TestServer::start(&["--max-waiting-per-session", "2"]).await;
    let http = reqwest::Client::new();
    let post = |ms: u64| {
        http.post(server.url("/api/execute"))
            .json(&json!({"op":"sleep","ms":ms}))
            .send()
    };
    let running = post(900);
    let running = tokio::spawn(async move { running.await.unwrap().status() });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (w1, w2) = (post(10), post(10));
    let w1 = tokio::spawn(async move { w1.await.unwrap().status() });
    let w2 = tokio::spawn(async move { w2.await.unwrap().status() });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let r = post(10).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(running.await.unwrap(), 200);
    assert_eq!(
        (w1.await.unwrap().as_u16(), w2.await.unwrap().as_u16()),
        (200, 200)
    );
}

#[tokio::test]
async fn identical_jobs_are_answered_from_the_cache_without_the_device() {
    let server = TestServer::start(&[]).await;
    let job = json!({"op":"matmul","a":{"fill":"random","shape":[8,8],"seed":3},
                     "b":{"fill":"random","shape":[8,8],"seed":4}});
    let http = reqwest::Client::new();
    let first: serde_json::Value = http
        .post(server.url("/api/execute"))
        .json(&job)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first.get("cached"), None, "the first one is computed");
    let second: serde_json::Value = http
        .post(server.url("/api/execute"))
        .json(&job)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["cached"], true);
    assert_eq!(second["result"], first["result"]);

    // Over the WebSocket: accepted at position 0, the cached result, done.
    let mut c = server.ws().await;
    let mut ws_job = job.clone();
    ws_job["kind"] = json!("calc");
    c.send_json(submit("c", ws_job)).await;
    let msgs = c.until_end().await;
    assert!(matches!(
        msgs[0],
        ServerMessage::Accepted { position: 0, .. }
    ));
    match &msgs[1] {
        ServerMessage::Result { cached, output, .. } => {
            assert!(cached);
            let computed: app::tensor::Tensor =
                serde_json::from_value(first["result"].clone()).unwrap();
            assert_eq!(output, &computed);
        }
        m => panic!("{m:?}"),
    }
    assert!(matches!(msgs[2], ServerMessage::Done { .. }));

    let stats = server.get_json("/api/stats").await;
    assert_eq!(stats["cache"]["hits"], 2);
    assert_eq!(stats["cache"]["misses"], 1);
    assert_eq!(stats["cache"]["size"], 1);
    assert_eq!(
        stats["performance"]["total_requests"], 1,
        "only one job took the device"
    );
}

#[tokio::test]
async fn the_device_reports_its_busy_time_and_utilization() {
    let server = TestServer::start(&[]).await;
    let mut c = server.ws().await;
    c.send_json(submit("a", sleep_job(300))).await;
    c.until_end().await;
    let stats = server.get_json("/api/stats").await;
    let busy = stats["device"]["busy_seconds_total"].as_f64().unwrap();
    assert!((0.29..5.0).contains(&busy), "{busy}");
    let util = stats["device"]["utilization"].as_f64().unwrap();
    assert!(util > 0.0 && util <= 1.0, "{util}");
    assert_eq!(stats["queue"]["order"], "fair");
}
