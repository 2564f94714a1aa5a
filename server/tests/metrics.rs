//! `/metrics` under load: the Prometheus names documented in docs/metrics.md are present, with
//! values that follow what happened.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn metrics_names_are_present_under_load() {
    let server = TestServer::start(&["--max-waiting", "6"]).await;
    // A chat, then eight sessions at once, each a calculator job: more than the queue holds.
    let mut chat = server.ws_as(&new_session()).await;
    chat.send_json(submit(
        "chat",
        json!({"kind":"chat","message":"Say hi.","max_tokens":4}),
    ))
    .await;
    let first = chat.recv().await;
    assert!(
        matches!(first, app::protocol::ServerMessage::Accepted { .. }),
        "{first:?}"
    );
    let mut clients = vec![];
    for i in 0..8 {
        let mut c = server.ws_as(&new_session()).await;
        c.send_json(submit(&format!("j{i}"), sleep_job(40))).await;
        clients.push(c);
    }
    // While they wait, a scrape shows them waiting.
    let during = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        during.contains("turnstile_jobs{state=\"waiting\"}"),
        "{during}"
    );
    for c in &mut clients {
        c.until_end().await;
    }
    let answer = chat.until_end().await;
    assert!(
        matches!(
            answer.last(),
            Some(app::protocol::ServerMessage::Done { .. })
        ),
        "{answer:?}"
    );

    let response = reqwest::get(server.url("/metrics")).await.unwrap();
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("openmetrics-text"));
    let text = response.text().await.unwrap();
    for name in [
        "turnstile_queue_jobs{kind=\"calc\"}",
        "turnstile_jobs{state=\"running\"}",
        "turnstile_jobs{state=\"prefetched\"}",
        "turnstile_queue_wait_seconds_bucket",
        "turnstile_job_run_seconds_count{kind=\"calc\"}",
        "turnstile_job_run_seconds_count{kind=\"chat\"} 1",
        "turnstile_chat_time_to_first_token_seconds_count 1",
        "turnstile_chat_time_per_output_token_seconds_count 1",
        "turnstile_jobs_finished_total{kind=\"calc\"}",
        "turnstile_rejections_total{reason=\"queue_full\"}",
        "turnstile_device_utilization_ratio",
        "turnstile_device_busy_seconds_total",
        "turnstile_device_open 1",
        "turnstile_model_loaded 1",
        "turnstile_model_load_seconds",
        "turnstile_websocket_connections 9",
        "turnstile_websocket_refused_total 0",
        "turnstile_cache_entries",
        "turnstile_cache_bytes",
        "turnstile_cache_hits_total",
        "turnstile_cache_misses_total",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
}
