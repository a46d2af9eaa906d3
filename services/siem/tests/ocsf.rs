//! Every event type and alert kind rendered as OCSF and validated against
//! the real OCSF 1.8.0 schema (`tests/ocsf_validate.py`), plus proof that
//! the validator catches a wrong mapping.

mod common;

use std::collections::HashSet;

use common::samples;
use regwatch_schemas::{AlertKind, EventType};
use regwatch_siem::ocsf;
use serde_json::{json, Value};

const PIP: &str = "python3 -m pip install ocsf-json-schema jsonschema";

fn all_records() -> Vec<Value> {
    let mut v: Vec<Value> = samples::events().iter().flat_map(ocsf::event).collect();
    v.extend(samples::alerts().iter().map(ocsf::alert));
    v
}

fn lines(records: &[Value]) -> Vec<String> {
    records.iter().map(|r| r.to_string()).collect()
}

#[test]
fn samples_cover_every_event_type_and_alert_kind() {
    let types: HashSet<EventType> = samples::events().iter().map(|e| e.event_type()).collect();
    assert_eq!(types, EventType::ALL.into_iter().collect());
    let kinds: HashSet<AlertKind> = samples::alerts().iter().map(|a| a.kind).collect();
    assert_eq!(kinds, AlertKind::ALL.into_iter().collect());
}

/// The mapping table of the README, as the code does it.
#[test]
fn each_event_type_lands_in_its_class_and_activity() {
    let expected: &[(&str, &[(u64, u64)])] = &[
        ("client.registered", &[(3004, 1), (6003, 1)]),
        ("client.registration_rejected", &[(3004, 1), (6003, 1)]),
        ("client.updated", &[(3004, 3)]),
        ("client.deleted", &[(3004, 4)]),
        ("client.expired", &[(3004, 11)]),
        ("client.revoked", &[(3004, 11)]),
        ("client.access_denied", &[(6003, 99)]),
        ("consent.granted", &[(3005, 1)]),
        ("consent.denied", &[(3005, 1)]),
        ("token.issued", &[(3002, 1)]),
        ("token.refreshed", &[(3002, 5)]),
        ("token.revoked", &[(3002, 2)]),
        ("tool.called", &[(6003, 99)]),
    ];
    for e in samples::events() {
        let records = ocsf::event(&e);
        let got: Vec<(u64, u64)> = records
            .iter()
            .map(|r| {
                (
                    r["class_uid"].as_u64().unwrap(),
                    r["activity_id"].as_u64().unwrap(),
                )
            })
            .collect();
        let t = e.event_type().as_str();
        if t == "client.disabled" {
            let d = matches!(&e.payload, regwatch_schemas::EventPayload::ClientDisabled(d) if d.disabled);
            assert_eq!(got, [(3004, if d { 9 } else { 8 })], "{t}");
            continue;
        }
        if t == "client.registration_rejected" && got[0].1 == 3 {
            assert_eq!(got, [(3004, 3), (6003, 3)], "rejected update");
            continue;
        }
        let want = expected.iter().find(|(n, _)| *n == t).expect(t).1;
        assert_eq!(got, want, "{t}");
    }
}

#[test]
fn base_attributes_are_consistent() {
    let events = samples::events();
    for e in &events {
        let records = ocsf::event(e);
        for (i, r) in records.iter().enumerate() {
            let class = r["class_uid"].as_u64().unwrap();
            let activity = r["activity_id"].as_u64().unwrap();
            assert_eq!(
                r["type_uid"].as_u64().unwrap(),
                class * 100 + activity,
                "{r}"
            );
            assert_eq!(r["category_uid"].as_u64().unwrap(), class / 1000, "{r}");
            assert_eq!(
                r["time"].as_i64().unwrap(),
                e.occurred_at.timestamp_millis()
            );
            assert_eq!(r["metadata"]["version"], "1.8.0");
            assert_eq!(r["metadata"]["product"]["name"], "regwatch");
            assert_eq!(
                r["metadata"]["product"]["version"],
                env!("CARGO_PKG_VERSION")
            );
            assert_eq!(r["metadata"]["original_event_uid"], e.event_id.to_string());
            let uid = if i == 0 {
                e.event_id.to_string()
            } else {
                format!("{}/api", e.event_id)
            };
            assert_eq!(r["metadata"]["uid"], uid);
            let ok = regwatch_siem::mapping::event_succeeded(e);
            assert_eq!(r["status_id"], if ok { 1 } else { 2 }, "{r}");
        }
        if records[0]["class_uid"] == 3004 {
            let entity = records[0].get("entity").expect("entity");
            assert_eq!(entity["type_id"], 99);
            assert_eq!(entity["type"], "OAuth Client");
        }
        if records[0]["class_uid"] == 3002 {
            assert_eq!(records[0]["auth_protocol_id"], 6);
        }
    }
    for a in samples::alerts() {
        let r = ocsf::alert(&a);
        assert_eq!(r["class_uid"], 2004);
        assert_eq!(
            r["type_uid"].as_u64().unwrap(),
            200_400 + r["activity_id"].as_u64().unwrap()
        );
        assert_eq!(r["is_alert"], true);
        assert_eq!(r["finding_info"]["uid"], a.alert_id.to_string());
        assert_eq!(r["finding_info"]["analytic"]["uid"], a.kind.as_str());
        assert_eq!(r["evidences"][0]["data"], a.evidence);
        assert_eq!(r["metadata"]["uid"], a.alert_id.to_string());
    }
}

