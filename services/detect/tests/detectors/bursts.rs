//! `registration_burst`.

use super::*;

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
