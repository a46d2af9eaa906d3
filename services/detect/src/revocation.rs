//! The revocation policy (which alerts lead to which action on a client)
//! as data, and the pure decision over one alert. The decision is only
//! advice: the api records, signs and sends it. Not to be confused with
//! authz's registration gate, which decides whether a client may register
//! at all.

use regwatch_schemas::alert::{Alert, AlertKind, AlertStatus};
use serde::{Deserialize, Serialize};

/// What to do to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationAction {
    /// Tell a human; change nothing.
    Notify,
    /// Revoke the client's tokens (RFC 7009), keep the client.
    RevokeTokens,
    /// Disable the client: no new tokens, tokens revoked.
    DisableClient,
    /// Delete the client (RFC 7592 `DELETE`).
    DeleteClient,
}

/// One rule: alerts of `kind` with `score >= min_score` get `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationRule {
    /// Alert kind the rule applies to.
    pub kind: AlertKind,
    /// Lowest score (inclusive) in [0, 1].
    pub min_score: f64,
    /// Action.
    pub action: RevocationAction,
}

/// The revocation policy. Dry-run unless `dry_run = false` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RevocationPolicy {
    /// Decide, but mark every decision as not to be executed.
    pub dry_run: bool,
    /// Rules; the strongest matching action wins.
    pub rules: Vec<RevocationRule>,
    /// Clients never acted on, whatever the alert.
    pub allowlist_client_ids: Vec<String>,
}

impl Default for RevocationPolicy {
    fn default() -> Self {
        RevocationPolicy {
            dry_run: true,
            rules: vec![
                RevocationRule {
                    kind: AlertKind::NameImpersonation,
                    min_score: 0.8,
                    action: RevocationAction::DisableClient,
                },
                RevocationRule {
                    kind: AlertKind::RedirectDrift,
                    min_score: 0.85,
                    action: RevocationAction::DisableClient,
                },
                RevocationRule {
                    kind: AlertKind::RevokedClientActivity,
                    min_score: 0.6,
                    action: RevocationAction::RevokeTokens,
                },
                RevocationRule {
                    kind: AlertKind::ScopeEscalation,
                    min_score: 0.8,
                    action: RevocationAction::RevokeTokens,
                },
            ],
            allowlist_client_ids: Vec::new(),
        }
    }
}

/// Why nothing is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoActionReason {
    /// The client is allowlisted.
    Allowlisted,
    /// No rule matches kind and score.
    NoRuleMatched,
    /// The alert is resolved or suppressed.
    AlertClosed,
    /// The alert names no client (a burst of refused, anonymous
    /// registrations): there is nothing to revoke.
    NoClient,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum RevocationDecision {
    /// Do nothing.
    NoAction {
        /// Why.
        reason: NoActionReason,
    },
    /// What would be done, were the policy not in dry-run.
    DryRun {
        /// The action.
        action: RevocationAction,
        /// Index of the rule in `rules`.
        rule: usize,
        /// Client.
        client_id: String,
    },
    /// Do it.
    Execute {
        /// The action.
        action: RevocationAction,
        /// Index of the rule in `rules`.
        rule: usize,
        /// Client.
        client_id: String,
    },
}

/// Decides what to do about one alert under `policy`. Pure and total.
pub fn decide(alert: &Alert, policy: &RevocationPolicy) -> RevocationDecision {
    if policy.allowlist_client_ids.contains(&alert.client_id) {
        return RevocationDecision::NoAction {
            reason: NoActionReason::Allowlisted,
        };
    }
    if alert.client_id.is_empty() {
        return RevocationDecision::NoAction {
            reason: NoActionReason::NoClient,
        };
    }
    if matches!(
        alert.status,
        AlertStatus::Resolved | AlertStatus::Suppressed
    ) {
        return RevocationDecision::NoAction {
            reason: NoActionReason::AlertClosed,
        };
    }
    let best = policy
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.kind == alert.kind && alert.score.is_finite() && alert.score >= r.min_score
        })
        .max_by(|(ia, a), (ib, b)| a.action.cmp(&b.action).then(ib.cmp(ia)));
    match best {
        None => RevocationDecision::NoAction {
            reason: NoActionReason::NoRuleMatched,
        },
        Some((rule, r)) if policy.dry_run => RevocationDecision::DryRun {
            action: r.action,
            rule,
            client_id: alert.client_id.clone(),
        },
        Some((rule, r)) => RevocationDecision::Execute {
            action: r.action,
            rule,
            client_id: alert.client_id.clone(),
        },
    }
}
