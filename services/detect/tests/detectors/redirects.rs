//! Redirect analysis and `redirect_drift`.

use super::*;

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
