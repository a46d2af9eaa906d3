//! What every format shares about an event type or alert kind: stable
//! names, severity and outcome. The renderers read this table instead of
//! deciding on their own, so OCSF, ECS and CEF agree on one event.

use regwatch_schemas::{
    ActorKind, AlertKind, Decision, Envelope, EventPayload, EventType, Severity, ToolDecision,
};

/// The stable names of one event type or alert kind. `signature_id` is the
/// CEF Device Event Class ID: never change it once released, SIEM rules
/// key on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    pub signature_id: &'static str,
    pub title: &'static str,
    /// ECS `event.action` (kebab case, as ECS examples use).
    pub action: &'static str,
}

const fn names(signature_id: &'static str, title: &'static str, action: &'static str) -> Names {
    Names {
        signature_id,
        title,
        action,
    }
}

pub fn event_names(t: EventType) -> Names {
    match t {
        EventType::ClientRegistered => names(
            "client.registered",
            "OAuth client registered",
            "oauth-client-registered",
        ),
        EventType::ClientRegistrationRejected => names(
            "client.registration_rejected",
            "OAuth client registration rejected",
            "oauth-client-registration-rejected",
        ),
        EventType::ClientUpdated => names(
            "client.updated",
            "OAuth client updated",
            "oauth-client-updated",
        ),
        EventType::ClientDeleted => names(
            "client.deleted",
            "OAuth client deleted",
            "oauth-client-deleted",
        ),
        EventType::ClientExpired => names(
            "client.expired",
            "OAuth client expired",
            "oauth-client-expired",
        ),
        EventType::ClientRevoked => names(
            "client.revoked",
            "OAuth client revoked",
            "oauth-client-revoked",
        ),
        EventType::ClientDisabled => names(
            "client.disabled",
            "OAuth client disabled or re-enabled",
            "oauth-client-disabled",
        ),
        EventType::ClientAccessDenied => names(
            "client.access_denied",
            "Inactive OAuth client denied access",
            "oauth-client-access-denied",
        ),
        EventType::ConsentGranted => names(
            "consent.granted",
            "Consent granted",
            "oauth-consent-granted",
        ),
        EventType::ConsentDenied => {
            names("consent.denied", "Consent denied", "oauth-consent-denied")
        }
        EventType::TokenIssued => names("token.issued", "Token issued", "oauth-token-issued"),
        EventType::TokenRefreshed => names(
            "token.refreshed",
            "Token refreshed",
            "oauth-token-refreshed",
        ),
        EventType::TokenRevoked => names("token.revoked", "Token revoked", "oauth-token-revoked"),
        EventType::ToolCalled => names("tool.called", "MCP tool called", "mcp-tool-called"),
    }
}

pub fn alert_names(k: AlertKind) -> Names {
    match k {
        AlertKind::RegistrationBurst => names(
            "alert.registration_burst",
            "Registration burst",
            "registration-burst-detected",
        ),
        AlertKind::NameImpersonation => names(
            "alert.name_impersonation",
            "Client name impersonation",
            "name-impersonation-detected",
        ),
        AlertKind::RedirectDrift => names(
            "alert.redirect_drift",
            "Redirect URI drift",
            "redirect-drift-detected",
        ),
        AlertKind::ScopeEscalation => names(
            "alert.scope_escalation",
            "Scope escalation",
            "scope-escalation-detected",
        ),
        AlertKind::DormantClient => names(
            "alert.dormant_client",
            "Dormant client reactivated",
            "dormant-client-detected",
        ),
        AlertKind::DuplicateRegistration => names(
            "alert.duplicate_registration",
            "Duplicate registration",
            "duplicate-registration-detected",
        ),
        AlertKind::RevokedClientActivity => names(
            "alert.revoked_client_activity",
            "Revoked client activity",
            "revoked-client-activity-detected",
        ),
    }
}

/// ECS `event.action` of one event: the table's action, except that a
/// re-enable (`client.disabled` with `disabled: false`) says so.
pub fn event_action(e: &Envelope) -> &'static str {
    match &e.payload {
        EventPayload::ClientDisabled(d) if !d.disabled => "oauth-client-enabled",
        _ => event_names(e.event_type()).action,
    }
}

