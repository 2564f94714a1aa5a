//! The HTTP API against a real server on an ephemeral port.

mod common;

use common::*;
use serde_json::{json, Value};

async fn execute(server: &TestServer, body: Value) -> (u16, Option<String>, Value) {
    let r = reqwest::Client::new()
        .post(server.url("/api/execute"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.json().await.unwrap())
}

#[tokio::test]
async fn ten_requests_in_a_row_are_counted() {
    let server = TestServer::start(&[]).await;
    for i in 0..10 {
        let (status, _, body) = execute(
            &server,
            json!({"op":"add","a":{"shape":[2],"data":[1,2]},"b":{"shape":[2],"data":[i,i]}}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["success"], true);
        assert_eq!(
            body["result"],
            json!({"shape":[2],"data":[1.0 + i as f64, 2.0 + i as f64]})
        );
        assert!(body["request_id"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(body["compute_ms"].is_number() && body["waited_ms"].is_number());
    }
    let q = server.get_json("/api/device/queue").await;
    assert_eq!(q["total_requests"], 10);
    assert_eq!(q["cache_hits"], 0, "ten different jobs");
    assert_eq!(q["currently_waiting"], 0);
    assert!(q["max_wait_time_seconds"].is_number());
    let stats = server.get_json("/api/stats").await;
    assert_eq!(stats["performance"]["total_requests"], 10);
    assert!(
        stats["performance"]["requests_per_second"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(stats["performance"]["p99_response_time"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn cached_answers_count_as_requests_served_and_as_hits() {
    let server = TestServer::start(&[]).await;
    let job = json!({"op":"matmul","a":{"shape":[2,2],"data":[1,2,3,4]},"b":{"shape":[2,2],"data":[5,6,7,8]}});
    let mut cached = 0;
    for _ in 0..10 {
        let (status, _, body) = execute(&server, job.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["result"]["data"], json!([19.0, 22.0, 43.0, 50.0]));
        cached += u64::from(body["cached"] == true);
    }
    assert_eq!(
        cached, 9,
        "the first is computed, the other nine come from the cache"
    );
    let q = server.get_json("/api/device/queue").await;
    assert_eq!(
        (&q["total_requests"], &q["cache_hits"]),
        (&json!(10), &json!(9)),
        "ten identical requests count ten, nine of them hits: {q}"
    );
    // The same hits as /api/stats reports; the device's own counters saw one job.
    let stats = server.get_json("/api/stats").await;
    assert_eq!(stats["cache"]["hits"], 9);
    assert_eq!(stats["performance"]["total_requests"], 1);
    assert_eq!(server.get_json("/queue/status").await["total_processed"], 1);
    // A different job is computed and counted once more, not as a hit.
    let (status, _, body) =
        execute(&server, json!({"op":"sum","a":{"shape":[2],"data":[1,2]}})).await;
    assert_eq!(status, 200, "{body}");
    let q = server.get_json("/api/device/queue").await;
    assert_eq!(
        (&q["total_requests"], &q["cache_hits"]),
        (&json!(11), &json!(9))
    );
}

#[tokio::test]
async fn errors_have_real_status_codes_and_typed_bodies() {
    let server = TestServer::start(&["--max-waiting", "1"]).await;
    let r = reqwest::Client::new()
        .post(server.url("/api/execute"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["error"]["code"], "bad_message");

    let (status, _, body) = execute(&server, json!({"op":"nope"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_input"))
    );

    let (status, _, body) = execute(
        &server,
        json!({"op":"add","a":{"shape":[2],"data":[1,2]},"b":{"shape":[3],"data":[1,2,3]}}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_input"))
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("broadcast"));

    // One job runs, one waits, the third is refused with 429 and Retry-After.
    let s = std::sync::Arc::new(server);
    let running = tokio::spawn({
        let s = s.clone();
        async move { execute(&s, json!({"op":"sleep","ms":800})).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let waiting = tokio::spawn({
        let s = s.clone();
        async move { execute(&s, json!({"op":"sleep","ms":10})).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let (status, retry, body) = execute(&s, json!({"op":"sleep","ms":10})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("queue_full"))
    );
    assert!(retry.is_some(), "429 without Retry-After");
    assert_eq!(running.await.unwrap().0, 200);
    assert_eq!(waiting.await.unwrap().0, 200);
}

#[tokio::test]
async fn sleep_exists_only_in_test_mode() {
    // A server started without --test-mode.
    let config = <turnstile_server::config::Config as clap::Parser>::parse_from(["turnstile"]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(turnstile_server::run(
        listener,
        config,
        std::future::pending(),
    ));
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/execute"))
        .json(&json!({"op":"sleep","ms":10}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_input");
}

#[tokio::test]
async fn queue_status_lists_jobs_without_ids_or_content() {
    let server = TestServer::start(&[]).await;
    let mut a = server.ws().await;
    let mut b = server.ws().await;
    a.send_json(submit("a", sleep_job(600))).await;
    let app::protocol::ServerMessage::Accepted { job_id: ja, .. } = a.recv().await else {
        panic!()
    };
    b.send_json(submit("b", sleep_job(10))).await;
    let app::protocol::ServerMessage::Accepted { job_id: jb, .. } = b.recv().await else {
        panic!()
    };
    let raw = reqwest::get(server.url("/queue/status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !raw.contains(&ja.0) && !raw.contains(&jb.0),
        "job ids leaked: {raw}"
    );
    assert!(!raw.contains("sleep"), "job content leaked: {raw}");
    let q: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(q["queue_length"], 1);
    assert_eq!(q["active_requests"], 1);
    assert_eq!(q["max_concurrent"], 1);
    assert_eq!(q["queue_items"][0]["status"], "running");
    assert_eq!(q["queue_items"][1]["position"], 1);
    assert_eq!(q["queue_items"][1]["kind"], "calc");
    assert!(q["queue_items"][1]["enqueued_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
}

#[tokio::test]
async fn health_and_pages() {
    let server = TestServer::start(&[]).await;
    let h = server.get_json("/health").await;
    assert_eq!(h["status"], "healthy");
    for s in ["scheduler", "device", "websocket"] {
        assert_eq!(h["subsystems"][s]["status"], "ok", "{h}");
    }
    let r = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    let html = r.text().await.unwrap();
    assert!(html.contains("/pkg/turnstile.js"), "no hydration script");
    assert!(
        html.contains("<select"),
        "the calculator form is not server-rendered"
    );
}

#[tokio::test]
async fn admin_views_need_the_token_when_one_is_set() {
    let server = TestServer::start(&["--admin-token", "s3cret", "--protect-metrics"]).await;
    // A job waits behind a running one, so the detail has something to show.
    let mut c = server.ws_as(&new_session()).await;
    c.send_json(submit("a", sleep_job(500))).await;
    c.send_json(submit("b", sleep_job(10))).await;
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let http = reqwest::Client::new();
    let public: serde_json::Value = http
        .get(server.url("/queue/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        public["queue_items"],
        serde_json::json!([]),
        "no job-level detail"
    );
    assert!(
        public["queue_length"].as_u64().unwrap() + public["active_requests"].as_u64().unwrap() >= 1
    );
    let admin: serde_json::Value = http
        .get(server.url("/queue/status"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!admin["queue_items"].as_array().unwrap().is_empty());
    let metrics = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 403);
    let body: serde_json::Value = metrics.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    let wrong = http
        .get(server.url("/metrics"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 403);
    let ok = http
        .get(server.url("/metrics"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}
