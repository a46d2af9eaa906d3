//! The consumer loop: read, validate, dead-letter or batch, write, commit.
//!
//! One task owns the [`StreamConsumer`]. Between two `recv` calls it either
//! takes one record into the batch, or writes the batch to the sink and
//! commits. librdkafka runs the rebalance callback inside `recv`, so a
//! callback never sees a sink write in progress: at that moment the batch
//! is either entirely in [`Shared::batch`] (not written) or written and its
//! offsets stored.
//!
//! Layout: this file holds the metrics, the client setup and the loop
//! (read, take, flush when due); `batch` the in-flight batch; `commit` the
//! write-then-commit step and the pause-retry; `dlq` the dead-letter
//! writer; `rebalance` the state shared with the rebalance callback.

mod batch;
mod commit;
mod dlq;
mod rebalance;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::FutureProducer;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::PipelineConfig;
use crate::sink::EventSink;
use crate::validate::validate;
use crate::PipelineError;

use batch::Batch;
use commit::Backoff;
use dlq::DLQ_DELIVERY_TIMEOUT;
use rebalance::{PipelineContext, Shared};

/// Counters and gauges, shared with whoever exports metrics.
#[derive(Debug)]
pub struct PipelineMetrics {
    /// Records received from Kafka.
    pub consumed: AtomicU64,
    /// Events the sink acknowledged (a replayed event counts again).
    pub written: AtomicU64,
    /// Records written to the dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Sink writes that returned an error.
    pub sink_failures: AtomicU64,
    /// True while partitions are paused because the sink is failing.
    pub paused: AtomicBool,
    /// Times the pipeline paused its partitions.
    pub pauses: AtomicU64,
    /// Offset commits requested after a durable batch.
    pub commits: AtomicU64,
    /// Events of revoked partitions dropped unwritten at a rebalance (the
    /// next owner reads them again from the committed offset).
    pub rebalance_dropped: AtomicU64,
    /// Events of revoked partitions written (and their offsets committed)
    /// by the revocation hook before the partitions were given away.
    pub rebalance_written: AtomicU64,
    /// Offset commits the group coordinator refused because a rebalance
    /// was under way (`REBALANCE_IN_PROGRESS`, `ILLEGAL_GENERATION`). What
    /// they covered is durable but uncommitted: read again by the next
    /// owner of the partition and absorbed by the store's idempotency.
    pub commits_refused: AtomicU64,
    /// Records of the events topic the group has not committed, summed over
    /// partitions; -1 until first measured (see `lag.rs`).
    pub consumer_lag: AtomicI64,
    /// Lag measurements that failed (the gauge keeps its last value).
    pub lag_probe_failures: AtomicU64,
}

impl Default for PipelineMetrics {
    fn default() -> Self {
        PipelineMetrics {
            consumed: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            sink_failures: AtomicU64::new(0),
            paused: AtomicBool::new(false),
            pauses: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            rebalance_dropped: AtomicU64::new(0),
            rebalance_written: AtomicU64::new(0),
            commits_refused: AtomicU64::new(0),
            consumer_lag: AtomicI64::new(-1),
            lag_probe_failures: AtomicU64::new(0),
        }
    }
}

