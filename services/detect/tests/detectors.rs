//! Table-driven tests for every detector, through the public API.

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

// ---------------------------------------------------------------- names

/// (name, redirect, expected match type or None for no alert, expected target)
const NAME_CASES: &[(&str, &str, Option<MatchType>, &str)] = &[
    (
        "ChatGP\u{0422}",
        "https://chatgpt-auth.com/cb",
        Some(MatchType::Confusable),
        "ChatGPT",
    ),
    (
        "\u{0421}laude",
        "https://claude-mcp.net/cb",
        Some(MatchType::Confusable),
        "Claude",
    ),
    (
        "Chat\u{200B}GPT",
        "https://evil.example/cb",
        Some(MatchType::Confusable),
        "ChatGPT",
    ),
    (
        "Chat\u{2060}GPT",
        "https://evil.example/cb",
        Some(MatchType::Confusable),
        "ChatGPT",
    ),
    (
        "ＣｈａｔＧＰＴ",
        "https://evil.example/cb",
        Some(MatchType::Confusable),
        "ChatGPT",
    ),
    (
        "C1aude",
        "https://c1aude.ai/cb",
        Some(MatchType::Confusable),
        "Claude",
    ),
    (
        "ChatGPT ",
        "https://evil.example/cb",
        Some(MatchType::Confusable),
        "ChatGPT",
    ),
    (
        "Ζed",
        "https://zed-editor.app/cb",
        Some(MatchType::Confusable),
        "Zed",
    ),
    (
        "ChatGPT",
        "https://mcp-chatgpt.help/cb",
        Some(MatchType::Exact),
        "ChatGPT",
    ),
    (
        "ChatGTP",
        "https://chatgtp.app/cb",
        Some(MatchType::EditDistance),
        "ChatGPT",
    ),
    (
        "Windsurff",
        "https://windsurff.io/cb",
        Some(MatchType::EditDistance),
        "Windsurf",
    ),
    (
        "ChatGPT Helper",
        "https://helper.example/cb",
        Some(MatchType::ContainsName),
        "ChatGPT",
    ),
    // Someone's github.io is not OpenAI's.
    (
        "ChatGPT",
        "https://bob.github.io/cb",
        Some(MatchType::Exact),
        "ChatGPT",
    ),
    // IDN host: normalized to A-labels, not the owner's domain.
    (
        "ChatGPT",
        "https://chätgpt.com/cb",
        Some(MatchType::Exact),
        "ChatGPT",
    ),
    // Genuine clients: no alert.
    (
        "ChatGPT",
        "https://chatgpt.com/connector_platform_oauth_redirect",
        None,
        "",
    ),
    (
        "Claude",
        "https://claude.ai/api/mcp/auth_callback",
        None,
        "",
    ),
    ("Claude Code", "http://localhost:54321/callback", None, ""),
    (
        "Cursor",
        "cursor://anysphere.cursor-retrieval/oauth/user-callback",
        None,
        "",
    ),
    (
        "Visual Studio Code",
        "https://vscode.dev/redirect",
        None,
        "",
    ),
    ("Visual Studio Code", "http://127.0.0.1:33418/", None, ""),
    ("Gemini", "https://gemini.google.com/mcp/cb", None, ""),
    (
        "MCP Inspector",
        "http://localhost:6274/oauth/callback",
        None,
        "",
    ),
    // Unrelated names, including non-Latin single-script ones.
    ("Acme Notes", "https://acme.example/cb", None, ""),
    (
        "日本語アシスタント",
        "https://assistant.example.jp/cb",
        None,
        "",
    ),
    ("Помощник задач", "https://zadachi.ru/cb", None, ""),
    ("Client", "https://client.example/cb", None, ""),
];

