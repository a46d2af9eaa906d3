//! The admin API and the client lifecycle (TTLs, expiry sweep).

mod common;

use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use common::*;
use regwatch_schemas::EventPayload;

async fn admin_api_is_authenticated(backend: Backend) {
    let h = open(backend, config()).await;
    let r = h
        .call(Method::GET, "/admin/clients", None, None, "127.0.0.1")
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .call(
            Method::GET,
            "/admin/clients",
            Some("wrong-admin-token-xx"),
            None,
            "127.0.0.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_token");

    let mut cfg = config();
    cfg.admin_token = String::new();
    let h = open(backend, cfg).await;
    let r = h
        .call(
            Method::GET,
            "/admin/clients",
            Some(ADMIN),
            None,
            "127.0.0.1",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "no admin token configured: no admin API"
    );
}

async fn list_inspect_disable_enable_revoke(backend: Backend) {
    let h = open(backend, config()).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            h.register(&public_client()).await.body["client_id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    ids.sort();
    let r = h
        .call(
            Method::GET,
            "/admin/clients?limit=2",
            Some(ADMIN),
            None,
            "127.0.0.1",
        )
        .await;
    assert_eq!(r.body["clients"].as_array().unwrap().len(), 2);
    let cursor = r.body["next_cursor"].as_str().unwrap().to_string();
    let r = h
        .call(
            Method::GET,
            &format!("/admin/clients?limit=2&cursor={cursor}"),
            Some(ADMIN),
            None,
            "127.0.0.1",
        )
        .await;
    assert_eq!(r.body["clients"][0]["client_id"], ids[2].as_str());
    assert!(r.body["next_cursor"].is_null());

    let id = &ids[0];
    let r = h
        .call(
            Method::GET,
            &format!("/admin/clients/{id}"),
            Some(ADMIN),
            None,
            "127.0.0.1",
        )
        .await;
    assert_eq!(r.body["status"], "active");
    assert_eq!(r.body["live_tokens"], 0);
    assert!(r.body.get("rat_hash").is_none() && !r.body.to_string().contains("secret_hash"));

    let r = h
        .call(
            Method::POST,
            &format!("/admin/clients/{id}/disable"),
            Some(ADMIN),
            None,
            "127.0.0.1",
        )
        .await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("disabled"))
    );
    let r = h
        .call(
            Method::POST,
            &format!("/admin/clients/{id}/enable"),
            Some(ADMIN),
            None,
            "127.0.0.1",
        )
        .await;
    assert_eq!(r.body["status"], "active");
    let body =
        serde_json::json!({"reason": "lookalike of ChatGPT", "requested_by": "regwatch-api"});
    let r = h
        .call(
            Method::POST,
            &format!("/admin/clients/{id}/revoke"),
            Some(ADMIN),
            Some(&body),
            "127.0.0.1",
        )
        .await;
    assert_eq!(
        (r.body["status"].as_str(), r.body["changed"].as_bool()),
        (Some("revoked"), Some(true))
    );
    // Idempotent: a retried revocation changes nothing and records nothing.
    let before = h.events().await.len();
    let r = h
        .call(
            Method::POST,
            &format!("/admin/clients/{id}/revoke"),
            Some(ADMIN),
            Some(&body),
            "127.0.0.1",
        )
        .await;
    assert_eq!(
        (r.status, r.body["changed"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    assert_eq!(h.events().await.len(), before);
    // A revoked client cannot be re-enabled.
    let r = h
        .call(
            Method::POST,
            &format!("/admin/clients/{id}/enable"),
            Some(ADMIN),
            None,
            "127.0.0.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    let types = h.event_types().await;
    assert_eq!(
        &types[3..],
        ["client.disabled", "client.disabled", "client.revoked"]
    );
    let evs = h.events().await;
    let EventPayload::ClientRevoked(d) = &evs[5].payload else {
        panic!()
    };
    assert_eq!(
        (d.reason.as_str(), d.requested_by.as_str()),
        ("lookalike of ChatGPT", "regwatch-api")
    );
    assert_eq!(evs[5].actor.kind, regwatch_schemas::ActorKind::Admin);
}

async fn expiry_sweep_applies_both_ttls(backend: Backend) {
    let h = open(backend, config()).await;
    let a = h.register(&public_client()).await.body["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let b = h.register(&public_client()).await.body["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    // b reached consent: only the idle TTL applies to it.
    sqlx::query("UPDATE clients SET consented_at = $1 WHERE client_id = $2")
        .bind(Utc::now().timestamp_millis())
        .bind(b.clone())
        .execute(h.state.store.pool())
        .await
        .unwrap();
    let now = Utc::now();
    assert_eq!(
        regwatch_authz::lifecycle::sweep_once(&h.state, now)
            .await
            .unwrap(),
        0
    );
    // 25 h later: a never consented, so it expires; b is fine.
    let later = now + Duration::hours(25);
    assert_eq!(
        regwatch_authz::lifecycle::sweep_once(&h.state, later)
            .await
            .unwrap(),
        1,
        "{}",
        h.name
    );
    assert_eq!(
        h.state
            .store
            .get_client(&a)
            .await
            .unwrap()
            .unwrap()
            .status
            .as_str(),
        "expired"
    );
    // Sliding: b is used at +29 days, so at +31 days it is still alive.
    h.state
        .store
        .touch(&b, (now + Duration::days(29)).timestamp_millis())
        .await
        .unwrap();
    assert_eq!(
        regwatch_authz::lifecycle::sweep_once(&h.state, now + Duration::days(31))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        regwatch_authz::lifecycle::sweep_once(&h.state, now + Duration::days(60))
            .await
            .unwrap(),
        1
    );
    let evs = h.events().await;
    let expired: Vec<_> = evs
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::ClientExpired(d) => {
                Some((e.client_id.clone().unwrap(), d.reason.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        expired,
        vec![
            (a.clone(), "never_consented".to_string()),
            (b.clone(), "idle".to_string())
        ]
    );
}

on_both_backends!(
    admin_api_is_authenticated,
    list_inspect_disable_enable_revoke,
    expiry_sweep_applies_both_ttls,
);
