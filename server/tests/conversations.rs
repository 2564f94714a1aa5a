//! Sessions and the conversation history over real HTTP: the session cookie, the token fallbacks
//! (header, query parameter), isolation between sessions, and a database that outlives the
//! server. There is no HTTP call that creates a conversation (chat does), so these tests write
//! conversations straight into the server's SQLite file.

mod common;

use app::chat::{Conversation, ConversationList, SessionToken};
use app::error_code::ErrorCode;
use app::protocol::ServerMessage;
use common::*;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::Response;
use serde_json::Value;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

const HEADER: &str = "x-turnstile-session";

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// The response's session cookie, if it sets one.
fn set_cookie(r: &Response) -> Option<String> {
    let all: Vec<_> = r.headers().get_all(SET_COOKIE).iter().collect();
    assert!(all.len() <= 1, "one session cookie at most: {all:?}");
    all.first().map(|v| v.to_str().unwrap().to_owned())
}

/// The session id in a `Set-Cookie` value.
fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    let (name, value) = pair.split_once('=').unwrap();
    assert_eq!(name, "turnstile_session");
    value.to_owned()
}

fn is_token(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `POST /api/session` as built by `with`; the token and the cookie set, if any.
async fn token(
    server: &TestServer,
    with: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> (String, Option<String>) {
    let r = with(http().post(server.url("/api/session")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = set_cookie(&r);
    let body: SessionToken = r.json().await.unwrap();
    (body.token, cookie)
}

async fn list_as(server: &TestServer, session: &str) -> ConversationList {
    server.get_json_as("/api/conversations", session).await
}

/// Makes sure the server has opened (and migrated) its database: requests wait in the listen
/// backlog until it has.
async fn ready(server: &TestServer) {
    let r = http().get(server.url("/health")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// Writes a conversation with `messages` (role, content) for `session` straight into the
/// database, as chat would; returns its id.
async fn insert_conversation(
    db: &Path,
    session: &str,
    title: &str,
    messages: &[(&str, &str)],
) -> String {
    let (db, session, title) = (db.to_owned(), session.to_owned(), title.to_owned());
    let messages: Vec<(String, String)> = messages
        .iter()
        .map(|(r, c)| ((*r).to_owned(), (*c).to_owned()))
        .collect();
    tokio::task::spawn_blocking(move || insert_blocking(&db, &session, &title, &messages))
        .await
        .unwrap()
}

fn insert_blocking(db: &Path, session: &str, title: &str, messages: &[(String, String)]) -> String {
    let mut conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let id = new_session(); // the same shape as a conversation id: 32 hex characters
    let tx = conn.transaction().unwrap();
    tx.execute(
        "INSERT OR IGNORE INTO sessions (id, created_at, last_seen) VALUES (?1, ?2, ?2)",
        rusqlite::params![session, now],
    )
    .unwrap();
    tx.execute(
        "INSERT INTO conversations (id, session_id, title, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4)",
        rusqlite::params![id, session, title, now],
    )
    .unwrap();
    for (role, content) in messages {
        tx.execute(
            "INSERT INTO messages (conversation_id, role, content, status, created_at)
             VALUES (?1, ?2, ?3, 'complete', ?4)",
            rusqlite::params![id, role, content, now],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    id
}

#[tokio::test]
async fn a_new_client_gets_an_http_only_same_site_cookie_on_every_kind_of_route() {
    let server = TestServer::start(&[]).await;
    let r = http()
        .get(server.url("/api/conversations"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let cookie = set_cookie(&r).expect("a new client gets a session cookie");
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(is_token(&cookie_value(&cookie)), "{cookie}");
    for want in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=2592000"] {
        assert!(attrs.contains(&want), "{want} missing from {cookie}");
    }
    assert!(!attrs.contains(&"Secure"), "{cookie}");
    let list: ConversationList = r.json().await.unwrap();
    assert!(list.conversations.is_empty());

    // Sent back, the cookie is the session: nothing new is set.
    let session = cookie_value(&cookie);
    let r = http()
        .get(server.url("/api/conversations"))
        .header(COOKIE, format!("other=1; turnstile_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(set_cookie(&r).is_none());

    // Every route gets a session: JSON, pages, the WebSocket upgrade.
    for path in ["/health", "/chat"] {
        let r = http().get(server.url(path)).send().await.unwrap();
        assert!(set_cookie(&r).is_some(), "{path}");
    }
    let (_ws, response) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .unwrap();
    let ws_cookie = response.headers().get("set-cookie").expect("cookie on /ws");
    assert!(is_token(&cookie_value(ws_cookie.to_str().unwrap())));
}

#[tokio::test]
async fn secure_cookies_and_the_retention_shape_the_cookie() {
    let server = TestServer::start(&["--secure-cookies", "--retention", "1h"]).await;
    let (_, cookie) = token(&server, |r| r).await;
    let cookie = cookie.unwrap();
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for want in ["HttpOnly", "SameSite=Lax", "Secure", "Max-Age=3600"] {
        assert!(attrs.contains(&want), "{want} missing from {cookie}");
    }
}

#[tokio::test]
async fn the_token_reaches_the_same_session_by_cookie_header_or_query() {
    let server = TestServer::start(&[]).await;
    let (t, cookie) = token(&server, |r| r).await;
    assert!(is_token(&t));
    assert_eq!(cookie_value(&cookie.unwrap()), t);

    // The cookie, the header and the query parameter all name the same session; only the
    // cookie needs no new Set-Cookie.
    let (by_cookie, set) = token(&server, |r| {
        r.header(COOKIE, format!("turnstile_session={t}"))
    })
    .await;
    assert_eq!((by_cookie.as_str(), set), (t.as_str(), None));
    let (by_header, set) = token(&server, |r| r.header(HEADER, &t)).await;
    assert_eq!(by_header, t);
    assert_eq!(cookie_value(&set.unwrap()), t);
    let (by_query, set) = token(&server, |r| r.query(&[("session", &t)])).await;
    assert_eq!(by_query, t);
    assert_eq!(cookie_value(&set.unwrap()), t);

    // The cookie wins over the others; malformed tokens are ignored (a new session).
    let other = new_session();
    let (winner, _) = token(&server, |r| {
        r.header(COOKIE, format!("turnstile_session={t}"))
            .header(HEADER, &other)
    })
    .await;
    assert_eq!(winner, t);
    for bad in ["short", &t.to_uppercase(), &format!("{t}0")] {
        let (fresh, set) = token(&server, |r| r.header(HEADER, bad)).await;
        assert!(is_token(&fresh) && fresh != t, "{bad}");
        assert_eq!(cookie_value(&set.unwrap()), fresh);
    }

    // A well-formed token the server has not seen yet works too (an empty session).
    let unseen = new_session();
    assert_eq!(
        token(&server, |r| r.header(HEADER, &unseen)).await.0,
        unseen
    );
    assert!(list_as(&server, &unseen).await.conversations.is_empty());

    // The data behind the token is reachable each way.
    let id = insert_conversation(&server.db, &t, "Mine", &[("user", "hello")]).await;
    let by_header = list_as(&server, &t).await;
    assert_eq!(by_header.conversations.len(), 1);
    assert_eq!(by_header.conversations[0].id.0, id);
    let by_query: ConversationList = http()
        .get(server.url(&format!("/api/conversations?session={t}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let by_cookie: ConversationList = http()
        .get(server.url("/api/conversations"))
        .header(COOKIE, format!("turnstile_session={t}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(by_query, by_header);
    assert_eq!(by_cookie, by_header);
}

/// A 404 `not_found` that says nothing about the conversation.
async fn assert_not_found(r: Response, secrets: &[&str]) {
    assert_eq!(r.status().as_u16(), 404);
    let text = r.text().await.unwrap();
    for s in secrets {
        assert!(!text.contains(s), "{s} leaked in {text}");
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].is_string());
}

#[tokio::test]
async fn another_sessions_conversation_is_not_found_and_cannot_be_deleted() {
    let server = TestServer::start(&[]).await;
    ready(&server).await;
    let (a, b) = (new_session(), new_session());
    let id = insert_conversation(
        &server.db,
        &a,
        "Secret plans",
        &[
            ("user", "the password is swordfish"),
            ("assistant", "noted"),
        ],
    )
    .await;
    let path = format!("/api/conversations/{id}");

    // A sees it, in the list and in full.
    let list = list_as(&server, &a).await;
    assert_eq!(list.conversations.len(), 1);
    let summary = &list.conversations[0];
    assert_eq!(
        (
            summary.id.0.as_str(),
            summary.title.as_str(),
            summary.message_count
        ),
        (id.as_str(), "Secret plans", 2)
    );
    let conv: Conversation = server.get_json_as(&path, &a).await;
    assert_eq!(conv.id.0, id);
    assert_eq!(conv.messages.len(), 2);
    assert_eq!(conv.messages[0].content, "the password is swordfish");
    assert!(humantime::parse_rfc3339(&conv.updated_at).is_ok());

    // B gets exactly what an unknown id gets, and cannot delete it.
    let secrets = ["Secret plans", "swordfish", "noted", a.as_str()];
    assert!(list_as(&server, &b).await.conversations.is_empty());
    let get = |session: String, path: String| {
        let url = server.url(&path);
        async move {
            http()
                .get(url)
                .header(HEADER, session)
                .send()
                .await
                .unwrap()
        }
    };
    let delete = |session: String, path: String| {
        let url = server.url(&path);
        async move {
            http()
                .delete(url)
                .header(HEADER, session)
                .send()
                .await
                .unwrap()
        }
    };
    assert_not_found(get(b.clone(), path.clone()).await, &secrets).await;
    assert_not_found(delete(b.clone(), path.clone()).await, &secrets).await;
    let unknown = format!("/api/conversations/{}", new_session());
    assert_not_found(get(a.clone(), unknown.clone()).await, &[]).await;
    assert_not_found(delete(a.clone(), unknown).await, &[]).await;
    for malformed in [
        "nope",
        "..%2F..%2Fetc",
        &id.to_uppercase(),
        &format!("{id}0"),
    ] {
        let p = format!("/api/conversations/{malformed}");
        assert_not_found(get(a.clone(), p.clone()).await, &[]).await;
        assert_not_found(delete(a.clone(), p).await, &[]).await;
    }
    let still: Conversation = server.get_json_as(&path, &a).await;
    assert_eq!(still, conv);

    // A deletes it: 204, then it is gone for A too.
    let r = delete(a.clone(), path.clone()).await;
    assert_eq!(r.status().as_u16(), 204);
    assert!(r.text().await.unwrap().is_empty());
    assert_not_found(get(a.clone(), path.clone()).await, &secrets).await;
    assert_not_found(delete(a.clone(), path).await, &secrets).await;
    assert!(list_as(&server, &a).await.conversations.is_empty());
}

#[tokio::test]
async fn conversations_survive_a_server_restart() {
    let dir = TempDir::new();
    let session = new_session();
    let (id, before) = {
        let server = TestServer::start_in(&dir, &[]).await;
        ready(&server).await;
        let id = insert_conversation(
            &server.db,
            &session,
            "Kept",
            &[("user", "remember this"), ("assistant", "I will")],
        )
        .await;
        let before: Conversation = server
            .get_json_as(&format!("/api/conversations/{id}"), &session)
            .await;
        (id, before)
    };
    let server = TestServer::start_in(&dir, &[]).await;
    let list = list_as(&server, &session).await;
    assert_eq!(list.conversations.len(), 1);
    assert_eq!(list.conversations[0].id.0, id);
    let after: Conversation = server
        .get_json_as(&format!("/api/conversations/{id}"), &session)
        .await;
    assert_eq!(after, before);
}

#[tokio::test]
async fn a_session_has_at_most_its_cap_of_conversations() {
    let server = TestServer::start(&[
        "--max-conversations-per-session",
        "2",
        "--test-token-delay",
        "0s",
    ])
    .await;
    let session = new_session();
    let mut c = server.ws_as(&session).await;
    for i in 0..2 {
        c.send_json(submit(
            &format!("c{i}"),
            serde_json::json!({"kind":"chat","message":"Hi.","max_tokens":2}),
        ))
        .await;
        let end = c.until_end().await;
        assert!(
            matches!(end.last(), Some(ServerMessage::Done { .. })),
            "{end:?}"
        );
    }
    c.send_json(submit(
        "third",
        serde_json::json!({"kind":"chat","message":"Hi.","max_tokens":2}),
    ))
    .await;
    match c.recv().await {
        ServerMessage::Error {
            code: ErrorCode::InvalidInput,
            message,
            ..
        } => assert!(message.contains("delete some"), "{message}"),
        m => panic!("{m:?}"),
    }
    // Another session is not affected.
    let mut other = server.ws_as(&new_session()).await;
    other
        .send_json(submit(
            "x",
            serde_json::json!({"kind":"chat","message":"Hi.","max_tokens":2}),
        ))
        .await;
    assert!(matches!(other.recv().await, ServerMessage::Accepted { .. }));
}
