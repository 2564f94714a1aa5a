//! The WebSocket protocol against a real server on an ephemeral port.

mod common;

use app::error_code::ErrorCode;
use app::protocol::{ClientMessage, ServerMessage};
use common::*;
use futures::SinkExt;
use serde_json::json;
use std::collections::HashSet;

#[tokio::test]
async fn a_matmul_round_trip_numbers_every_message() {
    let server = TestServer::start(&[]).await;
    let mut c = server.ws().await;
    c.send_json(submit("r1", matmul_job())).await;
    let msgs = c.until_end().await;
    let seqs: Vec<u64> = msgs
        .iter()
        .map(|m| match m {
            ServerMessage::Accepted { seq, .. }
            | ServerMessage::Position { seq, .. }
            | ServerMessage::Started { seq, .. }
            | ServerMessage::Result { seq, .. }
            | ServerMessage::Done { seq, .. } => *seq,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(seqs, (0..msgs.len() as u64).collect::<Vec<_>>());
    assert!(
        matches!(&msgs[0], ServerMessage::Accepted { client_ref, position: 1, .. } if client_ref == "r1")
    );
    let output = msgs.iter().find_map(|m| match m {
        ServerMessage::Result { output, .. } => Some(output.clone()),
        _ => None,
    });
    assert_eq!(output.unwrap().data, vec![19., 22., 43., 50.]);
}

#[tokio::test]
async fn five_concurrent_clients_all_succeed_and_someone_waited() {
    let server = TestServer::start(&[]).await;
    let mut tasks = vec![];
    for i in 0..5 {
        let mut c = server.ws().await;
        tasks.push(tokio::spawn(async move {
            c.send_json(submit(&format!("c{i}"), sleep_job(80))).await;
            c.until_end().await
        }));
    }
    let mut max_position = 0;
    let mut max_waited = 0;
    for t in tasks {
        let msgs = t.await.unwrap();
        assert!(
            matches!(msgs.last(), Some(ServerMessage::Done { .. })),
            "{msgs:?}"
        );
        for m in &msgs {
            match m {
                ServerMessage::Accepted { position, .. } => {
                    max_position = max_position.max(*position)
                }
                ServerMessage::Started { waited_ms, .. } => max_waited = max_waited.max(*waited_ms),
                _ => {}
            }
        }
    }
    assert!(max_position >= 2, "nobody queued behind anybody");
    assert!(
        max_waited >= 80,
        "the last client should wait for at least one job: {max_waited} ms"
    );
}

#[tokio::test]
async fn a_client_never_receives_another_clients_events() {
    let server = TestServer::start(&[]).await;
    let mut tasks = vec![];
    for i in 0..4 {
        let mut c = server.ws().await;
        tasks.push(tokio::spawn(async move {
            let mut mine = HashSet::new();
            for j in 0..3 {
                c.send_json(submit(&format!("c{i}-{j}"), sleep_job(15)))
                    .await;
            }
            let mut done = 0;
            while done < 3 {
                let m = c.recv().await;
                if let ServerMessage::Accepted {
                    job_id, client_ref, ..
                } = &m
                {
                    assert!(client_ref.starts_with(&format!("c{i}-")));
                    mine.insert(job_id.clone());
                }
                let id = m
                    .job_id()
                    .expect("every message here is about a job")
                    .clone();
                assert!(
                    mine.contains(&id),
                    "client {i} got an event for a job it does not own: {m:?}"
                );
                if m.is_terminal() {
                    done += 1;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn bad_frames_get_typed_errors_and_the_connection_keeps_working() {
    let server = TestServer::start(&["--max-message-bytes", "65536"]).await;
    let mut c = server.ws().await;
    let code_of = |m: ServerMessage| match m {
        ServerMessage::Error {
            code,
            client_ref,
            message,
            ..
        } => (code, client_ref, message),
        other => panic!("expected an error, got {other:?}"),
    };

    c.send_text("{not json".into()).await;
    assert_eq!(code_of(c.recv().await).0, ErrorCode::BadMessage);

    c.send_json(json!({"type":"launch"})).await;
    assert_eq!(code_of(c.recv().await).0, ErrorCode::BadMessage);

    c.send_json(submit(
        "u1",
        json!({"kind":"calc","op":"frobnicate","a":{"shape":[1],"data":[1]}}),
    ))
    .await;
    let (code, r, msg) = code_of(c.recv().await);
    assert_eq!((code, r.as_deref()), (ErrorCode::InvalidInput, Some("u1")));
    assert!(
        msg.contains("frobnicate") && msg.contains("matmul"),
        "{msg}"
    );

    c.send_json(submit(
        "s1",
        json!({"kind":"calc","op":"matmul",
        "a":{"shape":[2,3],"fill":"ones"},"b":{"shape":[2,3],"fill":"ones"}}),
    ))
    .await;
    let (code, r, msg) = code_of(c.recv().await);
    assert_eq!((code, r.as_deref()), (ErrorCode::InvalidInput, Some("s1")));
    assert!(msg.contains("last dimension (3)"), "{msg}");

    let big = format!("{{\"type\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(100_000));
    c.send_text(big).await;
    let (code, _, msg) = code_of(c.recv().await);
    assert_eq!(code, ErrorCode::BadMessage);
    assert!(msg.contains("over the limit"), "{msg}");

    c.stream
        .send(tokio_tungstenite::tungstenite::Message::Binary(
            vec![1, 2, 3].into(),
        ))
        .await
        .unwrap();
    assert_eq!(code_of(c.recv().await).0, ErrorCode::BadMessage);

    // Still usable.
    c.send(&ClientMessage::Ping { nonce: Some(9) }).await;
    assert_eq!(c.recv().await, ServerMessage::Pong { nonce: Some(9) });
    c.send_json(submit("ok", matmul_job())).await;
    assert!(matches!(
        c.until_end().await.last(),
        Some(ServerMessage::Done { .. })
    ));
}

#[tokio::test]
async fn cancel_stops_a_running_job_and_foreign_ids_are_not_found() {
    let server = TestServer::start(&[]).await;
    let mut owner = server.ws().await;
    let mut other = server.ws().await;
    owner.send_json(submit("long", sleep_job(20_000))).await;
    let ServerMessage::Accepted { job_id, .. } = owner.recv().await else {
        panic!()
    };
    assert!(matches!(owner.recv().await, ServerMessage::Started { .. }));

    // Someone else cannot cancel it, nor learn anything about it.
    other
        .send(&ClientMessage::Cancel {
            job_id: job_id.clone(),
        })
        .await;
    match other.recv().await {
        ServerMessage::Error {
            code: ErrorCode::NotFound,
            job_id: None,
            ..
        } => {}
        m => panic!("{m:?}"),
    }

    owner
        .send(&ClientMessage::Cancel {
            job_id: job_id.clone(),
        })
        .await;
    match owner.recv().await {
        ServerMessage::Error {
            code: ErrorCode::Cancelled,
            job_id: Some(id),
            ..
        } => assert_eq!(id, job_id),
        m => panic!("{m:?}"),
    }
    // The device is free again.
    owner.send_json(submit("next", matmul_job())).await;
    assert!(matches!(
        owner.until_end().await.last(),
        Some(ServerMessage::Done { .. })
    ));
}

#[tokio::test]
async fn a_disconnected_client_leaves_the_queue_and_the_others_move_up() {
    let server = TestServer::start(&[]).await;
    let mut a = server.ws().await;
    let mut b = server.ws().await;
    let mut c = server.ws().await;
    a.send_json(submit("a", sleep_job(1_500))).await;
    assert!(matches!(a.recv().await, ServerMessage::Accepted { .. }));
    b.send_json(submit("b", sleep_job(10))).await;
    assert!(matches!(
        b.recv().await,
        ServerMessage::Accepted { position: 1, .. }
    ));
    c.send_json(submit("c", sleep_job(10))).await;
    assert!(matches!(
        c.recv().await,
        ServerMessage::Accepted { position: 2, .. }
    ));
    drop(b);
    match c.recv().await {
        ServerMessage::Position { position: 1, .. } => {}
        m => panic!("expected to move up to 1, got {m:?}"),
    }
    let q = server.get_json("/queue/status").await;
    assert_eq!(q["queue_length"], 1);
}

#[tokio::test]
async fn a_full_queue_says_queue_full() {
    let server = TestServer::start(&["--max-waiting", "1"]).await;
    let mut c = server.ws().await;
    c.send_json(submit("a", sleep_job(1_000))).await;
    assert!(matches!(c.recv().await, ServerMessage::Accepted { .. }));
    assert!(matches!(c.recv().await, ServerMessage::Started { .. }));
    c.send_json(submit("b", sleep_job(10))).await;
    assert!(matches!(c.recv().await, ServerMessage::Accepted { .. }));
    c.send_json(submit("c", sleep_job(10))).await;
    match c.recv().await {
        ServerMessage::Error {
            code: ErrorCode::QueueFull,
            client_ref: Some(r),
            ..
        } => assert_eq!(r, "c"),
        m => panic!("{m:?}"),
    }
}
