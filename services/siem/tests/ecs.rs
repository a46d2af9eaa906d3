//! Every event type and alert kind rendered as ECS and checked against
//! ECS's own field definitions (`tests/ecs_validate.py` over
//! `ecs_flat-v9.4.0.yml`), plus proof that the check catches a wrong one.

mod common;

use common::samples;
use regwatch_siem::ecs;
use serde_json::{json, Value};

const PIP: &str = "python3 -m pip install pyyaml";

fn all_docs() -> Vec<Value> {
    let mut v: Vec<Value> = samples::events().iter().map(ecs::event).collect();
    v.extend(samples::alerts().iter().map(ecs::alert));
    v
}

#[test]
fn documents_carry_the_core_fields() {
    for e in samples::events() {
        let d = ecs::event(&e);
        assert_eq!(d["event"]["kind"], "event");
        assert_eq!(d["event"]["id"], e.event_id.to_string());
        assert_eq!(d["ecs"]["version"], "9.4.0");
        assert_eq!(
            d["event"]["action"],
            regwatch_siem::mapping::event_action(&e)
        );
        let original: regwatch_schemas::Envelope =
            serde_json::from_str(d["event"]["original"].as_str().unwrap()).unwrap();
        assert_eq!(original, e, "event.original keeps the contract record");
        if let Some(ip) = e.source.as_ref().and_then(|s| s.ip.as_ref()) {
            assert_eq!(&d["client"]["ip"], ip);
        }
        if let Some(ua) = e.source.as_ref().and_then(|s| s.user_agent.as_ref()) {
            assert_eq!(&d["user_agent"]["original"], ua);
        }
    }
    for a in samples::alerts() {
        let d = ecs::alert(&a);
        assert_eq!(d["event"]["kind"], "alert");
        assert_eq!(d["rule"]["id"], a.kind.as_str());
        let risk = d["event"]["risk_score"].as_f64().unwrap();
        assert!(
            (risk - a.score * 100.0).abs() < 0.005,
            "{risk} vs {}",
            a.score
        );
    }
}

#[test]
fn every_document_validates_against_ecs_9_4_0() {
    if !common::python_or_skip(&["yaml"], PIP) {
        return;
    }
    let Some(flat) = common::ecs_flat_or_skip() else {
        return;
    };
    let docs: Vec<String> = all_docs().iter().map(|d| d.to_string()).collect();
    let (ok, out) = common::run_validator("ecs_validate.py", &[&flat], &docs);
    assert!(ok, "ECS validation failed:\n{out}");
    assert!(
        out.contains(&format!("ok: {} documents", docs.len())),
        "{out}"
    );
}

#[test]
fn validator_rejects_wrong_documents() {
    if !common::python_or_skip(&["yaml"], PIP) {
        return;
    }
    let Some(flat) = common::ecs_flat_or_skip() else {
        return;
    };
    let doc = ecs::event(&samples::events()[0]);
    type Mutation = (&'static str, fn(&mut Value));
    let cases: Vec<Mutation> = vec![
        ("unknown field", |d| {
            d["oauth"] = json!({"client_id": "c_1"})
        }),
        ("category/type pair", |d| {
            d["event"]["category"] = json!(["iam"]);
            d["event"]["type"] = json!(["start"]);
        }),
        ("event.kind value", |d| d["event"]["kind"] = json!("audit")),
        ("event.outcome value", |d| {
            d["event"]["outcome"] = json!("ok")
        }),
        ("ip type", |d| d["client"]["ip"] = json!("not-an-ip")),
        ("array where ECS has none", |d| {
            d["event"]["action"] = json!(["a", "b"])
        }),
        ("nested labels", |d| d["labels"]["x"] = json!({"y": "z"})),
        ("missing ecs.version", |d| {
            d.as_object_mut().unwrap().remove("ecs");
        }),
    ];
    let (names, docs): (Vec<&str>, Vec<String>) = cases
        .into_iter()
        .map(|(what, mutate)| {
            let mut d = doc.clone();
            mutate(&mut d);
            (what, d.to_string())
        })
        .unzip();
    let (ok, out) = common::run_validator("ecs_validate.py", &[&flat], &docs);
    assert!(!ok, "validator accepted wrong documents:\n{out}");
    for (i, what) in names.iter().enumerate() {
        assert!(
            out.contains(&format!("FAIL line {} ", i + 1)),
            "validator accepted a document with a wrong {what}:\n{out}"
        );
    }
}
