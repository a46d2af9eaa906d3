//! IP addresses and URL hosts: where a connection or a redirect would go.
//!
//! Decisions are made on parsed values, never on text. The `url` crate
//! normalizes the host of an `http`/`https` URL as a browser does (WHATWG
//! URL): `0x7f000001`, `2130706433`, `127.1`, `0177.0.0.1` and
//! `127.000.000.001` all become the IPv4 address 127.0.0.1, and
//! `[0:0:0:0:0:0:0:1]` becomes `::1`. A check by string prefix sees none
//! of that, which is why every caller asks here.
//!
//! ## What counts as loopback
//!
//! - Addresses: 127.0.0.0/8, `::1`, and IPv4-mapped 127.0.0.0/8
//!   (`::ffff:127.0.0.1`, also written `::ffff:7f00:1`), which a dual-stack
//!   socket connects to as 127.0.0.1. Not `0.0.0.0` or `::` (unspecified:
//!   internal, see below), not the NAT64 or 6to4 forms of 127.0.0.1 (they
//!   reach a gateway's loopback, not ours: internal too).
//! - Names: `localhost` ([`Loopback::Localhost`]), which every caller has
//!   always admitted (RFC 8252 §7.3 and §8.3), and names under it such as
//!   `app.localhost` ([`Loopback::UnderLocalhost`], RFC 6761 §6.3). The
//!   latter are reported but are *not* what [`is_loopback_host`] admits:
//!   RFC 8252 names only `localhost`, and RFC 6761 only asks resolvers
//!   (SHOULD) to answer loopback for them, so a resolver that forwards
//!   `app.localhost` to DNS lets the network answer. Detection treats
//!   them as local targets; the gates refuse them over plain http. One
//!   trailing dot is ignored (`localhost.` is the same name).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

/// Where an IP address leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpScope {
    /// This machine (see the module docs for the exact set).
    Loopback,
    /// Anything that is not ordinary global unicast: private, link-local
    /// (incl. cloud metadata 169.254.169.254), CGNAT, unspecified,
    /// multicast, broadcast and reserved, documentation, benchmarking,
    /// unique-local, and every other IANA special-purpose block
    /// (RFC 6890 and updates). IPv6 forms that embed an IPv4 address
    /// (mapped, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by it.
    Internal,
    /// Ordinary global unicast: the only scope a server may fetch from.
    Global,
}

/// The scope of `ip`.
pub fn ip_scope(ip: IpAddr) -> IpScope {
    match ip {
        IpAddr::V4(v4) => v4_scope(v4),
        IpAddr::V6(v6) => v6_scope(v6),
    }
}

/// `true` for 127.0.0.0/8, `::1` and IPv4-mapped 127.0.0.0/8.
pub fn is_loopback_ip(ip: IpAddr) -> bool {
    ip_scope(ip) == IpScope::Loopback
}

/// `true` for every address that is not ordinary global unicast,
/// loopback included.
pub fn is_internal_ip(ip: IpAddr) -> bool {
    ip_scope(ip) != IpScope::Global
}

/// How a host reaches this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Loopback {
    /// A loopback address, in whatever form it was written.
    Address,
    /// The name `localhost`.
    Localhost,
    /// A name under `localhost` (`app.localhost`).
    UnderLocalhost,
}

/// Whether `host` reaches this machine, and how. Give it a host the URL
/// parser produced (`Url::host`): for `http`/`https` the parser has
/// already turned every IPv4 spelling into an address.
pub fn host_loopback<S: AsRef<str>>(host: &Host<S>) -> Option<Loopback> {
    match host {
        Host::Ipv4(v4) => is_loopback_ip(IpAddr::V4(*v4)).then_some(Loopback::Address),
        Host::Ipv6(v6) => is_loopback_ip(IpAddr::V6(*v6)).then_some(Loopback::Address),
        Host::Domain(name) => name_loopback(name.as_ref()),
    }
}

fn name_loopback(name: &str) -> Option<Loopback> {
    const SUFFIX: &[u8] = b".localhost";
    let name = name.strip_suffix('.').unwrap_or(name).as_bytes();
    if name.eq_ignore_ascii_case(b"localhost") {
        Some(Loopback::Localhost)
    } else if name.len() > SUFFIX.len()
        && name[name.len() - SUFFIX.len()..].eq_ignore_ascii_case(SUFFIX)
    {
        Some(Loopback::UnderLocalhost)
    } else {
        None
    }
}

