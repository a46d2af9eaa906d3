//! From the wire contract to what detectors see: one
//! [`regwatch_schemas::Envelope`] becomes at most one [`Observation`].
//! Pure; the pipeline calls it for every stored event.
//!
//! Mapping:
//! - `client.registered` → `Registered` (method dcr/cimd);
//! - `client.updated` → `Updated`, with the previous redirect URIs and
//!   scopes taken from the event's old → new diff;
//! - `consent.granted` / `consent.denied`, `token.issued` /
//!   `token.refreshed`, `tool.called` → activity;
//! - `client.access_denied` (an inactive client calling an endpoint) →
//!   `ManagementCall`, so activity after revocation is seen;
//! - `client.revoked`, `client.expired` → `Revoked`; `client.deleted` →
//!   `Deleted`;
//! - `client.registration_rejected` → `Rejected` (with or without a client
//!   id: an anonymous RFC 7591 POST has none), with the rule that fired
//!   (the payload's `rule`, else the first of `policy.matched_rules`), the
//!   error code, and the name and software id of the attempt. Its only use
//!   is the `registration_burst` rates: a flood of refusals from one source
//!   is a burst signal of its own.
//!
//! Not mapped: `client.disabled` (reversible), `token.revoked`.

use std::net::IpAddr;

use regwatch_schemas::{
    ClientMetadata, ClientRegistrationRejected, Envelope, EventPayload, FieldChange,
};

use crate::input::{
    ActivityKind, ActivityObservation, ClientObservation, Observation, RegistrationMethod,
    RejectedObservation,
};

fn scopes_of(m: &ClientMetadata) -> Vec<String> {
    m.scope
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn source_ip(e: &Envelope) -> Option<IpAddr> {
    e.source
        .as_ref()
        .and_then(|s| s.ip.as_deref())
        .and_then(|ip| ip.parse().ok())
}

fn old_value<'a>(changes: &'a [FieldChange], field: &str) -> Option<&'a serde_json::Value> {
    changes.iter().find(|c| c.field == field).map(|c| &c.old)
}

fn client(
    e: &Envelope,
    client_id: &str,
    m: &ClientMetadata,
    method: RegistrationMethod,
) -> ClientObservation {
    ClientObservation {
        client_id: client_id.to_string(),
        client_name: m.client_name.clone(),
        redirect_uris: m.redirect_uris.clone(),
        scopes: scopes_of(m),
        software_id: m.software_id.clone(),
        token_endpoint_auth_method: m.token_endpoint_auth_method.clone(),
        source_ip: source_ip(e),
        at: e.occurred_at,
        event_id: e.event_id,
        registration_method: method,
        previous_redirect_uris: None,
        previous_scopes: None,
    }
}

fn rejected(e: &Envelope, d: &ClientRegistrationRejected) -> Observation {
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    let rule = nonempty(&d.rule).or_else(|| {
        e.policy
            .as_ref()
            .and_then(|p| p.matched_rules.first())
            .and_then(|r| nonempty(r))
    });
    Observation::Rejected(RejectedObservation {
        client_id: e.client_id.clone(),
        client_name: d.attempted.as_ref().and_then(|m| m.client_name.clone()),
        software_id: d.attempted.as_ref().and_then(|m| m.software_id.clone()),
        source_ip: source_ip(e),
        rule,
        error: nonempty(&d.error),
        operation: d.operation.clone(),
        registration_method: match d.registration_method {
            regwatch_schemas::RegistrationMethod::Dcr => RegistrationMethod::Dcr,
            regwatch_schemas::RegistrationMethod::Cimd => RegistrationMethod::Cimd,
        },
        at: e.occurred_at,
        event_id: e.event_id,
    })
}

