//! Which IP addresses a CIMD fetch may connect to.
//!
//! The rule is an allowlist in spirit: an address is fetchable only if it is
//! ordinary global unicast. Everything in the IANA special-purpose registries
//! (RFC 6890 and its updates) is refused, as are IPv6 forms that embed an
//! IPv4 address we would refuse on its own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `true` if a CIMD fetch must never connect to `ip`.
///
/// `allow_loopback` (the development flag) lets through 127.0.0.0/8, `::1`
/// and IPv4-mapped loopback, and nothing else: private, link-local,
/// unspecified and the rest stay forbidden with or without it.
///
/// Pure function, no IO.
pub fn is_forbidden_ip(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4, allow_loopback),
        IpAddr::V6(v6) => is_forbidden_v6(v6, allow_loopback),
    }
}

/// `true` if `ip` is in 127.0.0.0/8, is `::1`, or is IPv4-mapped loopback.
pub(crate) fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// `(network, prefix length)` blocks of IPv4 special-purpose space.
const FORBIDDEN_V4: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),     // "this network", incl. 0.0.0.0 (reaches localhost on Linux)
    ([10, 0, 0, 0], 8),    // private (RFC 1918)
    ([100, 64, 0, 0], 10), // shared address space / CGNAT (RFC 6598)
    ([169, 254, 0, 0], 16), // link-local, incl. cloud metadata 169.254.169.254
    ([172, 16, 0, 0], 12), // private (RFC 1918)
    ([192, 0, 0, 0], 24),  // IETF protocol assignments (RFC 6890)
    ([192, 0, 2, 0], 24),  // TEST-NET-1 documentation (RFC 5737)
    ([192, 31, 196, 0], 24), // AS112-v4 (RFC 7535)
    ([192, 52, 193, 0], 24), // AMT (RFC 7450)
    ([192, 88, 99, 0], 24), // deprecated 6to4 relay anycast (RFC 7526)
    ([192, 168, 0, 0], 16), // private (RFC 1918)
    ([192, 175, 48, 0], 24), // direct delegation AS112 (RFC 7534)
    ([198, 18, 0, 0], 15), // benchmarking (RFC 2544)
    ([198, 51, 100, 0], 24), // TEST-NET-2 documentation (RFC 5737)
    ([203, 0, 113, 0], 24), // TEST-NET-3 documentation (RFC 5737)
    ([224, 0, 0, 0], 4),   // multicast
    ([240, 0, 0, 0], 4),   // reserved, incl. limited broadcast 255.255.255.255
];

fn in_v4_block(ip: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn is_forbidden_v4(ip: Ipv4Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return !allow_loopback;
    }
    FORBIDDEN_V4
        .iter()
        .any(|&(net, prefix)| in_v4_block(ip, net, prefix))
}

fn in_v6_block(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

const fn v6(segments: [u16; 8]) -> Ipv6Addr {
    Ipv6Addr::new(
        segments[0],
        segments[1],
        segments[2],
        segments[3],
        segments[4],
        segments[5],
        segments[6],
        segments[7],
    )
}

/// The low 32 bits of an IPv6 address as IPv4.
fn low_v4(ip: Ipv6Addr) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(o[12], o[13], o[14], o[15])
}

/// Special-purpose blocks *inside* 2000::/3 (global unicast). Everything
/// outside 2000::/3 is refused wholesale, apart from the IPv4-embedding
/// forms handled explicitly.
const FORBIDDEN_V6_IN_GLOBAL: &[(Ipv6Addr, u8)] = &[
    // IETF protocol assignments: Teredo (2001::/32), benchmarking
    // (2001:2::/48), ORCHID, ... (RFC 6890)
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 23),
    // documentation (RFC 3849)
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]), 32),
    // documentation (RFC 9637)
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0]), 20),
    // SRv6 SIDs (RFC 9602)
    (v6([0x5f00, 0, 0, 0, 0, 0, 0, 0]), 16),
];

