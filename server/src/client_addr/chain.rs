//! The forwarding chain a trusted proxy reports, read into hops and walked from the right: the
//! client is the right-most hop that is not itself a trusted proxy. Everything to the left of it
//! was written by that client or by hosts it talked to, so it is never believed.
//!
//! Each proxy appends the address it received the request from, so the right-most entry was
//! written by our TCP peer (trusted, or the chain is not read at all), the one before it by that
//! entry's host, and so on: an entry is believable exactly while every hop to its right is a
//! trusted proxy. The walk stops at the first entry that names no address (`unknown`, an
//! obfuscated `_identifier`, or garbage): the client is then the nearest proxy that is known,
//! never an address from further left.
//!
//! Concurrency: pure functions.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// One entry of a forwarding chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hop {
    /// An entry that parsed: the address it names, if any, and the scheme it was reached by, if
    /// it says.
    Node {
        /// The address (`None` for `unknown` and obfuscated identifiers).
        ip: Option<IpAddr>,
        /// `Some(true)` for https, `Some(false)` for http, `None` when the entry does not say.
        https: Option<bool>,
    },
    /// An entry that did not parse: nothing at or left of it is believed.
    Garbage,
}

/// What the walk found: the client's address and, if a believable entry said, its scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walked {
    /// The right-most untrusted hop (or the nearest known one).
    pub ip: IpAddr,
    /// Whether that hop reached the first trusted proxy over HTTPS, if said.
    pub https: Option<bool>,
}

/// Whether `ip` is one of the trusted proxies.
pub fn trusted(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    nets.iter().any(|n| n.contains(&ip))
}

/// Walks `hops` (left to right as sent) from the right, starting from the trusted peer `peer`.
pub fn walk(nets: &[IpNet], peer: IpAddr, hops: &[Hop]) -> Walked {
    let mut found = Walked {
        ip: peer.to_canonical(),
        https: None,
    };
    for hop in hops.iter().rev() {
        let Hop::Node { ip, https } = *hop else {
            break;
        };
        // Written by a trusted hop, so its scheme is believed even when its address is hidden.
        if https.is_some() {
            found.https = https;
        }
        let Some(ip) = ip else { break };
        found.ip = ip.to_canonical();
        if !trusted(nets, ip) {
            break;
        }
    }
    found
}

/// The values of every line of header `name`, comma-separated, in order (HTTP joins repeated
/// lines with commas). Lines that are not visible ASCII make the whole list garbage.
fn entries<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Vec<Option<&'a str>> {
    let mut out = Vec::new();
    for value in headers.get_all(name) {
        match value.to_str() {
            Ok(v) => out.extend(v.split(',').map(str::trim).map(Some)),
            Err(_) => out.push(None),
        }
    }
    out
}

/// A scheme named by a forwarding header.
fn scheme(s: &str) -> Option<bool> {
    match s.trim().trim_matches('"').to_ascii_lowercase().as_str() {
        "https" | "wss" => Some(true),
        "http" | "ws" => Some(false),
        _ => None,
    }
}

/// One `X-Forwarded-For` entry: an address, with or without a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`, `[2001:db8::1]`), or `unknown`; anything else is garbage.
fn xff_entry(s: &str) -> Hop {
    let s = s.trim().trim_matches('"');
    let ip = if s.eq_ignore_ascii_case("unknown") || s.starts_with('_') {
        None
    } else if let Ok(ip) = IpAddr::from_str(s) {
        Some(ip)
    } else if let Ok(sa) = SocketAddr::from_str(s) {
        Some(sa.ip())
    } else if let Some(ip) = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| IpAddr::from_str(r).ok())
    {
        Some(ip)
    } else {
        return Hop::Garbage;
    };
    Hop::Node { ip, https: None }
}

/// The chain of `X-Forwarded-For`, with `X-Forwarded-Proto`'s schemes: one per hop when the
/// proxies append one per hop (as many entries as `X-Forwarded-For`), otherwise the right-most
/// one (the nearest proxy's, which usually overwrites it) for the right-most hop.
pub fn x_forwarded(headers: &axum::http::HeaderMap) -> Vec<Hop> {
    let mut hops: Vec<Hop> = entries(headers, "x-forwarded-for")
        .into_iter()
        .map(|e| e.map_or(Hop::Garbage, xff_entry))
        .collect();
    let protos = entries(headers, "x-forwarded-proto");
    let proto_of = |e: &Option<&str>| e.and_then(scheme);
    if protos.len() == hops.len() {
        for (hop, proto) in hops.iter_mut().zip(&protos) {
            if let Hop::Node { https, .. } = hop {
                *https = proto_of(proto);
            }
        }
    } else if let (Some(Hop::Node { https, .. }), Some(proto)) = (hops.last_mut(), protos.last()) {
        *https = proto_of(proto);
    }
    hops
}

/// The chain of RFC 7239's `Forwarded`: one hop per element (`for=` and `proto=`; `by=` and
/// `host=` are not used).
pub fn forwarded(headers: &axum::http::HeaderMap) -> Vec<Hop> {
    use forwarded_header_value::{ForwardedStanza, Protocol};
    entries(headers, "forwarded")
        .into_iter()
        .map(|e| match e.map(ForwardedStanza::from_str) {
            Some(Ok(stanza)) => Hop::Node {
                ip: stanza.forwarded_for_ip(),
                https: stanza.forwarded_proto.map(|p| p == Protocol::Https),
            },
            _ => Hop::Garbage,
        })
        .collect()
}
