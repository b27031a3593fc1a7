//! IP Settings: acceptable IP rules and the "In Network" test (SPEC sections 1 and 3).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A rule's network: one IPv4/IPv6 address or a CIDR range, always in canonical form
/// (`10.1.0.0/16`, `2001:db8::/32`; a single address is `/32` or `/128`), so two ways of
/// writing one network are the same value and "already exists" can be detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNetwork(IpNet);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpNetworkError {
    #[error("enter an IP address or a CIDR range such as 10.20.0.0/16")]
    Empty,
    #[error("\"{0}\" is not an IPv4/IPv6 address or CIDR range (for example 192.168.10.7 or 10.20.0.0/16)")]
    Invalid(String),
    #[error("{given} has host bits set; the network is {network}")]
    HostBitsSet { given: String, network: String },
}

impl IpNetwork {
    /// The loopback networks, `127.0.0.0/8` and `::1/128`: the default readers of
    /// `/metrics`. Built here because the field is private (no host bits, so valid).
    pub const LOOPBACK: [Self; 2] = [
        Self(IpNet::V4(Ipv4Net::new_assert(
            Ipv4Addr::new(127, 0, 0, 0),
            8,
        ))),
        Self(IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::LOCALHOST, 128))),
    ];

    pub fn parse(text: &str) -> Result<Self, IpNetworkError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(IpNetworkError::Empty);
        }
        // Echo at most a short prefix of bad input back (it goes into an error message).
        let shown = || text.chars().take(60).collect::<String>();
        if let Ok(address) = text.parse::<IpAddr>() {
            return Ok(Self(IpNet::from(canonical_address(address))));
        }
        let net: IpNet = text.parse().map_err(|_| IpNetworkError::Invalid(shown()))?;
        let net = match net {
            IpNet::V6(v6) => match v6.addr().to_ipv4_mapped() {
                // ::ffff:10.0.0.0/104 is the IPv4 network 10.0.0.0/8.
                Some(v4) if v6.prefix_len() >= 96 => {
                    IpNet::new(IpAddr::V4(v4), v6.prefix_len() - 96)
                        .map_err(|_| IpNetworkError::Invalid(shown()))?
                }
                _ => net,
            },
            IpNet::V4(_) => net,
        };
        if net.trunc() != net {
            return Err(IpNetworkError::HostBitsSet {
                given: shown(),
                network: net.trunc().to_string(),
            });
        }
        Ok(Self(net))
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.contains(&canonical_address(address))
    }

    /// Broader than [`BROAD_IPV4_PREFIX`] (IPv4) or [`BROAD_IPV6_PREFIX`] (IPv6): a rule
    /// for such a network asks for confirmation first (SPEC section 11), `0.0.0.0/0` and
    /// `::/0` included.
    pub fn is_broad(&self) -> bool {
        match self.0 {
            IpNet::V4(v4) => v4.prefix_len() < BROAD_IPV4_PREFIX,
            IpNet::V6(v6) => v6.prefix_len() < BROAD_IPV6_PREFIX,
        }
    }

    /// How many addresses the network holds, in words for a confirmation page
    /// ("65,536 addresses", "every IPv4 address").
    pub fn size_text(&self) -> String {
        let (bits, prefix) = match self.0 {
            IpNet::V4(v4) => (32u32, u32::from(v4.prefix_len())),
            IpNet::V6(v6) => (128u32, u32::from(v6.prefix_len())),
        };
        if prefix == 0 {
            return if bits == 32 {
                "every IPv4 address".to_owned()
            } else {
                "every IPv6 address".to_owned()
            };
        }
        let free = bits - prefix;
        if free < 64 {
            let count = 1u64 << free;
            let digits = count.to_string();
            let mut grouped = String::new();
            for (i, c) in digits.chars().enumerate() {
                if i > 0 && (digits.len() - i) % 3 == 0 {
                    grouped.push(',');
                }
                grouped.push(c);
            }
            format!("{grouped} addresses")
        } else {
            format!("2^{free} addresses")
        }
    }
}

/// An IPv4 rule with a prefix shorter than this is broad (SPEC section 11: "broader than /16").
pub const BROAD_IPV4_PREFIX: u8 = 16;
/// An IPv6 rule with a prefix shorter than this is broad (SPEC section 11: "broader than /48").
pub const BROAD_IPV6_PREFIX: u8 = 48;

