//! Who a request is, as the fair queue sees it (a [`Party`]): the API key it carries, if that key
//! is configured (with the key's weight); otherwise its session, when the request named one
//! (cookie, header or query); otherwise, for an anonymous HTTP client that names no session, its
//! address (the client's, behind a trusted proxy: [`crate::client_addr`]), so that a client cannot
//! claim a fresh share of the device with every request.
//!
//! Party keys are internal (logs never show them, clients never see them). Concurrency: pure
//! functions of the request and the configuration.

use crate::config::ApiKey;
use crate::ids::SessionId;
use axum::http::HeaderMap;
use std::net::IpAddr;
use turnstile_scheduler::Party;

/// The API key a request carries: `Authorization: Bearer KEY`, `X-API-Key: KEY`, or the
/// `api_key` query parameter (for WebSocket clients, which cannot set headers in browsers).
fn presented_key<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let header = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let query = query.and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "api_key")
            .map(|(_, v)| v)
    });
    bearer.or(header).or(query).map(str::trim)
}

/// The party for a request.
pub fn of_request(
    keys: &[ApiKey],
    headers: &HeaderMap,
    query: Option<&str>,
    session: &SessionId,
    new_session: bool,
    peer: Option<IpAddr>,
) -> Party {
    if let Some(presented) = presented_key(headers, query) {
        if let Some(k) = keys.iter().find(|k| k.key == presented) {
            return Party {
                key: format!("key:{}", k.key).into(),
                weight: k.weight,
            };
        }
        tracing::debug!("request carried an API key that is not configured; ignored");
    }
    match (new_session, peer) {
        (true, Some(ip)) => Party::new(format!("ip:{ip}")),
        _ => Party::new(format!("session:{session}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<ApiKey> {
        vec![ApiKey {
            key: "paid".into(),
            weight: 4,
        }]
    }

    #[test]
    fn a_configured_key_wins_with_its_weight() {
        let s = SessionId::new();
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer paid".parse().unwrap());
        let p = of_request(&keys(), &h, None, &s, true, None);
        assert_eq!((p.key.as_ref(), p.weight), ("key:paid", 4));
        let p = of_request(
            &keys(),
            &HeaderMap::new(),
            Some("x=1&api_key=paid"),
            &s,
            false,
            None,
        );
        assert_eq!(p.weight, 4);
        let mut h = HeaderMap::new();
        h.insert("x-api-key", "nope".parse().unwrap());
        let p = of_request(&keys(), &h, None, &s, false, None);
        assert_eq!(
            p.key.as_ref(),
            format!("session:{s}"),
            "unknown keys are ignored"
        );
    }

    #[test]
    fn anonymous_clients_share_by_address_and_sessions_by_session() {
        let s = SessionId::new();
        let ip: IpAddr = "10.0.0.7".parse().unwrap();
        let anon = of_request(&[], &HeaderMap::new(), None, &s, true, Some(ip));
        assert_eq!(anon.key.as_ref(), "ip:10.0.0.7");
        let named = of_request(&[], &HeaderMap::new(), None, &s, false, Some(ip));
        assert_eq!(named.key.as_ref(), format!("session:{s}"));
    }
}
