//! Issue 6, faults: each one is injected through the test-only hook (`POST /test/faults`, which
//! exists only with `--test-mode`) or a scripted model server; in every case only the jobs it
//! hits get a typed error, the device is released, the next job runs, and `/health` says
//! `degraded` with the reason until a later success.

mod common;

use app::error_code::ErrorCode;
use app::protocol::ServerMessage;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use common::*;
use futures::StreamExt;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn arm(server: &TestServer, faults: serde_json::Value) {
    let r = reqwest::Client::new()
        .post(server.url("/test/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

/// One job over a fresh socket, to its end.
async fn run(server: &TestServer, job: serde_json::Value) -> Vec<ServerMessage> {
    let mut c = server.ws_as(&new_session()).await;
    c.send_json(submit("j", job)).await;
    c.until_end().await
}

fn code(msgs: &[ServerMessage]) -> Option<ErrorCode> {
    match msgs.last() {
        Some(ServerMessage::Error { code, .. }) => Some(*code),
        _ => None,
    }
}

async fn health(server: &TestServer, subsystem: &str) -> (String, String, String) {
    let h = server.get_json("/health").await;
    (
        h["status"].as_str().unwrap().to_owned(),
        h["subsystems"][subsystem]["status"]
            .as_str()
            .unwrap()
            .to_owned(),
        h["subsystems"][subsystem]["detail"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

#[tokio::test]
async fn device_faults_fail_only_their_job_and_health_recovers() {
    let server = TestServer::start(&[]).await;
    // Waiting behind the faulty job: a second one, which must run normally.
    for (fault, reason) in [
        (json!({"device_open": 1}), "failed to open"),
        (json!({"job_panic": 1}), "crashed"),
        (json!({"device_fail": 1}), "failed during a job"),
    ] {
        arm(&server, fault).await;
        let mut a = server.ws_as(&new_session()).await;
        let mut b = server.ws_as(&new_session()).await;
        a.send_json(submit("a", matmul_job())).await;
        b.send_json(submit("b", sleep_job(20))).await;
        let failed = a.until_end().await;
        assert_eq!(code(&failed), Some(ErrorCode::DeviceError), "{failed:?}");
        let msg = match failed.last() {
            Some(ServerMessage::Error { message, .. }) => message.clone(),
            _ => unreachable!(),
        };
        assert!(
            !msg.contains("injected") && !msg.contains("panic"),
            "internals leaked: {msg}"
        );
        // The device was released: the next job runs.
        let next = b.until_end().await;
        assert!(
            matches!(next.last(), Some(ServerMessage::Done { .. })),
            "{next:?}"
        );
        // Degraded until a job succeeds; the one above did, so it has recovered.
        let (status, device, _) = health(&server, "device").await;
        assert_eq!(
            (status.as_str(), device.as_str()),
            ("healthy", "ok"),
            "after {reason}"
        );

        // Seen from /health while degraded: fault a job with nothing behind it.
        arm(&server, json!({"device_fail": 1})).await;
        assert_eq!(
            code(&run(&server, matmul_job()).await),
            Some(ErrorCode::DeviceError)
        );
        let (status, device, detail) = health(&server, "device").await;
        assert_eq!((status.as_str(), device.as_str()), ("degraded", "degraded"));
        assert!(detail.contains("failed during a job"), "{detail}");
        let ok = run(&server, sleep_job(5)).await;
        assert!(matches!(ok.last(), Some(ServerMessage::Done { .. })));
        assert_eq!(health(&server, "device").await.1, "ok");
    }
}

#[tokio::test]
async fn a_model_that_fails_or_stalls_to_load_fails_its_waiters_and_the_next_retries() {
    // Long enough for a real load on a busy machine, shorter than the stall below.
    let server = TestServer::start(&["--model-load-timeout", "3s"]).await;
    let chat = json!({"kind":"chat","message":"Say hi.","max_tokens":4});
    arm(&server, json!({"model_load_fail": 1})).await;
    let failed = run(&server, chat.clone()).await;
    assert_eq!(
        code(&failed),
        Some(ErrorCode::ModelUnavailable),
        "{failed:?}"
    );
    let (status, model, detail) = health(&server, "model").await;
    assert_eq!((status.as_str(), model.as_str()), ("degraded", "degraded"));
    assert!(detail.contains("load"), "{detail}");
    // A stall past the load timeout.
    arm(&server, json!({"model_load_stall_ms": 6000})).await;
    let stalled = run(&server, chat.clone()).await;
    assert_eq!(
        code(&stalled),
        Some(ErrorCode::ModelUnavailable),
        "{stalled:?}"
    );
    // The next request loads it for real; health recovers.
    let answered = run(&server, chat).await;
    assert!(
        matches!(answered.last(), Some(ServerMessage::Done { .. })),
        "{answered:?}"
    );
    assert_eq!(health(&server, "model").await.1, "ok");
    assert_eq!(health(&server, "device").await.1, "ok");
}

#[tokio::test]
async fn the_fault_hook_exists_only_in_test_mode() {
    let arm = |server: &TestServer| {
        reqwest::Client::new()
            .post(server.url("/test/faults"))
            .json(&json!({"job_panic": 1}))
            .send()
    };
    let test = TestServer::start(&[]).await;
    assert_eq!(arm(&test).await.unwrap().status(), 204);
    let production = TestServer::start(&["--no-test-mode"]).await;
    assert_eq!(arm(&production).await.unwrap().status(), 404);
    // And a job there is untouched by anything armed elsewhere.
    let ok = run(&production, matmul_job()).await;
    assert!(
        matches!(ok.last(), Some(ServerMessage::Done { .. })),
        "{ok:?}"
    );
}

/// A model server that answers its requests from a script, in turn: `refuse` (HTTP 500),
/// `drop` (one token, then the connection closes mid-answer), `stall` (one token, then
/// nothing for a second), `ok` (a whole answer).
async fn scripted_upstream(script: Vec<&'static str>) -> String {
    let script = Arc::new(script);
    let turn = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/api/chat",
        post(move || {
            let (script, turn) = (Arc::clone(&script), Arc::clone(&turn));
            async move {
                let i = turn.fetch_add(1, Ordering::SeqCst);
                let step = script.get(i).copied().unwrap_or("ok");
                let token = |t: &str| {
                    json!({"message":{"role":"assistant","content":t},"done":false}).to_string()
                        + "\n"
                };
                let done = json!({"message":{"role":"assistant","content":""},"done":true,
                                  "prompt_eval_count":3,"eval_count":2})
                .to_string()
                    + "\n";
                let parts: Vec<(String, u64)> = match step {
                    "refuse" => {
                        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no")
                            .into_response()
                    }
                    "drop" => vec![(token("Hel"), 0)],
                    "stall" => vec![(token("Hel"), 0), (token("lo"), 1000), (done, 0)],
                    _ => vec![(token("Hel"), 0), (token("lo"), 0), (done, 0)],
                };
                let stream = futures::stream::iter(parts).then(|(p, wait)| async move {
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                    Ok::<_, std::io::Error>(p)
                });
                axum::body::Body::from_stream(stream).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn an_upstream_that_refuses_stalls_or_drops_fails_only_that_answer() {
    let url = scripted_upstream(vec!["refuse", "drop", "stall", "ok"]).await;
    let server = TestServer::start(&[
        "--chat-backend",
        "ollama",
        "--upstream-url",
        &url,
        "--upstream-model",
        "m",
        "--upstream-timeout",
        "300ms",
    ])
    .await;
    let chat = json!({"kind":"chat","message":"hi"});
    for expected in [
        ErrorCode::ModelUnavailable,
        ErrorCode::ModelUnavailable,
        ErrorCode::Timeout,
    ] {
        let msgs = run(&server, chat.clone()).await;
        assert_eq!(code(&msgs), Some(expected), "{msgs:?}");
        let (status, model, _) = health(&server, "model").await;
        assert_eq!((status.as_str(), model.as_str()), ("degraded", "degraded"));
    }
    // The next answer goes through whole, and the model is healthy again.
    let msgs = run(&server, chat).await;
    assert!(
        matches!(msgs.last(), Some(ServerMessage::Done { .. })),
        "{msgs:?}"
    );
    assert_eq!(health(&server, "model").await.1, "ok");
}
