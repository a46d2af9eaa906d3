//! Table-driven tests for every detector, through the public API: one
//! module per group of detectors; configuration, the revocation policy and
//! determinism here.

mod bursts;
mod lifecycle;
mod names;
mod redirects;

use chrono::{DateTime, Duration, TimeZone, Utc};
use regwatch_detect::detectors::drift::{assess_drift, RedirectHistory};
use regwatch_detect::detectors::impersonation::{MatchType, NameCatalog, Ownership};
use regwatch_detect::host::{analyze_redirect, RedirectClass};
use regwatch_detect::{
    decide, ActivityKind, ActivityObservation, ClientObservation, DetectConfig, Detector,
    Observation, RegistrationMethod, RevocationAction, RevocationDecision, RevocationPolicy,
};
use regwatch_schemas::alert::{AlertKind, AlertStatus, Severity};
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .expect("valid time")
}

fn eid(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn reg(
    id: &str,
    name: &str,
    redirects: &[&str],
    at: DateTime<Utc>,
    ip: &str,
    n: u128,
) -> ClientObservation {
    ClientObservation {
        client_id: id.to_owned(),
        client_name: Some(name.to_owned()),
        redirect_uris: redirects.iter().map(|s| (*s).to_owned()).collect(),
        scopes: vec!["mcp:read".to_owned()],
        software_id: None,
        token_endpoint_auth_method: None,
        source_ip: ip.parse().ok(),
        at,
        event_id: eid(n),
        registration_method: RegistrationMethod::Dcr,
        previous_redirect_uris: None,
        previous_scopes: None,
    }
}

fn act(id: &str, kind: ActivityKind, at: DateTime<Utc>, n: u128) -> Observation {
    Observation::Activity(ActivityObservation {
        client_id: id.to_owned(),
        kind,
        source_ip: None,
        at,
        event_id: eid(n),
    })
}

// ---------------------------------------------------------------- config and policy

#[test]
fn config_rejects_unknown_keys_and_names_bad_values() {
    let err = serde_json::from_str::<DetectConfig>(r#"{"burst": {"window": 10}}"#)
        .expect_err("unknown key");
    assert!(err.to_string().contains("unknown field `window`"), "{err}");
    let cfg: DetectConfig =
        serde_json::from_str(r#"{"burst": {"window_secs": 0}}"#).expect("parses");
    let e = cfg.validate().expect_err("invalid");
    assert!(e.to_string().contains("burst.window_secs"), "{e}");
    let cfg: DetectConfig =
        serde_json::from_str(r#"{"impersonation": {"max_distance_protected": 3}}"#)
            .expect("parses");
    assert!(cfg
        .validate()
        .expect_err("invalid")
        .to_string()
        .contains("impersonation.max_distance_protected"));
    assert!(DetectConfig::default().validate().is_ok());
    let cfg: DetectConfig = serde_json::from_str("{}").expect("empty config is valid");
    assert_eq!(cfg, DetectConfig::default());
}

#[test]
fn configured_protected_names_and_allowlist() {
    let cfg: DetectConfig = serde_json::from_str(
        r#"{"impersonation": {"protected": [{"name": "Acme Copilot", "domains": ["acme.com"]}]},
            "allowlist": {"client_ids": ["trusted"]}}"#,
    )
    .expect("parses");
    let mut d = Detector::new(cfg).expect("valid");
    let a = d.observe(&Observation::Registered(reg(
        "x",
        "Acme C0pilot",
        &["https://acme-login.net/cb"],
        t0(),
        "203.0.113.40",
        1,
    )));
    assert!(a.iter().any(|a| a.kind == AlertKind::NameImpersonation));
    let b = d.observe(&Observation::Registered(reg(
        "trusted",
        "ChatGPT",
        &["https://elsewhere.example/cb"],
        t0(),
        "203.0.113.41",
        2,
    )));
    assert!(b.is_empty(), "allowlisted client: {b:?}");
}

#[test]
fn revocation_policy_decisions() {
    let mut d = Detector::new(DetectConfig::default()).expect("config");
    let alerts = d.observe(&Observation::Registered(reg(
        "imp",
        "ChatGP\u{0422}",
        &["https://chatgpt-auth.com/cb"],
        t0(),
        "203.0.113.50",
        1,
    )));
    let alert = alerts
        .into_iter()
        .find(|a| a.kind == AlertKind::NameImpersonation)
        .expect("alert");
    assert!(alert.score >= 0.8);
    let policy = RevocationPolicy::default();
    assert!(policy.dry_run, "dry-run by default");
    assert_eq!(
        decide(&alert, &policy),
        RevocationDecision::DryRun {
            action: RevocationAction::DisableClient,
            rule: 0,
            client_id: "imp".into()
        }
    );
    let live = RevocationPolicy {
        dry_run: false,
        ..policy.clone()
    };
    assert!(matches!(
        decide(&alert, &live),
        RevocationDecision::Execute {
            action: RevocationAction::DisableClient,
            ..
        }
    ));
    let allow = RevocationPolicy {
        dry_run: false,
        allowlist_client_ids: vec!["imp".into()],
        ..policy.clone()
    };
    assert!(matches!(
        decide(&alert, &allow),
        RevocationDecision::NoAction { .. }
    ));
    let mut low = alert.clone();
    low.score = 0.5;
    assert!(matches!(
        decide(&low, &live),
        RevocationDecision::NoAction { .. }
    ));
    let mut closed = alert;
    closed.status = AlertStatus::Resolved;
    assert!(matches!(
        decide(&closed, &live),
        RevocationDecision::NoAction { .. }
    ));
}

#[test]
fn same_input_same_alerts() {
    let run = || {
        let mut d = Detector::new(DetectConfig::default()).expect("config");
        d.observe(&Observation::Registered(reg(
            "imp",
            "\u{0421}laude",
            &["https://x.example/cb"],
            t0(),
            "203.0.113.50",
            1,
        )))
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].alert_id.get_version_num(), 7);
}
