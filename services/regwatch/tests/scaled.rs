//! The scaled shape end to end on real parts (authorization server on
//! PostgreSQL when `REGWATCH_TEST_PG_URL` is set, as in CI): registrations, updates and
//! deletions through the authorization server's HTTP API → outbox → relay
//! → a real Kafka-protocol broker (tansu) → pipeline → a real ClickHouse
//! (18.16), exactly once (count = distinct event_id = N) and in per-client
//! order; detector alerts land in ClickHouse too.
//!
//! Needs `REGWATCH_TEST_TANSU` (a tansu binary) and
//! `REGWATCH_TEST_CLICKHOUSE_URL`; under `CI` their absence fails the run.

mod common;

use std::time::{Duration, Instant};

use common::{create_topics, env_or_skip, AuthzWithRelay, TansuBroker};
use rdkafka::config::ClientConfig;
use regwatch_store::{AlertQuery, EventQuery};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_reach_clickhouse_exactly_once_in_order() {
    let (Some(tansu), Some(ch_url)) = (
        env_or_skip(
            "REGWATCH_TEST_TANSU",
            "cargo install tansu --locked --features dynostore,postgres",
        ),
        env_or_skip(
            "REGWATCH_TEST_CLICKHOUSE_URL",
            "deploy/local/clickhouse-up.sh",
        ),
    ) else {
        return;
    };
    let broker = TansuBroker::start(&tansu);
    let brokers = broker.brokers();
    create_topics(&brokers).await;

    // The authorization server with its relay, on PostgreSQL as the scaled
    // shape runs it (a fresh database), or SQLite outside CI without one.
    let database_url = match std::env::var("REGWATCH_TEST_PG_URL") {
        Ok(base) => {
            sqlx::any::install_default_drivers();
            let db = format!("scaled_{}", uuid::Uuid::now_v7().simple());
            let admin = sqlx::AnyPool::connect(&base).await.unwrap();
            sqlx::query(&format!("CREATE DATABASE {db}"))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
            Some(format!("{}/{db}", base.rsplit_once('/').unwrap().0))
        }
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("REGWATCH_TEST_PG_URL is not set in CI")
        }
        Err(_) => None,
    };
    eprintln!(
        "authorization server database: {}",
        database_url
            .as_deref()
            .map_or("SQLite", |u| u.split('@').next_back().unwrap_or(""))
    );
    let authz = AuthzWithRelay::start(
        database_url,
        regwatch_relay::RelayConfig {
            brokers: brokers.clone(),
            ..Default::default()
        },
    )
    .await;
    let issuer = authz.issuer.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.changed().await;
    };

    // The pipeline into ClickHouse.
    let db = format!("rw_scaled_{}", uuid::Uuid::now_v7().simple());
    let events = regwatch::scaled::clickhouse(&regwatch_store::StoreConfig {
        clickhouse_url: ch_url,
        clickhouse_database: db,
    })
    .await
    .unwrap();
    let pcfg = regwatch_pipeline::PipelineConfig {
        brokers: brokers.clone(),
        group_id: format!("g-{}", uuid::Uuid::now_v7().simple()),
        ..Default::default()
    };
    tokio::spawn(regwatch::scaled::pipeline(
        pcfg,
        events.clone(),
        Default::default(),
        stopped(stop_rx.clone()),
    ));

    // N registrations, updates and deletions through HTTP.
    let http = reqwest::Client::new();
    let mut expected = 0u64;
    let mut clients = Vec::new();
    for i in 0..20 {
        let r: Value = http
            .post(format!("{issuer}/register"))
            .json(&json!({"client_name": format!("Tool {i}"), "redirect_uris": [format!("https://tool{i}.example.com/cb")], "token_endpoint_auth_method": "none"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        expected += 1;
        clients.push(r);
    }
    for (i, c) in clients.iter().enumerate().take(10) {
        let id = c["client_id"].as_str().unwrap();
        let r = http
            .put(c["registration_client_uri"].as_str().unwrap())
            .bearer_auth(c["registration_access_token"].as_str().unwrap())
            .json(&json!({"client_id": id, "client_name": format!("Tool {i}"), "redirect_uris": [format!("https://elsewhere{i}.example.net/cb")], "token_endpoint_auth_method": "none"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let rat: Value = r.json().await.unwrap();
        expected += 1;
        if i < 5 {
            let d = http
                .delete(c["registration_client_uri"].as_str().unwrap())
                .bearer_auth(rat["registration_access_token"].as_str().unwrap())
                .send()
                .await
                .unwrap();
            assert_eq!(d.status(), 204);
            expected += 1;
        }
    }
    let t = Instant::now();
    loop {
        let n = events.count_events().await.unwrap();
        if n == expected {
            break;
        }
        assert!(n < expected, "more events than sent: {n} > {expected}");
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "only {n} of {expected} events after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Settle, then check nothing more arrives (no duplicate after the fact).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        events.count_events().await.unwrap(),
        expected,
        "exactly once"
    );

    // Per-client order: registered → updated → deleted.
    for (i, c) in clients.iter().enumerate().take(10) {
        let page = events
            .query_events(&EventQuery {
                client_id: Some(c["client_id"].as_str().unwrap().into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let types: Vec<&str> = page
            .events
            .iter()
            .map(|e| e.event_type().as_str())
            .collect();
        let want: &[&str] = if i < 5 {
            &["client.registered", "client.updated", "client.deleted"]
        } else {
            &["client.registered", "client.updated"]
        };
        assert_eq!(types, want, "client {i}");
    }
    // A lookalike, for the detectors.
    let sent_fake = Instant::now();
    let fake: Value = http
        .post(format!("{issuer}/register"))
        .json(&json!({"client_name": "Cl\u{0430}ude", "redirect_uris": ["https://claude-login.example.org/cb"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // The detectors ran on the scaled path too, within the latency budget.
    let fake_id = fake["client_id"].as_str().unwrap();
    let t = Instant::now();
    loop {
        let a = events
            .query_alerts(&AlertQuery {
                client_id: Some(fake_id.into()),
                ..Default::default()
            })
            .await
            .unwrap();
        if a.alerts
            .iter()
            .any(|a| a.kind == regwatch_schemas::AlertKind::NameImpersonation)
        {
            let latency = sent_fake.elapsed();
            eprintln!("scaled alert latency (registration sent → alert readable in ClickHouse): {latency:?}");
            assert!(
                latency < Duration::from_secs(1),
                "alert latency {latency:?} over the 1 s budget"
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no impersonation alert in ClickHouse"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        events.count_events().await.unwrap(),
        expected + 1,
        "the lookalike's event, once"
    );

    // …and the alert is published to regwatch.alerts.v1, keyed by the client.
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::Message;
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set(
            "group.id",
            format!("alerts-{}", uuid::Uuid::now_v7().simple()),
        )
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer
        .subscribe(&[regwatch_schemas::ALERTS_TOPIC])
        .unwrap();
    let published = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let m = match consumer.recv().await {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("alerts consumer: {e}");
                    continue;
                }
            };
            let alert: regwatch_schemas::Alert =
                serde_json::from_slice(m.payload().unwrap()).unwrap();
            if alert.client_id == fake_id
                && alert.kind == regwatch_schemas::AlertKind::NameImpersonation
            {
                assert_eq!(m.key(), Some(fake_id.as_bytes()));
                break alert;
            }
        }
    })
    .await
    .expect("the alert on regwatch.alerts.v1");
    assert!(published.score > 0.5);
    let _ = stop_tx.send(true);
}
