//! The middleware that computes each request's client address and scheme once
//! (`crate::client_addr` says how) and puts it in the request's extensions.
//!
//! Concurrency: pure.

use crate::client_addr::ClientAddr;
use crate::http::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;

/// The middleware: computes the request's [`ClientAddr`] and puts it in its extensions. Runs
/// before every other middleware that needs it (sessions, limits, security headers).
pub async fn layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = ClientAddr::resolve(
        peer,
        req.headers(),
        &state.config.trusted_proxies,
        state.config.proxy_header,
    );
    req.extensions_mut().insert(client);
    next.run(req).await
}