fn is_forbidden_v6(ip: Ipv6Addr, allow_loopback: bool) -> bool {
    if ip.is_loopback() {
        return !allow_loopback;
    }
    // ::ffff:a.b.c.d — IPv4-mapped: a dual-stack socket connects to a.b.c.d.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4, allow_loopback);
    }
    // 64:ff9b::/96 — well-known NAT64 prefix (RFC 6052): the gateway
    // connects to the embedded IPv4 address.
    if in_v6_block(ip, v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96) {
        return is_forbidden_v4(low_v4(ip), false);
    }
    // 2002::/16 — 6to4 (RFC 3056): bits 16..48 are an IPv4 address.
    if in_v6_block(ip, v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16) {
        let o = ip.octets();
        return is_forbidden_v4(Ipv4Addr::new(o[2], o[3], o[4], o[5]), false);
    }
    // Only 2000::/3 is allocated as global unicast. This refuses, among
    // others: :: (unspecified), ::/96 (IPv4-compatible, deprecated),
    // ::ffff:0:0:0/96 (IPv4-translated), 64:ff9b:1::/48 (local NAT64),
    // 100::/64 (discard), fc00::/7 (unique local), fe80::/10 (link-local),
    // fec0::/10 (site-local), ff00::/8 (multicast).
    if !in_v6_block(ip, v6([0x2000, 0, 0, 0, 0, 0, 0, 0]), 3) {
        return true;
    }
    FORBIDDEN_V6_IN_GLOBAL
        .iter()
        .any(|&(net, prefix)| in_v6_block(ip, net, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(address, forbidden in production, forbidden with the dev flag)`
    const TABLE: &[(&str, bool, bool)] = &[
        // loopback: only the dev flag lets it through
        ("127.0.0.1", true, false),
        ("127.255.255.254", true, false),
        ("::1", true, false),
        ("::ffff:127.0.0.1", true, false),
        // private and internal IPv4
        ("10.0.0.1", true, true),
        ("10.255.255.255", true, true),
        ("172.16.0.1", true, true),
        ("172.31.255.255", true, true),
        ("192.168.1.1", true, true),
        ("169.254.169.254", true, true),
        ("169.254.0.1", true, true),
        ("100.64.0.1", true, true),
        ("100.127.255.255", true, true),
        ("0.0.0.0", true, true),
        ("0.1.2.3", true, true),
        ("255.255.255.255", true, true),
        ("240.0.0.1", true, true),
        ("224.0.0.251", true, true),
        ("239.255.255.250", true, true),
        ("192.0.0.8", true, true),
        ("192.0.2.10", true, true),
        ("198.51.100.7", true, true),
        ("203.0.113.7", true, true),
        ("198.18.0.1", true, true),
        ("198.19.255.255", true, true),
        ("192.88.99.1", true, true),
        // neighbours of forbidden blocks stay allowed
        ("172.15.255.255", false, false),
        ("172.32.0.0", false, false),
        ("100.63.255.255", false, false),
        ("100.128.0.0", false, false),
        ("198.17.255.255", false, false),
        ("198.20.0.0", false, false),
        ("11.0.0.1", false, false),
        ("126.255.255.255", false, false),
        ("128.0.0.0", false, false),
        ("223.255.255.255", false, false),
        // public
        ("8.8.8.8", false, false),
        ("1.1.1.1", false, false),
        ("2606:4700::1111", false, false),
        ("2a00:1450:4001:80b::200e", false, false),
        // IPv6 special use
        ("::", true, true),
        ("fe80::1", true, true),
        ("febf::1", true, true),
        ("fec0::1", true, true),
        ("fc00::1", true, true),
        ("fd12:3456:789a::1", true, true),
        ("ff02::1", true, true),
        ("100::1", true, true),
        ("2001:db8::1", true, true),
        ("2001::1", true, true),
        ("2001:2::1", true, true),
        ("3fff::1", true, true),
        ("5f00::1", true, true),
        ("4000::1", true, true),
        // IPv6 forms embedding an internal IPv4 address
        ("::ffff:10.0.0.1", true, true),
        ("::ffff:169.254.169.254", true, true),
        ("::ffff:0.0.0.0", true, true),
        ("::ffff:8.8.8.8", false, false),
        ("::127.0.0.1", true, true),
        ("::10.0.0.1", true, true),
        ("::8.8.8.8", true, true),
        ("::ffff:0:10.0.0.1", true, true),
        ("64:ff9b::a00:1", true, true),
        ("64:ff9b::7f00:1", true, true),
        ("64:ff9b::a9fe:a9fe", true, true),
        ("64:ff9b::808:808", false, false),
        ("64:ff9b:1::a00:1", true, true),
        ("2002:0a00:0001::", true, true),
        ("2002:7f00:0001::1", true, true),
        ("2002:a9fe:a9fe::", true, true),
        ("2002:0808:0808::1", false, false),
    ];

    #[test]
    fn forbidden_ip_table() {
        for &(text, prod, dev) in TABLE {
            let ip: IpAddr = text.parse().expect("test table holds valid addresses");
            assert_eq!(is_forbidden_ip(ip, false), prod, "{text} without dev flag");
            assert_eq!(is_forbidden_ip(ip, true), dev, "{text} with dev flag");
        }
    }

    #[test]
    fn loopback_helper() {
        for (text, expected) in [
            ("127.0.0.1", true),
            ("127.1.2.3", true),
            ("::1", true),
            ("::ffff:127.0.0.1", true),
            ("10.0.0.1", false),
            ("0.0.0.0", false),
            ("::", false),
        ] {
            let ip: IpAddr = text.parse().expect("valid address");
            assert_eq!(is_loopback(ip), expected, "{text}");
        }
    }
}