/// The loopback hosts a gate admits for plain http (a redirect URI, an
/// issuer, a development metadata URL): a loopback address or the name
/// `localhost`. Names under `localhost` are not admitted (module docs).
pub fn is_loopback_host<S: AsRef<str>>(host: &Host<S>) -> bool {
    matches!(
        host_loopback(host),
        Some(Loopback::Address | Loopback::Localhost)
    )
}

/// Whether an `http`/`https` URL points at this machine. `None` for other
/// schemes: the host of a private-use scheme (`cursor://localhost/cb`) is
/// not a network host, the operating system routes by scheme.
pub fn url_loopback(url: &Url) -> Option<Loopback> {
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    host_loopback(&url.host()?)
}

/// Whether a redirect URI returns over plain http to a program on this
/// machine (RFC 8252 §7.3): `http` and [`is_loopback_host`]. `false` for
/// anything that does not parse.
pub fn is_loopback_http(uri: &str) -> bool {
    Url::parse(uri)
        .is_ok_and(|url| url.scheme() == "http" && url.host().is_some_and(|h| is_loopback_host(&h)))
}

/// `(network, prefix length)` blocks of IPv4 special-purpose space.
const INTERNAL_V4: &[([u8; 4], u8)] = &[
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

fn v4_scope(ip: Ipv4Addr) -> IpScope {
    if ip.is_loopback() {
        IpScope::Loopback
    } else if INTERNAL_V4
        .iter()
        .any(|&(net, prefix)| in_v4_block(ip, net, prefix))
    {
        IpScope::Internal
    } else {
        IpScope::Global
    }
}

/// The scope of an IPv4 address reached *through* a translator (NAT64,
/// 6to4): its loopback is the translator's, so never ours, but internal.
fn translated_v4_scope(ip: Ipv4Addr) -> IpScope {
    match v4_scope(ip) {
        IpScope::Global => IpScope::Global,
        IpScope::Loopback | IpScope::Internal => IpScope::Internal,
    }
}

fn in_v6_block(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

const fn v6(segments: [u16; 8]) -> Ipv6Addr {
    let s = segments;
    Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])
}

/// Special-purpose blocks *inside* 2000::/3 (global unicast). Everything
/// outside 2000::/3 is internal wholesale, apart from the IPv4-embedding
/// forms handled explicitly.
const INTERNAL_V6_IN_GLOBAL: &[(Ipv6Addr, u8)] = &[
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

fn v6_scope(ip: Ipv6Addr) -> IpScope {
    if ip.is_loopback() {
        return IpScope::Loopback;
    }
    // ::ffff:a.b.c.d, IPv4-mapped: a dual-stack socket connects to a.b.c.d.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_scope(v4);
    }
    // 64:ff9b::/96, the well-known NAT64 prefix (RFC 6052): the gateway
    // connects to the embedded IPv4 address.
    if in_v6_block(ip, v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96) {
        let o = ip.octets();
        return translated_v4_scope(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    // 2002::/16, 6to4 (RFC 3056): bits 16..48 are an IPv4 address.
    if in_v6_block(ip, v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16) {
        let o = ip.octets();
        return translated_v4_scope(Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    // Only 2000::/3 is allocated as global unicast. This makes internal,
    // among others: :: (unspecified), ::/96 (IPv4-compatible, deprecated),
    // ::ffff:0:0:0/96 (IPv4-translated), 64:ff9b:1::/48 (local NAT64),
    // 100::/64 (discard), fc00::/7 (unique local), fe80::/10 (link-local),
    // fec0::/10 (site-local), ff00::/8 (multicast).
    if !in_v6_block(ip, v6([0x2000, 0, 0, 0, 0, 0, 0, 0]), 3) {
        return IpScope::Internal;
    }
    if INTERNAL_V6_IN_GLOBAL
        .iter()
        .any(|&(net, prefix)| in_v6_block(ip, net, prefix))
    {
        return IpScope::Internal;
    }
    IpScope::Global
}

#[cfg(test)]
mod tests;
