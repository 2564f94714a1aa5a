//! Turnstile behind a real reverse proxy: Debian's nginx, started by the test on an ephemeral
//! port with `docs/nginx.conf` (the snippet the README shows) in front of a server that trusts
//! 127.0.0.1, the address nginx connects from. Clients reach nginx from different loopback
//! addresses (127.0.0.2, .3, ...), each bound before connecting, and must be told apart: their
//! own WebSocket caps, request rates and fair-queue parties. Forged forwarding headers, sent
//! directly or through nginx, must change nothing.

mod common;

use common::nginx::Nginx;
use common::*;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::time::{Duration, Instant};

fn lo(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A test server trusting nginx's address, with `flags`, and nginx in front of it.
async fn behind_nginx(flags: &[&str]) -> (TestServer, Nginx) {
    let mut all = vec!["--trusted-proxies", "127.0.0.1"];
    all.extend_from_slice(flags);
    let server = TestServer::start(&all).await;
    // The server's listener is bound already; nginx connects on the first request.
    let nginx = Nginx::start(server.addr);
    (server, nginx)
}

/// Polls `/api/device/queue` (directly) until `ok` holds, for at most 10 s.
async fn until_queue(server: &TestServer, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let q = server.get_json("/api/device/queue").await;
        if ok(&q) {
            return q;
        }
        assert!(Instant::now() < deadline, "waited 10 s for {what}: {q}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn websockets_pass_through_and_each_client_has_its_own_connection_cap() {
    let (server, nginx) = behind_nginx(&["--max-connections-per-ip", "1"]).await;
    let mut a = nginx
        .ws_from(lo(2))
        .await
        .expect("the first connection from 127.0.0.2");
    a.send_json(submit("a", matmul_job())).await;
    let msgs = a.until_end().await;
    assert!(
        msgs.iter()
            .any(|m| matches!(m, app::protocol::ServerMessage::Result { .. })),
        "a job over the WebSocket through nginx: {msgs:?}; nginx log: {}",
        nginx.log()
    );
    // Without the proxy's header both would be 127.0.0.1, and this one would be refused.
    let _b = nginx
        .ws_from(lo(3))
        .await
        .expect("127.0.0.3 has its own cap of one");
    assert_eq!(
        nginx.ws_from(lo(2)).await.err(),
        Some(429),
        "127.0.0.2's second connection is over its cap"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = server.get_json("/api/stats").await;
        if stats["process"]["websocket_connections"] == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "two connections open: {}",
            stats["process"]
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn anonymous_clients_behind_nginx_are_separate_parties() {
    let (server, nginx) =
        behind_nginx(&["--prefetch", "0", "--max-waiting-per-session", "1"]).await;
    let post = |from: u8, ms: u64| {
        let url = nginx.url("/api/execute");
        async move {
            let r = Nginx::client_from(lo(from))
                .post(url)
                .json(&json!({"op":"sleep","ms":ms}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    };
    // 127.0.0.4 holds the device; then 127.0.0.2 has one job waiting, its cap.
    let blocker = tokio::spawn(post(4, 3000));
    until_queue(&server, "the blocker to run", |q| q["running"] == 1).await;
    let a = tokio::spawn(post(2, 10));
    until_queue(&server, "a's job to wait", |q| q["currently_waiting"] == 1).await;
    let (status, body) = post(2, 10).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited")),
        "127.0.0.2's party has its one waiting job: {body}"
    );
    // 127.0.0.3 is a party of its own: it may queue (sharing the proxy's address, it would not).
    let b = tokio::spawn(post(3, 10));
    until_queue(&server, "b's job to wait", |q| q["currently_waiting"] == 2).await;
    let stats = server.get_json("/api/stats").await;
    assert_eq!(stats["queue"]["parties_waiting"], 2, "{}", stats["queue"]);
    for task in [blocker, a, b] {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
}

/// `GET /health` from `client` at `url` with extra headers: the status, the `Set-Cookie` and
/// whether HSTS was sent.
async fn get(client: &reqwest::Client, url: &str, headers: &[(&str, &str)]) -> (u16, String, bool) {
    let mut request = client.get(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let r = request.send().await.unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let hsts = r.headers().contains_key("strict-transport-security");
    (r.status().as_u16(), cookie, hsts)
}

#[tokio::test]
async fn forged_forwarding_headers_change_nothing() {
    // One request a second per address, bursts of two: the third in a row is refused.
    let (server, nginx) = behind_nginx(&["--rate-per-ip", "1", "--rate-per-session", "0"]).await;
    let health = nginx.url("/health");

    // Directly, from an untrusted peer: its forged addresses and scheme are ignored; all three
    // requests are 127.0.0.2's.
    let direct = Nginx::client_from(lo(2));
    for (i, forged) in ["127.0.0.9", "127.0.0.10", "127.0.0.11"].iter().enumerate() {
        let (status, cookie, hsts) = get(
            &direct,
            &server.url("/health"),
            &[
                ("x-forwarded-for", forged),
                ("x-forwarded-proto", "https"),
                ("forwarded", &format!("for={forged};proto=https")),
            ],
        )
        .await;
        assert_eq!(status, if i < 2 { 200 } else { 429 }, "direct request {i}");
        assert!(
            !cookie.contains("Secure") && !hsts,
            "no https from an untrusted peer"
        );
    }
    // The same address through nginx is the same client, refused too; the forged ones are fresh.
    assert_eq!(get(&Nginx::client_from(lo(2)), &health, &[]).await.0, 429);
    assert_eq!(get(&Nginx::client_from(lo(9)), &health, &[]).await.0, 200);

    // Through nginx, a forged chain does not override the right-most untrusted hop (nginx
    // appends the real address), nor does a forged `Forwarded` (not the header nginx writes),
    // nor a forged scheme (nginx overwrites it).
    let forger = Nginx::client_from(lo(4));
    for i in 0..3 {
        let (status, cookie, hsts) = get(
            &forger,
            &health,
            &[
                ("x-forwarded-for", "127.0.0.5, 127.0.0.1"),
                ("x-forwarded-proto", "https"),
                ("forwarded", "for=127.0.0.5;proto=https"),
            ],
        )
        .await;
        assert_eq!(status, if i < 2 { 200 } else { 429 }, "forged request {i}");
        assert!(!cookie.contains("Secure") && !hsts, "nginx said http");
    }
    assert_eq!(
        get(&Nginx::client_from(lo(5)), &health, &[]).await.0,
        200,
        "127.0.0.5's own rate was not touched"
    );

    // What a TLS-terminating trusted proxy says is believed: https gives the Secure cookie and
    // HSTS (a request from 127.0.0.1 stands in for such a proxy here).
    let (status, cookie, hsts) = get(
        &Nginx::client_from(lo(1)),
        &server.url("/health"),
        &[
            ("x-forwarded-for", "127.0.0.6"),
            ("x-forwarded-proto", "https"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(cookie.contains("Secure") && hsts, "{cookie}");
}

#[test]
fn the_readme_shows_the_snippet_the_test_serves() {
    let snippet = std::fs::read_to_string(common::nginx::SNIPPET).unwrap();
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(snippet.trim_end()),
        "README.md's reverse-proxy section must show docs/nginx.conf exactly as it is"
    );
}
