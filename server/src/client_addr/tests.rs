//! The client address behind proxies: trusted and untrusted peers, spoofed chains, IPv6, ports,
//! obfuscated identifiers and garbage, for both headers.

use super::*;

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter()
        .map(|s| parse_trusted_proxy(s).unwrap())
        .collect()
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The client of a request from `peer` with `pairs`, trusting `trusted`, reading `header`.
fn client(peer: &str, trusted: &[&str], header: ProxyHeader, pairs: &[(&str, &str)]) -> ClientAddr {
    ClientAddr::resolve(Some(ip(peer)), &headers(pairs), &nets(trusted), header)
}

fn xff(peer: &str, trusted: &[&str], pairs: &[(&str, &str)]) -> ClientAddr {
    client(peer, trusted, ProxyHeader::XForwardedFor, pairs)
}

fn fwd(peer: &str, trusted: &[&str], pairs: &[(&str, &str)]) -> ClientAddr {
    client(peer, trusted, ProxyHeader::Forwarded, pairs)
}

fn at(s: &str, https: bool) -> ClientAddr {
    ClientAddr {
        ip: Some(ip(s)),
        https,
    }
}

#[test]
fn trusted_proxies_parse_as_addresses_and_ranges() {
    assert_eq!(
        parse_trusted_proxy("10.0.0.1").unwrap().to_string(),
        "10.0.0.1/32"
    );
    assert_eq!(parse_trusted_proxy(" ::1 ").unwrap().to_string(), "::1/128");
    assert_eq!(
        parse_trusted_proxy("10.1.2.3/8").unwrap().to_string(),
        "10.0.0.0/8",
        "host bits are dropped"
    );
    assert_eq!(
        parse_trusted_proxy("fd00::/8").unwrap().to_string(),
        "fd00::/8"
    );
    for bad in ["", "localhost", "10.0.0.0/33", "10.0.0.1:80", "*"] {
        let e = parse_trusted_proxy(bad).unwrap_err();
        assert_eq!(e.code(), "not_an_address", "{bad}");
    }
}

#[test]
fn an_untrusted_peer_is_the_client_whatever_it_sends() {
    let forged = [
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-proto", "https"),
        ("forwarded", "for=203.0.113.9;proto=https"),
    ];
    assert_eq!(xff("192.0.2.7", &[], &forged), at("192.0.2.7", false));
    assert_eq!(
        xff("192.0.2.7", &["10.0.0.0/8"], &forged),
        at("192.0.2.7", false)
    );
    assert_eq!(
        fwd("192.0.2.7", &["10.0.0.0/8"], &forged),
        at("192.0.2.7", false)
    );
    assert_eq!(
        ClientAddr::resolve(
            None,
            &headers(&forged),
            &nets(&["0.0.0.0/0"]),
            ProxyHeader::Forwarded
        ),
        ClientAddr::default(),
        "no peer, nothing believed"
    );
}

#[test]
fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
    let proxy = ["10.0.0.1"];
    assert_eq!(
        xff(
            "10.0.0.1",
            &proxy,
            &[
                ("x-forwarded-for", "198.51.100.4"),
                ("x-forwarded-proto", "https")
            ]
        ),
        at("198.51.100.4", true)
    );
    // The client forged two hops; the proxy appended the real one.
    assert_eq!(
        xff(
            "10.0.0.1",
            &proxy,
            &[("x-forwarded-for", "1.1.1.1, 10.0.0.1, 198.51.100.4")]
        ),
        at("198.51.100.4", false)
    );
    // A chain of trusted proxies is skipped, from the right.
    assert_eq!(
        xff(
            "10.0.0.1",
            &["10.0.0.0/24", "172.16.0.0/12"],
            &[(
                "x-forwarded-for",
                "6.6.6.6, 198.51.100.4, 172.16.5.5, 10.0.0.9"
            )]
        ),
        at("198.51.100.4", false)
    );
    // Repeated header lines are one list, in order.
    assert_eq!(
        xff(
            "10.0.0.1",
            &proxy,
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-for", "198.51.100.4")
            ]
        ),
        at("198.51.100.4", false)
    );
    // Every hop trusted: the left-most is the client. No header: the proxy itself.
    assert_eq!(
        xff(
            "10.0.0.1",
            &["10.0.0.0/8"],
            &[("x-forwarded-for", "10.0.0.3, 10.0.0.2")]
        ),
        at("10.0.0.3", false)
    );
    assert_eq!(xff("10.0.0.1", &proxy, &[]), at("10.0.0.1", false));
}

#[test]
fn the_proto_is_the_nearest_proxys_or_per_hop() {
    let proxy = ["10.0.0.1", "10.0.0.2"];
    // The nearest proxy overwrote it (nginx's `$scheme`): believed, whatever the client sent.
    assert_eq!(
        xff(
            "10.0.0.1",
            &proxy,
            &[
                ("x-forwarded-for", "9.9.9.9, 198.51.100.4"),
                ("x-forwarded-proto", "HTTPS")
            ]
        ),
        at("198.51.100.4", true)
    );
    // One per hop: the client's hop says.
    assert_eq!(
        xff(
            "10.0.0.1",
            &proxy,
            &[
                ("x-forwarded-for", "198.51.100.4, 10.0.0.2"),
                ("x-forwarded-proto", "https, http")
            ]
        ),
        at("198.51.100.4", true)
    );
    assert_eq!(
        xff(
            "10.0.0.1",
            &proxy,
            &[
                ("x-forwarded-for", "198.51.100.4"),
                ("x-forwarded-proto", "gopher")
            ]
        ),
        at("198.51.100.4", false),
        "an unknown scheme is not https"
    );
}

