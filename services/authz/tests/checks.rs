//! The authorization server asks `regwatch_checks` for every security
//! classification, so a form is judged the same way by the gate, the
//! redirect matcher and the consent page. Each test here is a behaviour
//! that changed when the local copies (string prefixes, a shorter
//! invisible-character list) were replaced.

use regwatch_authz::config::{Limits, PolicyConfig};
use regwatch_authz::gate::redirect::RedirectClass;
use regwatch_authz::gate::{evaluate, parse, Accepted, GateContext, IatStatus, Mode, Rejection};
use regwatch_authz::oauth::authorize::redirect_matches;
use regwatch_authz::store::{ClientRow, ClientStatus};
use regwatch_authz::{BasicAdvisor, ConsentAdvisor};
use regwatch_checks::text::{BIDI_CONTROLS, DEFAULT_IGNORABLE};
use regwatch_schemas::{ClientMetadata, RegistrationMethod};
use serde_json::{json, Value};

const CLEAN: GateContext = GateContext {
    mode: Mode::Register,
    flag_level: 0,
    initial_access_token: IatStatus::Absent,
};

const LOCAL_WARNING: &str = "program on your own computer";
const INVISIBLE_WARNING: &str = "invisible characters";

fn gate(body: &Value) -> Result<Accepted, Rejection> {
    let limits = Limits::default();
    let bytes = serde_json::to_vec(body).expect("json");
    let raw = parse(&bytes, &limits, Mode::Register)?;
    evaluate(&raw, CLEAN, &PolicyConfig::default(), &limits)
}

fn native(name: &str, redirect: &str) -> Value {
    json!({
        "client_name": name,
        "redirect_uris": [redirect],
        "token_endpoint_auth_method": "none",
    })
}

fn client(name: &str, redirects: &[&str]) -> ClientRow {
    ClientRow {
        client_id: "rwc_test".into(),
        registration_method: RegistrationMethod::Dcr,
        metadata: ClientMetadata {
            client_name: Some(name.into()),
            redirect_uris: redirects.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        },
        secret_hash: None,
        rat_hash: None,
        status: ClientStatus::Active,
        created_at: 0,
        updated_at: 0,
        last_seen_at: 0,
        consented_at: None,
        source_ip: None,
        version: 1,
    }
}

fn warns(row: &ClientRow, text: &str) -> bool {
    BasicAdvisor
        .warnings(row, true)
        .iter()
        .any(|w| w.contains(text))
}

/// Non-canonical loopback spellings the browser sends to 127.0.0.1 or
/// ::1. The consent page decided by string prefix and missed all but the
/// canonical ones; the gate parsed `[::ffff:127.0.0.1]` as non-loopback.
const LOOPBACK_FORMS: &[&str] = &[
    "http://0x7f000001:9999/cb",
    "http://2130706433/cb",
    "http://127.1/cb",
    "http://0177.0.0.1/cb",
    "http://127.000.000.001/cb",
    "http://[::1]/cb",
    "http://[0:0:0:0:0:0:0:1]/cb",
    "http://[::ffff:127.0.0.1]/cb",
    "http://[::ffff:7f00:1]/cb",
];

#[test]
fn every_loopback_spelling_is_loopback_for_the_gate_and_the_consent_page() {
    for &uri in LOOPBACK_FORMS {
        let accepted = gate(&native("Acme", uri)).unwrap_or_else(|r| panic!("{uri}: {r:?}"));
        assert!(
            accepted
                .risk_signals
                .contains(&"loopback_redirect".to_string()),
            "{uri}: {:?}",
            accepted.risk_signals
        );
        assert!(warns(&client("Acme", &[uri]), LOCAL_WARNING), "{uri}");
    }
}

