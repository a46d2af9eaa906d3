//! `redirect_drift`: what changed in a client's redirect URIs, signal by
//! signal ([`assess_drift`], pure: the caller supplies the old side and the
//! client's history), plus one redirect host shared by many differently
//! named clients (`DriftDetector` keeps the clients per host).

use std::collections::VecDeque;

use regwatch_schemas::alert::{Alert, AlertKind};
use serde::Serialize;
use serde_json::json;

use super::ClientEvent;
use crate::alerts::{combine, Draft};
use crate::bounded::BoundedMap;
use crate::clients::record::{class_flag, redirect_classes as flags};
use crate::clients::ClientRecord;
use crate::config::DetectConfig;
use crate::hash::hash32;
use crate::host::{analyze_redirect, RedirectClass, RedirectInfo};

/// What is known about a client's redirects before the change.
#[derive(Debug, Clone, Default)]
pub struct RedirectHistory {
    /// The previous redirect URIs, analysed (empty when unknown).
    pub old: Vec<RedirectInfo>,
    /// 32-bit hashes of identity hosts used before (see `hash32`).
    pub hosts: Vec<u32>,
    /// 32-bit hashes of registrable domains used before.
    pub domains: Vec<u32>,
    /// Classes used before
    /// ([`redirect_classes`](crate::clients::record::redirect_classes)).
    pub classes: u8,
    /// Custom schemes used before (hashes).
    pub schemes: Vec<u32>,
}

impl RedirectHistory {
    /// What a client's record remembers of its redirects (no old URIs).
    pub(crate) fn of(r: &ClientRecord) -> Self {
        let hosts: Vec<u32> = r.hosts.iter().copied().filter(|h| *h != 0).collect();
        RedirectHistory {
            old: Vec::new(),
            schemes: hosts.clone(),
            hosts,
            domains: r.domains.iter().copied().filter(|h| *h != 0).collect(),
            classes: r.classes,
        }
    }

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

/// Clients seen on one redirect host, by distinct name.
#[derive(Debug, Clone, Default)]
struct HostState {
    names: Vec<u32>,
    clients: VecDeque<Box<str>>,
}

/// `redirect_drift`: the clients and names seen per redirect host, bounded.
#[derive(Debug)]
pub(crate) struct DriftDetector {
    hosts: BoundedMap<HostState>,
}

impl DriftDetector {
    /// Empty, holding at most `max_hosts` hosts.
    pub(crate) fn new(max_hosts: usize) -> Self {
        DriftDetector {
            hosts: BoundedMap::new(max_hosts),
        }
    }

    /// Redirect hosts tracked.
    pub(crate) fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Drift signals of a registration or update, and the shared-host
    /// signal over every client seen on its redirect hosts.
    pub(crate) fn observe(&mut self, ev: &ClientEvent<'_>, config: &DetectConfig) -> Vec<Alert> {
        let (c, redirects, existing) = (ev.obs, &ev.redirects, ev.existing.as_ref());
        let (key, now) = (ev.name_key.as_str(), ev.now);
        let mut history = existing.map(RedirectHistory::of).unwrap_or_default();
        if let Some(prev) = &c.previous_redirect_uris {
            history.old = prev.iter().map(|u| analyze_redirect(u)).collect();
            history.absorb_old();
        }
        let allow_domains = &config.allowlist.domains;
        let mut signals: Vec<DriftSignal> =
            assess_drift(&history, redirects, allow_domains, ev.is_update());
        // One redirect host shared by many differently named clients.
        let min_names = config.drift.shared_host_min_names as usize;
        let name_h = hash32(key);
        let mut sharing: Vec<String> = Vec::new();
        for r in redirects {
            if !matches!(
                r.class,
                RedirectClass::Https | RedirectClass::Http | RedirectClass::PrivateIp
            ) {
                continue;
            }
            let (Some(host), Some(domain)) = (&r.host, r.registrable.as_ref().or(r.host.as_ref()))
            else {
                continue;
            };
            if allow_domains.iter().any(|d| d == domain) {
                continue;
            }
            let (slot, _) = self.hosts.get_or_insert_with(host, HostState::default);
            let Some(hs) = self.hosts.at_slot_mut(slot) else {
                continue;
            };
            let new_name = !key.is_empty() && !hs.names.contains(&name_h);
            if new_name && hs.names.len() <= min_names {
                hs.names.push(name_h);
            }
            if !hs.clients.iter().any(|x| **x == *c.client_id) {
                if hs.clients.len() >= 10 {
                    hs.clients.pop_front();
                }
                hs.clients.push_back(c.client_id.as_str().into());
            }
            if new_name && hs.names.len() >= min_names {
                signals.push(DriftSignal {
                    signal: "shared_redirect_host",
                    weight: 0.5,
                    uri: r.raw.clone(),
                    detail: format!(
                        "{host} is the redirect host of {}+ differently named clients",
                        hs.names.len()
                    ),
                });
                sharing.extend(
                    hs.clients
                        .iter()
                        .map(|x| x.to_string())
                        .filter(|x| *x != c.client_id),
                );
            }
        }
        if signals.is_empty() {
            return Vec::new();
        }
        let score = combine(signals.iter().map(|s| s.weight));
        if score < config.drift.min_score {
            return Vec::new();
        }
        let old_desc: Vec<String> = match &c.previous_redirect_uris {
            Some(p) => p.clone(),
            None => Vec::new(),
        };
        let mut names: Vec<&str> = signals.iter().map(|s| s.signal).collect();
        names.dedup();
        let summary = format!(
            "client {} redirects {} -> {}: {}",
            c.client_id,
            if old_desc.is_empty() {
                "(history)".to_owned()
            } else {
                old_desc.join(" ")
            },
            c.redirect_uris.join(" "),
            names.join(", ")
        );
        sharing.sort();
        sharing.dedup();
        vec![Draft {
            kind: AlertKind::RedirectDrift,
            score,
            client_id: c.client_id.clone(),
            related: sharing,
            event_ids: vec![c.event_id],
            evidence: json!({
                "trigger": if c.previous_redirect_uris.is_some() || existing.is_some() { "update" } else { "registration" },
                "old_redirect_uris": old_desc,
                "new_redirect_uris": c.redirect_uris,
                "known_hosts_before": history.hosts.len(),
                "known_registrable_domains_before": history.domains.len(),
                "new": redirects.iter().map(|r| json!({"uri": r.raw, "class": r.class, "host": r.host, "registrable_domain": r.registrable})).collect::<Vec<_>>(),
                "signals": signals,
            }),
            summary,
            dedup_key: format!("redirect_drift:{}", c.client_id),
            created_at: now,
            id_salt: c.event_id.to_string(),
        }
        .build(config, now)]
    }
}
