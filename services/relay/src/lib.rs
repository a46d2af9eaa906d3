//! The outbox relay: publishes the authorization server's outbox to Kafka.
//!
//! The authorization server writes every event into the `outbox` table in
//! the same transaction as the state change it describes. The relay reads
//! unpublished rows in `seq` order, produces them to
//! [`regwatch_schemas::EVENTS_TOPIC`] with an idempotent producer, and marks
//! a row published only once the broker acknowledged it.
//!
//! Delivery invariants (kept in [`Relay::run`] and [`Relay::publish_batch`]):
//! - **Marked only after ack.** `mark_published` is called with exactly the
//!   seqs whose delivery report came back successful (`acks=all`). A row
//!   whose delivery failed, or that was never produced, stays unpublished
//!   and is sent again.
//! - **Never dropped.** When the broker is down the batch's deliveries
//!   fail after `delivery_timeout_ms`; the relay waits with exponential
//!   backoff and tries again, for ever. The backlog (unpublished rows) is a
//!   gauge in [`RelayMetrics`] and a field of every retry log line.
//! - **At least once, exactly once downstream.** A crash between the ack
//!   and the mark sends the row again; the event carries its `event_id`
//!   and consumers write idempotently on it.
//! - **Per-client order.** Records are keyed by the contract's
//!   [`regwatch_schemas::partition_key`] (`client_id`; for events without
//!   one, the source IP, else the `event_id`), so one client's events go to
//!   one partition. Rows are produced in `seq` order, a batch
//!   is fully resolved before the next one is read, and librdkafka's
//!   idempotent producer (at most 5 requests in flight) keeps the order
//!   within a partition across its own retries. One case can reorder: a
//!   delivery that times out while later records of the same partition
//!   succeed (librdkafka documents this gap); the relay re-sends the failed
//!   row after them and logs `order_gap`. A long `delivery_timeout_ms`
//!   makes this rare; events carry `occurred_at` and a UUIDv7 `event_id`
//!   for consumers that must re-sort.
//!
//! The relay reads the outbox through `regwatch-outbox` (an
//! [`Outbox`] on the authorization server's database), not through the
//! authorization server.
//!
//! Layout: this file only — [`RelayConfig`] (documented, validated),
//! [`RelayMetrics`], [`Relay`] and the [`run`] entry point.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use regwatch_outbox::{Outbox, OutboxError, OutboxRow};
use regwatch_schemas::{partition_key, EventHead};
use serde::Deserialize;
use tracing::{debug, info, warn};

/// `[relay]`: where and how the outbox is published.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayConfig {
    /// Kafka bootstrap servers, `host:port[,host:port…]`.
    pub brokers: String,
    /// Topic the events are produced to.
    pub topic: String,
    /// Rows read and produced per round. Bounds memory and the work
    /// re-sent after a failure.
    pub batch_size: u32,
    /// Wait between two reads of an empty outbox.
    pub idle_poll_ms: u64,
    /// librdkafka `message.timeout.ms`: how long librdkafka retries one
    /// record before reporting it failed (the relay then backs off and
    /// re-sends). Longer means fewer re-sends and order gaps in a long
    /// outage; shorter means a stuck batch is noticed sooner.
    pub delivery_timeout_ms: u64,
    /// librdkafka `linger.ms`: how long records wait to fill a request.
    pub linger_ms: u64,
    /// First wait after a failed round; doubles up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    /// Longest wait between failed rounds.
    pub retry_max_ms: u64,
    /// On shutdown, how long to wait for the deliveries already in flight
    /// before leaving them unmarked (they are sent again on restart).
    pub shutdown_grace_ms: u64,
    /// Replace the producer after this many rounds in a row in which
    /// nothing was acknowledged (0: never, except on a fatal error). A
    /// broker that lost the producer's id (restarted without its log)
    /// answers `UNKNOWN_PRODUCER_ID` for ever to librdkafka's epoch bumps;
    /// a new producer gets a new id. Safe: a fully failed round leaves
    /// nothing in flight, and its rows are unmarked.
    pub replace_producer_after_failed_rounds: u32,
    /// Extra librdkafka properties (e.g. `security.protocol`). May not
    /// override the ones the delivery guarantees rest on.
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            brokers: "127.0.0.1:9092".into(),
            topic: regwatch_schemas::EVENTS_TOPIC.into(),
            batch_size: 500,
            idle_poll_ms: 50,
            delivery_timeout_ms: 120_000,
            linger_ms: 5,
            retry_initial_ms: 200,
            retry_max_ms: 30_000,
            shutdown_grace_ms: 5_000,
            replace_producer_after_failed_rounds: 5,
            librdkafka: BTreeMap::new(),
        }
    }
}

