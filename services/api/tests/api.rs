//! The read API over a real store: SQLite always, ClickHouse 18.16 when
//! `REGWATCH_TEST_CLICKHOUSE_URL` is set (required under `CI`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{Duration, TimeZone, Utc};
use http_body_util::BodyExt;
use regwatch_api::{router, ApiState};
use regwatch_schemas::{
    Actor, ClientDeleted, ClientMetadata, ClientRegistered, Envelope, EventPayload,
    RegistrationMethod, WireEvent,
};
use regwatch_store::EventStore;
use serde_json::Value;
use tower::ServiceExt;

const TOKEN: &str = "api-token-0123456789";

async fn stores() -> Vec<(&'static str, Arc<dyn EventStore>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = regwatch_store::sqlite::SqliteStore::open(&dir.path().join("events.db"))
        .await
        .unwrap();
    let mut v: Vec<(&'static str, Arc<dyn EventStore>, Option<tempfile::TempDir>)> =
        vec![("sqlite", Arc::new(sqlite), Some(dir))];
    match std::env::var("REGWATCH_TEST_CLICKHOUSE_URL") {
        Ok(url) => {
            let db = format!("rw_api_{}", uuid::Uuid::now_v7().simple());
            let ch = regwatch_store::clickhouse::ClickHouseStore::connect(&url, &db).await.unwrap();
            v.push(("clickhouse", Arc::new(ch), None));
        }
        Err(_) if std::env::var_os("CI").is_some() => panic!("REGWATCH_TEST_CLICKHOUSE_URL is not set in CI"),
        Err(_) => eprintln!("skipping ClickHouse: export REGWATCH_TEST_CLICKHOUSE_URL=$(deploy/local/clickhouse-up.sh)"),
    }
    v
}

fn event(i: i64, client: &str, deleted: bool) -> WireEvent {
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap() + Duration::seconds(i);
    let payload = if deleted {
        EventPayload::ClientDeleted(ClientDeleted {
            reason: "rfc7592_delete".into(),
            tokens_revoked: 0,
        })
    } else {
        EventPayload::ClientRegistered(ClientRegistered {
            registration_method: RegistrationMethod::Dcr,
            metadata: ClientMetadata {
                client_name: Some(format!("c{i}")),
                ..Default::default()
            },
            confidential: false,
            dropped_fields: vec![],
            initial_access_token: false,
        })
    };
    let mut e = Envelope::new("https://as.example", Actor::client(client), payload, at);
    e.client_id = Some(client.into());
    WireEvent::from_envelope(e).unwrap()
}

async fn get(app: &axum::Router, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut b = Request::builder().uri(uri);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let res = app
        .clone()
        .oneshot(b.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn events_are_filtered_and_paged_exactly_once() {
    for (name, store, _dir) in stores().await {
        let batch: Vec<WireEvent> = (0..25)
            .map(|i| event(i, if i % 2 == 0 { "even" } else { "odd" }, i == 24))
            .collect();
        store.insert_events(&batch).await.unwrap();
        let app = router(ApiState::new(store.clone(), TOKEN).unwrap());

        // Walk every page of 7.
        let mut seen = Vec::new();
        let mut uri = "/v1/events?limit=7".to_string();
        loop {
            let (s, body) = get(&app, &uri, Some(TOKEN)).await;
            assert_eq!(s, StatusCode::OK, "{name}: {body}");
            for e in body["events"].as_array().unwrap() {
                seen.push(e["event_id"].as_str().unwrap().to_string());
                assert!(
                    e["event_type"].is_string() && e["data"].is_object(),
                    "envelope shape"
                );
            }
            match body["next_cursor"].as_str() {
                Some(c) => uri = format!("/v1/events?limit=7&cursor={c}"),
                None => break,
            }
        }
        let expected: Vec<String> = batch
            .iter()
            .map(|e| e.envelope().event_id.to_string())
            .collect();
        assert_eq!(seen, expected, "{name}: every event once, in order");

        let (_, body) = get(&app, "/v1/events?client_id=odd&limit=100", Some(TOKEN)).await;
        assert_eq!(body["events"].as_array().unwrap().len(), 12, "{name}");
        let (_, body) = get(&app, "/v1/events?type=client.deleted", Some(TOKEN)).await;
        assert_eq!(body["events"].as_array().unwrap().len(), 1, "{name}");
        let (_, body) = get(
            &app,
            "/v1/events?since=2026-11-22T10:00:10Z&until=2026-11-22T10:00:20Z&limit=100",
            Some(TOKEN),
        )
        .await;
        assert_eq!(
            body["events"].as_array().unwrap().len(),
            10,
            "{name}: since inclusive, until exclusive"
        );
    }
}

#[tokio::test]
async fn bad_requests_and_auth() {
    let (_, store, _dir) = stores().await.remove(0);
    let app = router(ApiState::new(store, TOKEN).unwrap());
    assert_eq!(
        get(&app, "/v1/events", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&app, "/v1/events", Some("wrong-token-0123456789"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    for (uri, why) in [
        ("/v1/events?type=client.teleported", "unknown event type"),
        ("/v1/events?limit=0", "limit"),
        ("/v1/events?limit=5000", "limit"),
        ("/v1/events?since=yesterday", "since"),
        ("/v1/events?cursor=not-a-cursor", "cursor"),
        ("/v1/events?colour=red", "unknown parameter"),
        ("/v1/alerts?kind=bad_vibes", "kind"),
    ] {
        let (s, body) = get(&app, uri, Some(TOKEN)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{why}: {body}");
        assert_eq!(body["error"], "invalid_request");
    }
    assert_eq!(get(&app, "/healthz", None).await.0, StatusCode::OK);
    assert_eq!(get(&app, "/readyz", None).await.0, StatusCode::OK);
    let (s, body) = get(&app, "/v1/alerts", Some(TOKEN)).await;
    assert_eq!(
        (s, body["alerts"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    assert!(ApiState::new(
        Arc::new(
            regwatch_store::sqlite::SqliteStore::open(
                &tempfile::tempdir().unwrap().path().join("x.db")
            )
            .await
            .unwrap()
        ),
        "short"
    )
    .is_err());
}

/// The `Authorization` header goes through `regwatch_checks::bearer`: the
/// scheme is case-insensitive (RFC 9110 §11.1), the token must be one
/// RFC 6750 token. The old parser took only `Bearer ` with a capital B.
#[tokio::test]
async fn bearer_scheme_is_case_insensitive_and_token_strict() {
    let (_, store, _dir) = stores().await.remove(0);
    let app = router(ApiState::new(store.clone(), TOKEN).unwrap());
    for (value, status) in [
        (format!("Bearer {TOKEN}"), StatusCode::OK),
        (format!("bearer {TOKEN}"), StatusCode::OK),
        (format!("BEARER  {TOKEN}"), StatusCode::OK),
        (format!("Bearer {TOKEN} extra"), StatusCode::UNAUTHORIZED),
        (format!("Basic {TOKEN}"), StatusCode::UNAUTHORIZED),
        ("Bearer ".to_string(), StatusCode::UNAUTHORIZED),
    ] {
        let req = Request::builder()
            .uri("/v1/events")
            .header("authorization", value.as_str())
            .body(Body::empty())
            .unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), status, "{value:?}");
    }
    // A configured token no client could present fails at start.
    assert!(ApiState::new(store, "correct horse battery staple").is_err());
}
