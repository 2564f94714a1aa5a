//! Issue 6 over real sockets: a client that stops reading is cut off without slowing anyone
//! else, and its chat can be resumed; request rates and connection caps answer `rate_limited`.

mod common;

use app::error_code::ErrorCode;
use app::protocol::ServerMessage;
use common::*;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// A calculator job whose answer is big (a 512 x 512 matrix, about 2.5 MB of JSON).
fn big_job(seed: u64) -> serde_json::Value {
    json!({"kind":"calc","op":"relu","a":{"fill":"random","shape":[512,512],"seed":seed}})
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_and_nobody_else_waits() {
    let server = TestServer::start(&["--ws-write-timeout", "1s"]).await;
    let session = new_session();
    // The stalled client: a chat, then answers far bigger than the socket's buffers, and it
    // never reads any of it.
    let mut stalled = server.ws_as(&session).await;
    stalled
        .send_json(submit(
            "chat",
            json!({"kind":"chat","message":"Say hello.","max_tokens":8}),
        ))
        .await;
    for i in 0..12 {
        stalled
            .send_json(submit(&format!("big{i}"), big_job(i)))
            .await;
    }
    // Meanwhile someone else's small jobs go through at once, one after another.
    let mut other = server.ws_as(&new_session()).await;
    let t = Instant::now();
    for i in 0..10 {
        other
            .send_json(submit(&format!("s{i}"), matmul_job()))
            .await;
        let end = other.until_end().await;
        assert!(
            matches!(end.last(), Some(ServerMessage::Done { .. })),
            "{end:?}"
        );
    }
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "the others waited: {:?}",
        t.elapsed()
    );

    // The server gives up on the stalled client within a few write timeouts.
    let mut cut = false;
    for _ in 0..100 {
        let text = reqwest::get(server.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("turnstile_rejections_total{reason=\"slow_client\"} 1") {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cut, "the stalled client was never disconnected");
    // Its socket is closed by the server: reading what is left ends with the close.
    let mut chat_id = None;
    while let Ok(Some(frame)) =
        tokio::time::timeout(Duration::from_secs(5), stalled.stream.next()).await
    {
        match frame {
            Ok(Message::Text(t)) => {
                if let Ok(ServerMessage::Accepted {
                    job_id, client_ref, ..
                }) = serde_json::from_str::<ServerMessage>(&t)
                {
                    if client_ref == "chat" {
                        chat_id = Some(job_id);
                    }
                }
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    // Back with the same session: the chat resumes from the start and ends.
    let chat_id = chat_id.expect("the chat was accepted before the stall");
    let mut back = server.ws_as(&session).await;
    back.send_json(json!({"type":"resume","job_id":chat_id}))
        .await;
    let replay = back.until_end().await;
    assert!(
        matches!(replay.first(), Some(ServerMessage::Accepted { seq: 0, .. })),
        "{replay:?}"
    );
    assert!(
        matches!(replay.last(), Some(ServerMessage::Done { .. })),
        "{replay:?}"
    );
    let seqs: Vec<u64> = replay.iter().filter_map(|m| m.seq()).collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "every event, in order"
    );
}

#[tokio::test]
async fn message_rates_per_connection_answer_rate_limited_with_a_retry_time() {
    let server = TestServer::start(&["--rate-per-connection", "5"]).await;
    let mut c = server.ws_as(&new_session()).await;
    for n in 0..30 {
        c.send_json(json!({"type":"ping","nonce":n})).await;
    }
    let (mut pongs, mut limited) = (0, 0);
    for _ in 0..30 {
        match c.recv().await {
            ServerMessage::Pong { .. } => pongs += 1,
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                retry_after_ms: Some(ms),
                ..
            } => {
                assert!(ms <= 1000, "{ms}");
                limited += 1
            }
            m => panic!("{m:?}"),
        }
    }
    assert!(
        (10..=12).contains(&pongs),
        "a burst of twice the rate passes: {pongs}"
    );
    assert_eq!(pongs + limited, 30);
    // The connection stays usable: after a pause, pings are answered again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.send_json(json!({"type":"ping","nonce":99})).await;
    assert_eq!(c.recv().await, ServerMessage::Pong { nonce: Some(99) });
}

#[tokio::test]
async fn http_rates_per_address_answer_429_with_retry_after() {
    let server = TestServer::start(&["--rate-per-ip", "5"]).await;
    let http = reqwest::Client::new();
    let mut statuses = vec![];
    for _ in 0..20 {
        let r = http.get(server.url("/health")).send().await.unwrap();
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(r.headers().get("retry-after").is_some());
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    assert!((10..=11).contains(&ok), "{statuses:?}");
    assert!(statuses.iter().all(|&s| s == 200 || s == 429));
}

#[tokio::test]
async fn connection_caps_refuse_the_upgrade_with_429() {
    let server = TestServer::start(&["--max-connections-per-ip", "2"]).await;
    let _a = server.ws_as(&new_session()).await;
    let _b = server.ws_as(&new_session()).await;
    let third = tokio_tungstenite::connect_async(format!(
        "ws://{}/ws?session={}",
        server.addr,
        new_session()
    ))
    .await;
    match third {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 429),
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    // Closing one makes room.
    drop(_a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = server.ws_as(&new_session()).await;
    c.stream
        .send(Message::Text(json!({"type":"ping"}).to_string().into()))
        .await
        .unwrap();
    assert_eq!(c.recv().await, ServerMessage::Pong { nonce: None });
}
