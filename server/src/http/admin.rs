//! Who may see the admin views: with `--admin-token` set, the job-level queue detail
//! (`/queue/status`'s `queue_items`) and, with `--protect-metrics`, `/metrics` need
//! `Authorization: Bearer <token>`. Without a token configured, they are public (the defaults of
//! the systems Turnstile replaces). The comparison takes the same time whatever the guess.
//!
//! Concurrency: pure functions of the request and the configuration.

use crate::config::Config;
use axum::http::{header, HeaderMap};

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the request carries the configured admin token (false when none is configured).
pub fn is_admin(config: &Config, headers: &HeaderMap) -> bool {
    let Some(token) = config.admin_token.as_deref().filter(|t| !t.is_empty()) else {
        return false;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| same(given.trim().as_bytes(), token.as_bytes()))
}

/// Whether job-level detail may be shown: no token configured, or the request has it.
pub fn may_see_detail(config: &Config, headers: &HeaderMap) -> bool {
    config.admin_token.as_deref().is_none_or(str::is_empty) || is_admin(config, headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn only_the_exact_token_is_admin() {
        let open = Config::parse_from(["turnstile"]);
        let locked = Config::parse_from(["turnstile", "--admin-token", "s3cret"]);
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            h
        };
        assert!(may_see_detail(&open, &HeaderMap::new()));
        assert!(!is_admin(&open, &with("Bearer s3cret")));
        assert!(!may_see_detail(&locked, &HeaderMap::new()));
        assert!(may_see_detail(&locked, &with("Bearer s3cret")));
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret!",
            "Basic s3cret",
            "s3cret",
            "Bearer ",
        ] {
            assert!(!may_see_detail(&locked, &with(wrong)), "{wrong}");
        }
        assert!(
            !format!("{locked:?}").contains("s3cret"),
            "the token is never printed"
        );
    }
}
