//! Who may embed and who may drive Turnstile, against a real server: the framing headers of embed
//! and other pages, the widget loader, and the WebSocket's origin check.

mod common;

use common::*;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Error as WsError;

async fn csp(server: &TestServer, path: &str) -> (String, Option<String>) {
    let r = reqwest::get(server.url(path)).await.unwrap();
    let h = r.headers();
    (
        h["content-security-policy"].to_str().unwrap().to_owned(),
        h.get("x-frame-options")
            .map(|v| v.to_str().unwrap().to_owned()),
    )
}

#[tokio::test]
async fn embed_routes_may_be_framed_and_other_pages_may_not() {
    let server = TestServer::start(&[]).await;
    for path in ["/embed/calculator", "/embed/chat"] {
        let r = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let (policy, xfo) = csp(&server, path).await;
        assert_eq!(
            policy,
            "frame-ancestors *; object-src 'none'; base-uri 'none'"
        );
        assert_eq!(xfo, None);
        let html = r.text().await.unwrap();
        assert!(!html.contains("site-header"), "{path} has no site chrome");
    }
    for path in ["/", "/chat", "/stats", "/api/stats"] {
        let (policy, xfo) = csp(&server, path).await;
        assert_eq!(
            policy, "frame-ancestors 'none'; object-src 'none'; base-uri 'none'",
            "{path}"
        );
        assert_eq!(xfo.as_deref(), Some("DENY"));
    }
    let locked =
        TestServer::start(&["--frame-ancestors", "https://a.example,https://b.example"]).await;
    let (policy, _) = csp(&locked, "/embed/chat").await;
    assert_eq!(
        policy,
        "frame-ancestors 'self' https://a.example https://b.example; object-src 'none'; base-uri 'none'"
    );
}

#[tokio::test]
async fn pages_carry_a_strict_script_policy_and_the_usual_security_headers() {
    let server = TestServer::start(&[]).await;
    for path in ["/", "/chat", "/embed/chat"] {
        let r = reqwest::get(server.url(path)).await.unwrap();
        let h = r.headers().clone();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "strict-origin-when-cross-origin");
        assert!(h["permissions-policy"]
            .to_str()
            .unwrap()
            .contains("camera=()"));
        assert!(h.get("strict-transport-security").is_none(), "not over TLS");
        let html = r.text().await.unwrap();
        // The script policy: only this response's nonce, no inline script without it.
        let at = html.find("'nonce-").expect("a nonce in the page's policy") + 7;
        let nonce = &html[at..at + html[at..].find('\'').unwrap()];
        assert!(nonce.len() >= 16, "{nonce}");
        assert!(html.contains("script-src 'self' 'nonce-"), "{path}");
        assert!(!html.contains("unsafe-inline' 'wasm") && !html.contains("script-src *"));
        let scripts = html.matches("<script").count();
        let with_nonce = html.matches(&format!("nonce=\"{nonce}\"")).count();
        assert!(
            scripts > 0 && with_nonce >= scripts,
            "{path}: every inline script has the nonce"
        );
    }
    // Two responses, two nonces.
    let a = reqwest::get(server.url("/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let b = reqwest::get(server.url("/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let nonce = |h: &str| h[h.find("'nonce-").unwrap()..][..30].to_owned();
    assert_ne!(nonce(&a), nonce(&b));
    let tls = TestServer::start(&["--secure-cookies"]).await;
    let r = reqwest::get(tls.url("/")).await.unwrap();
    assert!(r.headers().get("strict-transport-security").is_some());
}

#[tokio::test]
async fn the_widget_loader_is_served_as_javascript() {
    let server = TestServer::start(&[]).await;
    let r = reqwest::get(server.url("/widget.js")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let js = r.text().await.unwrap();
    assert!(js.contains("/embed/") && js.contains("turnstile:"));
}

async fn ws_from(server: &TestServer, origin: Option<&str>) -> Result<(), u16> {
    let mut req = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => Ok(()),
        Err(WsError::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn a_foreign_page_cannot_open_the_websocket() {
    let server = TestServer::start(&["--ws-allowed-origins", "https://partner.example"]).await;
    let own = format!("http://{}", server.addr);
    assert_eq!(ws_from(&server, None).await, Ok(()), "not a browser");
    assert_eq!(ws_from(&server, Some(&own)).await, Ok(()), "our own pages");
    assert_eq!(
        ws_from(&server, Some("https://partner.example")).await,
        Ok(())
    );
    assert_eq!(
        ws_from(&server, Some("https://evil.example")).await,
        Err(403)
    );
    assert_eq!(
        ws_from(
            &server,
            Some(&format!("http://{}.evil.example", server.addr.ip()))
        )
        .await,
        Err(403)
    );
    let health = server.get_json("/health").await;
    let detail = health["subsystems"]["websocket"]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("2 refused"), "{detail}");
}