/// How much a SIEM should care about one event. Routine lifecycle steps
/// are informational; refusals are low; security actions (a revocation,
/// a refresh token reused, an inactive client still trying) are medium.
pub fn event_severity(e: &Envelope) -> Severity {
    match &e.payload {
        EventPayload::ClientRegistered(_)
        | EventPayload::ClientUpdated(_)
        | EventPayload::ClientDeleted(_)
        | EventPayload::ClientExpired(_)
        | EventPayload::ConsentGranted(_)
        | EventPayload::TokenIssued(_)
        | EventPayload::TokenRefreshed(_) => Severity::Info,
        EventPayload::ClientRegistrationRejected(_) => Severity::Low,
        EventPayload::ClientRevoked(_) | EventPayload::ClientAccessDenied(_) => Severity::Medium,
        EventPayload::ClientDisabled(d) if d.disabled => Severity::Low,
        EventPayload::ClientDisabled(_) => Severity::Info,
        EventPayload::ConsentDenied(d) if d.reason == "user_denied" => Severity::Info,
        EventPayload::ConsentDenied(_) => Severity::Low,
        EventPayload::TokenRevoked(t) if t.reason == "refresh_reuse" => Severity::Medium,
        EventPayload::TokenRevoked(_) => Severity::Info,
        EventPayload::ToolCalled(t) if t.decision == ToolDecision::Allowed => Severity::Info,
        EventPayload::ToolCalled(_) => Severity::Low,
    }
}

/// Whether the step the event records succeeded. A policy `deny` on an
/// otherwise successful event also counts as a failure.
pub fn event_succeeded(e: &Envelope) -> bool {
    let refused = match &e.payload {
        EventPayload::ClientRegistrationRejected(_)
        | EventPayload::ClientAccessDenied(_)
        | EventPayload::ConsentDenied(_) => true,
        EventPayload::ToolCalled(t) => t.decision == ToolDecision::Denied,
        _ => false,
    };
    let denied_by_policy = e
        .policy
        .as_ref()
        .is_some_and(|p| p.decision == Decision::Deny);
    !(refused || denied_by_policy)
}

/// The person (or admin) the event is about or caused by.
pub fn user_name(e: &Envelope) -> Option<&str> {
    let from_data = match &e.payload {
        EventPayload::ConsentGranted(d) => Some(d.user_id.as_str()),
        EventPayload::ConsentDenied(d) => d.user_id.as_deref(),
        EventPayload::TokenIssued(d) => d.user_id.as_deref(),
        EventPayload::ToolCalled(d) => d.user_id.as_deref(),
        _ => None,
    };
    let from_actor = match e.actor.kind {
        ActorKind::User | ActorKind::Admin => e.actor.id.as_deref(),
        _ => None,
    };
    from_data.or(from_actor)
}

/// OCSF `severity_id`: 1 Informational … 5 Critical.
pub fn ocsf_severity_id(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 2,
        Severity::Medium => 3,
        Severity::High => 4,
        Severity::Critical => 5,
    }
}

/// OCSF severity caption, paired with [`ocsf_severity_id`].
pub fn ocsf_severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "Informational",
        Severity::Low => "Low",
        Severity::Medium => "Medium",
        Severity::High => "High",
        Severity::Critical => "Critical",
    }
}

/// CEF severity, 0–10, spread so the CEF bands (0–3 low, 4–6 medium,
/// 7–8 high, 9–10 very high) match the meaning.
pub fn cef_severity(s: Severity) -> u8 {
    match s {
        Severity::Info => 1,
        Severity::Low => 3,
        Severity::Medium => 5,
        Severity::High => 8,
        Severity::Critical => 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn signature_ids_are_unique_and_cover_the_contract() {
        let mut seen = HashSet::new();
        for t in EventType::ALL {
            let n = event_names(t);
            assert_eq!(n.signature_id, t.as_str(), "event signature = wire name");
            assert!(seen.insert(n.signature_id));
        }
        for k in AlertKind::ALL {
            let n = alert_names(k);
            assert_eq!(n.signature_id, format!("alert.{}", k.as_str()));
            assert!(seen.insert(n.signature_id));
        }
    }

    #[test]
    fn cef_severity_stays_in_range_and_keeps_order() {
        let all = [
            Severity::Info,
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ];
        let cef: Vec<u8> = all.iter().map(|s| cef_severity(*s)).collect();
        assert!(cef.iter().all(|v| *v <= 10), "{cef:?}");
        assert!(cef.windows(2).all(|w| w[0] < w[1]), "{cef:?}");
        let ocsf: Vec<u8> = all.iter().map(|s| ocsf_severity_id(*s)).collect();
        assert_eq!(ocsf, [1, 2, 3, 4, 5]);
    }
}
