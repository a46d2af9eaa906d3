//! Tests of `parse_document`: the accepted shapes and the refusal table.

use super::*;
use serde_json::json;

const ID: &str = "https://app.example.com/oauth/client.json";

fn base() -> Value {
    json!({
        "client_id": ID,
        "client_name": "Example App",
        "redirect_uris": ["http://127.0.0.1:33418/callback", "https://app.example.com/cb"],
    })
}

fn with(mut doc: Value, key: &str, value: Value) -> Value {
    if let Some(map) = doc.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
    doc
}

fn without(mut doc: Value, key: &str) -> Value {
    if let Some(map) = doc.as_object_mut() {
        map.remove(key);
    }
    doc
}

fn check(doc: &Value) -> Result<CimdDocument, &'static str> {
    let body = serde_json::to_vec(doc).expect("serialisable");
    parse_document(&body, ID).map_err(|e| e.reason_code())
}

#[test]
fn minimal_document_is_accepted() {
    let doc = check(&base()).expect("valid");
    assert_eq!(doc.client_id, ID);
    assert_eq!(doc.client_name, "Example App");
    assert_eq!(doc.redirect_uris.len(), 2);
    assert_eq!(doc.token_endpoint_auth_method, None);
    assert!(doc.ignored_fields.is_empty());
}

#[test]
fn full_document_is_typed_and_unknown_fields_listed() {
    let mut doc = base();
    for (k, v) in [
        (
            "grant_types",
            json!(["authorization_code", "refresh_token"]),
        ),
        ("response_types", json!(["code"])),
        ("token_endpoint_auth_method", json!("private_key_jwt")),
        ("scope", json!("mcp:tools openid")),
        ("client_uri", json!("https://app.example.com")),
        ("logo_uri", json!("https://app.example.com/logo.png")),
        ("tos_uri", json!("https://app.example.com/tos")),
        ("policy_uri", json!("https://app.example.com/privacy")),
        ("jwks_uri", json!("https://app.example.com/jwks.json")),
        ("software_id", json!("4NRB1-0XZABZI9E6-5SM3R")),
        ("software_version", json!("1.4.2")),
        ("application_type", json!("native")),
        ("contacts", json!(["ops@example.com"])),
        ("client_name#ja-Jpan-JP", json!("アプリ")),
    ] {
        doc = with(doc, k, v);
    }
    let doc = check(&doc).expect("valid");
    assert_eq!(
        doc.grant_types,
        Some(vec!["authorization_code".into(), "refresh_token".into()])
    );
    assert_eq!(doc.response_types, Some(vec!["code".into()]));
    assert_eq!(
        doc.token_endpoint_auth_method.as_deref(),
        Some("private_key_jwt")
    );
    assert_eq!(doc.scope.as_deref(), Some("mcp:tools openid"));
    assert_eq!(doc.client_uri.as_deref(), Some("https://app.example.com"));
    assert_eq!(
        doc.jwks_uri.as_deref(),
        Some("https://app.example.com/jwks.json")
    );
    assert_eq!(doc.software_version.as_deref(), Some("1.4.2"));
    assert_eq!(doc.application_type.as_deref(), Some("native"));
    assert_eq!(doc.contacts, Some(vec!["ops@example.com".to_string()]));
    assert_eq!(doc.ignored_fields, vec!["client_name#ja-Jpan-JP"]);
}