#[test]
fn name_impersonation_table() {
    let cfg = DetectConfig::default();
    let catalog = NameCatalog::new(&cfg.impersonation, 1000);
    for (name, redirect, expected, target) in NAME_CASES {
        let r = [analyze_redirect(redirect)];
        let got = catalog.assess(name, &r, &cfg.impersonation, None);
        match expected {
            None => assert!(
                got.is_none(),
                "{name:?} on {redirect}: unexpected alert {got:?}"
            ),
            Some(mt) => {
                let f = got.unwrap_or_else(|| panic!("{name:?} on {redirect}: no alert"));
                assert_eq!(f.match_type, Some(*mt), "{name:?}");
                assert_eq!(
                    f.target.as_ref().map(|t| t.name()),
                    Some(*target),
                    "{name:?}"
                );
                assert!(
                    f.score >= cfg.impersonation.min_score && f.score <= 1.0,
                    "{name:?} score {}",
                    f.score
                );
            }
        }
    }
}

#[test]
fn name_flags_and_ownership() {
    let cfg = DetectConfig::default();
    let catalog = NameCatalog::new(&cfg.impersonation, 1000);
    let evil = [analyze_redirect("https://evil.example/cb")];
    let f = catalog
        .assess("Chat\u{200B}GPT", &evil, &cfg.impersonation, None)
        .expect("alert");
    assert_eq!(f.analysis.invisible, vec!["U+200B".to_owned()]);
    assert_eq!(f.ownership, Ownership::NotOwned);
    assert_eq!(f.foreign_redirects, vec!["evil.example".to_owned()]);
    let f = catalog
        .assess("ChatGP\u{0422}", &evil, &cfg.impersonation, None)
        .expect("alert");
    assert!(f.analysis.mixed_script);
    assert!(
        f.score > 0.85,
        "homoglyph on a foreign domain is near-certain: {}",
        f.score
    );
    // A homoglyph on the owner's own domain is still reported, weaker.
    let own = [analyze_redirect("https://chatgpt.com/cb")];
    let g = catalog
        .assess("ChatGP\u{0422}", &own, &cfg.impersonation, None)
        .expect("alert");
    assert_eq!(g.ownership, Ownership::Owned);
    assert!(g.score < f.score);
    // Bidi control without any lookalike still alerts.
    let b = catalog
        .assess("My\u{202E}Tool", &evil, &cfg.impersonation, None)
        .expect("alert");
    assert!(b.target.is_none());
    assert_eq!(b.analysis.bidi_controls, vec!["U+202E".to_owned()]);
}

#[test]
fn established_client_lookalikes_and_github_io_owners() {
    let cfg = DetectConfig::default();
    let mut catalog = NameCatalog::new(&cfg.impersonation, 1000);
    catalog.establish(
        "Pinecone Notes",
        "c-alice",
        &[analyze_redirect("https://alice.github.io/cb")],
    );
    let cases: &[(&str, &str, bool)] = &[
        ("Pinecone Notes", "https://alice.github.io/other", false), // same owner
        ("Pinecone Notes", "https://bob.github.io/cb", true),       // other github.io owner
        ("Pinec0ne Notes", "https://bob.github.io/cb", true),       // lookalike, other owner
        ("Pinecone Note", "https://pinecone.example/cb", true),     // distance 1
        ("Pinecone Notes\u{200B}", "https://alice.github.io/cb", true), // hidden character
        ("Walnut Notes", "https://walnut.example/cb", false),
    ];
    for (name, redirect, alert) in cases {
        let got = catalog.assess(
            name,
            &[analyze_redirect(redirect)],
            &cfg.impersonation,
            None,
        );
        assert_eq!(got.is_some(), *alert, "{name:?} on {redirect}: {got:?}");
    }
}

// ---------------------------------------------------------------- redirects

