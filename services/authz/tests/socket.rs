//! One test on a real socket: `run` serves registration, the source is
//! the TCP peer, and shutdown is graceful.

use std::time::Duration;

use regwatch_authz::{AppState, AuthzConfig, Store};

#[tokio::test]
async fn serves_on_a_real_socket() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AuthzConfig {
        database_url: format!("sqlite://{}", dir.path().join("a.db").display()),
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