#[test]
fn document_refusal_table() {
    let many_uris: Vec<String> = (0..21)
        .map(|i| format!("https://a.example/cb{i}"))
        .collect();
    let twenty_uris: Vec<String> = (0..20)
        .map(|i| format!("https://a.example/cb{i}"))
        .collect();
    let long_uri = format!("https://a.example/{}", "x".repeat(MAX_URI_LEN));
    let public_jwk = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "BB"}]});
    let cases: Vec<(Value, Result<(), &str>)> = vec![
        // secrets
        (
            with(base(), "client_secret", json!("s3cret")),
            Err("shared_secret"),
        ),
        (
            with(base(), "client_secret", Value::Null),
            Err("shared_secret"),
        ),
        (
            with(base(), "client_secret_expires_at", json!(0)),
            Err("shared_secret"),
        ),
        (
            with(
                base(),
                "jwks",
                json!({"keys": [{"kty": "EC", "d": "private"}]}),
            ),
            Err("shared_secret"),
        ),
        (
            with(
                base(),
                "jwks",
                json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
            ),
            Err("shared_secret"),
        ),
        // auth methods
        (
            with(
                base(),
                "token_endpoint_auth_method",
                json!("client_secret_basic"),
            ),
            Err("forbidden_auth_method"),
        ),
        (
            with(
                base(),
                "token_endpoint_auth_method",
                json!("client_secret_post"),
            ),
            Err("forbidden_auth_method"),
        ),
        (
            with(
                base(),
                "token_endpoint_auth_method",
                json!("client_secret_jwt"),
            ),
            Err("forbidden_auth_method"),
        ),
        (
            with(
                base(),
                "token_endpoint_auth_method",
                json!("tls_client_auth"),
            ),
            Err("forbidden_auth_method"),
        ),
        (
            with(base(), "token_endpoint_auth_method", json!("none")),
            Ok(()),
        ),
        (
            with(
                base(),
                "token_endpoint_auth_method",
                json!("private_key_jwt"),
            ),
            Err("invalid_document"),
        ),
        (
            with(
                with(
                    base(),
                    "token_endpoint_auth_method",
                    json!("private_key_jwt"),
                ),
                "jwks",
                public_jwk.clone(),
            ),
            Ok(()),
        ),
        // keys
        (
            with(
                with(base(), "jwks", public_jwk.clone()),
                "jwks_uri",
                json!("https://a.example/jwks"),
            ),
            Err("invalid_document"),
        ),
        (with(base(), "jwks", json!([])), Err("invalid_document")),
        (
            with(base(), "jwks_uri", json!("http://a.example/jwks")),
            Err("invalid_document"),
        ),
        // client_id
        (
            with(
                base(),
                "client_id",
                json!("https://evil.example/client.json"),
            ),
            Err("client_id_mismatch"),
        ),
        (
            with(
                base(),
                "client_id",
                json!("https://app.example.com:443/oauth/client.json"),
            ),
            Err("client_id_mismatch"),
        ),
        (
            with(
                base(),
                "client_id",
                json!("https://APP.example.com/oauth/client.json"),
            ),
            Err("client_id_mismatch"),
        ),
        (
            with(base(), "client_id", json!(42)),
            Err("invalid_document"),
        ),
        (without(base(), "client_id"), Err("invalid_document")),
        // client_name
        (without(base(), "client_name"), Err("invalid_document")),
        (
            with(base(), "client_name", json!("")),
            Err("invalid_document"),
        ),
        (
            with(base(), "client_name", json!("   ")),
            Err("invalid_document"),
        ),
        (
            with(base(), "client_name", json!(["x"])),
            Err("invalid_document"),
        ),
        (with(base(), "client_name", json!("a".repeat(200))), Ok(())),
        (with(base(), "client_name", json!("é".repeat(200))), Ok(())),
        (
            with(base(), "client_name", json!("a".repeat(201))),
            Err("invalid_document"),
        ),
        (
            with(base(), "client_name", json!("Evil\u{0007}App")),
            Err("invalid_document"),
        ),
        // redirect_uris
        (without(base(), "redirect_uris"), Err("invalid_document")),
        (
            with(base(), "redirect_uris", json!([])),
            Err("invalid_document"),
        ),
        (
            with(base(), "redirect_uris", json!("https://a.example/cb")),
            Err("invalid_document"),
        ),
        (
            with(base(), "redirect_uris", json!([1])),
            Err("invalid_document"),
        ),
        (
            with(base(), "redirect_uris", json!(many_uris)),
            Err("invalid_document"),
        ),
        (with(base(), "redirect_uris", json!(twenty_uris)), Ok(())),
        (
            with(base(), "redirect_uris", json!([long_uri])),
            Err("invalid_document"),
        ),
        (
            with(base(), "redirect_uris", json!(["/relative/cb"])),
            Err("invalid_document"),
        ),
        (
            with(base(), "redirect_uris", json!(["https://a.example/cb#x"])),
            Err("invalid_document"),
        ),
        (
            with(base(), "redirect_uris", json!(["https://a.example/c b"])),
            Err("invalid_document"),
        ),
        (
            with(
                base(),
                "redirect_uris",
                json!(["com.example.app:/oauth2redirect"]),
            ),
            Ok(()),
        ),
        // other members
        (
            with(base(), "logo_uri", json!("javascript:alert(1)")),
            Err("invalid_document"),
        ),
        (
            with(base(), "application_type", json!("desktop")),
            Err("invalid_document"),
        ),
        (
            with(base(), "grant_types", json!("authorization_code")),
            Err("invalid_document"),
        ),
        (with(base(), "scope", json!(7)), Err("invalid_document")),
        (
            with(base(), "software_id", json!("x".repeat(201))),
            Err("invalid_document"),
        ),
        (with(base(), "scope", Value::Null), Ok(())),
    ];
    for (doc, expected) in cases {
        let got = check(&doc).map(|_| ());
        assert_eq!(got, expected, "{doc}");
    }
}

#[test]
fn non_object_and_malformed_json_are_invalid_json() {
    for body in [
        &b"[]"[..],
        b"\"https://x\"",
        b"{",
        b"",
        b"null",
        b"\xff\xfe",
    ] {
        let got = parse_document(body, ID).map_err(|e| e.reason_code());
        assert_eq!(got, Err("invalid_json"), "{body:?}");
    }
}