impl std::fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// [`IpNetwork::parse`], so that `"10.0.0.0/8".parse()` gives the same canonical network.
impl std::str::FromStr for IpNetwork {
    type Err = IpNetworkError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// IPv4 clients seen on a dual-stack socket arrive as `::ffff:a.b.c.d`; rules are written
/// for `a.b.c.d`.
pub fn canonical_address(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        IpAddr::V4(_) => address,
    }
}

/// The client of a request, as the web layer resolved it (SPEC section 4, "Client IP").
///
/// `Unknown` is what a trusted proxy leaves when the `X-Forwarded-For` hop that names
/// the client cannot be parsed: the proxy vouches for someone, but not for whom. Falling
/// back to the proxy's own address would put anyone behind a proxy that sits in a bypass
/// network in network, so an unknown client is in no network at all and is audited as
/// `unknown`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientAddress {
    Known(IpAddr),
    Unknown,
}

impl ClientAddress {
    /// A known client, in canonical form (`::ffff:a.b.c.d` is `a.b.c.d`).
    pub fn known(address: IpAddr) -> Self {
        Self::Known(canonical_address(address))
    }

    /// Whether the client is in one of `networks`. An unknown client is in none: every
    /// network check (bypass, `--validate-client`, `--metrics-client`) refuses it.
    pub fn is_in(self, networks: &[IpNetwork]) -> bool {
        match self {
            Self::Known(address) => networks.iter().any(|network| network.contains(address)),
            Self::Unknown => false,
        }
    }
}

/// The address, or `unknown`: the text the audit log, sessions and sign-in transactions
/// keep.
impl std::fmt::Display for ClientAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Known(address) => address.fmt(f),
            Self::Unknown => f.write_str("unknown"),
        }
    }
}

/// An Acceptable IP Rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpRule {
    pub network: IpNetwork,
    pub bypass_2fa: bool,
    pub note: String,
}

