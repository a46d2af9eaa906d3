//! `duplicate_registration`: the same registration (same metadata
//! [`fingerprint`]) repeated from one source network within a window, and
//! the identity such registrations collapse into (the first client id
//! registered with the fingerprint).

use std::collections::VecDeque;

use regwatch_schemas::alert::{Alert, AlertKind};
use serde_json::json;
use uuid::Uuid;

use super::ClientEvent;
use crate::alerts::Draft;
use crate::bounded::BoundedMap;
use crate::config::DetectConfig;
use crate::hash::Fnv;
use crate::host::{analyze_redirect, ip_prefix, RedirectClass};
use crate::input::ClientObservation;
use crate::state_time::from_state_secs;
use crate::text::name_key;

/// The metadata fingerprint of a registration: folded name, redirects
/// (loopback ports ignored), software_id, auth method and scopes.
pub fn fingerprint(c: &ClientObservation) -> u64 {
    let mut redirects: Vec<String> = c
        .redirect_uris
        .iter()
        .map(|u| {
            let r = analyze_redirect(u);
            if r.class == RedirectClass::Loopback {
                "loopback".to_owned()
            } else {
                r.raw
            }
        })
        .collect();
    redirects.sort();
    redirects.dedup();
    let mut scopes = c.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let mut h = Fnv::default().field(&name_key(c.client_name.as_deref().unwrap_or("")));
    for r in &redirects {
        h = h.field(r);
    }
    h = h
        .field("|")
        .field(c.software_id.as_deref().unwrap_or(""))
        .field(c.token_endpoint_auth_method.as_deref().unwrap_or(""));
    for s in &scopes {
        h = h.field(s);
    }
    h.finish()
}

/// Identical registrations from one source network.
#[derive(Debug, Clone)]
struct DupState {
    window_start: u32,
    count: u32,
    total: u32,
    reported_at: u32,
    started: u32,
    first_event: Uuid,
    members: VecDeque<(Box<str>, Uuid)>,
}

/// `duplicate_registration`: counts per fingerprint and source network,
/// and the first client id of each fingerprint, both bounded.
#[derive(Debug)]
pub(crate) struct DuplicateDetector {
    dups: BoundedMap<DupState>,
    identities: BoundedMap<Box<str>>,
}

impl DuplicateDetector {
    /// Empty, holding at most `max_fingerprints` of each.
    pub(crate) fn new(max_fingerprints: usize) -> Self {
        DuplicateDetector {
            dups: BoundedMap::new(max_fingerprints),
            identities: BoundedMap::new(max_fingerprints),
        }
    }

    /// Fingerprints tracked (per source network).
    pub(crate) fn len(&self) -> usize {
        self.dups.len()
    }

    /// The identity a registration collapses into: the first client id
    /// registered with the same metadata fingerprint.
    pub(crate) fn identity_of(&self, c: &ClientObservation) -> Option<String> {
        self.identities
            .peek(&format!("{:016x}", fingerprint(c)))
            .map(|s| s.to_string())
    }

    /// Counts a registration under its fingerprint and source network.
    pub(crate) fn observe(&mut self, ev: &ClientEvent<'_>, config: &DetectConfig) -> Vec<Alert> {
        let (c, now, t) = (ev.obs, ev.now, ev.t);
        let fp = fingerprint(c);
        let fp_hex = format!("{fp:016x}");
        self.identities
            .get_or_insert_with(&fp_hex, || c.client_id.as_str().into());
        let source = c
            .source_ip
            .map(ip_prefix)
            .unwrap_or_else(|| "unknown".to_owned());
        // Hashed: the table key is 16 characters, not fingerprint + network.
        let key = format!(
            "{:016x}",
            Fnv::default().field(&fp_hex).field(&source).finish()
        );
        let cfg = config.duplicate.clone();
        let (slot, _) = self.dups.get_or_insert_with(&key, || DupState {
            window_start: t,
            count: 0,
            total: 0,
            reported_at: 0,
            started: t,
            first_event: c.event_id,
            members: VecDeque::new(),
        });
        let Some(d) = self.dups.at_slot_mut(slot) else {
            return Vec::new();
        };
        if t >= d.window_start.saturating_add(cfg.window_secs) {
            d.window_start = t;
            d.count = 0;
            d.reported_at = 0;
        }
        d.count += 1;
        d.total += 1;
        // Keep the member list only once there is a duplicate: a unique
        // registration costs no heap here.
        if d.count >= 2 || d.reported_at > 0 {
            if d.members.len() >= 10 {
                d.members.pop_front();
            }
            d.members
                .push_back((c.client_id.as_str().into(), c.event_id));
        }
        let report = d.count >= cfg.threshold
            && (d.reported_at == 0 || d.count >= d.reported_at.saturating_mul(2));
        if !report {
            return Vec::new();
        }
        if d.reported_at == 0 {
            d.started = t;
            d.first_event = c.event_id;
        }
        d.reported_at = d.count;
        let identity = self
            .identities
            .peek(&fp_hex)
            .map(|s| s.to_string())
            .unwrap_or_else(|| c.client_id.clone());
        let score =
            (0.4 + 0.1 * (f64::from(d.count) / f64::from(cfg.threshold)).log2()).clamp(0.0, 0.9);
        let members: Vec<String> = d.members.iter().map(|(id, _)| id.to_string()).collect();
        vec![Draft {
            kind: AlertKind::DuplicateRegistration,
            score,
            client_id: c.client_id.clone(),
            related: members
                .iter()
                .filter(|m| **m != c.client_id)
                .cloned()
                .collect(),
            event_ids: d.members.iter().map(|(_, e)| *e).collect(),
            evidence: json!({
                "fingerprint": fp_hex,
                "identity": identity,
                "source_network": source,
                "count_in_window": d.count,
                "window_secs": cfg.window_secs,
                "threshold": cfg.threshold,
                "total": d.total,
                "client_name": c.client_name,
                "redirect_uris": c.redirect_uris,
                "recent_clients": members,
            }),
            summary: format!(
                "{} identical registrations of {:?} from {} within {}s (one identity: {})",
                d.count,
                c.client_name.as_deref().unwrap_or(""),
                source,
                cfg.window_secs,
                identity
            ),
            dedup_key: format!("duplicate_registration:{fp_hex}:{source}"),
            created_at: from_state_secs(d.started),
            id_salt: d.first_event.to_string(),
        }
        .build(config, now)]
    }
}
