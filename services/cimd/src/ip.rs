//! Which IP addresses a CIMD fetch may connect to.
//!
//! The rule is an allowlist in spirit: an address is fetchable only if it is
//! ordinary global unicast. The classification (every IANA special-purpose
//! block, IPv6 forms judged by the IPv4 address they embed) is
//! `regwatch_checks::addr::ip_scope`, shared with the rest of regwatch;
//! this module adds only what the development flag unlocks.

use std::net::IpAddr;

use regwatch_checks::addr::{ip_scope, IpScope};

/// `true` if a CIMD fetch must never connect to `ip`.
///
/// `allow_loopback` (the development flag) lets through 127.0.0.0/8, `::1`
/// and IPv4-mapped loopback, and nothing else: private, link-local,
/// unspecified and the rest stay forbidden with or without it.
///
/// Pure function, no IO.
pub fn is_forbidden_ip(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip_scope(ip) {
        IpScope::Global => false,
        IpScope::Loopback => !allow_loopback,
        IpScope::Internal => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(address, forbidden in production, forbidden with the dev flag)`:
    /// one or two rows per scope. The full address table is in
    /// `regwatch_checks::addr`.
    const TABLE: &[(&str, bool, bool)] = &[
        ("127.0.0.1", true, false),
        ("::1", true, false),
        ("::ffff:127.0.0.1", true, false),
        ("10.0.0.1", true, true),
        ("169.254.169.254", true, true),
        ("0.0.0.0", true, true),
        ("64:ff9b::7f00:1", true, true),
        ("2002:7f00:0001::1", true, true),
        ("::127.0.0.1", true, true),
        ("8.8.8.8", false, false),
        ("2606:4700::1111", false, false),
    ];

    #[test]
    fn forbidden_ip_table() {
        for &(text, prod, dev) in TABLE {
            let ip: IpAddr = text.parse().expect("test table holds valid addresses");
            assert_eq!(is_forbidden_ip(ip, false), prod, "{text} without dev flag");
            assert_eq!(is_forbidden_ip(ip, true), dev, "{text} with dev flag");
        }
    }
}
