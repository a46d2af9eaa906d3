//! RFC 7592 management (GET, PUT, DELETE) and RFC 6750 errors.

mod common;

use axum::http::{Method, StatusCode};
use chrono::Utc;
use common::*;
use regwatch_authz::store::TokenRow;
use regwatch_schemas::{Actor, EventPayload, TokenIssued};
use serde_json::json;

async fn registered(h: &Harness) -> (String, String, serde_json::Value) {
    let r = h.register(&public_client()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (
        r.body["client_id"].as_str().unwrap().to_string(),
        r.body["registration_access_token"]
            .as_str()
            .unwrap()
            .to_string(),
        r.body,
    )
}

async fn read_needs_the_registration_access_token(backend: Backend) {
    let h = open(backend, config()).await;
    let (id, rat, _) = registered(&h).await;
    let path = format!("/register/{id}");
    let r = h
        .call(Method::GET, &path, Some(&rat), None, "198.51.100.10")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", h.name);
    assert_eq!(r.body["client_id"], id.as_str());
    assert!(
        r.body.get("registration_access_token").is_none(),
        "not rotated on read"
    );

    let r = h
        .call(Method::GET, &path, None, None, "198.51.100.10")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers["www-authenticate"], "Bearer realm=\"regwatch\"",
        "no error code without credentials (RFC 6750 §3.1)"
    );

    let r = h
        .call(
            Method::GET,
            &path,
            Some("rwr_not-the-token"),
            None,
            "198.51.100.10",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_token");
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("error=\"invalid_token\""));

    let r = h
        .call(
            Method::GET,
            "/register/rwc_unknown",
            Some(&rat),
            None,
            "198.51.100.10",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "unknown client: 401 (RFC 7592 §2)"
    );
}

async fn update_replaces_metadata_rotates_the_token_and_records_the_diff(backend: Backend) {
    let h = open(backend, config()).await;
    let (id, rat, body) = registered(&h).await;
    let path = format!("/register/{id}");
    let mut new = public_client();
    new["client_id"] = json!(id);
    new["redirect_uris"] = json!(["https://drifted.example.net/cb"]);
    new["client_name"] = json!("Acme Assistant 2");
    let r = h
        .call(Method::PUT, &path, Some(&rat), Some(&new), "198.51.100.10")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}: {}", h.name, r.body);
    let new_rat = r.body["registration_access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_rat, rat);
    assert_eq!(
        r.body["redirect_uris"],
        json!(["https://drifted.example.net/cb"])
    );
    assert_eq!(r.body["client_id_issued_at"], body["client_id_issued_at"]);

    // The old token is dead, the new one works.
    assert_eq!(
        h.call(Method::GET, &path, Some(&rat), None, "198.51.100.10")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.call(Method::GET, &path, Some(&new_rat), None, "198.51.100.10")
            .await
            .status,
        StatusCode::OK
    );

    let evs = h.events().await;
    let EventPayload::ClientUpdated(u) = &evs[1].payload else {
        panic!("{:?}", evs[1])
    };
    let redirect = u
        .changes
        .iter()
        .find(|c| c.field == "redirect_uris")
        .unwrap();
    assert_eq!(redirect.old, json!(["http://127.0.0.1:33418/callback"]));
    assert_eq!(redirect.new, json!(["https://drifted.example.net/cb"]));
    assert!(u.changes.iter().any(|c| c.field == "client_name"));
    assert!(
        !u.changes.iter().any(|c| c.field == "grant_types"),
        "only changed fields"
    );
    assert!(u.registration_token_rotated);
    assert!(evs[1]
        .policy
        .as_ref()
        .unwrap()
        .risk_signals
        .contains(&"redirect_uris_changed".to_string()));
    let all = serde_json::to_string(&evs).unwrap();
    assert!(!all.contains(&rat) && !all.contains(&new_rat));
}