impl PipelineMetrics {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

/// The shutdown signal went off while the loop was waiting.
struct Stopped;

pub(crate) struct Runner {
    cfg: PipelineConfig,
    shared: Arc<Shared>,
    consumer: StreamConsumer<PipelineContext>,
    dlq: FutureProducer,
    stop: watch::Receiver<bool>,
    backoff: Backoff,
    /// Paused because the sink failed; `retry_at` is the next attempt.
    paused: bool,
    retry_at: Option<Instant>,
}

pub(crate) fn client_config(cfg: &PipelineConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    for (k, v) in &cfg.librdkafka {
        c.set(k, v);
    }
    c.set("bootstrap.servers", &cfg.brokers);
    c
}

impl Runner {
    pub(crate) fn new(
        cfg: PipelineConfig,
        sink: Arc<dyn EventSink>,
        metrics: Arc<PipelineMetrics>,
        stop: watch::Receiver<bool>,
    ) -> Result<Self, PipelineError> {
        let shared = Arc::new(Shared {
            topic: cfg.topic.clone(),
            batch: Mutex::new(Batch::default()),
            sink,
            metrics,
            rebalance_flush_timeout: Duration::from_millis(cfg.rebalance_flush_timeout_ms),
            runtime: tokio::runtime::Handle::current(),
            assignment_changed: AtomicBool::new(false),
        });
        let mut cc = client_config(&cfg);
        cc.set("group.id", &cfg.group_id)
            // Store-before-commit: offsets are stored and committed only by
            // `Runner::flush` and the revoke callback, after the sink.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", &cfg.auto_offset_reset)
            .set("session.timeout.ms", cfg.session_timeout_ms.to_string())
            .set("fetch.wait.max.ms", cfg.fetch_wait_max_ms.to_string())
            .set("queued.min.messages", cfg.queued_min_messages.to_string())
            .set(
                "max.partition.fetch.bytes",
                cfg.max_partition_fetch_bytes.to_string(),
            );
        let consumer: StreamConsumer<PipelineContext> =
            cc.create_with_context(PipelineContext {
                shared: shared.clone(),
            })?;
        consumer.subscribe(&[cfg.topic.as_str()])?;
        let dlq: FutureProducer = client_config(&cfg)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set(
                "message.timeout.ms",
                DLQ_DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            .create()?;
        let backoff = Backoff::new(
            Duration::from_millis(cfg.retry_initial_ms),
            Duration::from_millis(cfg.retry_max_ms),
        );
        Ok(Runner {
            cfg,
            shared,
            consumer,
            dlq,
            stop,
            backoff,
            paused: false,
            retry_at: None,
        })
    }

    fn metrics(&self) -> &PipelineMetrics {
        &self.shared.metrics
    }

    pub(crate) async fn run(mut self) -> Result<(), PipelineError> {
        info!(topic = %self.cfg.topic, group = %self.cfg.group_id, "pipeline started");
        loop {
            // A fresh receiver per turn, checked before it is awaited: a
            // signal sent at any point is seen here or wakes the select.
            let mut stop = self.stop.clone();
            if *stop.borrow_and_update() {
                break;
            }
            if self.shared.assignment_changed.swap(false, Ordering::SeqCst) && self.paused {
                self.pause_assignment();
            }
            let now = Instant::now();
            let wake = if self.paused {
                self.retry_at
            } else {
                self.flush_deadline()
            };
            if wake.is_some_and(|w| w <= now) || (!self.paused && self.batch_full()) {
                self.flush().await;
                continue;
            }
            let sleep_for = wake
                .map(|w| w.saturating_duration_since(now))
                .unwrap_or(Duration::from_secs(3600));
            let step = tokio::select! {
                biased;
                _ = stop.changed() => None,
                msg = self.consumer.recv() => Some(msg),
                _ = tokio::time::sleep(sleep_for) => None,
            };
            if let Some(msg) = step {
                if self.take(msg).await.is_err() {
                    break;
                }
            }
        }
        self.finish().await;
        Ok(())
    }

    fn flush_deadline(&self) -> Option<Instant> {
        self.shared
            .batch()
            .started
            .map(|s| s + self.cfg.batch_max_wait())
    }

    fn batch_full(&self) -> bool {
        let b = self.shared.batch();
        b.events.len() >= self.cfg.batch_max_events || b.bytes >= self.cfg.batch_max_bytes
    }

    /// Shutdown: one last write and a synchronous commit; whatever is not
    /// durable stays uncommitted and is read again by the next consumer.
    async fn finish(&mut self) {
        let pending = !self.shared.batch().is_empty();
        if pending {
            self.flush().await;
        }
        // Nothing left for the Drop-time revoke callback to write.
        let left = std::mem::take(&mut *self.shared.batch());
        if !left.events.is_empty() {
            info!(
                events = left.events.len(),
                "shutdown: batch not durable, left uncommitted"
            );
        }
        match self.consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => warn!(error = %e, "final offset commit failed"),
        }
        info!("pipeline stopped");
    }

    /// Take one record: into the batch when valid, to the dead-letter
    /// topic otherwise. `Err` only when shutdown interrupted a dead-letter
    /// write (the record's offset is then not noted, so it is read again).
    async fn take(&self, msg: Result<BorrowedMessage<'_>, KafkaError>) -> Result<(), Stopped> {
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                // Transport errors are retried by librdkafka; log and go on.
                warn!(error = %e, "consumer error");
                return Ok(());
            }
        };
        PipelineMetrics::add(&self.metrics().consumed, 1);
        let (partition, offset) = (msg.partition(), msg.offset());
        match validate(msg.payload(), &self.cfg.limits()) {
            Ok(event) => self.shared.batch().push(event, partition, offset),
            Err(rejection) => {
                debug!(partition, offset, reason = %rejection.reason, "record refused");
                let headers = msg.headers().map(|h| {
                    h.iter()
                        .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                        .collect::<Vec<_>>()
                });
                self.dead_letter(
                    msg.key(),
                    msg.payload(),
                    headers.as_deref().unwrap_or(&[]),
                    partition,
                    offset,
                    &rejection,
                )
                .await?;
                // The dead-letter write is acknowledged: this record is
                // durable, its offset may be committed with the batch.
                self.shared.batch().note(partition, offset);
            }
        }
        Ok(())
    }

    async fn sleep_or_stop(&self, d: Duration) -> Result<(), Stopped> {
        let mut stop = self.stop.clone();
        if *stop.borrow_and_update() {
            return Err(Stopped);
        }
        tokio::select! {
            _ = stop.changed() => Err(Stopped),
            _ = tokio::time::sleep(d) => Ok(()),
        }
    }
}
