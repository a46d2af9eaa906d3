//! Building contract events from what a request told us.

use chrono::{DateTime, Utc};
use regwatch_schemas::{
    Actor, ClientMetadata, Decision, Envelope, EventPayload, FieldChange, PolicyDecision, Source,
};
use serde_json::Value;

/// Per-request facts every event carries.
#[derive(Debug, Clone, Default)]
pub struct RequestCtx {
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl RequestCtx {
    pub fn source(&self) -> Option<Source> {
        if self.ip.is_none() && self.user_agent.is_none() {
            return None;
        }
        Some(Source {
            ip: self.ip.map(|i| i.to_string()),
            user_agent: self.user_agent.clone(),
        })
    }
}

/// An envelope for `payload`, stamped with the request's source.
pub fn event(
    issuer: &str,
    client_id: Option<&str>,
    actor: Actor,
    payload: EventPayload,
    ctx: &RequestCtx,
    now: DateTime<Utc>,
) -> Envelope {
    let mut e = Envelope::new(issuer, actor, payload, now);
    e.client_id = client_id.map(String::from);
    e.source = ctx.source();
    e.request_id = ctx.request_id.clone();
    e
}

pub fn allow(signals: Vec<String>) -> Option<PolicyDecision> {
    Some(PolicyDecision {
        decision: Decision::Allow,
        matched_rules: Vec::new(),
        risk_signals: signals,
    })
}

pub fn deny(rule: &str, signals: Vec<String>) -> Option<PolicyDecision> {
    Some(PolicyDecision {
        decision: Decision::Deny,
        matched_rules: vec![rule.to_string()],
        risk_signals: signals,
    })
}

/// old → new for every metadata field that differs.
pub fn metadata_changes(old: &ClientMetadata, new: &ClientMetadata) -> Vec<FieldChange> {
    let (Ok(Value::Object(o)), Ok(Value::Object(n))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, nv) in &n {
        let ov = o.get(k).cloned().unwrap_or(Value::Null);
        if &ov != nv {
            out.push(FieldChange {
                field: k.clone(),
                old: ov,
                new: nv.clone(),
            });
        }
    }
    out
}
