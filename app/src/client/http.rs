//! JSON over HTTP for the pages: [`get_json`], [`get_json_with`], [`post_json`] and [`delete`] on
//! same-origin paths,
//! [`sleep_ms`] between polls, and the session token kept for browsers that cannot keep the
//! session cookie ([`ensure_session`], [`stored_session`]).
//!
//! The session is normally the HttpOnly cookie, which the browser sends by itself. Inside an
//! iframe on another site the cookie may be blocked, so the page also asks `POST /api/session`
//! for the session's token, keeps it in `localStorage` under [`SESSION_KEY`], and sends it on
//! every request as the [`SESSION_HEADER`] header (and on the WebSocket URL, see
//! [`super::ws`]). The server prefers the cookie when both are present.
//!
//! [`get_json`] decodes with the type's derived `Deserialize`; [`get_json_with`] and [`post_json`]
//! with a hand-written decoder over a parsed `serde_json::Value` (the chat's, lighter in its wasm).
//! With `hydrate` these use gloo-net's fetch, gloo-timers and `window.localStorage`; elsewhere
//! the requests fail, the token is absent and `sleep_ms` returns at once (they are only called
//! from browser-only effects and handlers). Concurrency: single-threaded (the browser's event
//! loop); each request is one future.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// `localStorage` key of the session token.
pub const SESSION_KEY: &str = "turnstile_session";

/// Request header that carries the session token.
pub const SESSION_HEADER: &str = "x-turnstile-session";

/// A hand-written decoder of a JSON body (such as [`crate::chat::Conversation::from_json`]).
pub type Decoder<T> = fn(&serde_json::Value) -> Result<T, String>;

#[cfg(feature = "hydrate")]
mod browser {
    use super::SESSION_HEADER;
    use crate::api::ErrorBody;
    use gloo_net::http::{RequestBuilder, Response};
    use serde::de::DeserializeOwned;

    /// Adds the session header when a token is stored.
    pub(super) fn with_session(builder: RequestBuilder) -> RequestBuilder {
        match super::stored_session() {
            Some(token) => builder.header(SESSION_HEADER, &token),
            None => builder,
        }
    }

    /// The response if it is a success, else a sentence for people, including the server's own
    /// `error.message` when it sent one.
    pub(super) async fn check(
        path: &str,
        sent: Result<Response, gloo_net::Error>,
    ) -> Result<Response, String> {
        let response = sent.map_err(|e| format!("{path}: {e}"))?;
        if response.ok() {
            return Ok(response);
        }
        let status = response.status();
        Err(match response.json::<ErrorBody>().await {
            Ok(body) => format!("{path}: {} ({})", body.error.message, body.error.code),
            Err(_) => format!("{path}: HTTP {status}"),
        })
    }

    /// Decodes a successful response's JSON body.
    pub(super) async fn decode<T: DeserializeOwned>(
        path: &str,
        sent: Result<Response, gloo_net::Error>,
    ) -> Result<T, String> {
        check(path, sent)
            .await?
            .json::<T>()
            .await
            .map_err(|e| format!("{path}: unexpected answer ({e})"))
    }

    /// Decodes a successful response's JSON body with `decode`.
    pub(super) async fn decode_with<T>(
        path: &str,
        sent: Result<Response, gloo_net::Error>,
        decode: super::Decoder<T>,
    ) -> Result<T, String> {
        let unexpected = |e: String| format!("{path}: unexpected answer ({e})");
        let text = check(path, sent)
            .await?
            .text()
            .await
            .map_err(|e| unexpected(e.to_string()))?;
        let value = serde_json::from_str(&text).map_err(|e| unexpected(e.to_string()))?;
        decode(&value).map_err(unexpected)
    }

    /// `window.localStorage`, when the browser allows it.
    pub(super) fn local_storage() -> Option<web_sys::Storage> {
        web_sys::window()?.local_storage().ok().flatten()
    }
}

/// `GET path` (same origin) and decode the JSON body. Failures are sentences for people,
/// including the server's own `error.message` when it sent one.
#[cfg(feature = "hydrate")]
pub async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    use gloo_net::http::Request;
    let sent = browser::with_session(Request::get(path)).send().await;
    browser::decode(path, sent).await
}

/// [`get_json`] with a hand-written decoder.
#[cfg(feature = "hydrate")]
pub async fn get_json_with<T>(path: &str, decode: Decoder<T>) -> Result<T, String> {
    use gloo_net::http::Request;
    let sent = browser::with_session(Request::get(path)).send().await;
    browser::decode_with(path, sent, decode).await
}

