//! Building contract events from what a request told us.

use chrono::{DateTime, Utc};
use regwatch_schemas::{Actor, Decision, Envelope, EventPayload, PolicyDecision, Source};

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