#[test]
fn lookalike_hosts_are_not_loopback() {
    for uri in [
        "http://127.0.0.1.evil.example/cb",
        "http://0x7f000001.evil.example/cb",
        "http://localhost.evil.example/cb",
        // RFC 6761 names are not admitted over http (RFC 8252 names only
        // `localhost`).
        "http://app.localhost/cb",
        "http://[::2]/cb",
        "http://128.0.0.1/cb",
    ] {
        let r = gate(&native("Acme", uri)).expect_err(uri);
        assert_eq!(r.rule, "redirect.plain_http", "{uri}");
        assert!(!warns(&client("Acme", &[uri]), LOCAL_WARNING), "{uri}");
    }
    // A prefix check read "http://localhost…" as local for any host.
    assert!(!warns(
        &client("Acme", &["http://localhost.evil.example/cb"]),
        LOCAL_WARNING
    ));
    // One redirect off this machine: the warning is not shown.
    assert!(!warns(
        &client(
            "Acme",
            &["http://0x7f000001:9999/cb", "https://app.example.com/cb"]
        ),
        LOCAL_WARNING
    ));
}

#[test]
fn the_redirect_class_follows_the_shared_host_check() {
    let class = |uri: &str| gate(&native("Acme", uri)).map(|a| a.risk_signals);
    for (uri, class_signal) in [
        ("http://[::ffff:7f00:1]:8080/cb", "loopback_redirect"),
        ("http://localhost:8080/cb", "localhost_redirect"),
        ("http://localhost.:8080/cb", "localhost_redirect"),
    ] {
        let signals = class(uri).unwrap_or_else(|r| panic!("{uri}: {r:?}"));
        assert!(signals.contains(&class_signal.to_string()), "{uri}");
    }
    assert_eq!(
        RedirectClass::LoopbackIp.risk_signal(),
        Some("loopback_redirect")
    );
}

#[test]
fn a_loopback_redirect_matches_on_any_port_whatever_its_spelling() {
    assert!(redirect_matches(
        "http://0x7f000001:9999/cb",
        "http://127.0.0.1:51234/cb"
    ));
    assert!(redirect_matches(
        "http://[::ffff:127.0.0.1]:1/cb",
        "http://[::ffff:7f00:1]:2/cb"
    ));
    assert!(!redirect_matches(
        "http://0x7f000001:9999/cb",
        "http://127.0.0.1:51234/other"
    ));
    assert!(!redirect_matches(
        "https://127.0.0.1:9999/cb",
        "https://127.0.0.1:51234/cb"
    ));
}

/// Every range of the shared list, first and last code point: the gate
/// flags it and the consent page warns. The old local list had neither
/// U+3164 (Hangul filler) nor the tag characters.
#[test]
fn every_hidden_character_is_flagged_and_warned_about() {
    let mut samples: Vec<char> = Vec::new();
    for r in DEFAULT_IGNORABLE.iter().chain(BIDI_CONTROLS) {
        samples.extend([*r.start(), *r.end()]);
    }
    samples.extend(['\u{3164}', '\u{E0041}', '\u{E007F}']);
    for c in samples {
        let name = format!("Chat{c}GPT");
        let accepted = gate(&native(&name, "https://app.example.com/cb"))
            .unwrap_or_else(|r| panic!("U+{:04X}: {r:?}", u32::from(c)));
        assert!(
            accepted
                .risk_signals
                .contains(&"name_invisible_or_bidi_chars".to_string()),
            "U+{:04X}",
            u32::from(c)
        );
        assert!(
            warns(
                &client(&name, &["https://app.example.com/cb"]),
                INVISIBLE_WARNING
            ),
            "U+{:04X}",
            u32::from(c)
        );
    }
    let plain = gate(&native("ChatGPT", "https://app.example.com/cb")).expect("plain name");
    assert!(!plain
        .risk_signals
        .contains(&"name_invisible_or_bidi_chars".to_string()));
    assert!(!warns(
        &client("ChatGPT", &["https://app.example.com/cb"]),
        INVISIBLE_WARNING
    ));
}
