//! The embedded shape end to end, in process on real sockets:
//! registrations through the authorization server reach the event store
//! through the outbox, the detectors raise alerts, and the read API serves
//! both. Latency from a registration's answer to its alert is checked
//! against the 1 s budget.

use std::time::{Duration, Instant};

use regwatch::config::Secret;
use regwatch::{Endpoints, RegwatchConfig, UpOptions};
use serde_json::{json, Value};

const TOKEN: &str = "embedded-api-token-0123";

async fn start() -> (
    Endpoints,
    tokio::sync::oneshot::Sender<()>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let opts = UpOptions {
        data_dir: dir.path().to_path_buf(),
        authz_listen: "127.0.0.1:0".parse().unwrap(),
        mcp_listen: None,
        api_listen: Some("127.0.0.1:0".parse().unwrap()),
        cimd_allow_loopback_dev: false,
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
    };
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut cfg = RegwatchConfig::default();
    cfg.authz.rate_limit.per_minute = 0;
    cfg.api.token = Some(Secret::new(TOKEN));
    cfg.sign_in.user = Some("alice".into());
    cfg.sign_in.password = Some(Secret::new("alice-password-123"));
    tokio::spawn(async move {
        regwatch::up(
            opts,
            cfg,
            move |e| drop(ready_tx.send(e.clone())),
            async move {
                let _ = stop_rx.await;
            },
        )
        .await
        .unwrap();
    });
    (ready_rx.await.unwrap(), stop_tx, dir)
}

async fn register(http: &reqwest::Client, e: &Endpoints, body: Value) -> Value {
    let r = http
        .post(format!("{}/register", e.issuer))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn alerts(http: &reqwest::Client, e: &Endpoints, query: &str) -> Vec<Value> {
    let r = http
        .get(format!("http://{}/v1/alerts?{query}", e.api.unwrap()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["alerts"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_become_events_and_alerts() {
    let (e, stop, _dir) = start().await;
    let http = reqwest::Client::new();

    // Benign: a genuine ChatGPT on its owner's domain, and an ordinary app.
    register(&http, &e, json!({"client_name":"ChatGPT","redirect_uris":["https://chatgpt.com/connector_platform_oauth_redirect"],"token_endpoint_auth_method":"none"})).await;
    register(&http, &e, json!({"client_name":"Acme Notes","redirect_uris":["https://notes.acme.example/cb"],"token_endpoint_auth_method":"none"})).await;

    // A lookalike: Cyrillic "Т", redirecting elsewhere.
    let t0 = Instant::now();
    let fake = register(&http, &e, json!({"client_name":"ChatGP\u{0422}","redirect_uris":["https://chatgpt-connect.example.net/cb"],"token_endpoint_auth_method":"none"})).await;
    let fake_id = fake["client_id"].as_str().unwrap().to_string();
    let found = loop {
        let a = alerts(&http, &e, "kind=name_impersonation").await;
        if let Some(a) = a.into_iter().find(|a| a["client_id"] == fake_id.as_str()) {
            break a;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no impersonation alert after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let latency = t0.elapsed();
    assert!(
        latency < Duration::from_secs(1),
        "alert latency {latency:?} over the 1 s budget"
    );
    assert!(
        found["summary"].as_str().unwrap().contains("ChatGPT"),
        "{found}"
    );
    assert!(found["score"].as_f64().unwrap() > 0.5);

    // Redirect drift: the ordinary app moves its redirect to another domain.
    let acme = register(&http, &e, json!({"client_name":"Acme Docs","redirect_uris":["https://docs.acme.example/cb"],"token_endpoint_auth_method":"none"})).await;
    let id = acme["client_id"].as_str().unwrap();
    let r = http
        .put(acme["registration_client_uri"].as_str().unwrap())
        .bearer_auth(acme["registration_access_token"].as_str().unwrap())
        .json(&json!({"client_id": id, "client_name":"Acme Docs","redirect_uris":["https://collector.evil.example/cb"],"token_endpoint_auth_method":"none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t1 = Instant::now();
    loop {
        if alerts(&http, &e, &format!("kind=redirect_drift&client_id={id}"))
            .await
            .len()
            == 1
        {
            break;
        }
        assert!(t1.elapsed() < Duration::from_secs(5), "no drift alert");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Nothing about the genuine clients.
    let all = alerts(&http, &e, "limit=100").await;
    assert!(all.iter().all(|a| a["client_id"] != json!(null)));
    assert_eq!(
        all.iter()
            .filter(|a| a["kind"] == "name_impersonation")
            .count(),
        1,
        "{all:?}"
    );

    // The events are all there, in order, in the contract's envelope.
    let r: Value = http
        .get(format!("http://{}/v1/events?limit=100", e.api.unwrap()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "client.registered",
            "client.registered",
            "client.registered",
            "client.registered",
            "client.updated"
        ]
    );

    // The metrics listener shows the detectors' state and the outbox cursor.
    let metrics = http
        .get(format!("http://{}/metrics", e.metrics.unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> i64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{metrics}"))
    };
    assert_eq!(
        value("regwatch_detect_clients"),
        4,
        "four clients registered"
    );
    assert_eq!(
        value("regwatch_embedded_outbox_cursor"),
        5,
        "five outbox rows durable"
    );
    assert_eq!(value("regwatch_detect_client_evictions_total"), 0);
    let _ = stop.send(());
}
