//! Who may embed Turnstile and who may drive it: the framing policy (embed routes may be framed
//! by the configured `--frame-ancestors`, every other page by nobody) and the WebSocket's origin
//! check (the server's own origin plus `--ws-allowed-origins`), which stops a foreign page from
//! driving a user's session through their browser (cross-site WebSocket hijacking).
//!
//! Concurrency: stateless, apart from the refused-upgrade counter (an atomic in `AppState`).

use crate::http::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The `Content-Security-Policy` value for a path.
pub fn frame_policy(path: &str, frame_ancestors: &[String]) -> String {
    if path.starts_with("/embed/") || path == "/embed" {
        let list: Vec<&str> = frame_ancestors
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        if list.is_empty() || list.contains(&"*") {
            "frame-ancestors *".into()
        } else {
            format!("frame-ancestors 'self' {}", list.join(" "))
        }
    } else {
        "frame-ancestors 'none'".into()
    }
}

/// Adds the framing policy and the usual security headers to every response. (Pages also carry
/// their script policy in a `<meta>`: see `app::content_security_policy`.)
pub async fn frame_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let secure =
        crate::client_addr::ClientAddr::of(req.extensions()).secure(state.config.secure_cookies);
    let mut response = next.run(req).await;
    let policy = format!(
        "{}; object-src 'none'; base-uri 'none'",
        frame_policy(&path, &state.config.frame_ancestors)
    );
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    if policy.starts_with("frame-ancestors 'none'") {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        // A top-level page shares its browsing context with nobody (embeds are framed, so
        // they keep the default).
        headers.insert(
            "cross-origin-opener-policy",
            HeaderValue::from_static("same-origin"),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=()"),
    );
    if secure {
        // Served over TLS (`--secure-cookies`, or a trusted proxy said https; the same switch
        // as the cookie's Secure flag): stay on it.
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// The authority (`host[:port]`) of an origin such as `https://example.com:8443`.
fn authority(origin: &str) -> Option<&str> {
    origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'))
}

/// Whether a WebSocket upgrade with these headers may proceed: no `Origin` (not a browser), the
/// server's own origin (same host), or one of the allowed origins.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if host.is_some() && authority(origin) == host {
        return true;
    }
    allowed
        .iter()
        .any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// `GET /widget.js`: the embed loader (dependency-free JavaScript, see `server/assets/widget.js`).
pub async fn widget_js() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../assets/widget.js"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn embed_routes_follow_the_config_and_other_pages_refuse_framing() {
        let any = vec!["*".to_string()];
        assert_eq!(frame_policy("/embed/chat", &any), "frame-ancestors *");
        let some = vec!["https://a.example".to_string(), "https://b.example".into()];
        assert_eq!(
            frame_policy("/embed/calculator", &some),
            "frame-ancestors 'self' https://a.example https://b.example"
        );
        assert_eq!(frame_policy("/chat", &any), "frame-ancestors 'none'");
        assert_eq!(frame_policy("/embedded", &any), "frame-ancestors 'none'");
    }

    #[test]
    fn only_our_own_or_allowed_origins_open_the_websocket() {
        let none: Vec<String> = vec![];
        assert!(origin_allowed(&headers(None, "t.example:3000"), &none));
        assert!(origin_allowed(
            &headers(Some("http://t.example:3000"), "t.example:3000"),
            &none
        ));
        assert!(!origin_allowed(
            &headers(Some("http://evil.example"), "t.example:3000"),
            &none
        ));
        assert!(!origin_allowed(
            &headers(Some("http://t.example:3001"), "t.example:3000"),
            &none
        ));
        let allowed = vec!["http://host.example:8080/".to_string()];
        assert!(origin_allowed(
            &headers(Some("http://host.example:8080"), "t.example:3000"),
            &allowed
        ));
    }
}
