//! Shared helpers for the pipeline's Kafka tests: an in-memory sink that
//! deduplicates by `event_id` (as real sinks must), event builders, and
//! small Kafka readers.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use regwatch_pipeline::{EventSink, PipelineConfig, SinkError};
use regwatch_schemas::{Actor, ClientDeleted, Envelope, EventPayload, WireEvent};
use uuid::Uuid;

/// In-memory sink, idempotent on `event_id`, with switches for faults.
#[derive(Default)]
pub struct MemSink {
    state: Mutex<MemState>,
    /// While set, every write fails with a retryable error.
    pub failing: AtomicBool,
    /// When set, the next write stores its events, then never returns
    /// (a process that made the batch durable and died before committing).
    pub hang_after_write: AtomicBool,
    /// Set once a write has hung.
    pub hung: AtomicBool,
    pub failed_writes: AtomicUsize,
}

#[derive(Default)]
pub struct MemState {
    pub ids: HashSet<Uuid>,
    /// First-seen order of event ids per client.
    pub per_client: HashMap<String, Vec<Uuid>>,
    pub duplicates: usize,
    pub writes: usize,
}

impl MemSink {
    pub fn distinct(&self) -> usize {
        self.state.lock().map(|s| s.ids.len()).unwrap_or(0)
    }
    pub fn duplicates(&self) -> usize {
        self.state.lock().map(|s| s.duplicates).unwrap_or(0)
    }
    pub fn per_client(&self) -> HashMap<String, Vec<Uuid>> {
        self.state
            .lock()
            .map(|s| s.per_client.clone())
            .unwrap_or_default()
    }
}

#[async_trait]
impl EventSink for MemSink {
    async fn write(&self, batch: &[WireEvent]) -> Result<(), SinkError> {
        if self.failing.load(Ordering::SeqCst) {
            self.failed_writes.fetch_add(1, Ordering::SeqCst);
            return Err(SinkError::Unavailable("injected".into()));
        }
        {
            let mut s = self
                .state
                .lock()
                .map_err(|_| SinkError::Unavailable("poisoned".into()))?;
            s.writes += 1;
            for e in batch {
                if s.ids.insert(e.envelope().event_id) {
                    let client = e.envelope().client_id.clone().unwrap_or_default();
                    s.per_client
                        .entry(client)
                        .or_default()
                        .push(e.envelope().event_id);
                } else {
                    s.duplicates += 1;
                }
            }
        }
        if self.hang_after_write.swap(false, Ordering::SeqCst) {
            self.hung.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

pub fn envelope(client: &str) -> Envelope {
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
    env
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", Uuid::now_v7().simple())
}

pub fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "10000")
        .create()
        .expect("test producer")
}

/// Produce one record and wait for its ack (keeps per-key order).
pub async fn produce(p: &FutureProducer, topic: &str, key: &str, value: &[u8]) {
    p.send(
        FutureRecord::to(topic).key(key).payload(value),
        Duration::from_secs(10),
    )
    .await
    .map_err(|(e, _)| e)
    .expect("test produce");
}

/// Produce `n` valid events round-robin over `clients`; returns, per
/// client, the event ids in produce order.
pub async fn produce_events(
    p: &FutureProducer,
    topic: &str,
    clients: &[&str],
    n: usize,
) -> HashMap<String, Vec<Uuid>> {
    let mut sent: HashMap<String, Vec<Uuid>> = HashMap::new();
    for i in 0..n {
        let client = clients[i % clients.len()];
        let env = envelope(client);
        let json = serde_json::to_vec(&env).expect("serialize");
        produce(p, topic, client, &json).await;
        sent.entry(client.to_string())
            .or_default()
            .push(env.event_id);
    }
    sent
}

pub fn merge(a: &mut HashMap<String, Vec<Uuid>>, b: HashMap<String, Vec<Uuid>>) {
    for (k, v) in b {
        a.entry(k).or_default().extend(v);
    }
}

pub fn config(brokers: &str, topic: &str, dlq: &str, group: &str) -> PipelineConfig {
    PipelineConfig {
        brokers: brokers.to_string(),
        group_id: group.to_string(),
        topic: topic.to_string(),
        dlq_topic: dlq.to_string(),
        batch_max_wait_ms: 50,
        retry_initial_ms: 50,
        retry_max_ms: 200,
        session_timeout_ms: 6_000,
        ..PipelineConfig::default()
    }
}

pub async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One record read back: key, value, headers.
pub struct Read {
    pub partition: i32,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: HashMap<String, String>,
}

/// Read every record of `topic` (partitions `0..partitions`) from the
/// beginning, without a group, until `n` arrived or `timeout`.
pub async fn read_all(
    brokers: &str,
    topic: &str,
    partitions: i32,
    n: usize,
    timeout: Duration,
) -> Vec<Read> {
    let consumer = regwatch_testkit::reader_from_beginning(brokers, topic, partitions);
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => out.push(Read {
                partition: m.partition(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
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
            }),
            Ok(Err(_)) => {}
            Err(_) => break,
        }
    }
    out
}

/// Committed offset per partition for `group` (`None`: nothing committed).
pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> Vec<Option<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("offset reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        })
        .collect()
}

/// High watermark per partition.
pub fn high_watermarks(brokers: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("watermark reader");
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(10))
                .expect("watermarks")
                .1
        })
        .collect()
}

/// Check that, per client, the sink saw events in produce order and saw
/// each exactly once.
pub fn assert_exactly_once_in_order(sink: &MemSink, sent: &HashMap<String, Vec<Uuid>>) {
    let got = sink.per_client();
    let total: usize = sent.values().map(Vec::len).sum();
    assert_eq!(sink.distinct(), total, "distinct events in the sink");
    for (client, ids) in sent {
        assert_eq!(got.get(client), Some(ids), "order for client {client}");
    }
}
