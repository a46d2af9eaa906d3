//! `scope_escalation`: scopes added by an update or asked for at consent
//! beyond what the client had, weighted by a configurable sensitive set.
//! No state of its own: what a client had is in its record's scope bits
//! ([`crate::clients::ScopeInterner`]).

use regwatch_schemas::alert::{Alert, AlertKind};
use serde::Serialize;
use serde_json::json;

use super::ClientEvent;
use crate::alerts::Draft;
use crate::clients::{ClientRecord, ScopeInterner};
use crate::config::{DetectConfig, ScopeConfig};
use crate::input::ActivityObservation;

/// True when `scope` matches a pattern (`*` suffix = prefix match).
pub fn is_sensitive(scope: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) if !prefix.is_empty() => scope.starts_with(prefix),
        _ => scope == p,
    })
}

/// Scopes added and how much they matter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeEscalation {
    /// Every added scope, sorted.
    pub added: Vec<String>,
    /// The sensitive ones among them.
    pub sensitive_added: Vec<String>,
    /// Score in [0, 1].
    pub score: f64,
}

/// Compares `old` with `new`; `None` when nothing was added or the score is
/// below `cfg.min_score`.
pub fn assess_scopes(old: &[String], new: &[String], cfg: &ScopeConfig) -> Option<ScopeEscalation> {
    let mut added: Vec<String> = new
        .iter()
        .filter(|s| !s.is_empty() && !old.contains(s))
        .cloned()
        .collect();
    added.sort();
    added.dedup();
    if added.is_empty() {
        return None;
    }
    let sensitive_added: Vec<String> = added
        .iter()
        .filter(|s| is_sensitive(s, &cfg.sensitive))
        .cloned()
        .collect();
    let score = if !sensitive_added.is_empty() {
        (0.6 + 0.1 * sensitive_added.len() as f64).min(0.95)
    } else if added.len() >= cfg.min_added_non_sensitive {
        0.35
    } else {
        0.1 * added.len() as f64
    };
    (score >= cfg.min_score).then_some(ScopeEscalation {
        added,
        sensitive_added,
        score,
    })
}

/// A metadata update (or a re-registration of a tracked client) that
/// widened the requested scopes. `None` for a first registration.
pub(crate) fn observe_update(
    ev: &ClientEvent<'_>,
    interner: &ScopeInterner,
    config: &DetectConfig,
) -> Option<Alert> {
    if !ev.is_update() {
        return None;
    }
    let c = ev.obs;
    let old = match &c.previous_scopes {
        Some(p) => p.clone(),
        None => ev
            .existing
            .as_ref()
            .map(|r| interner.decode(r.requested))
            .unwrap_or_default(),
    };
    let e = assess_scopes(&old, &c.scopes, &config.scope)?;
    let summary = format!(
        "client {} widened its requested scopes by {} ({} sensitive: {})",
        c.client_id,
        e.added.len(),
        e.sensitive_added.len(),
        e.sensitive_added.join(" ")
    );
    Some(
        Draft {
            kind: AlertKind::ScopeEscalation,
            score: e.score,
            client_id: c.client_id.clone(),
            related: Vec::new(),
            event_ids: vec![c.event_id],
            evidence: json!({"trigger": "metadata_update", "old_scopes": old, "new_scopes": c.scopes, "added": e.added, "sensitive_added": e.sensitive_added}),
            summary,
            dedup_key: format!("scope_escalation:{}", c.client_id),
            created_at: ev.now,
            id_salt: c.event_id.to_string(),
        }
        .build(config, ev.now),
    )
}

/// A consent to `granted` (the bits of `scopes`) beyond what the client
/// `rec` asked for at registration or was granted before. A first consent
/// within the registered scopes is normal.
pub(crate) fn observe_consent(
    a: &ActivityObservation,
    scopes: &[String],
    granted: u64,
    rec: &ClientRecord,
    interner: &ScopeInterner,
    config: &DetectConfig,
) -> Option<Alert> {
    let before = if rec.consents > 0 {
        rec.requested | rec.consented
    } else {
        rec.requested
    };
    if granted & !before == 0 {
        return None;
    }
    let old = interner.decode(before);
    let e = assess_scopes(&old, scopes, &config.scope)?;
    let now = a.at;
    Some(
        Draft {
            kind: AlertKind::ScopeEscalation,
            score: e.score,
            client_id: a.client_id.clone(),
            related: Vec::new(),
            event_ids: vec![a.event_id],
            evidence: json!({"trigger": "consent", "previous_scopes": old, "granted_scopes": scopes, "added": e.added, "sensitive_added": e.sensitive_added, "prior_consents": rec.consents}),
            summary: format!(
                "consent for client {} went beyond its earlier scopes: {}",
                a.client_id,
                e.added.join(" ")
            ),
            dedup_key: format!("scope_escalation:{}", a.client_id),
            created_at: now,
            id_salt: a.event_id.to_string(),
        }
        .build(config, now),
    )
}
