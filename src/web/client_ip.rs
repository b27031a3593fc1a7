//! The client's address (SPEC section 4, "Client IP"): the socket peer, unless the peer is
//! a configured trusted proxy; only then is `X-Forwarded-For` read, from the right, and
//! the first address that is not a trusted proxy is the client.
//!
//! Walking from the right, each hop is parsed only when it is reached: hops left of the
//! client were written by whoever the client is and do not matter. A hop that is reached
//! and cannot be parsed (`a`, an empty hop, `10.0.0.5:443`) makes the client
//! [`ClientAddress::Unknown`]: a trusted proxy forwarded someone it did not name, and
//! taking the proxy's own address instead would let anyone behind a proxy that sits in a
//! bypass network skip the OTP.
//!
//! A trusted proxy that sends no `X-Forwarded-For` at all is a direct connection (a
//! health check, an administrator on the proxy machine): the proxy itself is the client.
//! So is a header whose every hop is a trusted proxy.

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::domain::ip::canonical_address;
use crate::domain::{ClientAddress, IpNetwork};

/// Resolves the client address of a request that arrived from `peer`.
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted_proxies: &[IpNetwork],
) -> ClientAddress {
    let peer = canonical_address(peer);
    let trusted = |address: IpAddr| trusted_proxies.iter().any(|net| net.contains(address));
    if !trusted(peer) {
        return ClientAddress::Known(peer);
    }
    // Every X-Forwarded-For header, in order, as one list of hops (left: original client).
    // Split as bytes: a value that is not visible ASCII is an unparsable hop, not no hop.
    let values = headers.get_all("x-forwarded-for");
    let hops: Vec<&[u8]> = values
        .iter()
        .flat_map(|value| value.as_bytes().split(|byte| *byte == b','))
        .collect();
    for hop in hops.into_iter().rev() {
        let Some(address) = parse_hop(hop) else {
            return ClientAddress::Unknown;
        };
        if !trusted(address) {
            return ClientAddress::Known(address);
        }
    }
    ClientAddress::Known(peer)
}

/// One hop: an IPv4 or IPv6 address with optional surrounding spaces, nothing else.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop).ok()?;
    text.trim().parse().ok().map(canonical_address)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn known(text: &str) -> ClientAddress {
        ClientAddress::Known(ip(text))
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn proxies() -> Vec<IpNetwork> {
        vec![
            IpNetwork::parse("10.0.0.0/24").unwrap(),
            IpNetwork::parse("::1").unwrap(),
        ]
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        for claim in ["10.20.0.5", "a", ""] {
            let spoofed = headers(&[claim]);
            assert_eq!(
                client_ip(ip("203.0.113.9"), &spoofed, &proxies()),
                known("203.0.113.9"),
                "{claim:?}"
            );
            assert_eq!(
                client_ip(ip("203.0.113.9"), &spoofed, &[]),
                known("203.0.113.9"),
                "{claim:?}"
            );
        }
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let chain = headers(&["198.51.100.1, 10.20.0.5, 10.0.0.7"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &chain, &proxies()),
            known("10.20.0.5")
        );
        // Several headers are one list.
        let split = headers(&["198.51.100.1", "10.20.0.5, 10.0.0.7"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &split, &proxies()),
            known("10.20.0.5")
        );
        assert_eq!(
            client_ip(ip("::1"), &headers(&["2001:db8::7"]), &proxies()),
            known("2001:db8::7")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers(&["::ffff:10.20.0.5"]), &proxies()),
            known("10.20.0.5"),
            "an IPv4-mapped hop is its IPv4 address"
        );
    }

    #[test]
    fn a_trusted_proxy_without_a_header_or_with_only_trusted_hops_is_itself_the_client() {
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &proxies()),
            known("10.0.0.2"),
            "a direct connection"
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers(&["10.0.0.9"]), &proxies()),
            known("10.0.0.2"),
            "all hops trusted"
        );
    }

    #[test]
    fn an_unparsable_hop_from_a_trusted_proxy_is_an_unknown_client() {
        for value in [
            "a",
            "10.20.0.5, a",
            "",
            " ",
            "10.20.0.5,",
            "10.20.0.5, , 10.0.0.7",
        ] {
            assert_eq!(
                client_ip(ip("10.0.0.2"), &headers(&[value]), &proxies()),
                ClientAddress::Unknown,
                "{value:?}"
            );
        }
        for value in [
            "10.20.0.5:443",
            "[2001:db8::7]",
            "2001:db8::7%eth0",
            "unknown",
        ] {
            assert_eq!(
                client_ip(ip("::1"), &headers(&[value]), &proxies()),
                ClientAddress::Unknown,
                "{value:?}"
            );
        }
        // The bad hop is in a later header, or behind a trusted hop: still reached first.
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                &headers(&["10.20.0.5", "a, 10.0.0.7"]),
                &proxies()
            ),
            ClientAddress::Unknown
        );
        let mut opaque = HeaderMap::new();
        opaque.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"10.20.0.\xff").unwrap(),
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &opaque, &proxies()),
            ClientAddress::Unknown,
            "not text"
        );
    }

    #[test]
    fn hops_left_of_the_client_do_not_matter() {
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers(&["a, 10.20.0.5"]), &proxies()),
            known("10.20.0.5")
        );
        assert_eq!(
            client_ip(
                ip("10.0.0.2"),
                &headers(&["a", "10.20.0.5, 10.0.0.7"]),
                &proxies()
            ),
            known("10.20.0.5")
        );
        assert_eq!(
            client_ip(ip("::1"), &headers(&["junk, 2001:db8::7"]), &proxies()),
            known("2001:db8::7")
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_proxy_rules() {
        let chain = headers(&["10.20.0.5"]);
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.2"), &chain, &proxies()),
            known("10.20.0.5")
        );
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.2"), &HeaderMap::new(), &proxies()),
            known("10.0.0.2")
        );
    }
}
