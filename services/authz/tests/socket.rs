//! One test on a real socket: `run` serves registration, the source is
//! the TCP peer, and shutdown is graceful.

mod common;

use std::time::Duration;

use common::{fresh_db, on_both_backends, Backend};
use regwatch_authz::{AppState, AuthzConfig, Store};

async fn serves_on_a_real_socket(backend: Backend) {
    let db = fresh_db(backend).await;
    let mut cfg = AuthzConfig {
        database_url: db.url.clone(),
        ..Default::default()
    };
    let store = Store::connect(&cfg.database_url, 1).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    cfg.issuer = format!("http://{addr}");
    let state = AppState::new(cfg, store.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(regwatch_authz::run(state, listener, async {
        let _ = rx.await;
    }));

    let http = reqwest::Client::new();
    let meta: serde_json::Value = http
        .get(format!(
            "http://{addr}/.well-known/oauth-authorization-server"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], format!("http://{addr}"));
    let r = http
        .post(meta["registration_endpoint"].as_str().unwrap())
        .json(&serde_json::json!({"redirect_uris":["http://127.0.0.1:9/cb"],"token_endpoint_auth_method":"none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let body: serde_json::Value = r.json().await.unwrap();
    let row = store
        .get_client(body["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.source_ip.as_deref(), Some("127.0.0.1"));

    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

on_both_backends!(serves_on_a_real_socket);
