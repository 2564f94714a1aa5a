//! JSON over HTTP for the stats page: [`get_json`] fetches a same-origin path and decodes it,
//! [`sleep_ms`] waits between polls.
//!
//! With `hydrate` these use gloo-net's fetch and gloo-timers; elsewhere `get_json` fails and
//! `sleep_ms` returns at once (they are only called from browser-only effects).

use serde::de::DeserializeOwned;

/// `GET path` (same origin) and decode the JSON body. Failures are sentences for people,
/// including the server's own `error.message` when it sent one.
#[cfg(feature = "hydrate")]
pub async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    use crate::api::ErrorBody;
    use gloo_net::http::Request;

    let response = Request::get(path)
        .send()
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    if !response.ok() {
        let status = response.status();
        return Err(match response.json::<ErrorBody>().await {
            Ok(body) => format!("{path}: {} ({})", body.error.message, body.error.code),
            Err(_) => format!("{path}: HTTP {status}"),
        });
    }
    response
        .json::<T>()
        .await
        .map_err(|e| format!("{path}: unexpected answer ({e})"))
}

/// Outside the browser there is no fetch: always an error.
#[cfg(not(feature = "hydrate"))]
pub async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    Err(format!("{path}: fetching is only available in the browser"))
}

/// Waits `ms` milliseconds (browser timer).
#[cfg(feature = "hydrate")]
pub async fn sleep_ms(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// Outside the browser there is no timer: returns at once.
#[cfg(not(feature = "hydrate"))]
pub async fn sleep_ms(ms: u32) {
    let _ = ms;
}