/// "In Network": bypass is enabled and the client address matches a rule with Bypass 2FA.
/// An unknown client is never in network.
pub fn in_network(bypass_enabled: bool, client: ClientAddress, rules: &[IpRule]) -> bool {
    let ClientAddress::Known(client) = client else {
        return false;
    };
    bypass_enabled
        && rules
            .iter()
            .any(|rule| rule.bypass_2fa && rule.network.contains(client))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broad(text: &str) -> bool {
        IpNetwork::parse(text).unwrap().is_broad()
    }

    /// SPEC section 11: broader than /16 (IPv4) or /48 (IPv6) asks for confirmation.
    #[test]
    fn a_network_is_broad_below_slash_16_for_ipv4_and_slash_48_for_ipv6() {
        assert!(broad("10.0.0.0/15"));
        assert!(!broad("10.0.0.0/16"));
        assert!(!broad("10.20.30.0/24"));
        assert!(!broad("192.0.2.7"));
        assert!(broad("0.0.0.0/0"));
        assert!(broad("10.0.0.0/8"));
        assert!(broad("2001:db8::/47"));
        assert!(!broad("2001:db8::/48"));
        assert!(!broad("2001:db8::1"));
        assert!(broad("::/0"));
        // An IPv4-mapped range is judged as the IPv4 network it is.
        assert!(broad("::ffff:10.0.0.0/104"));
        assert!(!broad("::ffff:10.0.0.0/112"));
    }

    #[test]
    fn the_size_of_a_network_is_said_in_words() {
        let size = |t: &str| IpNetwork::parse(t).unwrap().size_text();
        assert_eq!(size("10.0.0.0/15"), "131,072 addresses");
        assert_eq!(size("10.0.0.0/8"), "16,777,216 addresses");
        assert_eq!(size("0.0.0.0/0"), "every IPv4 address");
        assert_eq!(size("::/0"), "every IPv6 address");
        assert_eq!(size("2001:db8::/47"), "2^81 addresses");
    }

    fn rule(network: &str, bypass_2fa: bool) -> IpRule {
        IpRule {
            network: IpNetwork::parse(network).unwrap(),
            bypass_2fa,
            note: String::new(),
        }
    }

    /// As given: `in_network` must match IPv4-mapped clients itself.
    fn ip(text: &str) -> ClientAddress {
        ClientAddress::Known(text.parse().unwrap())
    }

    #[test]
    fn addresses_and_ranges_parse_to_canonical_networks() {
        assert_eq!(
            IpNetwork::parse("10.1.2.3").unwrap().to_string(),
            "10.1.2.3/32"
        );
        assert_eq!(
            IpNetwork::parse(" 10.1.0.0/16 ").unwrap().to_string(),
            "10.1.0.0/16"
        );
        assert_eq!(
            IpNetwork::parse("2001:DB8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(
            IpNetwork::parse("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
        assert_eq!(
            IpNetwork::parse("::ffff:10.0.0.1").unwrap().to_string(),
            "10.0.0.1/32"
        );
        assert_eq!(
            IpNetwork::parse("::ffff:10.0.0.0/104").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            IpNetwork::parse("10.1.2.3"),
            IpNetwork::parse("10.1.2.3/32")
        );
    }

    #[test]
    fn malformed_networks_are_refused_with_a_hint() {
        assert_eq!(IpNetwork::parse(""), Err(IpNetworkError::Empty));
        for bad in [
            "10.0.0",
            "10.0.0.256",
            "10.0.0.0/33",
            "2001:db8::/129",
            "host.example",
            "10.0.0.0/-1",
            "1.2.3.4/8/8",
        ] {
            assert!(
                matches!(IpNetwork::parse(bad), Err(IpNetworkError::Invalid(_))),
                "{bad}"
            );
        }
        assert_eq!(
            IpNetwork::parse("10.1.2.3/16"),
            Err(IpNetworkError::HostBitsSet {
                given: "10.1.2.3/16".into(),
                network: "10.1.0.0/16".into()
            })
        );
        let long = "x".repeat(10_000);
        let message = IpNetwork::parse(&long).unwrap_err().to_string();
        assert!(message.len() < 200, "{message}");
    }

    #[test]
    fn in_network_needs_the_setting_a_match_and_the_bypass_flag() {
        let rules = [rule("10.20.0.0/16", true), rule("192.168.1.5", false)];
        assert!(in_network(true, ip("10.20.3.4"), &rules));
        assert!(!in_network(false, ip("10.20.3.4"), &rules), "setting off");
        assert!(
            !in_network(true, ip("10.21.0.1"), &rules),
            "outside every rule"
        );
        assert!(
            !in_network(true, ip("192.168.1.5"), &rules),
            "rule without Bypass 2FA"
        );
        assert!(!in_network(true, ip("10.20.3.4"), &[]), "no rules");
    }

    #[test]
    fn an_unknown_client_is_in_no_network_and_shows_as_unknown() {
        let rules = [rule("0.0.0.0/0", true), rule("::/0", true)];
        assert!(in_network(true, ip("10.20.3.4"), &rules));
        assert!(!in_network(true, ClientAddress::Unknown, &rules));
        let everything = [
            IpNetwork::parse("0.0.0.0/0").unwrap(),
            IpNetwork::parse("::/0").unwrap(),
        ];
        assert!(ip("10.20.3.4").is_in(&everything));
        assert!(!ClientAddress::Unknown.is_in(&everything));
        assert!(!ip("10.20.3.4").is_in(&[]));
        assert_eq!(ClientAddress::Unknown.to_string(), "unknown");
        let mapped = ClientAddress::known("::ffff:10.0.0.1".parse().unwrap());
        assert_eq!(mapped, ip("10.0.0.1"));
        assert_eq!(mapped.to_string(), "10.0.0.1");
        assert_eq!(ip("2001:db8::1").to_string(), "2001:db8::1");
    }

    #[test]
    fn loopback_networks_and_from_str_are_the_parsed_networks() {
        assert_eq!(
            IpNetwork::LOOPBACK.map(|network| network.to_string()),
            ["127.0.0.0/8", "::1/128"]
        );
        assert_eq!("10.0.0.5".parse(), IpNetwork::parse("10.0.0.5/32"));
        assert!("10.0.0.1/8".parse::<IpNetwork>().is_err());
    }

    #[test]
    fn in_network_matches_ipv4_clients_on_dual_stack_sockets_and_ipv6_rules() {
        let rules = [rule("10.20.0.0/16", true), rule("2001:db8:1::/48", true)];
        assert!(in_network(true, ip("::ffff:10.20.0.9"), &rules));
        assert!(in_network(true, ip("2001:db8:1:2::3"), &rules));
        assert!(!in_network(true, ip("2001:db8:2::3"), &rules));
    }
}
