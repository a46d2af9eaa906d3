//! ECS 9.x documents (nested JSON, as Elasticsearch ingests them).
//!
//! Every field is an ECS field: the contract's own fields with no ECS
//! counterpart go to `labels` (flat keywords), and the whole contract
//! record is kept verbatim in `event.original` so nothing is lost.
//! `event.category`/`event.type` come from [`categories`], which only
//! pairs a type with a category that ECS lists it under.

use chrono::{DateTime, SecondsFormat, Utc};
use regwatch_schemas::{Alert, Envelope, EventPayload, ToolDecision};
use serde_json::{json, Map, Value};

use crate::mapping::{
    alert_names, event_action, event_severity, event_succeeded, ocsf_severity_id, user_name,
};

/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "9.4.0";

/// ECS `event.category` and `event.type` of one event.
pub fn categories(e: &Envelope) -> (&'static [&'static str], &'static [&'static str]) {
    const IAM_API: &[&str] = &["iam", "api"];
    const IAM: &[&str] = &["iam"];
    const AUTHN: &[&str] = &["authentication"];
    const API: &[&str] = &["api"];
    match &e.payload {
        EventPayload::ClientRegistered(_) | EventPayload::ClientRegistrationRejected(_) => {
            (IAM_API, &["creation"])
        }
        EventPayload::ClientUpdated(_) => (IAM_API, &["change"]),
        EventPayload::ClientDeleted(_)
        | EventPayload::ClientExpired(_)
        | EventPayload::ClientRevoked(_) => (IAM, &["deletion"]),
        EventPayload::ClientDisabled(_)
        | EventPayload::ConsentGranted(_)
        | EventPayload::ConsentDenied(_) => (IAM, &["change"]),
        EventPayload::ClientAccessDenied(_) => (API, &["access", "denied"]),
        EventPayload::TokenIssued(_) | EventPayload::TokenRefreshed(_) => (AUTHN, &["start"]),
        EventPayload::TokenRevoked(_) => (AUTHN, &["end"]),
        EventPayload::ToolCalled(t) if t.decision == ToolDecision::Allowed => {
            (API, &["access", "allowed"])
        }
        EventPayload::ToolCalled(_) => (API, &["access", "denied"]),
    }
}

/// ECS `event.category`/`event.type` of every alert: findings about an
/// OAuth client's identity.
pub const ALERT_CATEGORY: &[&str] = &["iam"];
pub const ALERT_TYPE: &[&str] = &["info"];

/// The ECS document of one event.
pub fn event(e: &Envelope) -> Value {
    let (category, types) = categories(e);
    let mut event = json!({
        "kind": "event",
        "category": category,
        "type": types,
        "action": event_action(e),
        "outcome": if event_succeeded(e) { "success" } else { "failure" },
        "id": e.event_id.to_string(),
        "code": e.event_type().as_str(),
        "severity": ocsf_severity_id(event_severity(e)),
        "module": crate::PRODUCT_NAME,
        "dataset": "regwatch.events",
        "original": serde_json::to_string(e).unwrap_or_default(),
    });
    let mut doc = base(
        e.occurred_at,
        crate::mapping::event_names(e.event_type()).title,
    );
    let mut labels = Map::new();
    labels.insert("event_type".into(), json!(e.event_type().as_str()));
    if let Some(c) = &e.client_id {
        labels.insert("client_id".into(), json!(c));
    }
    if let Some(c) = &e.correlation_id {
        labels.insert("correlation_id".into(), json!(c));
    }
    if let Some(r) = &e.request_id {
        labels.insert("request_id".into(), json!(r));
    }
    if let Some(src) = &e.source {
        if let Some(ip) = &src.ip {
            doc["client"] = json!({ "ip": ip });
        }
        if let Some(ua) = &src.user_agent {
            doc["user_agent"] = json!({ "original": ua });
        }
    }
    if let Some(u) = user_name(e) {
        doc["user"] = json!({ "name": u, "id": u });
    }
    if let Some(p) = &e.policy {
        if let Some(rule) = p.matched_rules.first() {
            doc["rule"] = json!({"name": rule, "ruleset": "regwatch-policy"});
        }
        if !p.risk_signals.is_empty() {
            labels.insert("risk_signals".into(), json!(p.risk_signals.join(",")));
        }
    }
    payload_fields(e, &mut doc, &mut event, &mut labels);
    doc["event"] = event;
    doc["labels"] = Value::Object(labels);
    doc
}

