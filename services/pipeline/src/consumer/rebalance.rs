//! The rebalance hook: the state the loop shares with librdkafka's
//! callback, and what a revoke does with the batch of the partitions it takes.

use std::collections::BTreeSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::{ClientContext, TopicPartitionList};
use tracing::{info, warn};

use crate::sink::EventSink;
use regwatch_schemas::WireEvent;

use super::batch::Batch;
use super::commit::{commit_stored, refused_by_rebalance, store_offsets};
use super::PipelineMetrics;

/// State shared between the loop and the rebalance callback.
pub(super) struct Shared {
    pub(super) topic: String,
    pub(super) batch: Mutex<Batch>,
    pub(super) sink: Arc<dyn EventSink>,
    pub(super) metrics: Arc<PipelineMetrics>,
    pub(super) rebalance_flush_timeout: Duration,
    pub(super) runtime: tokio::runtime::Handle,
    /// Set after every rebalance so the loop re-pauses a new assignment
    /// while the sink is failing.
    pub(super) assignment_changed: AtomicBool,
}

impl Shared {
    pub(super) fn batch(&self) -> MutexGuard<'_, Batch> {
        // A poisoned lock only means a panic elsewhere; the batch is still
        // consistent (every mutation is a single call).
        self.batch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Revocation: write what was read from the revoked partitions, store
    /// its offsets and commit synchronously, before librdkafka gives the
    /// partitions away.
    ///
    /// Invariant: an offset is stored only for records that are durable.
    /// When the write cannot be done in time the records are dropped from
    /// memory without storing their offsets; the next owner starts at the
    /// committed offset and reads them again, so nothing is lost.
    pub(super) fn on_revoke(
        &self,
        consumer: &BaseConsumer<PipelineContext>,
        tpl: &TopicPartitionList,
    ) {
        let partitions: BTreeSet<i32> = tpl
            .elements()
            .iter()
            .filter(|e| e.topic() == self.topic)
            .map(|e| e.partition())
            .collect();
        let taken = self.batch().take_partitions(&partitions);
        if !taken.is_empty() {
            let durable = taken.events.is_empty() || self.write_blocking(&taken.events);
            if durable {
                PipelineMetrics::add(&self.metrics.written, taken.events.len() as u64);
                PipelineMetrics::add(&self.metrics.rebalance_written, taken.events.len() as u64);
                if let Err(e) = store_offsets(consumer, &self.topic, &taken.next_offsets) {
                    warn!(error = %e, "storing offsets at revocation failed");
                }
            } else {
                PipelineMetrics::add(&self.metrics.rebalance_dropped, taken.events.len() as u64);
                info!(
                    events = taken.events.len(),
                    "revoked partitions: in-flight events not written, left to the next owner"
                );
            }
        }
        commit_stored(consumer, CommitMode::Sync, &self.metrics);
    }

    /// Run one sink write from the (synchronous) rebalance callback.
    pub(super) fn write_blocking(&self, events: &[WireEvent]) -> bool {
        if self.metrics.paused.load(Ordering::SeqCst) {
            // The sink is failing: do not hold the group's rebalance on it.
            return false;
        }
        let fut = tokio::time::timeout(self.rebalance_flush_timeout, self.sink.write(events));
        let handle = &self.runtime;
        // The callback runs inside `recv` on a runtime thread (or in the
        // consumer's Drop). Blocking there needs `block_in_place`, which
        // only a multi-thread runtime offers; anything else (or a panic
        // from the runtime) falls back to "not written", which is safe.
        let res =
            std::panic::catch_unwind(AssertUnwindSafe(
                || match tokio::runtime::Handle::try_current() {
                    Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                        tokio::task::block_in_place(|| handle.block_on(fut))
                            .ok()
                            .and_then(|r| r.ok())
                            .is_some()
                    }
                    Ok(_) => false,
                    Err(_) => handle.block_on(fut).ok().and_then(|r| r.ok()).is_some(),
                },
            ));
        res.unwrap_or(false)
    }
}

/// The consumer's librdkafka context: hooks the rebalance.
pub(crate) struct PipelineContext {
    pub(super) shared: Arc<Shared>,
}

impl ClientContext for PipelineContext {}

impl ConsumerContext for PipelineContext {
    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        let refused = refused_by_rebalance;
        let partition_refused = offsets
            .elements()
            .iter()
            // rdkafka reports a partition's error as `OffsetFetch`
            // whatever the request was.
            .any(|e| matches!(e.error(), Err(KafkaError::OffsetFetch(c)) if refused(c)));
        match result {
            Err(KafkaError::ConsumerCommit(c)) if refused(c) => {
                PipelineMetrics::add(&self.shared.metrics.commits_refused, 1);
                warn!(error = %c, "offset commit refused: the group is rebalancing");
            }
            _ if partition_refused => {
                PipelineMetrics::add(&self.shared.metrics.commits_refused, 1);
                warn!("offset commit refused for some partitions: the group is rebalancing");
            }
            _ => {}
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            self.shared.on_revoke(consumer, tpl);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let partitions = |tpl: &TopicPartitionList| {
            tpl.elements()
                .iter()
                .map(|e| e.partition())
                .collect::<Vec<_>>()
        };
        match rebalance {
            Rebalance::Assign(tpl) => info!(partitions = ?partitions(tpl), "partitions assigned"),
            Rebalance::Revoke(tpl) => info!(partitions = ?partitions(tpl), "partitions revoked"),
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
        self.shared.assignment_changed.store(true, Ordering::SeqCst);
    }
}
