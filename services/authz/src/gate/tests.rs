use super::*;
use serde_json::{json, Value};

fn gate(body: &Value, ctx: GateContext, cfg: &PolicyConfig) -> Result<Accepted, Rejection> {
    let limits = Limits::default();
    let bytes = serde_json::to_vec(body).unwrap();
    let raw = parse(&bytes, &limits, ctx.mode)?;
    evaluate(&raw, ctx, cfg, &limits)
}

const CLEAN: GateContext = GateContext {
    mode: Mode::Register,
    flag_level: 0,
    initial_access_token: IatStatus::Absent,
};

#[test]
fn public_native_client_gets_narrow_defaults() {
    let a = gate(
        &json!({"client_name":"Acme","redirect_uris":["http://127.0.0.1:1234/cb"],"token_endpoint_auth_method":"none","x_vendor":1}),
        CLEAN,
        &PolicyConfig::default(),
    )
    .unwrap();
    assert!(!a.confidential);
    assert_eq!(a.scopes, vec!["mcp:read"]);
    assert_eq!(a.dropped_fields, vec!["x_vendor"]);
    assert!(a.risk_signals.contains(&"unknown_fields".to_string()));
    assert!(a.risk_signals.contains(&"loopback_redirect".to_string()));
    assert_eq!(a.metadata.grant_types, vec!["authorization_code"]);
    assert_eq!(a.metadata.application_type.as_deref(), Some("web"));
}

#[test]
fn rfc_default_auth_method_is_confidential() {
    let a = gate(
        &json!({"redirect_uris":["https://a.example.com/cb"]}),
        CLEAN,
        &PolicyConfig::default(),
    )
    .unwrap();
    assert!(a.confidential);
    assert_eq!(
        a.metadata.token_endpoint_auth_method.as_deref(),
        Some("client_secret_basic")
    );
}

#[test]
fn initial_access_token_modes() {
    let mut cfg = PolicyConfig {
        initial_access_token: InitialAccessTokenMode::Sensitive,
        ..Default::default()
    };
    let read = json!({"redirect_uris":["https://a.example.com/cb"],"scope":"mcp:read"});
    let write = json!({"redirect_uris":["https://a.example.com/cb"],"scope":"mcp:write"});
    assert!(gate(&read, CLEAN, &cfg).is_ok());
    assert_eq!(gate(&write, CLEAN, &cfg).unwrap_err().rule, "iat.missing");
    let with = GateContext {
        initial_access_token: IatStatus::Valid,
        ..CLEAN
    };
    assert!(gate(&write, with, &cfg).is_ok());
    cfg.initial_access_token = InitialAccessTokenMode::Always;
    let r = gate(&read, CLEAN, &cfg).unwrap_err();
    assert_eq!(
        (r.rule, r.status, r.error),
        ("iat.missing", 401, ErrorCode::InvalidToken)
    );
    let bad = GateContext {
        initial_access_token: IatStatus::Invalid,
        ..CLEAN
    };
    assert_eq!(gate(&read, bad, &cfg).unwrap_err().rule, "iat.invalid");
}

#[test]
fn second_flag_loses_sensitive_scopes() {
    let write = json!({"redirect_uris":["https://a.example.com/cb"],"scope":"mcp:read mcp:delete"});
    let flagged = |n| GateContext {
        flag_level: n,
        ..CLEAN
    };
    assert!(gate(&write, flagged(1), &PolicyConfig::default()).is_ok());
    let r = gate(&write, flagged(2), &PolicyConfig::default()).unwrap_err();
    assert_eq!((r.rule, r.status), ("source.flagged_sensitive_scope", 403));
    assert!(gate(
        &json!({"redirect_uris":["https://a.example.com/cb"]}),
        flagged(2),
        &PolicyConfig::default()
    )
    .is_ok());
}

#[test]
fn update_refuses_server_fields_and_keeps_client_id() {
    let l = Limits::default();
    let r = parse(
        br#"{"client_id":"x","registration_access_token":"y"}"#,
        &l,
        Mode::Update,
    )
    .unwrap_err();
    assert_eq!(r.rule, "update.server_field");
    let ok = parse(br#"{"client_id":"x","redirect_uris":[]}"#, &l, Mode::Update).unwrap();
    assert!(ok.client_id.is_some());
    let reg = parse(br#"{"client_id":"x"}"#, &l, Mode::Register).unwrap();
    assert_eq!(reg.dropped, vec!["client_id"]);
}

#[test]
fn a_metadata_document_meets_the_same_typed_gate() {
    const ID: &str = "https://app.example.com/client.json";
    let doc = |extra: &str| {
        let body = format!(
            r#"{{"client_id":"{ID}","client_name":"App","contacts":["ops@example.com"],"x_vendor":1{extra}}}"#
        );
        regwatch_cimd::parse_document(body.as_bytes(), ID).unwrap()
    };
    let req = RegistrationRequest::from_cimd(&doc(r#","redirect_uris":["http://127.0.0.1:9/cb"]"#));
    let a = evaluate(&req, CLEAN, &PolicyConfig::default(), &Limits::default()).unwrap();
    // No auth method in a document: a public client, not client_secret_basic.
    assert!(!a.confidential);
    assert_eq!(a.metadata.contacts, vec!["ops@example.com"]);
    assert_eq!(a.dropped_fields, vec!["x_vendor"]);
    // One set of limits: more redirect URIs than [authz.limits] admits.
    let uris: Vec<String> = (0..11)
        .map(|i| format!("\"https://app.example.com/cb{i}\""))
        .collect();
    let many = doc(&format!(r#","redirect_uris":[{}]"#, uris.join(",")));
    let r = evaluate(
        &RegistrationRequest::from_cimd(&many),
        CLEAN,
        &PolicyConfig::default(),
        &Limits::default(),
    )
    .unwrap_err();
    assert_eq!(r.rule, "field.too_many_items");
}
