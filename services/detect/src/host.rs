//! Redirect-URI analysis: scheme class, normalized host (lowercase,
//! A-labels), registrable domain from the Public Suffix List (ICANN and
//! PRIVATE sections, so `alice.github.io` and `bob.github.io` are two
//! owners), loopback and internal addresses (decided by
//! `regwatch_checks::addr`, the same answer the gate gets), wildcards.

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use regwatch_checks::addr::{host_loopback, ip_scope, IpScope};
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
    /// `http(s)` to a loopback address in any spelling (`127.1`,
    /// `0x7f000001`, `[::ffff:7f00:1]`), `localhost` or a name under it
    /// (RFC 8252 §7.3, RFC 6761), as `regwatch_checks::addr` decides.
    Loopback,
    /// `http(s)` to any other non-global address: private, link-local,
    /// shared, documentation, multicast, ... (`regwatch_checks::addr::IpScope::Internal`).
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
    let (host, scope) = match url.host() {
        Some(Host::Domain(d)) => match normalize_host(d) {
            Some(h) => (h, None),
            None => return invalid(scheme),
        },
        Some(Host::Ipv4(v4)) => (v4.to_string(), Some(ip_scope(IpAddr::V4(v4)))),
        Some(Host::Ipv6(v6)) => (v6.to_string(), Some(ip_scope(IpAddr::V6(v6)))),
        None => return invalid(scheme),
    };
    let (class, registrable) = match scope {
        Some(IpScope::Loopback) => (RedirectClass::Loopback, None),
        Some(IpScope::Internal) => (RedirectClass::PrivateIp, None),
        Some(IpScope::Global) => (
            if scheme == "https" {
                RedirectClass::Https
            } else {
                RedirectClass::Http
            },
            None,
        ),
        // `localhost` and names under it: local targets for detection,
        // whatever the gate admits (see `regwatch_checks::addr`).
        None if host_loopback(&Host::Domain(host.as_str())).is_some() => {
            (RedirectClass::Loopback, None)
        }
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
