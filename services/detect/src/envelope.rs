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
//!   `Deleted`.
//!
//! Not mapped: `client.registration_rejected` (no client identity; a
//! flood of refusals is visible to the rate limiter, not to the burst
//! detector yet), `client.disabled` (reversible), `token.revoked`.

use std::net::IpAddr;

use regwatch_schemas::{ClientMetadata, Envelope, EventPayload, FieldChange};

use crate::input::{
    ActivityKind, ActivityObservation, ClientObservation, Observation, RegistrationMethod,
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

/// What the detectors should see of `e`, if anything.
pub fn observation(e: &Envelope) -> Option<Observation> {
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
        EventPayload::ClientRegistrationRejected(_)
        | EventPayload::ClientDisabled(_)
        | EventPayload::TokenRevoked(_) => None,
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
}