/// librdkafka keys the relay sets itself: the delivery guarantees rest on
/// them.
const RESERVED_KEYS: &[&str] = &[
    "bootstrap.servers",
    "enable.idempotence",
    "acks",
    "max.in.flight.requests.per.connection",
    "max.in.flight",
    "message.timeout.ms",
    "delivery.timeout.ms",
];

impl RelayConfig {
    /// Check every key; the error names the first bad one.
    pub fn validate(&self) -> Result<(), RelayError> {
        fn bad(key: &str, why: &str) -> Result<(), RelayError> {
            Err(RelayError::Config {
                key: format!("relay.{key}"),
                reason: why.into(),
            })
        }
        if self.brokers.trim().is_empty() {
            return bad("brokers", "must not be empty");
        }
        if self.topic.trim().is_empty() {
            return bad("topic", "must not be empty");
        }
        if !(1..=100_000).contains(&self.batch_size) {
            return bad("batch_size", "must be in 1..=100000");
        }
        if !(1..=60_000).contains(&self.idle_poll_ms) {
            return bad("idle_poll_ms", "must be in 1..=60000");
        }
        if !(100..=3_600_000).contains(&self.delivery_timeout_ms) {
            return bad("delivery_timeout_ms", "must be in 100..=3600000");
        }
        if self.linger_ms > 5_000 {
            return bad("linger_ms", "must be at most 5000");
        }
        if self.retry_initial_ms == 0 {
            return bad("retry_initial_ms", "must be positive");
        }
        if self.retry_max_ms < self.retry_initial_ms {
            return bad("retry_max_ms", "must be at least retry_initial_ms");
        }
        for k in self.librdkafka.keys() {
            if RESERVED_KEYS.contains(&k.as_str()) {
                return bad(&format!("librdkafka.{k}"), "is set by the relay");
            }
        }
        Ok(())
    }
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("invalid configuration: {key}: {reason}")]
    Config { key: String, reason: String },
    #[error("kafka producer: {0}")]
    Kafka(#[from] KafkaError),
}

/// Gauges and counters, shared with whoever exports metrics.
#[derive(Debug, Default)]
pub struct RelayMetrics {
    /// Unpublished outbox rows, as of the last read (`Outbox::backlog`).
    pub backlog: AtomicI64,
    /// Rows acknowledged by the broker and marked published.
    pub published: AtomicU64,
    /// Deliveries that failed (each is retried).
    pub delivery_failures: AtomicU64,
    /// Rounds that failed (broker or store) and were retried after backoff.
    pub failed_rounds: AtomicU64,
    /// Producers replaced after a fatal error or a run of failed rounds.
    pub producer_replacements: AtomicU64,
}

/// What one round did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Round {
    acked: Vec<i64>,
    failed: usize,
}

/// The relay with its producer; [`Relay::run`] drives it.
pub struct Relay {
    outbox: Outbox,
    cfg: RelayConfig,
    producer: FutureProducer,
    metrics: Arc<RelayMetrics>,
}

