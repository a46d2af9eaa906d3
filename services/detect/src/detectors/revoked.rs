//! `revoked_client_activity`: a revoked or deleted client that keeps
//! trying (token requests, tool calls, re-registration, updates). A fact,
//! not a judgement: allowlisted clients are reported too. While a client
//! is remembered here, the engine sends its observations to this detector
//! alone.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use regwatch_schemas::alert::{Alert, AlertKind};
use serde_json::json;
use uuid::Uuid;

use crate::alerts::{combine, Draft};
use crate::bounded::BoundedMap;
use crate::config::DetectConfig;
use crate::input::ActivityKind;
use crate::state_time::{from_state_secs, state_secs};

/// A revoked or deleted client.
#[derive(Debug, Clone)]
struct RevokedState {
    at: u32,
    deleted: bool,
    attempts: u32,
    reported_at: u32,
    first_attempt: u32,
    first_event: Option<Uuid>,
    events: VecDeque<Uuid>,
}

/// What a revoked client's activity counts as, for the alert; `None` for
/// what is no attempt to use the client (a denied consent, a revocation
/// or deletion repeated).
pub(crate) fn attempt_of(kind: &ActivityKind) -> Option<&'static str> {
    match kind {
        ActivityKind::TokenIssued => Some("token request"),
        ActivityKind::TokenRefreshed => Some("token refresh"),
        ActivityKind::ToolCalled { .. } => Some("tool call"),
        ActivityKind::ManagementCall { .. } => Some("management call"),
        ActivityKind::ConsentGranted { .. } => Some("consent"),
        ActivityKind::ConsentDenied | ActivityKind::Revoked | ActivityKind::Deleted => None,
    }
}

/// `revoked_client_activity`: the revoked and deleted clients, bounded.
#[derive(Debug)]
pub(crate) struct RevokedDetector {
    clients: BoundedMap<RevokedState>,
}

impl RevokedDetector {
    /// Empty, remembering at most `max_revoked` clients.
    pub(crate) fn new(max_revoked: usize) -> Self {
        RevokedDetector {
            clients: BoundedMap::new(max_revoked),
        }
    }

    /// Revoked clients remembered.
    pub(crate) fn len(&self) -> usize {
        self.clients.len()
    }

    /// True while `client_id` is remembered as revoked or deleted.
    pub(crate) fn is_revoked(&self, client_id: &str) -> bool {
        self.clients.peek(client_id).is_some()
    }

    /// Remembers a revocation or deletion at `t` (the first one stands).
    pub(crate) fn record(&mut self, client_id: &str, deleted: bool, t: u32) {
        self.clients.get_or_insert_with(client_id, || RevokedState {
            at: t,
            deleted,
            attempts: 0,
            reported_at: 0,
            first_attempt: t,
            first_event: None,
            events: VecDeque::new(),
        });
    }

    /// One more attempt (`what`) by a remembered client. Reported on the
    /// first attempt, then each time the count doubles.
    pub(crate) fn observe_attempt(
        &mut self,
        client_id: &str,
        what: &str,
        event_id: Uuid,
        now: DateTime<Utc>,
        config: &DetectConfig,
    ) -> Vec<Alert> {
        let t = state_secs(now);
        let Some(r) = self.clients.get_mut(client_id) else {
            return Vec::new();
        };
        r.attempts += 1;
        if r.first_event.is_none() {
            r.first_event = Some(event_id);
            r.first_attempt = t;
        }
        if r.events.len() >= 10 {
            r.events.pop_front();
        }
        r.events.push_back(event_id);
        let report = r.reported_at == 0 || r.attempts >= r.reported_at.saturating_mul(2);
        if !report {
            return Vec::new();
        }
        r.reported_at = r.attempts;
        let base = if what == "tool call" { 0.8 } else { 0.65 };
        let score = combine([base, (0.05 * f64::from(r.attempts)).min(0.5)]);
        let state = if r.deleted { "deleted" } else { "revoked" };
        let alert = Draft {
            kind: AlertKind::RevokedClientActivity,
            score,
            client_id: client_id.to_owned(),
            related: Vec::new(),
            event_ids: r.events.iter().copied().collect(),
            evidence: json!({
                "client_state": state,
                "revoked_at": from_state_secs(r.at),
                "attempt": what,
                "attempts": r.attempts,
                "seconds_since_revocation": t.saturating_sub(r.at),
            }),
            summary: format!(
                "{state} client {client_id} attempted a {what} ({} attempt(s) since {state})",
                r.attempts
            ),
            dedup_key: format!("revoked_client_activity:{client_id}"),
            created_at: from_state_secs(r.first_attempt),
            id_salt: r.first_event.map(|e| e.to_string()).unwrap_or_default(),
        }
        .build(config, now);
        vec![alert]
    }
}
