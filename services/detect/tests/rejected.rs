//! Rejected registrations (`client.registration_rejected`) feed the
//! `registration_burst` rates, through the same envelope mapping the
//! pipeline uses, and never create per-client state.

use chrono::{DateTime, Duration, TimeZone, Utc};
use regwatch_detect::envelope::observation;
use regwatch_detect::revocation::NoActionReason;
use regwatch_detect::{
    decide, DetectConfig, Detector, RevocationAction, RevocationDecision, RevocationPolicy,
    RevocationRule,
};
use regwatch_schemas::alert::{Alert, AlertKind};
use regwatch_schemas::{
    Actor, ClientMetadata, ClientRegistrationRejected, Envelope, EventPayload, RegistrationMethod,
    Source,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .expect("valid time")
}

/// A `client.registration_rejected` envelope as authz writes it for an
/// anonymous RFC 7591 POST (no client id).
fn rejected(at: DateTime<Utc>, ip: &str, name: Option<&str>, rule: &str) -> Envelope {
    let mut e = Envelope::new(
        "https://as.example",
        Actor::anonymous_client(),
        EventPayload::ClientRegistrationRejected(ClientRegistrationRejected {
            error: "invalid_redirect_uri".into(),
            error_description: "refused".into(),
            rule: rule.into(),
            http_status: 400,
            registration_method: RegistrationMethod::Dcr,
            operation: "register".into(),
            attempted: Some(ClientMetadata {
                client_name: name.map(str::to_owned),
                redirect_uris: vec!["https://evil.example/cb#frag".into()],
                ..Default::default()
            }),
            dropped_fields: vec![],
        }),
        at,
    );
    e.source = Some(Source {
        ip: Some(ip.into()),
        user_agent: None,
    });
    e
}

/// How the attempts of one row are spread.
#[derive(Clone, Copy)]
enum Spread {
    /// Every attempt from this address.
    Address(&'static str),
    /// Addresses `prefix.1`, `prefix.2`, … of one /24.
    Prefix24(&'static str),
    /// Addresses from many networks, all with this name.
    Name(&'static str),
}

struct Row {
    what: &'static str,
    attempts: u32,
    spread: Spread,
    rule: &'static str,
    /// The dedup key of the expected burst alert, or None for no alert.
    expect: Option<&'static str>,
}

fn run(row: &Row) -> (Vec<Alert>, Detector) {
    let mut d = Detector::new(DetectConfig::default()).expect("config");
    let mut alerts = Vec::new();
    for i in 0..row.attempts {
        let at = t0() + Duration::seconds(i64::from(i) * 5);
        let (ip, name) = match row.spread {
            Spread::Address(ip) => (ip.to_owned(), Some(format!("scanner {i}"))),
            Spread::Prefix24(p) => (format!("{p}.{}", 1 + i), Some(format!("probe {i}"))),
            Spread::Name(n) => (
                format!("{}.{}.7.9", 11 + i, 3 * i % 250),
                Some(n.to_owned()),
            ),
        };
        let e = rejected(at, &ip, name.as_deref(), row.rule);
        if let Some(o) = observation(&e) {
            alerts.extend(d.observe(&o));
        }
    }
    (alerts, d)
}

#[test]
fn rejected_registration_floods_raise_bursts() {
    let rows = [
        Row {
            what: "12 rejected from one address",
            attempts: 12,
            spread: Spread::Address("203.0.113.66"),
            rule: "redirect.fragment",
            expect: Some("registration_burst:rejected:ip:203.0.113.66"),
        },
        Row {
            what: "16 rejected from one /24, one each",
            attempts: 16,
            spread: Spread::Prefix24("198.51.100"),
            rule: "scope.unknown",
            expect: Some("registration_burst:rejected:ip_prefix:198.51.100.0/24"),
        },
        Row {
            what: "12 rejected with one name from many networks",
            attempts: 12,
            spread: Spread::Name("Helpful MCP Bot"),
            rule: "redirect.plain_http",
            expect: Some("registration_burst:rejected:name_skeleton:"),
        },
        Row {
            what: "a misconfigured client retrying 4 times",
            attempts: 4,
            spread: Spread::Address("192.0.2.44"),
            rule: "redirect.fragment",
            expect: None,
        },
    ];
    for row in &rows {
        let (alerts, d) = run(row);
        let bursts: Vec<&Alert> = alerts
            .iter()
            .filter(|a| a.kind == AlertKind::RegistrationBurst)
            .collect();
        // Rejected attempts have no client: no per-client state, ever.
        assert_eq!(d.stats().clients, 0, "{}: no client state", row.what);
        let Some(prefix) = row.expect else {
            assert!(bursts.is_empty(), "{}: {bursts:?}", row.what);
            continue;
        };
        let a = bursts
            .iter()
            .find(|a| a.dedup_key.starts_with(prefix))
            .unwrap_or_else(|| panic!("{}: no alert {prefix}* in {bursts:?}", row.what));
        assert_eq!(a.evidence["outcome"], "rejected", "{}", row.what);
        assert_eq!(a.evidence["rule"], row.rule, "{}", row.what);
        assert_eq!(a.evidence["error"], "invalid_redirect_uri", "{}", row.what);
        assert!(
            a.evidence["rules"][row.rule].as_u64().unwrap_or(0) >= 2,
            "{}: rule tally {}",
            row.what,
            a.evidence["rules"]
        );
        assert!(
            a.summary.contains("rejected"),
            "{}: {}",
            row.what,
            a.summary
        );
        assert!(a.client_id.is_empty(), "{}: no client to name", row.what);
        assert!(!a.event_ids.is_empty(), "{}: cites the attempts", row.what);
        // Nothing to revoke, even under a policy that acts on bursts.
        let policy = RevocationPolicy {
            dry_run: false,
            rules: vec![RevocationRule {
                kind: AlertKind::RegistrationBurst,
                min_score: 0.0,
                action: RevocationAction::DisableClient,
            }],
            allowlist_client_ids: vec![],
        };
        assert_eq!(
            decide(a, &policy),
            RevocationDecision::NoAction {
                reason: NoActionReason::NoClient
            },
            "{}",
            row.what
        );
    }
}
