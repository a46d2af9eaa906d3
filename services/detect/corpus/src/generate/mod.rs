//! The scenario generator: a simulated week of benign clients
//! ([`benign`]) with attacks of every kind mixed in ([`attacks`]), each
//! event labeled with its client's ground truth.

mod attacks;
mod benign;

use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Duration, TimeZone, Utc};
use regwatch_detect::{
    ActivityKind, ActivityObservation, ClientObservation, Observation, RegistrationMethod,
    RejectedObservation,
};

use crate::rng::Rng;
use crate::{Label, LabeledEvent};

struct Gen {
    rng: Rng,
    start: DateTime<Utc>,
    events: Vec<LabeledEvent>,
}

const ADJ: &[&str] = &[
    "Acme",
    "Brightwave",
    "Northwind",
    "Bluebird",
    "Granite",
    "Lumen",
    "Pinecone",
    "Harbor",
    "Quartz",
    "Tidal",
    "Orbit",
    "Maple",
    "Saffron",
    "Juniper",
    "Copperleaf",
    "Falcon",
    "Meridian",
    "Nimbus",
    "Kestrel",
    "Willow",
    "Obsidian",
    "Sequoia",
    "Vantage",
    "Zephyr",
    "Cobalt",
    "Ember",
    "Atlas",
    "Beacon",
    "Cascade",
    "Driftwood",
];
const NOUN: &[&str] = &[
    "Notes",
    "Assistant",
    "Docs",
    "Analytics",
    "CRM",
    "Tickets",
    "Deploy",
    "Search",
    "Mail",
    "Calendar",
    "Wiki",
    "Sheets",
    "Support",
    "Billing",
    "Monitor",
    "Studio",
    "Agent",
    "Connector",
    "Planner",
    "Inbox",
];
const TLD: &[&str] = &["com", "io", "app", "dev", "ai", "co", "net", "de", "fr"];
const SCOPES: &[&str] = &[
    "mcp:read",
    "mcp:tools",
    "files:read",
    "calendar:read",
    "profile",
    "email",
    "offline_access",
];
const SENSITIVE: &[&str] = &["admin", "tools:write", "files:write", "mcp:admin"];

