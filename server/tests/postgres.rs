//! Distributed mode over real sockets: two servers (stateless web instances) on one PostgreSQL
//! database (`--db postgres://...`, the throwaway server of `store::pg_testkit`). A conversation
//! one of them starts through the HTTP API, the other lists, reads and deletes, and the first
//! then no longer has it.

mod common;

use app::chat::{Conversation, ConversationList, Role};
use common::*;
use turnstile_server::store::pg_testkit::PgServer;

const HEADER: &str = "x-turnstile-session";

/// `POST /chat/stream` as `session` with `body` (and a short answer): the events' JSON, up to
/// and including the last.
async fn chat(
    server: &TestServer,
    session: &str,
    mut body: serde_json::Value,
) -> Vec<serde_json::Value> {
    body["max_tokens"] = 2.into();
    let r = reqwest::Client::new()
        .post(server.url("/chat/stream"))
        .header(HEADER, session)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body = r.text().await.unwrap();
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).unwrap())
        .collect()
}

#[tokio::test]
async fn two_instances_share_one_postgres_store() {
    let url = PgServer::shared().fresh_database().await;
    let flags = ["--test-token-delay", "0s"];
    // Both start on the new database at once: one migrates it, the other waits for that.
    let (a, b) = tokio::join!(
        TestServer::start_on(&url, &flags),
        TestServer::start_on(&url, &flags)
    );
    let session = new_session();

    // Instance A starts a conversation through the HTTP API (and stores the answer).
    let events = chat(
        &a,
        &session,
        serde_json::json!({"message": "Hello from instance A"}),
    )
    .await;
    let done = events.last().unwrap();
    assert_eq!(done["type"], "done", "{events:?}");
    let id = done["conversation_id"].as_str().unwrap().to_owned();
    let path = format!("/api/conversations/{id}");
    let on_a: Conversation = a.get_json_as(&path, &session).await;

    // Instance B, which never saw it, lists it and reads the same conversation.
    let list: ConversationList = b.get_json_as("/api/conversations", &session).await;
    assert_eq!(list.conversations.len(), 1);
    let summary = &list.conversations[0];
    assert_eq!(
        (summary.id.0.as_str(), summary.message_count),
        (id.as_str(), 2)
    );
    assert_eq!(summary.title, "Hello from instance A");
    let on_b: Conversation = b.get_json_as(&path, &session).await;
    assert_eq!(on_b, on_a);
    assert_eq!(on_b.messages[0].role, Role::User);
    assert_eq!(on_b.messages[0].content, "Hello from instance A");
    assert_eq!(on_b.messages[1].role, Role::Assistant);

    // Another session sees nothing of it on either instance.
    let other = new_session();
    for server in [&a, &b] {
        let r = reqwest::Client::new()
            .get(server.url(&path))
            .header(HEADER, &other)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
    }

    // B continues it; A reads the continuation. Then B deletes it, and it is gone from A too.
    let events = chat(
        &b,
        &session,
        serde_json::json!({"message": "And hello from B", "conversation_id": id}),
    )
    .await;
    assert_eq!(events.last().unwrap()["type"], "done", "{events:?}");
    let continued: Conversation = a.get_json_as(&path, &session).await;
    assert_eq!(continued.messages.len(), 4);
    assert_eq!(continued.messages[2].content, "And hello from B");
    let r = reqwest::Client::new()
        .delete(b.url(&path))
        .header(HEADER, &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let list: ConversationList = a.get_json_as("/api/conversations", &session).await;
    assert!(list.conversations.is_empty());
}
