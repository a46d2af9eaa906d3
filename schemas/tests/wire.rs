//! Wire-shape tests: the JSON a consumer sees.

use chrono::{TimeZone, Utc};
use regwatch_schemas::*;

fn registered() -> Envelope {
    let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
        + chrono::Duration::microseconds(123_456);
    let mut e = Envelope::new(
        "https://as.example.com",
        Actor::anonymous_client(),
        EventPayload::ClientRegistered(ClientRegistered {
            registration_method: RegistrationMethod::Dcr,
            metadata: ClientMetadata {
                client_name: Some("Acme".into()),
                redirect_uris: vec!["http://127.0.0.1/cb".into()],
                ..Default::default()
            },
            confidential: false,
            dropped_fields: vec!["x_custom".into()],
            initial_access_token: false,
        }),
        now,
    );
    e.client_id = Some("c_1".into());
    e
}

#[test]
fn envelope_wire_shape() {
    let e = registered();
    let v = serde_json::to_value(&e).unwrap();
    assert_eq!(v["event_type"], "client.registered");
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["occurred_at"], "2026-11-22T10:00:00.123Z");
    assert_eq!(v["data"]["registration_method"], "dcr");
    assert_eq!(v["data"]["dropped_fields"][0], "x_custom");
    assert_eq!(v["actor"]["kind"], "client");
    assert_eq!(e.event_id.get_version_num(), 7);
    let back: Envelope = serde_json::from_value(v).unwrap();
    assert_eq!(back, e);
}

#[test]
fn unknown_event_type_is_refused_and_unknown_fields_tolerated() {
    let mut v = serde_json::to_value(registered()).unwrap();
    v["added_in_a_later_minor"] = serde_json::json!(true);
    assert!(serde_json::from_value::<Envelope>(v.clone()).is_ok());
    v["event_type"] = "client.teleported".into();
    assert!(serde_json::from_value::<Envelope>(v).is_err());
}

#[test]
fn every_event_type_has_a_stable_name() {
    for t in EventType::ALL {
        assert_eq!(EventType::parse(t.as_str()), Some(t));
        assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
    }
    assert_eq!(EventType::ALL.len(), 14);
}

#[test]
fn alert_kinds_are_the_contract_names() {
    let names: Vec<_> = AlertKind::ALL
        .iter()
        .map(|k| serde_json::to_value(k).unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "registration_burst",
            "name_impersonation",
            "redirect_drift",
            "scope_escalation",
            "dormant_client",
            "duplicate_registration",
            "revoked_client_activity"
        ]
    );
}