#[test]
fn redirect_analysis_table() {
    let cases: &[(&str, RedirectClass, Option<&str>)] = &[
        (
            "https://alice.github.io/cb",
            RedirectClass::Https,
            Some("alice.github.io"),
        ),
        (
            "https://bücher.example/cb",
            RedirectClass::Https,
            Some("xn--bcher-kva.example"),
        ),
        (
            "https://App.Example.co.uk./cb",
            RedirectClass::Https,
            Some("example.co.uk"),
        ),
        ("http://127.0.0.1:3000/cb", RedirectClass::Loopback, None),
        ("http://[::1]:8080/cb", RedirectClass::Loopback, None),
        ("http://localhost:9/cb", RedirectClass::Loopback, None),
        ("http://192.168.1.20/cb", RedirectClass::PrivateIp, None),
        (
            "http://evil.example/cb",
            RedirectClass::Http,
            Some("evil.example"),
        ),
        (
            "com.example.app:/oauth2redirect",
            RedirectClass::CustomScheme,
            None,
        ),
        ("not a uri", RedirectClass::Invalid, None),
    ];
    for (uri, class, reg) in cases {
        let r = analyze_redirect(uri);
        assert_eq!(r.class, *class, "{uri}");
        assert_eq!(r.registrable.as_deref(), *reg, "{uri}");
    }
    assert!(analyze_redirect("https://*.example.com/cb").wildcard);
}

fn drift_signals(old: &[&str], new: &[&str]) -> Vec<&'static str> {
    let mut h = RedirectHistory {
        old: old.iter().map(|u| analyze_redirect(u)).collect(),
        ..Default::default()
    };
    h.absorb_old();
    let new: Vec<_> = new.iter().map(|u| analyze_redirect(u)).collect();
    let mut s: Vec<&'static str> = assess_drift(&h, &new, &[], true)
        .into_iter()
        .map(|s| s.signal)
        .collect();
    s.sort();
    s
}

#[test]
fn redirect_drift_table() {
    let cases: &[(&[&str], &[&str], &[&str])] = &[
        (
            &["https://app.example.com/cb"],
            &["https://evil.example/cb"],
            &["new_registrable_domain"],
        ),
        (
            &["https://app.example.com/cb"],
            &["http://app.example.com/cb"],
            &["https_to_http"],
        ),
        (
            &["https://app.example.com/cb"],
            &["http://10.0.0.7/cb"],
            &["private_ip_added"],
        ),
        (
            &["https://app.example.com/cb"],
            &["http://127.0.0.1:8080/cb"],
            &["loopback_added"],
        ),
        (
            &["https://app.example.com/cb"],
            &["myapp://cb"],
            &["custom_scheme_added"],
        ),
        (
            &["https://app.example.com/cb"],
            &["https://*.example.com/cb"],
            &["new_host", "wildcard"],
        ),
        (
            &["https://app.example.com/cb"],
            &["https://auth.example.com/cb"],
            &["new_host"],
        ),
        (
            &["https://alice.github.io/cb"],
            &["https://mallory.github.io/cb"],
            &["new_registrable_domain"],
        ),
        (
            &["https://app.example.com/cb"],
            &["https://xn--80ak6aa92e.com/cb"],
            &["new_registrable_domain"],
        ),
        // Native clients: the loopback port may change (RFC 8252 §7.3).
        (
            &["http://127.0.0.1:41938/callback"],
            &["http://127.0.0.1:52011/callback"],
            &[],
        ),
        (
            &["http://localhost:5000/cb"],
            &["http://[::1]:6000/cb"],
            &[],
        ),
        (
            &["https://app.example.com/cb"],
            &["https://app.example.com/cb/v2"],
            &[],
        ),
        (&["com.example.app:/cb"], &["com.example.app:/cb2"], &[]),
    ];
    for (old, new, expected) in cases {
        assert_eq!(drift_signals(old, new), *expected, "{old:?} -> {new:?}");
    }
}

