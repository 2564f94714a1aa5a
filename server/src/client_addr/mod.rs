//! Who the client of a request is: its address, and whether it reached the site over HTTPS.
//! Computed once per request (by the HTTP layer's middleware, `crate::http::client_addr::layer`),
//! and put in the request's extensions as a [`ClientAddr`]; every address-based rule (per-address request rates and WebSocket caps in
//! `limits` and `ws`, anonymous parties in `party`) and every HTTPS-only header (the cookie's
//! `Secure`, HSTS) reads it. Nothing else reads the TCP peer.
//!
//! Directly, the client is the TCP peer and the scheme is plain HTTP (Turnstile does not terminate
//! TLS itself). Behind a reverse proxy every request comes from the proxy, so when the peer is one
//! of `--trusted-proxies` (addresses or CIDR ranges) the header those proxies write is read
//! instead (`--proxy-header`: `X-Forwarded-For` with `X-Forwarded-Proto`, the default, or RFC
//! 7239's `Forwarded`), walked from the right to the right-most hop that is not a trusted proxy
//! (see [`chain`]). Only the configured header is read: a proxy passes the other one through as
//! the client sent it. From any other peer the headers are ignored, so nobody can claim another
//! address or HTTPS.
//!
//! Concurrency: pure functions of the request and the read-only configuration; the middleware
//! holds no state.

pub mod chain;
#[cfg(test)]
mod tests;

use axum::http::{request::Parts, Extensions, HeaderMap};
use ipnet::IpNet;
use std::net::IpAddr;

/// Which header the trusted proxies write.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ProxyHeader {
    /// `X-Forwarded-For` (and `X-Forwarded-Proto`): what nginx, Caddy, Traefik, HAProxy and
    /// most cloud load balancers send.
    #[default]
    #[value(name = "x-forwarded-for")]
    XForwardedFor,
    /// RFC 7239's `Forwarded` (`for=` and `proto=`).
    #[value(name = "forwarded")]
    Forwarded,
}

/// Why a `--trusted-proxies` entry was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProxyConfigError {
    /// Neither an address nor a CIDR range.
    #[error("{0:?} is neither an address (10.0.0.1, ::1) nor a range (10.0.0.0/8, fd00::/8)")]
    NotAnAddress(String),
}

impl ProxyConfigError {
    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            ProxyConfigError::NotAnAddress(_) => "not_an_address",
        }
    }
}

/// One `--trusted-proxies` entry: an address (a range of one) or a CIDR range.
pub fn parse_trusted_proxy(s: &str) -> Result<IpNet, ProxyConfigError> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map(|n| n.trunc())
        .map_err(|_| ProxyConfigError::NotAnAddress(s.to_owned()))
}

/// The client of one request, as every rule sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's address: the TCP peer's, or behind a trusted proxy the right-most hop it
    /// reported that is not itself trusted. `None` only when the server was not told the peer
    /// (a router served without connection info, in tests): no per-address rule applies then.
    pub ip: Option<IpAddr>,
    /// The client reached the site over HTTPS, as a trusted proxy reported (never true for a
    /// direct connection: Turnstile serves plain HTTP).
    pub https: bool,
}

impl ClientAddr {
    /// The client of a request whose TCP peer is `peer`, under the given proxy settings.
    pub fn resolve(
        peer: Option<IpAddr>,
        headers: &HeaderMap,
        trusted: &[IpNet],
        header: ProxyHeader,
    ) -> ClientAddr {
        let Some(peer) = peer else {
            return ClientAddr::default();
        };
        if !chain::trusted(trusted, peer) {
            return ClientAddr {
                ip: Some(peer.to_canonical()),
                https: false,
            };
        }
        let hops = match header {
            ProxyHeader::XForwardedFor => chain::x_forwarded(headers),
            ProxyHeader::Forwarded => chain::forwarded(headers),
        };
        let found = chain::walk(trusted, peer, &hops);
        ClientAddr {
            ip: Some(found.ip),
            https: found.https.unwrap_or(false),
        }
    }

    /// What the middleware (`crate::http::client_addr::layer`) put in a request's extensions (nothing known, if it did not run).
    pub fn of(extensions: &Extensions) -> ClientAddr {
        extensions.get::<ClientAddr>().copied().unwrap_or_default()
    }

    /// Whether responses to this client carry the HTTPS-only headers (`Secure` cookie, HSTS):
    /// always with `--secure-cookies`, otherwise when a trusted proxy says the client came over
    /// HTTPS.
    pub fn secure(&self, secure_cookies: bool) -> bool {
        secure_cookies || self.https
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr::of(&parts.extensions))
    }
}