/// The ECS document of one alert (`event.kind: alert`).
pub fn alert(a: &Alert) -> Value {
    let names = alert_names(a.kind);
    // 0–100 with two decimals: 0.93 reads 93, not 93.00000000000001.
    let score = (a.score.clamp(0.0, 1.0) * 10_000.0).round() / 100.0;
    let mut doc = base(a.updated_at, &a.summary);
    doc["event"] = json!({
        "kind": "alert",
        "category": ALERT_CATEGORY,
        "type": ALERT_TYPE,
        "action": names.action,
        "id": a.alert_id.to_string(),
        "code": names.signature_id,
        "severity": ocsf_severity_id(a.severity),
        "risk_score": score,
        "risk_score_norm": score,
        "created": rfc3339(a.created_at),
        "start": rfc3339(a.created_at),
        "module": crate::PRODUCT_NAME,
        "dataset": "regwatch.alerts",
        "original": serde_json::to_string(a).unwrap_or_default(),
    });
    doc["rule"] = json!({
        "id": a.kind.as_str(),
        "name": names.title,
        "description": a.summary,
        "category": "oauth-client",
        "ruleset": "regwatch-detectors",
        "version": crate::PRODUCT_VERSION,
    });
    let mut labels = Map::new();
    labels.insert("client_id".into(), json!(a.client_id));
    labels.insert("dedup_key".into(), json!(a.dedup_key));
    labels.insert(
        "alert_status".into(),
        serde_json::to_value(a.status).unwrap_or(Value::Null),
    );
    if !a.related_client_ids.is_empty() {
        labels.insert(
            "related_client_ids".into(),
            json!(a.related_client_ids.join(",")),
        );
    }
    doc["labels"] = Value::Object(labels);
    doc
}

fn base(at: DateTime<Utc>, message: &str) -> Value {
    json!({
        "@timestamp": rfc3339(at),
        "ecs": { "version": ECS_VERSION },
        "message": message,
        "observer": {
            "vendor": crate::PRODUCT_NAME,
            "product": crate::PRODUCT_NAME,
            "version": crate::PRODUCT_VERSION,
        },
    })
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The type-specific fields: ECS fields where ECS has one, labels else.
fn payload_fields(
    e: &Envelope,
    doc: &mut Value,
    event: &mut Value,
    labels: &mut Map<String, Value>,
) {
    let mut label = |k: &str, v: String| {
        if !v.is_empty() {
            labels.insert(k.into(), Value::String(v));
        }
    };
    match &e.payload {
        EventPayload::ClientRegistered(d) => {
            label("registration_method", json_str(&d.registration_method));
            if let Some(n) = &d.metadata.client_name {
                label("client_name", n.clone());
            }
            label("redirect_uris", d.metadata.redirect_uris.join(" "));
        }
        EventPayload::ClientRegistrationRejected(d) => {
            doc["error"] = json!({"code": d.error, "message": d.error_description});
            doc["http"] = json!({"response": {"status_code": d.http_status}});
            doc["rule"] = json!({"name": d.rule, "ruleset": "regwatch-policy"});
            event["reason"] = json!(d.error_description);
            label("registration_method", json_str(&d.registration_method));
            label("operation", d.operation.clone());
            if let Some(n) = d.attempted.as_ref().and_then(|m| m.client_name.clone()) {
                label("client_name", n);
            }
        }
        EventPayload::ClientUpdated(d) => {
            let fields: Vec<&str> = d.changes.iter().map(|c| c.field.as_str()).collect();
            label("changed_fields", fields.join(","));
            if let Some(n) = &d.metadata.client_name {
                label("client_name", n.clone());
            }
        }
        EventPayload::ClientDeleted(d) => {
            event["reason"] = json!(d.reason);
            label("tokens_revoked", d.tokens_revoked.to_string());
        }
        EventPayload::ClientExpired(d) => {
            event["reason"] = json!(d.reason);
            label("tokens_revoked", d.tokens_revoked.to_string());
        }
        EventPayload::ClientRevoked(d) => {
            event["reason"] = json!(d.reason);
            label("requested_by", d.requested_by.clone());
            label("tokens_revoked", d.tokens_revoked.to_string());
        }
        EventPayload::ClientDisabled(d) => {
            event["reason"] = json!(d.reason);
            label("requested_by", d.requested_by.clone());
        }
        EventPayload::ClientAccessDenied(d) => {
            event["reason"] = json!(d.reason);
            label("endpoint", d.endpoint.clone());
            label("client_status", d.client_status.clone());
        }
        EventPayload::ConsentGranted(d) => {
            label("scopes", d.scopes.join(" "));
            label("resource", d.resource.clone());
        }
        EventPayload::ConsentDenied(d) => {
            event["reason"] = json!(d.reason);
            label("scopes", d.scopes.join(" "));
        }
        EventPayload::TokenIssued(d) => {
            label("grant_type", d.grant_type.clone());
            label("scopes", d.scopes.join(" "));
            label("resource", d.resource.clone());
            label("token_id", d.token_id.clone());
        }
        EventPayload::TokenRefreshed(d) => {
            label("scopes", d.scopes.join(" "));
            label("resource", d.resource.clone());
            label("token_id", d.token_id.clone());
            label("family_id", d.family_id.clone());
        }
        EventPayload::TokenRevoked(d) => {
            event["reason"] = json!(d.reason);
            label("token_kind", json_str(&d.token_kind));
            label("revoked_count", d.count.to_string());
        }
        EventPayload::ToolCalled(d) => {
            let mut tool = json!({ "name": d.tool });
            if let Some(r) = &e.request_id {
                tool["call"] = json!({ "id": r });
            }
            doc["gen_ai"] = json!({ "tool": tool });
            if let Some(r) = &d.reason {
                event["reason"] = json!(r);
            }
            label("resource", d.resource.clone());
            if let Some(s) = &d.deciding_scope {
                label("deciding_scope", s.clone());
            }
        }
    }
}

/// A serde enum's wire name (`dcr`, `access_token`, …).
fn json_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}