/// Publish `outbox` until `shutdown` completes.
pub async fn run(
    outbox: Outbox,
    cfg: RelayConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RelayError> {
    Relay::new(outbox, cfg)?.run(shutdown).await;
    Ok(())
}

impl Relay {
    /// Validate the configuration and create the producer (connects
    /// lazily).
    pub fn new(outbox: Outbox, cfg: RelayConfig) -> Result<Self, RelayError> {
        cfg.validate()?;
        let producer = producer(&cfg)?;
        Ok(Relay {
            outbox,
            cfg,
            producer,
            metrics: Arc::new(RelayMetrics::default()),
        })
    }

    pub fn metrics(&self) -> Arc<RelayMetrics> {
        self.metrics.clone()
    }

    /// Publish until `shutdown` completes. Never gives up on a row: store
    /// and broker failures are retried with exponential backoff.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut delay = Duration::from_millis(self.cfg.retry_initial_ms);
        let max_delay = Duration::from_millis(self.cfg.retry_max_ms);
        info!(topic = %self.cfg.topic, "relay started");
        let grace = Duration::from_millis(self.cfg.shutdown_grace_ms);
        let mut stopping = false;
        let mut failed_in_a_row = 0u32;
        loop {
            let outcome = {
                let round = self.round();
                tokio::pin!(round);
                tokio::select! {
                biased;
                r = &mut round => r,
                _ = &mut shutdown => {
                    // Let the round in progress finish (deliveries acked
                    // and marked) for up to the grace period; past it, its
                    // rows stay unmarked and are re-sent on restart.
                    stopping = true;
                    match tokio::time::timeout(grace, &mut round).await {
                        Ok(r) => r,
                        Err(_) => break,
                    }
                }
                }
            };
            if stopping {
                break;
            }
            let backlog = self.metrics.backlog.load(Ordering::Relaxed);
            let wait = match outcome {
                Ok(Some(r)) if r.failed == 0 => {
                    delay = Duration::from_millis(self.cfg.retry_initial_ms);
                    failed_in_a_row = 0;
                    continue;
                }
                Ok(None) => Duration::from_millis(self.cfg.idle_poll_ms),
                Ok(Some(r)) => {
                    self.metrics.failed_rounds.fetch_add(1, Ordering::Relaxed);
                    failed_in_a_row = if r.acked.is_empty() {
                        failed_in_a_row + 1
                    } else {
                        0
                    };
                    let limit = self.cfg.replace_producer_after_failed_rounds;
                    if limit > 0 && failed_in_a_row >= limit {
                        failed_in_a_row = 0;
                        self.replace_producer("no acknowledgement for several rounds");
                    } else {
                        self.replace_producer_if_fatal();
                    }
                    warn!(
                        failed = r.failed,
                        acked = r.acked.len(),
                        backlog,
                        retry_in_ms = delay.as_millis() as u64,
                        "deliveries failed; retrying"
                    );
                    next_delay(&mut delay, max_delay)
                }
                Err(e) => {
                    self.metrics.failed_rounds.fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, backlog, retry_in_ms = delay.as_millis() as u64,
                        "relay round failed; retrying");
                    next_delay(&mut delay, max_delay)
                }
            };
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        // Whatever librdkafka still holds is either acknowledged (and then
        // re-sent unmarked on restart: a duplicate the consumers absorb) or
        // not; nothing is marked without an ack.
        let producer = self.producer.clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(grace)).await;
        info!("relay stopped");
    }

    /// An idempotent producer that hits a fatal error (e.g. the broker lost
    /// the producer's sequence state: a broker restarted without its log)
    /// refuses every later record. Its unacknowledged rows are unmarked, so
    /// a fresh producer (new producer id) simply sends them again.
    fn replace_producer_if_fatal(&mut self) {
        let Some((code, reason)) = self.producer.client().fatal_error() else {
            return;
        };
        warn!(error = ?code, reason = %reason, "producer failed fatally");
        self.replace_producer("fatal error");
    }

    fn replace_producer(&mut self, why: &str) {
        match producer(&self.cfg) {
            Ok(p) => {
                info!(why, "new producer");
                self.metrics
                    .producer_replacements
                    .fetch_add(1, Ordering::Relaxed);
                self.producer = p;
            }
            Err(e) => warn!(error = %e, "creating a new producer failed; retrying next round"),
        }
    }

    /// One round: refresh the backlog gauge, read a batch, publish it.
    /// `Ok(None)` when the outbox is empty.
    ///
    /// Dropped at shutdown only after the grace period, at an await point;
    /// the rows of an interrupted round stay unmarked and are sent again.
    async fn round(&self) -> Result<Option<Round>, OutboxError> {
        let backlog = self.outbox.backlog().await?;
        self.metrics.backlog.store(backlog, Ordering::Relaxed);
        if backlog == 0 {
            return Ok(None);
        }
        let rows = self.outbox.unpublished(self.cfg.batch_size).await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let round = self.publish_batch(&rows).await;
        if !round.acked.is_empty() {
            self.mark(&round.acked).await?;
            self.metrics
                .published
                .fetch_add(round.acked.len() as u64, Ordering::Relaxed);
            let left = backlog - round.acked.len() as i64;
            self.metrics.backlog.store(left.max(0), Ordering::Relaxed);
        }
        debug!(
            acked = round.acked.len(),
            failed = round.failed,
            "relay round"
        );
        Ok(Some(round))
    }

    /// Produce every row in seq order, then await every delivery report.
    /// Returns the acknowledged seqs; the rest stay unpublished.
    async fn publish_batch(&self, rows: &[OutboxRow]) -> Round {
        let mut pending: Vec<(&OutboxRow, DeliveryFuture)> = Vec::with_capacity(rows.len());
        let mut failed = 0usize;
        for row in rows {
            let meta = RowMeta::of(row);
            let mut headers = OwnedHeaders::new_with_capacity(2).insert(Header {
                key: "event_type",
                value: Some(row.event_type.as_str()),
            });
            if let Some(v) = &meta.schema_version {
                headers = headers.insert(Header {
                    key: "schema_version",
                    value: Some(v.as_str()),
                });
            }
            let record = FutureRecord::to(&self.cfg.topic)
                .key(meta.key.as_str())
                .payload(row.payload.as_str())
                .headers(headers);
            match self.producer.send_result(record) {
                Ok(fut) => pending.push((row, fut)),
                Err((e, _)) => {
                    // Queue full or a local error: stop here so that rows
                    // after this one are not produced ahead of it.
                    warn!(error = %e, seq = row.seq, "produce refused locally");
                    failed += rows.len() - pending.len();
                    break;
                }
            }
        }
        let mut acked = Vec::with_capacity(pending.len());
        // Keys with a failed delivery, to detect an order gap: a later row
        // of the same key acknowledged after an earlier one failed.
        let mut failed_keys: HashSet<String> = HashSet::new();
        let mut gaps = 0usize;
        for (row, fut) in pending {
            let key = RowMeta::of(row).key;
            match fut.await {
                Ok(Ok(_)) => {
                    if failed_keys.contains(&key) {
                        gaps += 1;
                    }
                    acked.push(row.seq);
                }
                Ok(Err((e, _))) => {
                    debug!(error = %e, seq = row.seq, "delivery failed");
                    failed += 1;
                    failed_keys.insert(key);
                    self.metrics
                        .delivery_failures
                        .fetch_add(1, Ordering::Relaxed);
                }
                Err(_canceled) => {
                    failed += 1;
                    failed_keys.insert(key);
                }
            }
        }
        if gaps > 0 {
            warn!(
                order_gap = gaps,
                "rows acknowledged after an earlier row of the same key failed; \
                 the failed rows are re-sent after them"
            );
        }
        Round { acked, failed }
    }

    /// Mark acknowledged rows, retrying a failing store a few times: an
    /// unmarked acknowledged row is only re-sent (a duplicate consumers
    /// absorb), so after that the error goes up and the round is retried.
    async fn mark(&self, seqs: &[i64]) -> Result<(), OutboxError> {
        let mut attempt = 0u32;
        loop {
            let now_ms = chrono::Utc::now().timestamp_millis();
            match self.outbox.mark_published(seqs, now_ms).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < 3 => {
                    attempt += 1;
                    warn!(error = %e, attempt, "marking rows published failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn producer(cfg: &RelayConfig) -> Result<FutureProducer, KafkaError> {
    let mut cc = ClientConfig::new();
    for (k, v) in &cfg.librdkafka {
        cc.set(k, v);
    }
    // Idempotence implies acks=all and at most 5 in flight per connection,
    // which is what keeps per-partition order across librdkafka's internal
    // retries; set explicitly so a reader sees it.
    cc.set("bootstrap.servers", &cfg.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "5")
        .set("message.timeout.ms", cfg.delivery_timeout_ms.to_string())
        .set("linger.ms", cfg.linger_ms.to_string());
    cc.create()
}

fn next_delay(delay: &mut Duration, max: Duration) -> Duration {
    let d = *delay;
    *delay = (*delay * 2).min(max);
    d
}

/// What the relay reads from a row's payload: the record key and the
/// `schema_version` header.
struct RowMeta {
    key: String,
    schema_version: Option<String>,
}

impl RowMeta {
    /// The contract's key ([`partition_key`]) from the row's `client_id` and
    /// `event_id` columns and the payload's source address, read once
    /// leniently ([`EventHead`]). A payload that does not parse is still
    /// published (the pipeline dead-letters it); it just has no
    /// `schema_version` header.
    fn of(row: &OutboxRow) -> RowMeta {
        let head = EventHead::read(&row.payload).unwrap_or_default();
        RowMeta {
            key: partition_key(row.client_id.as_deref(), head.source_ip(), &row.event_id),
            schema_version: head.schema_version.map(|v| v.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(client: Option<&str>, payload: &str) -> OutboxRow {
        OutboxRow {
            seq: 1,
            event_id: "0190-e".into(),
            event_type: "client.registered".into(),
            client_id: client.map(str::to_string),
            payload: payload.into(),
            created_at: 0,
        }
    }

    #[test]
    fn record_key_and_version() {
        let cases = [
            (Some("c1"), r#"{"schema_version":1}"#, "c1", Some("1")),
            (
                None,
                r#"{"schema_version":1,"source":{"ip":"10.0.0.9"}}"#,
                "source:10.0.0.9",
                Some("1"),
            ),
            (
                None,
                r#"{"schema_version":2,"source":null}"#,
                "0190-e",
                Some("2"),
            ),
            (Some(""), "not json", "0190-e", None),
        ];
        for (client, payload, key, version) in cases {
            let m = RowMeta::of(&row(client, payload));
            assert_eq!(m.key, key, "{payload}");
            assert_eq!(m.schema_version.as_deref(), version, "{payload}");
        }
    }

    #[test]
    fn config_errors_name_the_key() {
        assert!(RelayConfig::default().validate().is_ok());
        type Edit = fn(&mut RelayConfig);
        let cases: Vec<(Edit, &str)> = vec![
            (|c| c.brokers.clear(), "relay.brokers"),
            (|c| c.batch_size = 0, "relay.batch_size"),
            (|c| c.retry_max_ms = 1, "relay.retry_max_ms"),
            (
                |c| {
                    c.librdkafka.insert("acks".into(), "1".into());
                },
                "relay.librdkafka.acks",
            ),
        ];
        for (edit, key) in cases {
            let mut c = RelayConfig::default();
            edit(&mut c);
            match c.validate() {
                Err(RelayError::Config { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: expected a config error, got {other:?}"),
            }
        }
        let unknown: Result<RelayConfig, _> = serde_json::from_str(r#"{"batchsize":3}"#);
        assert!(unknown.is_err());
    }

    #[test]
    fn backoff_doubles_to_the_cap() {
        let mut d = Duration::from_millis(100);
        let got: Vec<u64> = (0..4)
            .map(|_| next_delay(&mut d, Duration::from_millis(300)).as_millis() as u64)
            .collect();
        assert_eq!(got, vec![100, 200, 300, 300]);
    }
}