#[test]
fn redirect_drift_alert_shows_old_and_new() {
    let mut d = Detector::new(DetectConfig::default()).expect("config");
    let c = reg(
        "c1",
        "Harbor Sync",
        &["https://harbor.example/cb"],
        t0(),
        "203.0.113.5",
        1,
    );
    assert!(d.observe(&Observation::Registered(c.clone())).is_empty());
    let mut u = c.clone();
    u.at = t0() + Duration::hours(2);
    u.event_id = eid(2);
    u.redirect_uris = vec!["https://collector.evil/cb".into()];
    u.previous_redirect_uris = Some(vec!["https://harbor.example/cb".into()]);
    let alerts = d.observe(&Observation::Updated(u));
    let a = alerts
        .iter()
        .find(|a| a.kind == AlertKind::RedirectDrift)
        .expect("drift alert");
    assert_eq!(a.dedup_key, "redirect_drift:c1");
    assert_eq!(
        a.evidence["old_redirect_uris"][0],
        "https://harbor.example/cb"
    );
    assert_eq!(
        a.evidence["new_redirect_uris"][0],
        "https://collector.evil/cb"
    );
    assert_eq!(a.evidence["signals"][0]["signal"], "new_registrable_domain");
    assert!(
        a.summary
            .contains("https://harbor.example/cb -> https://collector.evil/cb"),
        "{}",
        a.summary
    );
    assert_eq!(a.event_ids, vec![eid(2)]);
    assert_eq!(a.severity, Severity::High);
    // Without the diff, the client's own history still catches it.
    let mut u2 = reg(
        "c1",
        "Harbor Sync",
        &["https://other.evil/cb"],
        t0() + Duration::hours(3),
        "203.0.113.5",
        3,
    );
    u2.previous_redirect_uris = None;
    let alerts = d.observe(&Observation::Updated(u2));
    assert!(alerts.iter().any(|a| a.kind == AlertKind::RedirectDrift));
}

#[test]
fn native_loopback_port_change_is_silent() {
    let mut d = Detector::new(DetectConfig::default()).expect("config");
    let c = reg(
        "n1",
        "Granite Desktop",
        &["http://127.0.0.1:41938/callback"],
        t0(),
        "198.51.100.7",
        1,
    );
    assert!(d.observe(&Observation::Registered(c.clone())).is_empty());
    let mut u = c;
    u.redirect_uris = vec!["http://127.0.0.1:52011/callback".into()];
    u.at = t0() + Duration::minutes(30);
    u.event_id = eid(2);
    assert!(d.observe(&Observation::Updated(u)).is_empty());
}

#[test]
fn shared_redirect_host_across_names() {
    let mut d = Detector::new(DetectConfig::default()).expect("config");
    let names = [
        "Alpha Docs",
        "Beta Mail",
        "Gamma Wiki",
        "Delta CRM",
        "Epsilon Search",
        "Zeta Inbox",
    ];
    let mut fired = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let c = reg(
            &format!("s{i}"),
            n,
            &["https://collect.harvest.example/cb"],
            t0() + Duration::hours(i as i64),
            &format!("203.0.{i}.9"),
            i as u128,
        );
        let alerts = d.observe(&Observation::Registered(c));
        fired.push(alerts.iter().any(|a| a.kind == AlertKind::RedirectDrift));
    }
    // Default: the fifth differently named client makes the host shared.
    assert_eq!(fired, vec![false, false, false, false, true, true]);
}

// ---------------------------------------------------------------- bursts

