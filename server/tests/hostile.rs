//! Issue 6, bad input: a corpus of hostile inputs sent over every interface (the WebSocket,
//! `POST /api/execute`, `POST /v1/chat/completions`, `POST /chat/stream`, the conversation
//! routes), each answered with its documented error code; afterwards the server is healthy and
//! serves a normal job. Nothing here may crash it, hang it or leak another session's data.

mod common;

use app::error_code::ErrorCode;
use app::protocol::ServerMessage;
use common::*;
use futures::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// `[[[...]]]` nested `depth` deep.
fn nested(depth: usize) -> String {
    "[".repeat(depth) + &"]".repeat(depth)
}

/// Hostile WebSocket text frames and the code each must get.
fn ws_corpus() -> Vec<(&'static str, String, ErrorCode)> {
    let tensor = |data: &str| {
        format!(
            r#"{{"type":"submit","client_ref":"r","job":{{"kind":"calc","op":"add","a":{{"shape":[2],"data":{data}}},"b":{{"shape":[2],"data":[1,2]}}}}}}"#
        )
    };
    vec![
        ("not JSON", "hello".into(), ErrorCode::BadMessage),
        ("empty", "".into(), ErrorCode::BadMessage),
        ("a JSON string", r#""submit""#.into(), ErrorCode::BadMessage),
        ("an array", "[1,2,3]".into(), ErrorCode::BadMessage),
        ("null", "null".into(), ErrorCode::BadMessage),
        ("deep nesting", nested(100_000), ErrorCode::BadMessage),
        ("deep nesting in a job", format!(r#"{{"type":"submit","client_ref":"r","job":{}}}"#, nested(5000)), ErrorCode::BadMessage),
        ("unknown type", r#"{"type":"rm -rf"}"#.into(), ErrorCode::BadMessage),
        ("type of the wrong type", r#"{"type":7}"#.into(), ErrorCode::BadMessage),
        ("huge number", tensor("[1e400, 1]"), ErrorCode::BadMessage),
        ("huge integer shape", r#"{"type":"submit","client_ref":"r","job":{"kind":"calc","op":"sum","a":{"fill":"ones","shape":[18446744073709551615]}}}"#.into(), ErrorCode::InvalidInput),
        ("shape product overflows", r#"{"type":"submit","client_ref":"r","job":{"kind":"calc","op":"sum","a":{"fill":"ones","shape":[4294967296,4294967296,4294967296]}}}"#.into(), ErrorCode::InvalidInput),
        ("NaN as a bare word", tensor("[NaN, 1]"), ErrorCode::BadMessage),
        ("an unknown non-finite string", tensor(r#"["nan", 1]"#), ErrorCode::InvalidInput),
        ("data of the wrong type", tensor(r#"{"a":1}"#), ErrorCode::InvalidInput),
        ("too few values", tensor("[1]"), ErrorCode::InvalidInput),
        ("a lone surrogate", r#"{"type":"ping","nonce":"\ud800"}"#.into(), ErrorCode::BadMessage),
        ("unknown op", r#"{"type":"submit","client_ref":"r","job":{"kind":"calc","op":"fork_bomb"}}"#.into(), ErrorCode::InvalidInput),
        ("unknown job kind", r#"{"type":"submit","client_ref":"r","job":{"kind":"shell"}}"#.into(), ErrorCode::InvalidInput),
        ("an empty chat", r#"{"type":"submit","client_ref":"r","job":{"kind":"chat","message":"   "}}"#.into(), ErrorCode::InvalidInput),
        ("a chat over the length limit", format!(r#"{{"type":"submit","client_ref":"r","job":{{"kind":"chat","message":"{}"}}}}"#, "a".repeat(200_000)), ErrorCode::InvalidInput),
        ("max_tokens of the wrong type", r#"{"type":"submit","client_ref":"r","job":{"kind":"chat","message":"hi","max_tokens":-1}}"#.into(), ErrorCode::InvalidInput),
        ("another session's conversation", r#"{"type":"submit","client_ref":"r","job":{"kind":"chat","message":"hi","conversation_id":"0123456789abcdef0123456789abcdef"}}"#.into(), ErrorCode::NotFound),
        ("cancel of a job that is not ours", r#"{"type":"cancel","job_id":"0123456789abcdef0123456789abcdef"}"#.into(), ErrorCode::NotFound),
        ("resume of a job that is not ours", r#"{"type":"resume","job_id":"0123456789abcdef0123456789abcdef"}"#.into(), ErrorCode::NotFound),
        ("a 10 MB frame", "x".repeat(10 << 20), ErrorCode::BadMessage),
        ("control characters", "\u{0}\u{1}\u{7f}".into(), ErrorCode::BadMessage),
    ]
}

#[tokio::test]
async fn hostile_websocket_frames_get_their_codes_and_the_connection_survives() {
    let server = TestServer::start(&[
        "--rate-per-connection",
        "0",
        "--rate-per-session",
        "0",
        "--rate-per-ip",
        "0",
    ])
    .await;
    let mut c = server.ws_as(&new_session()).await;
    for (what, frame, expected) in ws_corpus() {
        c.send_text(frame).await;
        match c.recv().await {
            ServerMessage::Error { code, message, .. } => {
                assert_eq!(code, expected, "{what}: {message}");
                assert!(message.len() < 2000, "{what}: the answer echoes the input");
                assert!(
                    !message.to_lowercase().contains("panic"),
                    "{what}: {message}"
                );
            }
            m => panic!("{what}: expected {expected}, got {m:?}"),
        }
    }
    // Binary frames are refused with a code, and the connection still works.
    c.stream
        .send(Message::Binary(vec![0u8, 159, 146, 150].into()))
        .await
        .unwrap();
    assert!(matches!(
        c.recv().await,
        ServerMessage::Error {
            code: ErrorCode::BadMessage,
            ..
        }
    ));
    // Unknown fields in a known message are ignored (documented): this ping is answered.
    c.send_json(json!({"type":"ping","nonce":5,"extra":{"x":1}}))
        .await;
    assert_eq!(c.recv().await, ServerMessage::Pong { nonce: Some(5) });
    c.send_json(submit("ok", matmul_job())).await;
    assert!(matches!(
        c.until_end().await.last(),
        Some(ServerMessage::Done { .. })
    ));
    let health = server.get_json("/health").await;
    assert_eq!(health["status"], "healthy", "{health}");
}

#[tokio::test]
async fn hostile_http_bodies_get_their_codes_and_the_server_stays_healthy() {
    let server = TestServer::start(&["--rate-per-ip", "0", "--rate-per-session", "0"]).await;
    let http = reqwest::Client::new();
    let deep = nested(100_000);
    let huge = format!(
        r#"{{"op":"add","a":{{"shape":[2],"data":[1,2]}},"b":{{"shape":[2],"data":[1,{}]}}}}"#,
        "9".repeat(500)
    );
    let big = "{".to_string() + &" ".repeat(20 << 20) + "}";
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        (
            "/api/execute",
            "not JSON",
            "hello".into(),
            400,
            "bad_message",
        ),
        (
            "/api/execute",
            "deep nesting",
            deep.clone(),
            400,
            "bad_message",
        ),
        ("/api/execute", "huge number", huge, 400, "bad_message"),
        (
            "/api/execute",
            "wrong types",
            r#"{"op":5}"#.into(),
            400,
            "invalid_input",
        ),
        (
            "/api/execute",
            "sleep outside test mode is an op like any",
            r#"{"op":"sleep"}"#.into(),
            400,
            "invalid_input",
        ),
        (
            "/api/execute",
            "over the body limit",
            big.clone(),
            400,
            "bad_message",
        ),
        (
            "/v1/chat/completions",
            "not JSON",
            "{{{".into(),
            400,
            "bad_message",
        ),
        (
            "/v1/chat/completions",
            "deep nesting",
            deep.clone(),
            400,
            "bad_message",
        ),
        (
            "/v1/chat/completions",
            "no messages",
            r#"{"messages":[]}"#.into(),
            400,
            "invalid_input",
        ),
        (
            "/v1/chat/completions",
            "a role that does not exist",
            r#"{"messages":[{"role":"root","content":"x"}]}"#.into(),
            400,
            "bad_message",
        ),
        (
            "/v1/chat/completions",
            "over the body limit",
            big.clone(),
            400,
            "bad_message",
        ),
        (
            "/chat/stream",
            "not JSON",
            "nope".into(),
            400,
            "bad_message",
        ),
        (
            "/chat/stream",
            "another session's conversation",
            r#"{"message":"hi","conversation_id":"0123456789abcdef0123456789abcdef"}"#.into(),
            404,
            "not_found",
        ),
    ];
    for (path, what, body, status, code) in cases {
        let r = http
            .post(server.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{path} {what}");
        let v: serde_json::Value = r
            .json()
            .await
            .unwrap_or_else(|e| panic!("{path} {what}: {e}"));
        assert_eq!(v["error"]["code"], code, "{path} {what}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.len() < 2000,
            "{path} {what}: the answer echoes the input"
        );
    }
    // Ids of the wrong shape, and another session's, reach nothing.
    for id in [
        "../../etc/passwd",
        "%00",
        "0123456789abcdef0123456789abcdef",
        &"f".repeat(5000),
    ] {
        let r = http
            .get(server.url(&format!("/api/conversations/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{id}");
        let r = http
            .delete(server.url(&format!("/api/conversations/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{id}");
    }
    let health = server.get_json("/health").await;
    assert_eq!(health["status"], "healthy", "{health}");
    let ok = http
        .post(server.url("/api/execute"))
        .json(&json!({"op":"add","a":{"shape":[2],"data":[1,2]},"b":{"shape":[2],"data":[3,4]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}
