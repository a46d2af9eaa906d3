//! `scope_escalation`: scopes added by an update or asked for at consent
//! beyond what the client had, weighted by a configurable sensitive set.

use serde::Serialize;

use crate::config::ScopeConfig;

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