#[test]
fn burst_fires_on_the_crossing_event() {
    let mut d = Detector::new(DetectConfig::default()).expect("config");
    let floor = DetectConfig::default().burst.floors.ip;
    let mut first_alert_at = None;
    for i in 0..20u32 {
        let c = reg(
            &format!("b{i}"),
            &format!("bot {i}"),
            &["http://127.0.0.1:5000/cb"],
            t0() + Duration::seconds(i64::from(i) * 5),
            "203.0.113.77",
            u128::from(i),
        );
        let alerts = d.observe(&Observation::Registered(c));
        if let Some(a) = alerts
            .iter()
            .find(|a| a.dedup_key == "registration_burst:ip:203.0.113.77")
        {
            if first_alert_at.is_none() {
                first_alert_at = Some(i);
                assert_eq!(a.evidence["key_type"], "ip");
                assert_eq!(a.evidence["key_value"], "203.0.113.77");
                assert_eq!(a.evidence["count"], floor);
                assert_eq!(a.evidence["crossed_on_this_event"], true);
                assert!(a.evidence["p_value"].as_f64().expect("p") < 1e-4);
                assert!(a.evidence["baseline_per_window"].as_f64().expect("b") >= 0.5);
                assert_eq!(
                    a.evidence["clients"].as_array().expect("list").len(),
                    floor as usize
                );
                assert_eq!(a.client_id, format!("b{i}"));
            }
        }
    }
    assert_eq!(
        first_alert_at,
        Some(floor - 1),
        "fires on the event that reaches the floor"
    );
}

#[test]
fn burst_baseline_learns_steady_traffic() {
    // 8 registrations every window from one /24 for a day: a steady NAT, not a burst.
    let mut d = Detector::new(DetectConfig::default()).expect("config");
    let mut alerts = 0;
    let mut n = 0u128;
    for w in 0..288i64 {
        for k in 0..6i64 {
            n += 1;
            let at = t0() + Duration::seconds(w * 300 + k * 45);
            let c = reg(
                &format!("s{n}"),
                &format!("tool {n}"),
                &[],
                at,
                &format!("198.51.100.{}", 1 + (n % 200)),
                n,
            );
            alerts += d
                .observe(&Observation::Registered(c))
                .iter()
                .filter(|a| a.kind == AlertKind::RegistrationBurst)
                .count();
        }
    }
    assert_eq!(alerts, 0);
}

// ---------------------------------------------------------------- scopes, dormant, duplicates, revoked

#[test]
fn scope_escalation_table() {
    let cases: &[(&[&str], &[&str], bool)] = &[
        (&["mcp:read"], &["mcp:read", "admin"], true),
        (&["mcp:read"], &["mcp:read", "tools:write"], true),
        (&["mcp:read"], &["mcp:read", "admin:users"], true),
        (&["mcp:read"], &["mcp:read", "calendar:read"], false),
        (&["mcp:read"], &["mcp:read", "a", "b", "c"], true),
        (&["mcp:read", "admin"], &["mcp:read", "admin"], false),
    ];
    for (old, new, alert) in cases {
        let mut d = Detector::new(DetectConfig::default()).expect("config");
        let mut c = reg(
            "sc",
            "Quartz Reader",
            &["https://quartz.example/cb"],
            t0(),
            "203.0.113.9",
            1,
        );
        c.scopes = old.iter().map(|s| (*s).to_owned()).collect();
        d.observe(&Observation::Registered(c.clone()));
        c.scopes = new.iter().map(|s| (*s).to_owned()).collect();
        c.at = t0() + Duration::hours(1);
        let got = d
            .observe(&Observation::Updated(c))
            .into_iter()
            .any(|a| a.kind == AlertKind::ScopeEscalation);
        assert_eq!(got, *alert, "{old:?} -> {new:?}");
    }
    // At consent: a second consent broader than the first.
    let mut d = Detector::new(DetectConfig::default()).expect("config");
    d.observe(&Observation::Registered(reg(
        "sc2",
        "Quartz Reader",
        &["https://quartz.example/cb"],
        t0(),
        "203.0.113.9",
        1,
    )));
    let first = d.observe(&act(
        "sc2",
        ActivityKind::ConsentGranted {
            scopes: vec!["mcp:read".into()],
        },
        t0() + Duration::minutes(1),
        2,
    ));
    assert!(first.is_empty());
    let second = d.observe(&act(
        "sc2",
        ActivityKind::ConsentGranted {
            scopes: vec!["mcp:read".into(), "files:write".into()],
        },
        t0() + Duration::hours(1),
        3,
    ));
    let a = second
        .iter()
        .find(|a| a.kind == AlertKind::ScopeEscalation)
        .expect("escalation at consent");
    assert_eq!(a.evidence["sensitive_added"][0], "files:write");
}

