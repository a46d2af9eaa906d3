//! Redirect-URI analysis: scheme class, normalized host (lowercase,
//! A-labels), registrable domain from the Public Suffix List (ICANN and
//! PRIVATE sections, so `alice.github.io` and `bob.github.io` are two
//! owners), loopback and private addresses, wildcards.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;
use url::{Host, Url};

/// What kind of target a redirect URI points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedirectClass {
    /// `https` to a public DNS name or address.
    Https,
    /// Plain `http` to a non-loopback host.
    Http,
    /// `http(s)` to 127.0.0.0/8, `::1` or `localhost` (RFC 8252 §7.3).
    Loopback,
    /// `http(s)` to a private, link-local or shared address.
    PrivateIp,
    /// A private-use scheme (`com.example.app:/cb`, `cursor://...`).
    CustomScheme,
    /// Not a URI at all.
    Invalid,
}

/// One analysed redirect URI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RedirectInfo {
    /// As registered.
    pub raw: String,
    /// Lowercase scheme.
    pub scheme: String,
    /// Class of target.
    pub class: RedirectClass,
    /// Lowercase host with IDN labels as A-labels; `None` for custom schemes
    /// without a host and for invalid URIs.
    pub host: Option<String>,
    /// Registrable domain (eTLD+1) of `host`, `None` for IP literals and
    /// loopback names.
    pub registrable: Option<String>,
    /// `*` anywhere in the host or path.
    pub wildcard: bool,
    /// A custom scheme that is not reverse-DNS (RFC 8252 §7.1 wants a dot).
    pub non_reverse_dns_scheme: bool,
}

impl RedirectInfo {
    /// The host to compare for "same target": loopback hosts collapse to
    /// one value because RFC 8252 lets the port (and the loopback form) vary.
    pub fn identity_host(&self) -> Option<&str> {
        match self.class {
            RedirectClass::Loopback => Some("loopback"),
            RedirectClass::CustomScheme => Some(self.scheme.as_str()),
            _ => self.host.as_deref(),
        }
    }
}

/// Normalizes a DNS host: lowercase, no trailing dot, A-labels (UTS #46).
/// Returns `None` when the host is not a valid domain name.
pub fn normalize_host(host: &str) -> Option<String> {
    let trimmed = host.trim_end_matches('.');
    let ascii = idna::domain_to_ascii(trimmed).ok()?;
    if ascii.is_empty() {
        return None;
    }
    Some(ascii)
}

/// Registrable domain (eTLD+1) under the full PSL, or the host itself when
/// it is a public suffix or a single label.
pub fn registrable_domain(host: &str) -> String {
    match psl::domain_str(host) {
        Some(d) => d.to_owned(),
        None => host.to_owned(),
    }
}

/// Loopback per RFC 8252 and RFC 6761 (`localhost` and `*.localhost`).
pub fn is_loopback_name(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost")
}

/// Private, link-local, CGNAT or unique-local address.
pub fn is_private_ip(ip: IpAddr) -> bool {
    const V4: [(u32, u8); 4] = [
        (0x0a00_0000, 8),  // 10.0.0.0/8
        (0xac10_0000, 12), // 172.16.0.0/12
        (0xc0a8_0000, 16), // 192.168.0.0/16
        (0xa9fe_0000, 16), // 169.254.0.0/16
    ];
    match ip {
        IpAddr::V4(v4) => {
            let x = u32::from(v4);
            let cgnat = (x & 0xffc0_0000) == 0x6440_0000; // 100.64.0.0/10
            cgnat
                || V4.iter().any(|(net, len)| {
                    let mask = u32::MAX << (32 - u32::from(*len));
                    (x & mask) == *net
                })
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// The /24 (IPv4) or /64 (IPv6) network of an address, as text.
pub fn ip_prefix(ip: IpAddr) -> String {
    let net = match ip {
        IpAddr::V4(v4) => Ipv4Net::new(v4, 24).map(|n| IpNet::V4(n.trunc())),
        IpAddr::V6(v6) => Ipv6Net::new(v6, 64).map(|n| IpNet::V6(n.trunc())),
    };
    match net {
        Ok(n) => n.to_string(),
        Err(_) => ip.to_string(),
    }
}

fn classify_ip(ip: IpAddr) -> RedirectClass {
    if ip.is_loopback() {
        RedirectClass::Loopback
    } else if is_private_ip(ip) {
        RedirectClass::PrivateIp
    } else {
        RedirectClass::Https // refined by scheme below
    }
}

/// Analyses one redirect URI. Never fails: junk becomes [`RedirectClass::Invalid`].
pub fn analyze_redirect(raw: &str) -> RedirectInfo {
    let wildcard = raw.contains('*');
    // `*` is not a valid host character for the URL parser; replace it so
    // the rest of the URI is still analysed, and keep the flag.
    let parse_input = if wildcard {
        raw.replace('*', "wildcard")
    } else {
        raw.to_owned()
    };
    let invalid = |scheme: String| RedirectInfo {
        raw: raw.to_owned(),
        scheme,
        class: RedirectClass::Invalid,
        host: None,
        registrable: None,
        wildcard,
        non_reverse_dns_scheme: false,
    };
    let url = match Url::parse(&parse_input) {
        Ok(u) => u,
        Err(_) => return invalid(String::new()),
    };
    let scheme = url.scheme().to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        let host = url.host_str().and_then(normalize_host);
        return RedirectInfo {
            raw: raw.to_owned(),
            non_reverse_dns_scheme: !scheme.contains('.'),
            scheme,
            class: RedirectClass::CustomScheme,
            host,
            registrable: None,
            wildcard,
        };
    }
    let (host, ip_class) = match url.host() {
        Some(Host::Domain(d)) => match normalize_host(d) {
            Some(h) => (h, None),
            None => return invalid(scheme),
        },
        Some(Host::Ipv4(v4)) => (v4.to_string(), Some(classify_ip(IpAddr::V4(v4)))),
        Some(Host::Ipv6(v6)) => (v6.to_string(), Some(classify_ip(IpAddr::V6(v6)))),
        None => return invalid(scheme),
    };
    let (class, registrable) = match ip_class {
        Some(RedirectClass::Loopback) => (RedirectClass::Loopback, None),
        Some(RedirectClass::PrivateIp) => (RedirectClass::PrivateIp, None),
        Some(_) => (
            if scheme == "https" {
                RedirectClass::Https
            } else {
                RedirectClass::Http
            },
            None,
        ),
        None if is_loopback_name(&host) => (RedirectClass::Loopback, None),
        None => {
            let class = if scheme == "https" {
                RedirectClass::Https
            } else {
                RedirectClass::Http
            };
            (class, Some(registrable_domain(&host)))
        }
    };
    RedirectInfo {
        raw: raw.to_owned(),
        scheme,
        class,
        host: Some(host),
        registrable,
        wildcard,
        non_reverse_dns_scheme: false,
    }
}
