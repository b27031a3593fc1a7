//! The client's address (SPEC section 4, "Client IP"): the socket peer, unless the peer is
//! a configured trusted proxy; only then is `X-Forwarded-For` read, from the right, and
//! the first address that is not a trusted proxy is the client.

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::domain::ip::canonical_address;
use crate::domain::IpNetwork;

/// Resolves the client address of a request that arrived from `peer`.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpNetwork]) -> IpAddr {
    let peer = canonical_address(peer);
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(*ip));
    if !trusted(&peer) {
        return peer;
    }
    // Every X-Forwarded-For header, in order, as one list of hops (left: original client).
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>()
        .into_iter()
        .map(|hop| hop.parse::<IpAddr>().map(canonical_address))
        .collect::<Result<_, _>>()
        .unwrap_or_default();
    // A malformed list is not trusted at all: the proxy itself is the client then.
    hops.into_iter()
        .rev()
        .find(|hop| !trusted(hop))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append("x-forwarded-for", HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn proxies() -> Vec<IpNetwork> {
        vec!["10.0.0.0/24".parse().unwrap(), "::1".parse().unwrap()]
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let spoofed = headers(&["10.20.0.5"]);
        assert_eq!(
            client_ip(ip("203.0.113.9"), &spoofed, &proxies()),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_ip(ip("203.0.113.9"), &spoofed, &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let chain = headers(&["198.51.100.1, 10.20.0.5, 10.0.0.7"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &chain, &proxies()),
            ip("10.20.0.5")
        );
        // Several headers are one list.
        let split = headers(&["198.51.100.1", "10.20.0.5, 10.0.0.7"]);
        assert_eq!(
            client_ip(ip("10.0.0.2"), &split, &proxies()),
            ip("10.20.0.5")
        );
        assert_eq!(
            client_ip(ip("::1"), &headers(&["2001:db8::7"]), &proxies()),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn a_trusted_proxy_without_a_usable_header_is_itself_the_client() {
        assert_eq!(
            client_ip(ip("10.0.0.2"), &HeaderMap::new(), &proxies()),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers(&["not-an-ip"]), &proxies()),
            ip("10.0.0.2")
        );
        assert_eq!(
            client_ip(ip("10.0.0.2"), &headers(&["10.0.0.9"]), &proxies()),
            ip("10.0.0.2"),
            "all hops trusted"
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_proxy_rules() {
        let chain = headers(&["10.20.0.5"]);
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.2"), &chain, &proxies()),
            ip("10.20.0.5")
        );
    }
}