/// `POST path` (same origin) with `body` as JSON, and decode the JSON answer with `decode`.
#[cfg(feature = "hydrate")]
pub async fn post_json<B: Serialize + ?Sized, T>(
    path: &str,
    body: &B,
    decode: Decoder<T>,
) -> Result<T, String> {
    use gloo_net::http::Request;
    let request = browser::with_session(Request::post(path))
        .json(body)
        .map_err(|e| format!("{path}: could not encode the request ({e})"))?;
    let sent = request.send().await;
    browser::decode_with(path, sent, decode).await
}

/// `DELETE path` (same origin); any success status (204) is fine.
#[cfg(feature = "hydrate")]
pub async fn delete(path: &str) -> Result<(), String> {
    use gloo_net::http::Request;
    let sent = browser::with_session(Request::delete(path)).send().await;
    browser::check(path, sent).await.map(|_| ())
}

/// The stored session token, if any: from `localStorage`, or, where the browser denies a
/// third-party frame its storage, from the page's `session` query parameter (which `/widget.js`
/// sets from the token it keeps in the host page's own storage).
#[cfg(feature = "hydrate")]
pub fn stored_session() -> Option<String> {
    let stored = browser::local_storage()
        .and_then(|s| s.get_item(SESSION_KEY).ok().flatten())
        .filter(|token| !token.is_empty());
    stored
        .or_else(|| PAGE_SESSION.with(|t| t.borrow().clone()))
        .or_else(session_in_url)
}

#[cfg(feature = "hydrate")]
thread_local! {
    /// The token for this page's lifetime, for frames whose storage is blocked (the browser's
    /// single thread; gone on reload, when the loader passes it back in the URL).
    static PAGE_SESSION: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The `session` query parameter of the page's URL, if it looks like a token.
#[cfg(feature = "hydrate")]
fn session_in_url() -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    search
        .trim_start_matches('?')
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "session")
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Keeps `token` for later page loads. Where the frame's storage is blocked (a third-party
/// frame), the widget hands it to its loader on the host page, which keeps it there.
#[cfg(feature = "hydrate")]
pub fn store_session(token: &str) {
    PAGE_SESSION.with(|t| *t.borrow_mut() = Some(token.to_owned()));
    let stored = browser::local_storage()
        .map(|storage| storage.set_item(SESSION_KEY, token).is_ok())
        .unwrap_or(false);
    if !stored {
        crate::client::embed::hand_session_to_host(token);
    }
}

/// Waits `ms` milliseconds (browser timer).
#[cfg(feature = "hydrate")]
pub async fn sleep_ms(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// Outside the browser there is no fetch: always an error.
#[cfg(not(feature = "hydrate"))]
pub async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    Err(format!("{path}: fetching is only available in the browser"))
}

/// Outside the browser there is no fetch: always an error.
#[cfg(not(feature = "hydrate"))]
pub async fn get_json_with<T>(path: &str, _decode: Decoder<T>) -> Result<T, String> {
    Err(format!("{path}: fetching is only available in the browser"))
}

/// Outside the browser there is no fetch: always an error.
#[cfg(not(feature = "hydrate"))]
pub async fn post_json<B: Serialize + ?Sized, T>(
    path: &str,
    _body: &B,
    _decode: Decoder<T>,
) -> Result<T, String> {
    Err(format!("{path}: fetching is only available in the browser"))
}

/// Outside the browser there is no fetch: always an error.
#[cfg(not(feature = "hydrate"))]
pub async fn delete(path: &str) -> Result<(), String> {
    Err(format!("{path}: fetching is only available in the browser"))
}

/// Outside the browser nothing is stored.
#[cfg(not(feature = "hydrate"))]
pub fn stored_session() -> Option<String> {
    None
}

/// Outside the browser nothing is stored.
#[cfg(not(feature = "hydrate"))]
pub fn store_session(token: &str) {
    let _ = token;
}

/// Outside the browser there is no timer: returns at once.
#[cfg(not(feature = "hydrate"))]
pub async fn sleep_ms(ms: u32) {
    let _ = ms;
}

/// Asks the server for this session's token (`POST /api/session`; with the stored token, if
/// any, so a cookie-less browser keeps its session) and stores it for the WebSocket and later
/// requests. Returns the token.
pub async fn ensure_session() -> Result<String, String> {
    let answer = post_json(
        "/api/session",
        &serde_json::json!({}),
        crate::chat::SessionToken::from_json,
    )
    .await?;
    store_session(&answer.token);
    Ok(answer.token)
}
