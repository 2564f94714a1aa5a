//! The request's party as an extractor ([`RequestParty`]): `crate::party` decides who a request
//! is; this reads what it needs from the request and the configured keys.
//!
//! Concurrency: pure.

use crate::ids::SessionId;
use crate::party::of_request;
use turnstile_scheduler::Party;

/// Marks a request whose session the middleware had to create (the request named none).
#[derive(Clone, Copy, Debug)]
pub struct NewSession;

/// The party of the request being handled, as an extractor.
pub struct RequestParty(pub Party);

impl axum::extract::FromRequestParts<crate::http::AppState> for RequestParty {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::http::AppState,
    ) -> Result<Self, Self::Rejection> {
        // The session middleware runs first on every route; a request without one (a router
        // assembled without it, in tests) is its own session.
        let session = parts
            .extensions
            .get::<SessionId>()
            .cloned()
            .unwrap_or_default();
        let new_session = parts.extensions.get::<NewSession>().is_some();
        let peer = crate::client_addr::ClientAddr::of(&parts.extensions).ip;
        Ok(RequestParty(of_request(
            &state.config.api_keys,
            &parts.headers,
            parts.uri.query(),
            &session,
            new_session,
            peer,
        )))
    }
}