#[test]
fn every_record_validates_against_ocsf_1_8_0() {
    if !common::python_or_skip(&["ocsf_json_schema", "jsonschema"], PIP) {
        return;
    }
    let records = all_records();
    let (ok, out) = common::run_validator("ocsf_validate.py", &[], &lines(&records));
    assert!(ok, "OCSF validation failed:\n{out}");
    assert!(
        out.contains(&format!("ok: {} records", records.len())),
        "{out}"
    );
}

/// The validator is only worth something if a wrong mapping fails it:
/// each mutation alone must be caught, and the message names it.
#[test]
fn validator_rejects_wrong_mappings() {
    if !common::python_or_skip(&["ocsf_json_schema", "jsonschema"], PIP) {
        return;
    }
    let registered = ocsf::event(&samples::events()[0]);
    let finding = ocsf::alert(&samples::alerts()[0]);
    type Mutation = (&'static str, Value, fn(&mut Value));
    let cases: Vec<Mutation> = vec![
        ("type_uid", registered[0].clone(), |r| {
            r["type_uid"] = json!(300_402)
        }),
        ("unknown attribute", registered[0].clone(), |r| {
            r["oauth_client"] = json!("c_1")
        }),
        ("unknown nested attribute", registered[1].clone(), |r| {
            r["api"]["method"] = json!("POST")
        }),
        ("missing entity", registered[0].clone(), |r| {
            r.as_object_mut().unwrap().remove("entity");
        }),
        ("category_uid", registered[1].clone(), |r| {
            r["category_uid"] = json!(3)
        }),
        ("activity_id", registered[0].clone(), |r| {
            r["activity_id"] = json!(42);
            r["type_uid"] = json!(300_442);
        }),
        ("missing finding_info.uid", finding.clone(), |r| {
            r["finding_info"].as_object_mut().unwrap().remove("uid");
        }),
        ("time as a string", finding.clone(), |r| {
            r["time"] = json!("yesterday")
        }),
        ("metadata.version", finding, |r| {
            r["metadata"]["version"] = json!("1.3.0")
        }),
    ];
    let (names, lines): (Vec<&str>, Vec<String>) = cases
        .into_iter()
        .map(|(what, mut record, mutate)| {
            mutate(&mut record);
            (what, record.to_string())
        })
        .unzip();
    let (ok, out) = common::run_validator("ocsf_validate.py", &[], &lines);
    assert!(!ok, "validator accepted wrong records:\n{out}");
    for (i, what) in names.iter().enumerate() {
        assert!(
            out.contains(&format!("FAIL line {} ", i + 1)),
            "validator accepted a record with a wrong {what}:\n{out}"
        );
    }
}

/// The README's mapping table names every class/activity the code emits
/// and every signature id, so the documentation cannot drift silently.
#[test]
fn readme_table_matches_the_code() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("services/siem/README.md");
    for r in all_records() {
        let type_uid = r["type_uid"].as_u64().unwrap();
        assert!(
            readme.contains(&format!("→ {type_uid}")),
            "README lacks type_uid {type_uid} ({})",
            r["metadata"]["event_code"]
        );
    }
    for t in EventType::ALL {
        let sig = regwatch_siem::mapping::event_names(t).signature_id;
        assert!(readme.contains(&format!("`{sig}`")), "README lacks {sig}");
    }
    for k in AlertKind::ALL {
        let sig = regwatch_siem::mapping::alert_names(k).signature_id;
        assert!(readme.contains(&format!("`{sig}`")), "README lacks {sig}");
    }
}
