//! The relay against librdkafka's mock cluster (in process, real TCP) and
//! a real SQLite outbox: every row published once, in per-client order,
//! marked only after the ack; a broker outage keeps rows unpublished and
//! the backlog visible, and they drain when it returns.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use regwatch_outbox::Outbox;
use regwatch_relay::{Relay, RelayConfig};
use regwatch_schemas::{Actor, ClientDeleted, ClientRegistrationRejected, Envelope, EventPayload};
use tokio::sync::oneshot;

use common::sqlite_outbox;

const PARTITIONS: i32 = 3;

struct Record {
    key: String,
    event_id: String,
    headers: HashMap<String, String>,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// Record `n` events round-robin over `clients`, plus (when `rejected`)
/// a client-less rejected registration from 10.1.2.3; returns the event
/// ids per record key, in insertion order.
async fn record_events(
    outbox: &Outbox,
    clients: &[&str],
    n: usize,
    out: &mut HashMap<String, Vec<String>>,
) {
    for i in 0..n {
        let client = clients[i % clients.len()];
        let mut env = Envelope::new(
            "https://issuer.test",
            Actor::admin("ops"),
            EventPayload::ClientDeleted(ClientDeleted {
                reason: "admin".into(),
                tokens_revoked: 0,
            }),
            chrono::Utc::now(),
        );
        env.client_id = Some(client.to_string());
        outbox.record(&env).await.expect("record");
        out.entry(client.to_string())
            .or_default()
            .push(env.event_id.to_string());
    }
}

async fn record_rejected(outbox: &Outbox, out: &mut HashMap<String, Vec<String>>) {
    let mut env = Envelope::new(
        "https://issuer.test",
        Actor::anonymous_client(),
        EventPayload::ClientRegistrationRejected(ClientRegistrationRejected {
            error: "invalid_redirect_uri".into(),
            error_description: "fragment".into(),
            rule: "redirect.fragment".into(),
            http_status: 400,
            registration_method: regwatch_schemas::RegistrationMethod::Dcr,
            operation: "register".into(),
            attempted: None,
            dropped_fields: vec![],
        }),
        chrono::Utc::now(),
    );
    env.source = Some(regwatch_schemas::Source {
        ip: Some("10.1.2.3".into()),
        user_agent: None,
    });
    outbox.record(&env).await.expect("record");
    out.entry("source:10.1.2.3".into())
        .or_default()
        .push(env.event_id.to_string());
}

async fn read_all(brokers: &str, topic: &str, n: usize, timeout: Duration) -> Vec<Record> {
    let consumer = regwatch_testkit::reader_from_beginning(brokers, topic, PARTITIONS);
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    // Read until `n` arrived, then a little longer to catch duplicates.
    let mut extra_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        let until = extra_until.unwrap_or(deadline).min(deadline);
        if now >= until {
            break;
        }
        match tokio::time::timeout(until - now, consumer.recv()).await {
            Ok(Ok(m)) => {
                let payload: serde_json::Value =
                    serde_json::from_slice(m.payload().unwrap_or_default()).expect("payload json");
                out.push(Record {
                    key: String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                    event_id: payload["event_id"].as_str().unwrap_or_default().to_string(),
                    headers: m
                        .headers()
                        .map(|h| {
                            h.iter()
                                .map(|h| {
                                    (
                                        h.key.to_string(),
                                        String::from_utf8_lossy(h.value.unwrap_or_default())
                                            .into_owned(),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                });
                if out.len() >= n && extra_until.is_none() {
                    extra_until = Some(Instant::now() + Duration::from_millis(500));
                }
            }
            Ok(Err(_)) => {}
            Err(_) => break,
        }
    }
    out
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn check_exactly_once_in_order(records: &[Record], expected: &HashMap<String, Vec<String>>) {
    let total: usize = expected.values().map(Vec::len).sum();
    assert_eq!(records.len(), total, "records on the topic");
    let mut got: HashMap<String, Vec<String>> = HashMap::new();
    for r in records {
        got.entry(r.key.clone())
            .or_default()
            .push(r.event_id.clone());
        assert_eq!(
            r.headers.get("schema_version").map(String::as_str),
            Some("1")
        );
        assert!(r.headers.contains_key("event_type"));
    }
    assert_eq!(&got, expected, "per-key order");
}

fn config(brokers: &str, topic: &str) -> RelayConfig {
    RelayConfig {
        brokers: brokers.to_string(),
        topic: topic.to_string(),
        batch_size: 7,
        idle_poll_ms: 20,
        retry_initial_ms: 50,
        retry_max_ms: 300,
        ..RelayConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_every_row_once_in_order_and_marks_after_ack() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let topic = unique("events");
    cluster.create_topic(&topic, PARTITIONS, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = sqlite_outbox(&dir).await;

    let mut expected = HashMap::new();
    record_events(&outbox, &["c-a", "c-b", "c-c"], 30, &mut expected).await;
    record_rejected(&outbox, &mut expected).await;
    assert_eq!(outbox.backlog().await.expect("backlog"), 31);

    let relay = Relay::new(outbox.clone(), config(&brokers, &topic)).expect("relay");
    let metrics = relay.metrics();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(relay.run(async move {
        let _ = rx.await;
    }));
    wait_until("backlog drained", Duration::from_secs(30), async || {
        outbox.backlog().await.unwrap_or(-1) == 0
    })
    .await;
    let _ = stop.send(());
    task.await.expect("relay task");

    assert_eq!(metrics.published.load(Ordering::SeqCst), 31);
    assert_eq!(metrics.backlog.load(Ordering::SeqCst), 0);
    let records = read_all(&brokers, &topic, 31, Duration::from_secs(20)).await;
    check_exactly_once_in_order(&records, &expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_keeps_rows_unpublished_then_drains() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let topic = unique("events");
    cluster.create_topic(&topic, PARTITIONS, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = sqlite_outbox(&dir).await;

    cluster.broker_down(-1).expect("broker down");
    let mut expected = HashMap::new();
    record_events(&outbox, &["c-a", "c-b"], 10, &mut expected).await;

    let cfg = RelayConfig {
        delivery_timeout_ms: 500,
        ..config(&brokers, &topic)
    };
    let relay = Relay::new(outbox.clone(), cfg).expect("relay");
    let metrics = relay.metrics();
    let (stop, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(relay.run(async move {
        let _ = rx.await;
    }));

    // Several failed rounds: nothing marked, the backlog visible.
    wait_until("failed rounds", Duration::from_secs(30), async || {
        metrics.failed_rounds.load(Ordering::SeqCst) >= 3
    })
    .await;
    assert!(metrics.delivery_failures.load(Ordering::SeqCst) >= 3);
    assert_eq!(outbox.backlog().await.expect("backlog"), 10);
    assert_eq!(metrics.backlog.load(Ordering::SeqCst), 10);
    assert_eq!(metrics.published.load(Ordering::SeqCst), 0);
    // The outbox keeps filling meanwhile.
    record_events(&outbox, &["c-a", "c-b"], 5, &mut expected).await;

    cluster.broker_up(-1).expect("broker up");
    wait_until("backlog drained", Duration::from_secs(60), async || {
        outbox.backlog().await.unwrap_or(-1) == 0
    })
    .await;
    let _ = stop.send(());
    task.await.expect("relay task");

    assert_eq!(metrics.published.load(Ordering::SeqCst), 15);
    let records = read_all(&brokers, &topic, 15, Duration::from_secs(20)).await;
    check_exactly_once_in_order(&records, &expected);
}
