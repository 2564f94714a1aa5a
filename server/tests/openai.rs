//! The OpenAI-compatible API with a plain HTTP client, and the remote backends (Ollama,
//! OpenAI-compatible) against fake upstream servers on ephemeral ports.

mod common;

use app::error_code::ErrorCode;
use app::openai::{ChatCompletion, ChatCompletionChunk, ModelList};
use app::protocol::ServerMessage;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use common::*;
use futures::StreamExt;
use serde_json::json;
use std::time::Duration;

fn hello() -> serde_json::Value {
    json!({"messages":[{"role":"user","content":"Say hello."}],"max_tokens":12,"temperature":0})
}

#[tokio::test]
async fn models_lists_the_embedded_model() {
    let server = TestServer::start(&[]).await;
    let list: ModelList = reqwest::get(server.url("/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.object, "list");
    assert_eq!(list.data[0].id, "SmolLM2-135M-Instruct");
}

#[tokio::test]
async fn a_completion_without_streaming() {
    let server = TestServer::start(&[]).await;
    let response = reqwest::Client::new()
        .post(server.url("/v1/chat/completions"))
        .json(&hello())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let c: ChatCompletion = response.json().await.unwrap();
    assert_eq!(c.object, "chat.completion");
    assert!(c.id.starts_with("chatcmpl-"));
    assert!(!c.choices[0].message.content.is_empty());
    assert!(c.usage.completion_tokens > 0 && c.usage.completion_tokens <= 12);
    assert_eq!(
        c.usage.total_tokens,
        c.usage.prompt_tokens + c.usage.completion_tokens
    );
}

/// The `data:` payloads of a server-sent event stream.
async fn sse_data(response: reqwest::Response) -> Vec<String> {
    let body = response.text().await.unwrap();
    body.lines()
        .filter_map(|l| l.strip_prefix("data:").map(|d| d.trim().to_owned()))
        .collect()
}

#[tokio::test]
async fn a_streamed_completion_ends_with_done() {
    let server = TestServer::start(&[]).await;
    let mut body = hello();
    body["stream"] = json!(true);
    let response = reqwest::Client::new()
        .post(server.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let data = sse_data(response).await;
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<ChatCompletionChunk> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(
        chunks[0].choices[0].delta.role.as_deref(),
        Some("assistant")
    );
    let text: String = chunks
        .iter()
        .filter_map(|c| c.choices[0].delta.content.clone())
        .collect();
    assert!(!text.is_empty());
    let last = chunks.last().unwrap();
    assert!(last.choices[0].finish_reason.is_some());
    assert!(last.usage.as_ref().unwrap().completion_tokens > 0);
    assert!(chunks.iter().all(|c| c.id == chunks[0].id));
}

#[tokio::test]
async fn bad_requests_get_openai_shaped_errors() {
    let server = TestServer::start(&[]).await;
    let client = reqwest::Client::new();
    let r = client
        .post(server.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "bad_message");
    let r = client
        .post(server.url("/v1/chat/completions"))
        .json(&json!({"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .post(server.url("/v1/chat/completions"))
        .json(&json!({"messages":[]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["code"], "invalid_input");
}

/// A fake upstream on port 0 answering `path` with `body` (streamed in `parts`, `gap` apart).
async fn fake_upstream(
    path: &'static str,
    status: u16,
    parts: Vec<String>,
    gap: Duration,
) -> String {
    let app = Router::new().route(
        path,
        post(move || {
            let parts = parts.clone();
            async move {
                let stream = futures::stream::iter(parts).then(move |p| async move {
                    tokio::time::sleep(gap).await;
                    Ok::<_, std::io::Error>(p)
                });
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    axum::body::Body::from_stream(stream),
                )
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

async fn chat_over_ws(server: &TestServer) -> Vec<ServerMessage> {
    let mut c = server.ws_as(&new_session()).await;
    c.send_json(submit("c", json!({"kind":"chat","message":"hi"})))
        .await;
    c.until_end().await
}

fn tokens(msgs: &[ServerMessage]) -> Vec<String> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMessage::Token { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_ollama_backend_streams_through_the_queue() {
    let lines = vec![
        r#"{"message":{"role":"assistant","content":"Hel"},"done":false}"#.to_string() + "\n",
        r#"{"message":{"role":"assistant","content":"lo"},"done":false}"#.to_string() + "\n",
        r#"{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":9,"eval_count":2}"#.to_string() + "\n",
    ];
    let url = fake_upstream("/api/chat", 200, lines, Duration::from_millis(5)).await;
    let server = TestServer::start(&[
        "--chat-backend",
        "ollama",
        "--upstream-url",
        &url,
        "--upstream-model",
        "tiny",
    ])
    .await;
    let msgs = chat_over_ws(&server).await;
    assert_eq!(tokens(&msgs), vec!["Hel", "lo"]);
    match msgs.last() {
        Some(ServerMessage::Done { usage: Some(u), .. }) => {
            assert_eq!((u.prompt_tokens, u.completion_tokens), (9, 2));
        }
        other => panic!("{other:?}"),
    }
    let models: ModelList = reqwest::get(server.url("/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models.data[0].id, "tiny");
}

#[tokio::test]
async fn an_openai_backend_streams_through_the_queue() {
    let events = vec![
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Bon\"},\"finish_reason\":null}]}\n\n".to_string(),
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"jour\"},\"finish_reason\":\"stop\"}]}\n\n".to_string(),
        "data: [DONE]\n\n".to_string(),
    ];
    let url = fake_upstream(
        "/v1/chat/completions",
        200,
        events,
        Duration::from_millis(5),
    )
    .await;
    let server = TestServer::start(&[
        "--chat-backend",
        "openai",
        "--upstream-url",
        &url,
        "--upstream-model",
        "m",
    ])
    .await;
    let msgs = chat_over_ws(&server).await;
    assert_eq!(tokens(&msgs), vec!["Bon", "jour"]);
    assert!(matches!(
        msgs.last(),
        Some(ServerMessage::Done { usage: Some(_), .. })
    ));
}

#[tokio::test]
async fn an_upstream_that_refuses_or_stalls_gets_typed_errors_and_health_says_so() {
    let url = fake_upstream("/api/chat", 500, vec!["boom".into()], Duration::ZERO).await;
    let server = TestServer::start(&[
        "--chat-backend",
        "ollama",
        "--upstream-url",
        &url,
        "--upstream-model",
        "m",
    ])
    .await;
    let msgs = chat_over_ws(&server).await;
    assert!(
        matches!(
            msgs.last(),
            Some(ServerMessage::Error {
                code: ErrorCode::ModelUnavailable,
                ..
            })
        ),
        "{msgs:?}"
    );
    let health = server.get_json("/health").await;
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["subsystems"]["model"]["status"], "degraded");

    let first =
        r#"{"message":{"role":"assistant","content":"Hi"},"done":false}"#.to_string() + "\n";
    let url = fake_upstream(
        "/api/chat",
        200,
        vec![first, "never sent in time\n".into()],
        Duration::from_millis(800),
    )
    .await;
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
    let msgs = chat_over_ws(&server).await;
    assert!(
        matches!(
            msgs.last(),
            Some(ServerMessage::Error {
                code: ErrorCode::Timeout,
                ..
            })
        ),
        "{msgs:?}"
    );

    // Nothing listens there: unreachable.
    let server = TestServer::start(&[
        "--chat-backend",
        "ollama",
        "--upstream-url",
        "http://127.0.0.1:9",
        "--upstream-model",
        "m",
    ])
    .await;
    let msgs = chat_over_ws(&server).await;
    assert!(
        matches!(
            msgs.last(),
            Some(ServerMessage::Error {
                code: ErrorCode::ModelUnavailable,
                ..
            })
        ),
        "{msgs:?}"
    );
}