/// What the detectors should see of `e`, if anything.
pub fn observation(e: &Envelope) -> Option<Observation> {
    if let EventPayload::ClientRegistrationRejected(d) = &e.payload {
        return Some(rejected(e, d));
    }
    let client_id = e.client_id.as_deref()?;
    let activity = |kind: ActivityKind| {
        Some(Observation::Activity(ActivityObservation {
            client_id: client_id.to_string(),
            kind,
            source_ip: source_ip(e),
            at: e.occurred_at,
            event_id: e.event_id,
        }))
    };
    match &e.payload {
        EventPayload::ClientRegistered(d) => {
            let method = match d.registration_method {
                regwatch_schemas::RegistrationMethod::Dcr => RegistrationMethod::Dcr,
                regwatch_schemas::RegistrationMethod::Cimd => RegistrationMethod::Cimd,
            };
            Some(Observation::Registered(client(
                e,
                client_id,
                &d.metadata,
                method,
            )))
        }
        EventPayload::ClientUpdated(d) => {
            let mut c = client(e, client_id, &d.metadata, RegistrationMethod::Dcr);
            c.previous_redirect_uris = old_value(&d.changes, "redirect_uris")
                .and_then(|v| serde_json::from_value(v.clone()).ok());
            c.previous_scopes = old_value(&d.changes, "scope").map(|v| {
                v.as_str()
                    .unwrap_or("")
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            });
            Some(Observation::Updated(c))
        }
        EventPayload::ConsentGranted(d) => activity(ActivityKind::ConsentGranted {
            scopes: d.scopes.clone(),
        }),
        EventPayload::ConsentDenied(_) => activity(ActivityKind::ConsentDenied),
        EventPayload::TokenIssued(_) => activity(ActivityKind::TokenIssued),
        EventPayload::TokenRefreshed(_) => activity(ActivityKind::TokenRefreshed),
        EventPayload::ToolCalled(d) => activity(ActivityKind::ToolCalled {
            tool: d.tool.clone(),
        }),
        EventPayload::ClientAccessDenied(d) => activity(ActivityKind::ManagementCall {
            method: d.endpoint.clone(),
        }),
        EventPayload::ClientRevoked(_) | EventPayload::ClientExpired(_) => {
            activity(ActivityKind::Revoked)
        }
        EventPayload::ClientDeleted(_) => activity(ActivityKind::Deleted),
        EventPayload::ClientRegistrationRejected(d) => Some(rejected(e, d)),
        EventPayload::ClientDisabled(_) | EventPayload::TokenRevoked(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use regwatch_schemas::{
        Actor, ClientRegistered, ClientUpdated, Source, ToolCalled, ToolDecision,
    };
    use serde_json::json;

    fn env(payload: EventPayload) -> Envelope {
        let mut e = Envelope::new(
            "https://as.example",
            Actor::client("c1"),
            payload,
            Utc::now(),
        );
        e.client_id = Some("c1".into());
        e.source = Some(Source {
            ip: Some("203.0.113.9".into()),
            user_agent: None,
        });
        e
    }

    #[test]
    fn registration_update_and_activity_map() {
        let md = ClientMetadata {
            client_name: Some("Acme".into()),
            redirect_uris: vec!["https://new.example/cb".into()],
            scope: Some("mcp:read mcp:write".into()),
            ..Default::default()
        };
        let reg = env(EventPayload::ClientRegistered(ClientRegistered {
            registration_method: regwatch_schemas::RegistrationMethod::Cimd,
            metadata: md.clone(),
            confidential: false,
            dropped_fields: vec![],
            initial_access_token: false,
        }));
        let Some(Observation::Registered(c)) = observation(&reg) else {
            panic!()
        };
        assert_eq!(
            (c.registration_method, c.scopes.len()),
            (RegistrationMethod::Cimd, 2)
        );
        assert_eq!(c.source_ip, Some("203.0.113.9".parse().unwrap()));

        let upd = env(EventPayload::ClientUpdated(ClientUpdated {
            changes: vec![
                FieldChange {
                    field: "redirect_uris".into(),
                    old: json!(["https://old.example/cb"]),
                    new: json!(["https://new.example/cb"]),
                },
                FieldChange {
                    field: "scope".into(),
                    old: json!("mcp:read"),
                    new: json!("mcp:read mcp:write"),
                },
            ],
            metadata: md,
            registration_token_rotated: true,
            dropped_fields: vec![],
        }));
        let Some(Observation::Updated(u)) = observation(&upd) else {
            panic!()
        };
        assert_eq!(
            u.previous_redirect_uris,
            Some(vec!["https://old.example/cb".to_string()])
        );
        assert_eq!(u.previous_scopes, Some(vec!["mcp:read".to_string()]));

        let tool = env(EventPayload::ToolCalled(ToolCalled {
            tool: "delete_item".into(),
            decision: ToolDecision::Denied,
            deciding_scope: None,
            resource: "r".into(),
            user_id: None,
            reason: Some("client_revoked".into()),
        }));
        assert!(matches!(
            observation(&tool),
            Some(Observation::Activity(ActivityObservation {
                kind: ActivityKind::ToolCalled { .. },
                ..
            }))
        ));

        let mut anonymous = reg.clone();
        anonymous.client_id = None;
        assert!(observation(&anonymous).is_none());
    }

    #[test]
    fn rejected_registration_maps_without_a_client() {
        let mut e = env(EventPayload::ClientRegistrationRejected(
            regwatch_schemas::ClientRegistrationRejected {
                error: "invalid_redirect_uri".into(),
                error_description: "fragment".into(),
                rule: String::new(),
                http_status: 400,
                registration_method: regwatch_schemas::RegistrationMethod::Dcr,
                operation: "register".into(),
                attempted: Some(ClientMetadata {
                    client_name: Some("Acme".into()),
                    ..Default::default()
                }),
                dropped_fields: vec![],
            },
        ));
        e.client_id = None;
        e.policy = Some(regwatch_schemas::PolicyDecision {
            decision: regwatch_schemas::Decision::Deny,
            matched_rules: vec!["redirect.fragment".into()],
            risk_signals: vec![],
        });
        let Some(Observation::Rejected(r)) = observation(&e) else {
            panic!("rejected registrations are observed")
        };
        assert_eq!(r.client_id, None);
        assert_eq!(r.client_name.as_deref(), Some("Acme"));
        // The payload's rule is empty here: the policy's first rule stands in.
        assert_eq!(r.rule.as_deref(), Some("redirect.fragment"));
        assert_eq!(r.error.as_deref(), Some("invalid_redirect_uri"));
        assert_eq!(r.source_ip, Some("203.0.113.9".parse().unwrap()));
    }
}
