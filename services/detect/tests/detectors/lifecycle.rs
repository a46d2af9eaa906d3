//! `scope_escalation`, `dormant_client`, `duplicate_registration`,
//! `revoked_client_activity`.

use super::*;

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
