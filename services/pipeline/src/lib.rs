//! The regwatch pipeline: a Kafka consumer group that turns the event topic
//! into durable, validated events.
//!
//! For every record of [`regwatch_schemas::EVENTS_TOPIC`] it checks the
//! contract (size, nesting depth, envelope, `schema_version`, event type),
//! sends a refused record to [`regwatch_schemas::DLQ_TOPIC`] with the reason
//! and its original position, batches the valid ones (by count, bytes and
//! age) and writes each batch through an [`EventSink`]: in both shapes,
//! [`store_detect::StoreAndDetect`], which stores the events and then runs
//! the detectors on them.
//!
//! One parse per event: validation turns a record into a
//! [`regwatch_schemas::WireEvent`] (the envelope with its text), and the
//! store and the detectors use that; where a record was read (partition,
//! offset) stays with the consumer.
//!
//! Delivery invariants (kept in `consumer/`, next to the code):
//! - **Store before commit.** An offset is stored and committed only after
//!   every record below it is durable: written by the sink, or
//!   acknowledged by the dead-letter topic. Auto-commit and automatic
//!   offset storage are off and cannot be turned back on by configuration.
//! - **Replay is harmless.** A crash between a sink write and its commit
//!   replays the batch; sinks are idempotent on `event_id`, so nothing is
//!   duplicated, and nothing is lost because nothing uncommitted is skipped.
//! - **A bad record never stops the pipeline.** It goes to the dead-letter
//!   topic (value unchanged, headers `dlq_reason`, `dlq_detail`,
//!   `dlq_topic`, `dlq_partition`, `dlq_offset`), then consumption goes on.
//! - **A failing sink holds bounded memory.** On a retryable error the
//!   assigned partitions are paused, the consumer keeps polling (so it stays
//!   in the group) and the same batch is retried with exponential backoff;
//!   partitions resume once it is written.
//! - **A rebalance commits what is durable first.** Before partitions are
//!   revoked the in-flight batch of those partitions is written and its
//!   offsets committed synchronously; if that cannot be done in time, the
//!   batch is dropped uncommitted and the next owner reads it again.
//!   `tests/rebalance.rs` measures the handover on a real broker (tansu):
//!   nothing is delivered again to the next owner. A coordinator that
//!   refuses commits while rebalancing (librdkafka's mock cluster) makes
//!   the next owner read written batches again; the store's idempotency on
//!   `event_id` keeps that exactly once, and `commits_refused` counts it.
//!
//! Per-client order: the relay keys records by `client_id`, so one
//! client's events share a partition; the pipeline reads a partition in
//! order and hands events to the sink in that order.
//!
//! Layout:
//! - [`config`]: [`PipelineConfig`], documented and validated.
//! - [`validate`]: the pure contract check and [`RejectReason`]s.
//! - [`sink`]: the [`EventSink`] trait the batches are written through.
//! - [`store_detect`]: [`store_detect::StoreAndDetect`], the sink: event
//!   store, then detectors, then alerts (stored, and published by
//!   [`alerts`] when configured); the detectors' rebuild at start.
//! - [`embedded`]: the embedded shape's source, the outbox read by cursor
//!   (`regwatch-outbox`).
//! - `consumer`: the loop (`mod.rs`), the batch, write-and-commit with
//!   pause-retry, the dead-letter writer and the rebalance hook.
//! - `lag`: the consumer-lag probe (its own connection, not a group member).

pub mod alerts;
pub mod config;
mod consumer;
pub mod embedded;
mod lag;
pub mod sink;
pub mod store_detect;
pub mod validate;

use std::future::Future;
use std::sync::Arc;

pub use config::PipelineConfig;
pub use consumer::PipelineMetrics;
pub use sink::{EventSink, SinkError};
pub use validate::{validate, validate_owned, Limits, RejectReason, Rejection};

/// Why the pipeline could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("invalid configuration: {key}: {reason}")]
    Config { key: String, reason: String },
    #[error("kafka client: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
}

/// A configured pipeline, not yet running. Build it to get the metrics
/// handle before [`Pipeline::run`] takes it.
pub struct Pipeline {
    cfg: PipelineConfig,
    sink: Arc<dyn EventSink>,
    metrics: Arc<PipelineMetrics>,
}

impl Pipeline {
    /// Validate the configuration; connects nothing yet.
    pub fn new(cfg: PipelineConfig, sink: Arc<dyn EventSink>) -> Result<Self, PipelineError> {
        cfg.validate()?;
        Ok(Pipeline {
            cfg,
            sink,
            metrics: Arc::new(PipelineMetrics::default()),
        })
    }

    pub fn metrics(&self) -> Arc<PipelineMetrics> {
        self.metrics.clone()
    }

    /// Consume until `shutdown` completes, then write what is pending,
    /// commit synchronously and leave the group. Must run on a
    /// multi-thread tokio runtime for the rebalance hook to write the
    /// in-flight batch (on another runtime it leaves it to the next owner).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), PipelineError> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let signal = tokio::spawn(async move {
            shutdown.await;
            let _ = tx.send(true);
        });
        let lag = (self.cfg.lag_interval_ms > 0)
            .then(|| tokio::spawn(lag::run(self.cfg.clone(), self.metrics.clone(), rx.clone())));
        let result = match consumer::Runner::new(self.cfg, self.sink, self.metrics, rx) {
            Ok(runner) => runner.run().await,
            Err(e) => Err(e),
        };
        signal.abort();
        if let Some(lag) = lag {
            lag.abort();
        }
        result
    }
}

/// Build and run a pipeline: [`Pipeline::new`] then [`Pipeline::run`].
pub async fn run(
    cfg: PipelineConfig,
    sink: Arc<dyn EventSink>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), PipelineError> {
    Pipeline::new(cfg, sink)?.run(shutdown).await
}
