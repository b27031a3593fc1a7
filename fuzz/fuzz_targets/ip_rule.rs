//! IP rules (`twostep::domain::IpNetwork::parse`, `in_network`): arbitrary text never
//! panics; a parsed network is canonical (its text parses back to itself, no host bits),
//! error messages stay short (bad input is echoed only as a prefix), and `contains` /
//! `in_network` agree with an independent prefix comparison for an arbitrary client
//! address, IPv4-mapped IPv6 clients counting as IPv4 (`canonical_address`); an unknown
//! client is never in network.
#![no_main]

use std::net::IpAddr;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use twostep::domain::ip::canonical_address;
use twostep::domain::{in_network, ClientAddress, IpNetwork, IpRule};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    client: IpAddr,
    bypass_enabled: bool,
    bypass_2fa: bool,
    rule: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let network = match IpNetwork::parse(input.rule) {
        Ok(network) => network,
        Err(error) => {
            let message = error.to_string();
            assert!(
                message.chars().count() < 300,
                "long error message: {} characters",
                message.chars().count()
            );
            return;
        }
    };
    let text = network.to_string();
    assert_eq!(
        IpNetwork::parse(&text),
        Ok(network),
        "canonical text {text:?} does not parse back"
    );
    let (address, prefix) = text.split_once('/').expect("canonical form has a prefix");
    let address: IpAddr = address.parse().expect("canonical address");
    let prefix: u32 = prefix.parse().expect("canonical prefix");
    assert!(
        canonical_address(address) == address,
        "{text}: IPv4-mapped network kept as IPv6"
    );
    assert_eq!(
        masked(address, prefix),
        to_bits(address),
        "{text}: host bits set"
    );

    let client = canonical_address(input.client);
    let expected =
        address.is_ipv4() == client.is_ipv4() && masked(address, prefix) == masked(client, prefix);
    assert_eq!(
        network.contains(input.client),
        expected,
        "{text} contains {}",
        input.client
    );
    let rules = [IpRule {
        network,
        bypass_2fa: input.bypass_2fa,
        note: String::new(),
    }];
    assert_eq!(
        in_network(
            input.bypass_enabled,
            ClientAddress::Known(input.client),
            &rules
        ),
        input.bypass_enabled && input.bypass_2fa && expected
    );
    assert!(!in_network(true, ClientAddress::Known(input.client), &[]));
    assert!(!in_network(true, ClientAddress::Unknown, &rules));
});

/// The address as a left-aligned 128-bit number.
fn to_bits(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn masked(address: IpAddr, prefix: u32) -> u128 {
    let bits = to_bits(address);
    if prefix == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - prefix))
    }
}
