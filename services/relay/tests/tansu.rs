//! Relay → real broker → pipeline, against a `tansu` broker process that
//! is killed and restarted mid-test.
//!
//! Gated on `REGWATCH_TEST_TANSU` (path to the tansu binary, built with
//! `cargo install tansu --locked --features dynostore,postgres`). Under
//! `CI` a missing binary fails the run; locally the test prints why it
//! skipped. `REGWATCH_TEST_RDKAFKA_DEBUG=eos,protocol` turns on librdkafka debug
//! logs for the relay (with `RUST_LOG=debug`).
//!
//! The broker runs with `memory://` storage, so a restart loses its log and
//! the group's offsets: the pipeline is stopped before the kill and a new
//! one reads the restarted broker from the beginning. What the restart
//! proves is the relay's side: rows produced while the broker is gone stay
//! unpublished, and all of them arrive once it is back.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use regwatch_outbox::Outbox;
use regwatch_pipeline::{EventSink, Pipeline, PipelineConfig, SinkError};
use regwatch_relay::{Relay, RelayConfig};
use regwatch_schemas::{Actor, ClientDeleted, Envelope, EventPayload, WireEvent};
use regwatch_testkit::{create_topics, free_port, tansu_or_skip, wait_until, TansuBroker};
use tokio::sync::oneshot;

use common::sqlite_outbox;

/// (ids seen, first-seen ids per client, duplicates)
type Seen = (HashSet<uuid::Uuid>, HashMap<String, Vec<uuid::Uuid>>, usize);

#[derive(Default)]
struct DedupSink {
    seen: Mutex<Seen>,
}

#[async_trait]
impl EventSink for DedupSink {
    async fn write(&self, batch: &[WireEvent]) -> Result<(), SinkError> {
        let mut s = self
            .seen
            .lock()
            .map_err(|_| SinkError::Unavailable("poisoned".into()))?;
        for e in batch {
            if s.0.insert(e.envelope().event_id) {
                let c = e.envelope().client_id.clone().unwrap_or_default();
                s.1.entry(c).or_default().push(e.envelope().event_id);
            } else {
                s.2 += 1;
            }
        }
        Ok(())
    }
}

impl DedupSink {
    fn distinct(&self) -> usize {
        self.seen.lock().map(|s| s.0.len()).unwrap_or(0)
    }
}

async fn record(
    outbox: &Outbox,
    clients: &[&str],
    n: usize,
    out: &mut HashMap<String, Vec<uuid::Uuid>>,
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
            .push(env.event_id);
    }
}

fn pipeline_config(brokers: &str, group: &str) -> PipelineConfig {
    PipelineConfig {
        brokers: brokers.to_string(),
        group_id: group.to_string(),
        topic: "events".into(),
        dlq_topic: "dlq".into(),
        batch_max_wait_ms: 50,
        session_timeout_ms: 6_000,
        ..PipelineConfig::default()
    }
}

fn start_pipeline(
    cfg: PipelineConfig,
    sink: Arc<DedupSink>,
) -> (
    oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), regwatch_pipeline::PipelineError>>,
) {
    let (tx, rx) = oneshot::channel::<()>();
    let sink: Arc<dyn EventSink> = sink;
    let p = Pipeline::new(cfg, sink).expect("pipeline config");
    let task = tokio::spawn(p.run(async move {
        let _ = rx.await;
    }));
    (tx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_pipeline_through_a_real_broker_that_restarts() {
    let Some(bin) = tansu_or_skip() else { return };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let mut broker = TansuBroker::start_on(&bin, port);
    create_topics(&brokers, &[("events", 3), ("dlq", 1)]).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = sqlite_outbox(&dir).await;
    let clients = ["c-a", "c-b", "c-c"];
    let mut sent = HashMap::new();
    record(&outbox, &clients, 20, &mut sent).await;

    let relay = Relay::new(
        outbox.clone(),
        RelayConfig {
            brokers: brokers.clone(),
            topic: "events".into(),
            delivery_timeout_ms: 5_000,
            retry_initial_ms: 100,
            retry_max_ms: 500,
            idle_poll_ms: 20,
            librdkafka: std::env::var("REGWATCH_TEST_RDKAFKA_DEBUG")
                .map(|d| [("debug".to_string(), d)].into_iter().collect())
                .unwrap_or_default(),
            ..RelayConfig::default()
        },
    )
    .expect("relay");
    let metrics = relay.metrics();
    let (relay_stop, rx) = oneshot::channel::<()>();
    let relay_task = tokio::spawn(relay.run(async move {
        let _ = rx.await;
    }));

    let sink = Arc::new(DedupSink::default());
    let (p_stop, p_task) = start_pipeline(pipeline_config(&brokers, "g1"), sink.clone());
    wait_until(
        "20 events through the broker",
        Duration::from_secs(60),
        async || sink.distinct() >= 20,
    )
    .await;
    let _ = p_stop.send(());
    p_task.await.expect("pipeline task").expect("pipeline");

    // The broker dies; the outbox keeps filling; nothing is marked.
    broker.kill();
    let failed_before = metrics.failed_rounds.load(Ordering::SeqCst);
    record(&outbox, &clients, 10, &mut sent).await;
    wait_until(
        "failed rounds while down",
        Duration::from_secs(30),
        async || metrics.failed_rounds.load(Ordering::SeqCst) >= failed_before + 2,
    )
    .await;
    assert_eq!(outbox.backlog().await.expect("backlog"), 10);
    assert_eq!(metrics.backlog.load(Ordering::SeqCst), 10);

    // Back on the same port (memory storage: an empty broker again).
    let _broker = TansuBroker::start_on(&bin, port);
    create_topics(&brokers, &[("events", 3), ("dlq", 1)]).await;
    wait_until(
        "backlog drained after restart",
        Duration::from_secs(60),
        async || outbox.backlog().await.unwrap_or(-1) == 0,
    )
    .await;
    let (p_stop, p_task) = start_pipeline(pipeline_config(&brokers, "g2"), sink.clone());
    wait_until("all 30 events", Duration::from_secs(60), async || {
        sink.distinct() >= 30
    })
    .await;
    let _ = p_stop.send(());
    p_task.await.expect("pipeline task").expect("pipeline");
    let _ = relay_stop.send(());
    relay_task.await.expect("relay task");

    let seen = sink
        .seen
        .lock()
        .map(|s| (s.1.clone(), s.2))
        .expect("sink state");
    assert_eq!(seen.0, sent, "per-client order, every event once");
    assert_eq!(seen.1, 0, "no duplicate reached the sink");
    assert_eq!(metrics.published.load(Ordering::SeqCst), 30);
}
