//! Realistic samples: what authz and the detectors emit for one client's
//! life, with the variants that pick another mapping (CIMD, a rejected
//! update, a re-enable, a denied tool call, consent refused before
//! sign-in, a refresh token reused).

use chrono::{DateTime, TimeZone, Utc};
use regwatch_schemas::*;
use serde_json::json;
use uuid::Uuid;

const ISSUER: &str = "https://auth.example.com";
const CLIENT: &str = "c_9f8c2a41d07b";
const RESOURCE: &str = "https://mcp.example.com/mcp";

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(1_795_262_400_000 + secs * 1000 + 123)
        .unwrap()
}

fn envelope(n: u32, actor: Actor, payload: EventPayload) -> Envelope {
    let mut e = Envelope::new(ISSUER, actor, payload, at(i64::from(n)));
    e.client_id = Some(CLIENT.into());
    e.source = Some(Source {
        ip: Some("203.0.113.7".into()),
        user_agent: Some("acme-mcp/1.4 (node 22)".into()),
    });
    e.request_id = Some(format!("req-{n:04}"));
    e.correlation_id = Some("corr-5d1c".into());
    e
}

fn metadata() -> ClientMetadata {
    ClientMetadata {
        client_name: Some("Acme Assistant".into()),
        redirect_uris: vec!["http://127.0.0.1:33418/callback".into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        response_types: vec!["code".into()],
        token_endpoint_auth_method: Some("none".into()),
        application_type: Some("native".into()),
        scope: Some("tools:read tools:write".into()),
        client_uri: Some("https://acme.example".into()),
        software_id: Some("acme-mcp".into()),
        software_version: Some("1.4.0".into()),
        ..ClientMetadata::default()
    }
}

fn allow(rules: &[&str], signals: &[&str]) -> Option<PolicyDecision> {
    Some(PolicyDecision {
        decision: Decision::Allow,
        matched_rules: rules.iter().map(|s| s.to_string()).collect(),
        risk_signals: signals.iter().map(|s| s.to_string()).collect(),
    })
}

/// Every event type at least once, with the variants.
pub fn events() -> Vec<Envelope> {
    let scopes = vec!["tools:read".to_string(), "tools:write".to_string()];
    let mut v = Vec::new();

    let mut e = envelope(
        1,
        Actor::anonymous_client(),
        EventPayload::ClientRegistered(ClientRegistered {
            registration_method: RegistrationMethod::Dcr,
            metadata: metadata(),
            confidential: false,
            dropped_fields: vec!["software_statement_x".into()],
            initial_access_token: false,
        }),
    );
    e.policy = allow(&[], &["loopback_redirect", "unknown_fields"]);
    v.push(e);

    let cimd_id = "https://acme.example/oauth/client.json";
    let mut e = envelope(
        2,
        Actor::client(cimd_id),
        EventPayload::ClientRegistered(ClientRegistered {
            registration_method: RegistrationMethod::Cimd,
            metadata: ClientMetadata {
                client_name: Some("Acme Web".into()),
                redirect_uris: vec!["https://acme.example/callback".into()],
                ..ClientMetadata::default()
            },
            confidential: false,
            dropped_fields: vec![],
            initial_access_token: false,
        }),
    );
    e.client_id = Some(cimd_id.into());
    v.push(e);

    let mut e = envelope(
        3,
        Actor::anonymous_client(),
        EventPayload::ClientRegistrationRejected(ClientRegistrationRejected {
            error: "invalid_redirect_uri".into(),
            error_description: "redirect_uri must not contain a fragment".into(),
            rule: "redirect.fragment".into(),
            http_status: 400,
            registration_method: RegistrationMethod::Dcr,
            operation: "register".into(),
            attempted: Some(ClientMetadata {
                client_name: Some("Acme Assistant".into()),
                redirect_uris: vec!["https://evil.example/cb#frag".into()],
                ..ClientMetadata::default()
            }),
            dropped_fields: vec![],
        }),
    );
    e.client_id = None;
    e.policy = Some(PolicyDecision {
        decision: Decision::Deny,
        matched_rules: vec!["redirect.fragment".into()],
        risk_signals: vec![],
    });
    v.push(e);

    // A rejected registration with nothing readable, from an unknown address.
    let mut e = envelope(
        4,
        Actor::anonymous_client(),
        EventPayload::ClientRegistrationRejected(ClientRegistrationRejected {
            error: "invalid_client_metadata".into(),
            error_description: "body is not JSON".into(),
            rule: "request.malformed".into(),
            http_status: 400,
            registration_method: RegistrationMethod::Dcr,
            operation: "update".into(),
            attempted: None,
            dropped_fields: vec![],
        }),
    );
    e.source = None;
    v.push(e);

    let mut updated = metadata();
    updated.redirect_uris = vec!["http://127.0.0.1:40111/callback".into()];
    v.push(envelope(
        5,
        Actor::client(CLIENT),
        EventPayload::ClientUpdated(ClientUpdated {
            changes: vec![FieldChange {
                field: "redirect_uris".into(),
                old: json!(["http://127.0.0.1:33418/callback"]),
                new: json!(["http://127.0.0.1:40111/callback"]),
            }],
            metadata: updated,
            registration_token_rotated: true,
            dropped_fields: vec![],
        }),
    ));

    v.push(envelope(
        6,
        Actor::client(CLIENT),
        EventPayload::ClientAccessDenied(ClientAccessDenied {
            endpoint: "token".into(),
            client_status: "revoked".into(),
            reason: "client_revoked".into(),
        }),
    ));

    v.push(envelope(
        7,
        Actor::user("alice"),
        EventPayload::ConsentGranted(ConsentGranted {
            user_id: "alice".into(),
            scopes: scopes.clone(),
            resource: RESOURCE.into(),
            redirect_uri: "http://127.0.0.1:33418/callback".into(),
        }),
    ));
    v.push(envelope(
        8,
        Actor::user("bob"),
        EventPayload::ConsentDenied(ConsentDenied {
            user_id: Some("bob".into()),
            scopes: scopes.clone(),
            resource: Some(RESOURCE.into()),
            reason: "user_denied".into(),
        }),
    ));
    v.push(envelope(
        9,
        Actor::anonymous_client(),
        EventPayload::ConsentDenied(ConsentDenied {
            user_id: None,
            scopes: vec![],
            resource: None,
            reason: "unverified_client".into(),
        }),
    ));

    v.push(envelope(
        10,
        Actor::client(CLIENT),
        EventPayload::TokenIssued(TokenIssued {
            grant_type: "authorization_code".into(),
            scopes: scopes.clone(),
            resource: RESOURCE.into(),
            token_id: "tok_3b9e01".into(),
            family_id: Some("fam_77a2".into()),
            user_id: Some("alice".into()),
            refresh_token_issued: true,
            expires_in: 3600,
        }),
    ));
    v.push(envelope(
        11,
        Actor::client(CLIENT),
        EventPayload::TokenIssued(TokenIssued {
            grant_type: "client_credentials".into(),
            scopes: vec!["tools:read".into()],
            resource: RESOURCE.into(),
            token_id: "tok_91c4aa".into(),
            family_id: None,
            user_id: None,
            refresh_token_issued: false,
            expires_in: 600,
        }),
    ));
    v.push(envelope(
        12,
        Actor::client(CLIENT),
        EventPayload::TokenRefreshed(TokenRefreshed {
            family_id: "fam_77a2".into(),
            token_id: "tok_5d0f13".into(),
            scopes: scopes.clone(),
            resource: RESOURCE.into(),
            expires_in: 3600,
        }),
    ));
    v.push(envelope(
        13,
        Actor::client(CLIENT),
        EventPayload::TokenRevoked(TokenRevoked {
            token_kind: TokenKind::RefreshToken,
            reason: "refresh_reuse".into(),
            family_id: Some("fam_77a2".into()),
            token_id: None,
            count: 3,
        }),
    ));
    v.push(envelope(
        14,
        Actor::client(CLIENT),
        EventPayload::TokenRevoked(TokenRevoked {
            token_kind: TokenKind::AccessToken,
            reason: "rfc7009".into(),
            family_id: None,
            token_id: Some("tok_3b9e01".into()),
            count: 1,
        }),
    ));

    let mut e = envelope(
        15,
        Actor::client(CLIENT),
        EventPayload::ToolCalled(ToolCalled {
            tool: "search_issues".into(),
            decision: ToolDecision::Allowed,
            deciding_scope: Some("tools:read".into()),
            resource: RESOURCE.into(),
            user_id: Some("alice".into()),
            reason: None,
        }),
    );
    e.source = Some(Source {
        ip: Some("2001:db8::17".into()),
        user_agent: None,
    });
    v.push(e);
    v.push(envelope(
        16,
        Actor::client(CLIENT),
        EventPayload::ToolCalled(ToolCalled {
            tool: "delete_repo".into(),
            decision: ToolDecision::Denied,
            deciding_scope: Some("tools:admin".into()),
            resource: RESOURCE.into(),
            user_id: Some("alice".into()),
            reason: Some("insufficient_scope".into()),
        }),
    ));

    let mut e = envelope(
        17,
        Actor::system("lifecycle"),
        EventPayload::ClientDisabled(ClientDisabled {
            reason: "lookalike client_name".into(),
            requested_by: "detector".into(),
            disabled: true,
        }),
    );
    e.source = None;
    v.push(e);
    v.push(envelope(
        18,
        Actor::admin("root@example.com"),
        EventPayload::ClientDisabled(ClientDisabled {
            reason: "false positive".into(),
            requested_by: "admin_api".into(),
            disabled: false,
        }),
    ));
    v.push(envelope(
        19,
        Actor::admin("root@example.com"),
        EventPayload::ClientRevoked(ClientRevoked {
            reason: "impersonates Acme Assistant".into(),
            requested_by: "admin_api".into(),
            tokens_revoked: 4,
        }),
    ));
    let mut e = envelope(
        20,
        Actor::system("lifecycle"),
        EventPayload::ClientExpired(ClientExpired {
            reason: "idle".into(),
            ttl_seconds: 90 * 86_400,
            last_seen_at: at(-90 * 86_400),
            tokens_revoked: 0,
        }),
    );
    e.source = None;
    e.request_id = None;
    v.push(e);
    v.push(envelope(
        21,
        Actor::client(CLIENT),
        EventPayload::ClientDeleted(ClientDeleted {
            reason: "rfc7592_delete".into(),
            tokens_revoked: 2,
        }),
    ));
    v
}

/// Every alert kind once, through every status.
pub fn alerts() -> Vec<Alert> {
    let statuses = [
        AlertStatus::Open,
        AlertStatus::Open,
        AlertStatus::Acknowledged,
        AlertStatus::Resolved,
        AlertStatus::Suppressed,
        AlertStatus::Open,
        AlertStatus::Open,
    ];
    let severities = [
        Severity::High,
        Severity::Critical,
        Severity::Medium,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
        Severity::High,
    ];
    AlertKind::ALL
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let created = at(100 + i as i64);
            // The second sample is an update of an open alert.
            let updated = if i == 1 { at(400) } else { created };
            let updated = if statuses[i] == AlertStatus::Open {
                updated
            } else {
                at(900)
            };
            Alert {
                alert_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + i as u128),
                kind: *kind,
                severity: severities[i],
                score: [0.93, 0.88, 0.5, 0.61, 0.2, 0.05, 1.0][i],
                client_id: CLIENT.into(),
                related_client_ids: if i % 2 == 0 {
                    vec!["c_11aa".into(), "c_22bb".into()]
                } else {
                    vec![]
                },
                event_ids: vec![Uuid::from_u128(
                    0x0190_0000_0000_7000_8000_0000_0000_1000 + i as u128,
                )],
                evidence: json!({
                    "source_ip": "203.0.113.7",
                    "window_seconds": 60,
                    "count": 41,
                    "names": ["Acme Assistant", "Acme Аssistant"],
                }),
                summary: format!("{} on {CLIENT}: see evidence", kind.as_str()),
                dedup_key: format!("{}:client:{CLIENT}", kind.as_str()),
                created_at: created,
                updated_at: updated,
                status: statuses[i],
            }
        })
        .collect()
}
