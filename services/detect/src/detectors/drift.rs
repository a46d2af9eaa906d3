//! `redirect_drift`: what changed in a client's redirect URIs, signal by
//! signal. Pure: the caller supplies the old side and the client's history.

use serde::Serialize;

use crate::hash::hash32;
use crate::host::{RedirectClass, RedirectInfo};

/// Bit flags of redirect classes a client has used.
pub mod flags {
    /// `https` to a DNS name.
    pub const HTTPS: u8 = 1;
    /// Plain `http` to a non-loopback host.
    pub const HTTP: u8 = 2;
    /// Loopback.
    pub const LOOPBACK: u8 = 4;
    /// Private address.
    pub const PRIVATE: u8 = 8;
    /// Custom scheme.
    pub const CUSTOM: u8 = 16;
}

/// The class flag of one redirect.
pub fn class_flag(c: RedirectClass) -> u8 {
    match c {
        RedirectClass::Https => flags::HTTPS,
        RedirectClass::Http => flags::HTTP,
        RedirectClass::Loopback => flags::LOOPBACK,
        RedirectClass::PrivateIp => flags::PRIVATE,
        RedirectClass::CustomScheme => flags::CUSTOM,
        RedirectClass::Invalid => 0,
    }
}

/// What is known about a client's redirects before the change.
#[derive(Debug, Clone, Default)]
pub struct RedirectHistory {
    /// The previous redirect URIs, analysed (empty when unknown).
    pub old: Vec<RedirectInfo>,
    /// 32-bit hashes of identity hosts used before (see `hash32`).
    pub hosts: Vec<u32>,
    /// 32-bit hashes of registrable domains used before.
    pub domains: Vec<u32>,
    /// Classes used before ([`flags`]).
    pub classes: u8,
    /// Custom schemes used before (hashes).
    pub schemes: Vec<u32>,
}

impl RedirectHistory {
    /// Adds the old URIs themselves to the history sets.
    pub fn absorb_old(&mut self) {
        for r in &self.old {
            self.classes |= class_flag(r.class);
            if let Some(h) = r.identity_host() {
                push_unique(&mut self.hosts, hash32(h));
            }
            if let Some(d) = &r.registrable {
                push_unique(&mut self.domains, hash32(d));
            }
            if r.class == RedirectClass::CustomScheme {
                push_unique(&mut self.schemes, hash32(&r.scheme));
            }
        }
    }
}

fn push_unique(v: &mut Vec<u32>, x: u32) {
    if !v.contains(&x) {
        v.push(x);
    }
}

/// One drift signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftSignal {
    /// Machine name, e.g. `new_registrable_domain`.
    pub signal: &'static str,
    /// Weight in [0, 1] (combined as independent evidence).
    pub weight: f64,
    /// The new URI that raised it.
    pub uri: String,
    /// Human detail.
    pub detail: String,
}

/// Signals raised by moving from `history` to `new`. `allow_domains` are
/// registrable domains that never count as new. `is_update` is false for
/// a first registration, where only wildcard and invalid URIs count.
pub fn assess_drift(
    history: &RedirectHistory,
    new: &[RedirectInfo],
    allow_domains: &[String],
    is_update: bool,
) -> Vec<DriftSignal> {
    let mut out = Vec::new();
    let old_raw: Vec<&str> = history.old.iter().map(|r| r.raw.as_str()).collect();
    let sig = |signal: &'static str, weight: f64, r: &RedirectInfo, detail: String| DriftSignal {
        signal,
        weight,
        uri: r.raw.clone(),
        detail,
    };
    for r in new {
        if r.wildcard {
            out.push(sig(
                "wildcard",
                0.8,
                r,
                "wildcard in redirect URI (RFC 9700 requires exact matching)".into(),
            ));
        }
        if !is_update || old_raw.contains(&r.raw.as_str()) {
            if r.class == RedirectClass::Invalid && !is_update {
                out.push(sig("invalid_uri", 0.3, r, "not a parseable URI".into()));
            }
            continue;
        }
        match r.class {
            RedirectClass::Loopback => {
                if history.classes & flags::LOOPBACK == 0 {
                    out.push(sig(
                        "loopback_added",
                        0.45,
                        r,
                        "loopback redirect where the client had none".into(),
                    ));
                }
                // Loopback to loopback: RFC 8252 lets the port change; nothing.
            }
            RedirectClass::PrivateIp => {
                if history.classes & flags::PRIVATE == 0 {
                    out.push(sig(
                        "private_ip_added",
                        0.6,
                        r,
                        "private-network redirect where the client had none".into(),
                    ));
                }
            }
            RedirectClass::CustomScheme => {
                if !history.schemes.contains(&hash32(&r.scheme)) {
                    let w = if r.non_reverse_dns_scheme { 0.45 } else { 0.3 };
                    let why = if r.non_reverse_dns_scheme {
                        " (not reverse-DNS, RFC 8252 §7.1)"
                    } else {
                        ""
                    };
                    out.push(sig(
                        "custom_scheme_added",
                        w,
                        r,
                        format!("new private-use scheme `{}:`{why}", r.scheme),
                    ));
                }
            }
            RedirectClass::Invalid => {
                out.push(sig("invalid_uri", 0.3, r, "not a parseable URI".into()))
            }
            RedirectClass::Https | RedirectClass::Http => {
                let domain = r.registrable.as_deref().unwrap_or_default();
                let allowed = allow_domains.iter().any(|d| d == domain);
                if r.class == RedirectClass::Http && history.classes & flags::HTTPS != 0 {
                    out.push(sig(
                        "https_to_http",
                        0.6,
                        r,
                        "plain http where the client used https".into(),
                    ));
                } else if r.class == RedirectClass::Http && history.classes & flags::HTTP == 0 {
                    out.push(sig(
                        "plain_http_added",
                        0.4,
                        r,
                        "plain http to a non-loopback host".into(),
                    ));
                }
                if allowed {
                    continue;
                }
                let domain_known = history.domains.contains(&hash32(domain));
                let host_known = r
                    .identity_host()
                    .is_some_and(|h| history.hosts.contains(&hash32(h)));
                if !domain_known {
                    out.push(sig(
                        "new_registrable_domain",
                        0.75,
                        r,
                        format!("registrable domain {domain} never used by this client"),
                    ));
                } else if !host_known {
                    out.push(sig(
                        "new_host",
                        0.15,
                        r,
                        format!(
                            "host {} never used by this client (same registrable domain)",
                            r.host.as_deref().unwrap_or("")
                        ),
                    ));
                }
            }
        }
    }
    out
}