fn slug(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// `r` with its port replaced when it is a loopback URI.
fn with_loopback_port(r: &str, port: i64) -> String {
    if !(r.contains("://127.0.0.1:") || r.contains("://localhost:")) {
        return r.to_owned();
    }
    let Some((head, rest)) = r.split_once("://") else {
        return r.to_owned();
    };
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = hostport.split(':').next().unwrap_or("127.0.0.1");
    format!("{head}://{host}:{port}/{path}")
}

/// A benign vendor: name, redirect template, software id, native or web.
#[derive(Debug, Clone)]
struct Vendor {
    name: String,
    redirects: Vec<String>,
    software_id: Option<String>,
    native: bool,
    scopes: Vec<String>,
}

impl Gen {
    fn at(&self, secs: i64) -> DateTime<Utc> {
        self.start + Duration::seconds(secs)
    }

    fn public_ip(&mut self) -> IpAddr {
        // Avoid 10/8, 127/8, 172.16/12, 192.168/16, 100.64/10.
        let a = *self
            .rng
            .pick(&[23u8, 31, 45, 52, 64, 81, 92, 104, 141, 151, 185, 203, 212]);
        IpAddr::V4(Ipv4Addr::new(
            a,
            self.rng.below(256) as u8,
            self.rng.below(256) as u8,
            1 + self.rng.below(250) as u8,
        ))
    }

    fn push(&mut self, obs: Observation, label: &Label) {
        self.events.push(LabeledEvent {
            obs,
            label: label.clone(),
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn register(
        &mut self,
        label: &Label,
        t: i64,
        name: &str,
        redirects: &[String],
        scopes: &[String],
        software_id: Option<&str>,
        ip: Option<IpAddr>,
    ) -> String {
        let id = self.rng.uuid().to_string();
        let at = self.at(t);
        let obs = ClientObservation {
            client_id: id.clone(),
            client_name: Some(name.to_owned()),
            redirect_uris: redirects.to_vec(),
            scopes: scopes.to_vec(),
            software_id: software_id.map(str::to_owned),
            token_endpoint_auth_method: None,
            source_ip: ip,
            at,
            event_id: self.rng.uuid7(at),
            registration_method: RegistrationMethod::Dcr,
            previous_redirect_uris: None,
            previous_scopes: None,
        };
        self.push(Observation::Registered(obs), label);
        id
    }

    /// A registration the authorization server refused (no client id).
    fn reject(&mut self, label: &Label, t: i64, name: &str, rule: &str, ip: Option<IpAddr>) {
        let at = self.at(t);
        let error = if rule.starts_with("redirect.") {
            "invalid_redirect_uri"
        } else {
            "invalid_client_metadata"
        };
        let obs = RejectedObservation {
            client_id: None,
            client_name: Some(name.to_owned()),
            software_id: None,
            source_ip: ip,
            rule: Some(rule.to_owned()),
            error: Some(error.to_owned()),
            operation: "register".to_owned(),
            registration_method: RegistrationMethod::Dcr,
            at,
            event_id: self.rng.uuid7(at),
        };
        self.push(Observation::Rejected(obs), label);
    }

    fn activity(
        &mut self,
        label: &Label,
        id: &str,
        t: i64,
        kind: ActivityKind,
        ip: Option<IpAddr>,
    ) {
        let at = self.at(t);
        let obs = ActivityObservation {
            client_id: id.to_owned(),
            kind,
            source_ip: ip,
            at,
            event_id: self.rng.uuid7(at),
        };
        self.push(Observation::Activity(obs), label);
    }

    #[allow(clippy::too_many_arguments)]
    fn update(
        &mut self,
        label: &Label,
        id: &str,
        t: i64,
        name: &str,
        old: &[String],
        new: &[String],
        old_scopes: &[String],
        new_scopes: &[String],
        with_previous: bool,
    ) {
        let at = self.at(t);
        let obs = ClientObservation {
            client_id: id.to_owned(),
            client_name: Some(name.to_owned()),
            redirect_uris: new.to_vec(),
            scopes: new_scopes.to_vec(),
            software_id: None,
            token_endpoint_auth_method: None,
            source_ip: None,
            at,
            event_id: self.rng.uuid7(at),
            registration_method: RegistrationMethod::Dcr,
            previous_redirect_uris: with_previous.then(|| old.to_vec()),
            previous_scopes: with_previous.then(|| old_scopes.to_vec()),
        };
        self.push(Observation::Updated(obs), label);
    }

    /// Consent, a token and a tool call or two, as a normal client does.
    fn normal_life(
        &mut self,
        label: &Label,
        id: &str,
        t: i64,
        scopes: &[String],
        ip: Option<IpAddr>,
    ) -> i64 {
        let tc = t + self.rng.range(20, 1800);
        self.activity(
            label,
            id,
            tc,
            ActivityKind::ConsentGranted {
                scopes: scopes.to_vec(),
            },
            ip,
        );
        self.activity(label, id, tc + 2, ActivityKind::TokenIssued, ip);
        if self.rng.chance(0.5) {
            let tt = tc + self.rng.range(5, 600);
            self.activity(
                label,
                id,
                tt,
                ActivityKind::ToolCalled {
                    tool: "search".into(),
                },
                ip,
            );
        }
        tc + 600
    }
}

/// Generates the corpus for `seed`: benign traffic over seven days, then
/// attacks of every kind mixed in, sorted by time (stable).
pub fn generate(seed: u64) -> Vec<LabeledEvent> {
    let start = Utc
        .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let mut g = Gen {
        rng: Rng::new(seed),
        start,
        events: Vec::new(),
    };
    let span = 6 * 86400;
    let vendors = g.vendors();
    g.benign(&vendors, 450, span);
    g.impersonation(span, &vendors);
    g.drift(span);
    g.scope_escalation(span);
    g.bursts(span);
    g.dormant(span);
    g.duplicates(span);
    g.revoked(span);
    g.rejected_floods(span);
    g.benign_retries(&vendors, span);
    g.events.sort_by_key(|e| e.obs.at());
    g.events
}

/// The corpus as JSONL, one event a line.
pub fn to_jsonl(events: &[LabeledEvent]) -> String {
    let mut out = String::new();
    for e in events {
        if let Ok(line) = serde_json::to_string(e) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}