#[test]
fn ipv6_ports_and_mapped_addresses() {
    let proxy = ["::1", "10.0.0.1"];
    assert_eq!(
        xff("::1", &proxy, &[("x-forwarded-for", "2001:db8::7")]),
        at("2001:db8::7", false)
    );
    assert_eq!(
        xff("::1", &proxy, &[("x-forwarded-for", "[2001:db8::7]:4711")]),
        at("2001:db8::7", false)
    );
    assert_eq!(
        xff("::1", &proxy, &[("x-forwarded-for", "[2001:db8::7]")]),
        at("2001:db8::7", false)
    );
    assert_eq!(
        xff("::1", &proxy, &[("x-forwarded-for", "198.51.100.4:51000")]),
        at("198.51.100.4", false)
    );
    // An IPv4 peer seen on an IPv6 socket is still the trusted 10.0.0.1, and a mapped client
    // address is reported as IPv4 (one rate bucket per client, however it is written).
    assert_eq!(
        xff(
            "::ffff:10.0.0.1",
            &proxy,
            &[("x-forwarded-for", "::ffff:198.51.100.4")]
        ),
        at("198.51.100.4", false)
    );
    assert_eq!(xff("::ffff:192.0.2.1", &[], &[]), at("192.0.2.1", false));
}

#[test]
fn forwarded_elements_with_ports_quotes_and_case() {
    let proxy = ["10.0.0.1", "2001:db8::1"];
    assert_eq!(
        fwd(
            "10.0.0.1",
            &proxy,
            &[("forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43")]
        ),
        at("192.0.2.60", true)
    );
    assert_eq!(
        fwd(
            "10.0.0.1",
            &proxy,
            &[("forwarded", r#"For="[2001:db8:cafe::17]:4711";Proto=HTTP"#)]
        ),
        at("2001:db8:cafe::17", false)
    );
    assert_eq!(
        fwd(
            "10.0.0.1",
            &proxy,
            &[(
                "forwarded",
                r#"for=6.6.6.6;proto=https, for="192.0.2.43:47011", for="[2001:db8::1]""#
            )]
        ),
        at("192.0.2.43", false),
        "the forged left-most element is not reached"
    );
    // Only the configured header counts: X-Forwarded-For is ignored in Forwarded mode and the
    // other way round (a proxy passes the header it does not write through untouched).
    assert_eq!(
        fwd(
            "10.0.0.1",
            &proxy,
            &[
                ("x-forwarded-for", "6.6.6.6"),
                ("x-forwarded-proto", "https")
            ]
        ),
        at("10.0.0.1", false)
    );
    assert_eq!(
        xff(
            "10.0.0.1",
            &proxy,
            &[("forwarded", "for=6.6.6.6;proto=https")]
        ),
        at("10.0.0.1", false)
    );
}

#[test]
fn hidden_and_unknown_hops_stop_at_the_nearest_known_proxy() {
    let proxy = ["10.0.0.1", "10.0.0.2"];
    // The proxy hides its client: the proxy is the client we know (its scheme still counts).
    assert_eq!(
        fwd(
            "10.0.0.1",
            &proxy,
            &[("forwarded", "for=6.6.6.6, for=_gazonk;proto=https")]
        ),
        at("10.0.0.1", true)
    );
    assert_eq!(
        fwd(
            "10.0.0.1",
            &proxy,
            &[("forwarded", "for=6.6.6.6, for=unknown, for=10.0.0.2")]
        ),
        at("10.0.0.2", false)
    );
    assert_eq!(
        xff(
            "10.0.0.1",
            &proxy,
            &[("x-forwarded-for", "6.6.6.6, unknown, 10.0.0.2")]
        ),
        at("10.0.0.2", false)
    );
    // An element with no for= names nobody.
    assert_eq!(
        fwd(
            "10.0.0.1",
            &proxy,
            &[("forwarded", "for=6.6.6.6, proto=https")]
        ),
        at("10.0.0.1", true)
    );
}

#[test]
fn garbage_is_never_believed_nor_anything_left_of_it() {
    let proxy = ["10.0.0.1"];
    for chain in [
        "not-an-address",
        "6.6.6.6, not-an-address",
        "6.6.6.6, ",
        "300.1.1.1",
        "6.6.6.6:99999",
        "[6.6.6.6]:",
        "",
    ] {
        assert_eq!(
            xff("10.0.0.1", &proxy, &[("x-forwarded-for", chain)]),
            at("10.0.0.1", false),
            "{chain:?}"
        );
    }
    for chain in [
        "for",
        "for=6.6.6.6, nonsense",
        "for=6.6.6.6;proto=gopher",
        "for=6.6.6.6, for=[::1",
        "for=not-an-address",
    ] {
        assert_eq!(
            fwd("10.0.0.1", &proxy, &[("forwarded", chain)]),
            at("10.0.0.1", false),
            "{chain:?}"
        );
    }
    // Garbage left of the real client does not matter: the walk stops at the client first.
    assert_eq!(
        xff(
            "10.0.0.1",
            &proxy,
            &[("x-forwarded-for", "%%%, 198.51.100.4")]
        ),
        at("198.51.100.4", false)
    );
    // Bytes that are not text make the header garbage.
    let mut h = HeaderMap::new();
    h.insert(
        "x-forwarded-for",
        axum::http::HeaderValue::from_bytes(b"198.51.100.4\xff").unwrap(),
    );
    assert_eq!(
        ClientAddr::resolve(
            Some(ip("10.0.0.1")),
            &h,
            &nets(&proxy),
            ProxyHeader::XForwardedFor
        ),
        at("10.0.0.1", false)
    );
}