async fn bad_updates_change_nothing_and_are_recorded(backend: Backend) {
    let h = open(backend, config()).await;
    let (id, rat, _) = registered(&h).await;
    let path = format!("/register/{id}");
    let base = || {
        let mut b = public_client();
        b["client_id"] = json!(id);
        b
    };
    let mut bad_redirect = base();
    bad_redirect["redirect_uris"] = json!(["http://evil.example/cb"]);
    let mut no_id = base();
    no_id.as_object_mut().unwrap().remove("client_id");
    let mut other_id = base();
    other_id["client_id"] = json!("rwc_someone_else");
    let mut server_field = base();
    server_field["registration_access_token"] = json!("x");
    let mut secret = base();
    secret["client_secret"] = json!("guess");
    let mut to_confidential = base();
    to_confidential["token_endpoint_auth_method"] = json!("client_secret_post");
    let cases = [
        (bad_redirect, "invalid_redirect_uri", "redirect.plain_http"),
        (
            no_id,
            "invalid_client_metadata",
            "update.client_id_mismatch",
        ),
        (
            other_id,
            "invalid_client_metadata",
            "update.client_id_mismatch",
        ),
        (
            server_field,
            "invalid_client_metadata",
            "update.server_field",
        ),
        (
            secret,
            "invalid_client_metadata",
            "update.client_secret_mismatch",
        ),
        (
            to_confidential,
            "invalid_client_metadata",
            "update.auth_method_class_change",
        ),
    ];
    for (i, (body, error, rule)) in cases.iter().enumerate() {
        let r = h
            .call(Method::PUT, &path, Some(&rat), Some(body), "198.51.100.10")
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{rule}");
        assert_eq!(r.body["error"], *error, "{rule}");
        let evs = h.events().await;
        let EventPayload::ClientRegistrationRejected(d) = &evs[i + 1].payload else {
            panic!("{rule}")
        };
        assert_eq!((d.rule.as_str(), d.operation.as_str()), (*rule, "update"));
        assert_eq!(evs[i + 1].client_id.as_deref(), Some(id.as_str()));
    }
    // The registration is untouched and the token still works.
    let r = h
        .call(Method::GET, &path, Some(&rat), None, "198.51.100.10")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body["redirect_uris"],
        json!(["http://127.0.0.1:33418/callback"])
    );
}

async fn delete_kills_the_client_and_its_tokens(backend: Backend) {
    let h = open(backend, config()).await;
    let (id, rat, _) = registered(&h).await;
    let now = Utc::now();
    let token = TokenRow {
        token_hash: "a".repeat(64),
        token_id: "aaaaaaaaaaaaaaaa".into(),
        kind: "access_token".into(),
        client_id: id.clone(),
        user_id: Some("alice".into()),
        family_id: None,
        scopes: "mcp:read".into(),
        resource: "http://127.0.0.1:8500/mcp".into(),
        issued_at: now.timestamp_millis(),
        expires_at: now.timestamp_millis() + 600_000,
    };
    let ev = regwatch_authz::events::event(
        "http://127.0.0.1:8400",
        Some(&id),
        Actor::user("alice"),
        EventPayload::TokenIssued(TokenIssued {
            grant_type: "authorization_code".into(),
            scopes: vec!["mcp:read".into()],
            resource: token.resource.clone(),
            token_id: token.token_id.clone(),
            family_id: None,
            user_id: Some("alice".into()),
            refresh_token_issued: false,
            expires_in: 600,
        }),
        &Default::default(),
        now,
    );
    h.state.store.insert_tokens(&[token], &ev).await.unwrap();
    assert_eq!(
        h.state
            .store
            .live_tokens(&id, now.timestamp_millis())
            .await
            .unwrap(),
        1
    );

    let path = format!("/register/{id}");
    let r = h
        .call(Method::DELETE, &path, Some(&rat), None, "198.51.100.10")
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", h.name);
    assert_eq!(
        h.state
            .store
            .live_tokens(&id, now.timestamp_millis())
            .await
            .unwrap(),
        0
    );
    let evs = h.events().await;
    let EventPayload::ClientDeleted(d) = &evs[2].payload else {
        panic!("{:?}", evs[2])
    };
    assert_eq!(d.tokens_revoked, 1);

    // The client is gone: every call is 401, and each attempt is recorded.
    for m in [Method::GET, Method::DELETE] {
        let r = h.call(m, &path, Some(&rat), None, "198.51.100.10").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let types = h.event_types().await;
    assert_eq!(
        &types[3..],
        ["client.access_denied", "client.access_denied"]
    );
}

on_both_backends!(
    read_needs_the_registration_access_token,
    update_replaces_metadata_rotates_the_token_and_records_the_diff,
    bad_updates_change_nothing_and_are_recorded,
    delete_kills_the_client_and_its_tokens,
);