#[test]
fn dormant_client_sweep() {
    let mut d = Detector::new(DetectConfig::default()).expect("config");
    d.observe(&Observation::Registered(reg(
        "d1",
        "Ember Probe",
        &["https://ember.example/cb"],
        t0(),
        "203.0.113.10",
        1,
    )));
    d.observe(&Observation::Registered(reg(
        "d2",
        "Atlas Probe",
        &["https://atlas.example/cb"],
        t0(),
        "203.0.113.11",
        2,
    )));
    d.observe(&act(
        "d2",
        ActivityKind::ConsentGranted {
            scopes: vec!["mcp:read".into()],
        },
        t0() + Duration::hours(1),
        3,
    ));
    assert!(
        d.sweep(t0() + Duration::hours(23)).is_empty(),
        "not yet dormant"
    );
    let alerts = d.sweep(t0() + Duration::hours(25));
    let ids: Vec<&str> = alerts.iter().map(|a| a.client_id.as_str()).collect();
    assert_eq!(ids, vec!["d1"]);
    assert_eq!(alerts[0].kind, AlertKind::DormantClient);
    assert!(
        d.sweep(t0() + Duration::hours(48)).is_empty(),
        "reported once"
    );
}

#[test]
fn duplicate_registrations_collapse_then_alert() {
    let mut d = Detector::new(DetectConfig::default()).expect("config");
    let threshold = DetectConfig::default().duplicate.threshold;
    let mut fired_at = None;
    let mut identity = None;
    for i in 0..8u32 {
        let c = reg(
            &format!("dup{i}"),
            "Cobalt Relay",
            &["https://cobalt.example/cb"],
            t0() + Duration::minutes(i64::from(i) * 4),
            "203.0.113.20",
            u128::from(i),
        );
        let alerts = d.observe(&Observation::Registered(c.clone()));
        identity.get_or_insert_with(|| d.identity_of(&c));
        assert_eq!(d.identity_of(&c).as_deref(), Some("dup0"), "one identity");
        if fired_at.is_none()
            && alerts
                .iter()
                .any(|a| a.kind == AlertKind::DuplicateRegistration)
        {
            fired_at = Some(i + 1);
        }
    }
    assert_eq!(fired_at, Some(threshold));
}

#[test]
fn revoked_client_activity_table() {
    let attempts = [
        (ActivityKind::TokenRefreshed, true),
        (
            ActivityKind::ToolCalled {
                tool: "delete_repo".into(),
            },
            true,
        ),
        (
            ActivityKind::ManagementCall {
                method: "PUT".into(),
            },
            true,
        ),
        (ActivityKind::ConsentDenied, false),
    ];
    for (kind, alert) in attempts {
        for revocation in [ActivityKind::Revoked, ActivityKind::Deleted] {
            let mut d = Detector::new(DetectConfig::default()).expect("config");
            d.observe(&Observation::Registered(reg(
                "r1",
                "Willow Toolkit",
                &["https://willow.example/cb"],
                t0(),
                "203.0.113.30",
                1,
            )));
            let before = d.observe(&act("r1", kind.clone(), t0() + Duration::minutes(1), 2));
            assert!(before.is_empty(), "activity before revocation is fine");
            d.observe(&act(
                "r1",
                revocation.clone(),
                t0() + Duration::minutes(2),
                3,
            ));
            let after = d.observe(&act("r1", kind.clone(), t0() + Duration::minutes(3), 4));
            assert_eq!(
                after
                    .iter()
                    .any(|a| a.kind == AlertKind::RevokedClientActivity),
                alert,
                "{kind:?} after {revocation:?}"
            );
        }
    }
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
