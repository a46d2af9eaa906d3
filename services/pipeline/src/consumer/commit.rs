//! Writing the batch and committing its offsets: store-before-commit, the
//! commit modes, and the pause-and-retry (with backoff) while the sink fails.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::validate::{RejectReason, Rejection};

use super::{PipelineMetrics, Runner};

pub(super) fn store_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    next: &BTreeMap<i32, i64>,
) -> Result<(), KafkaError> {
    if next.is_empty() {
        return Ok(());
    }
    consumer.store_offsets(&offsets_tpl(topic, next)?)
}

pub(super) fn offsets_tpl(
    topic: &str,
    next: &BTreeMap<i32, i64>,
) -> Result<TopicPartitionList, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in next {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))?;
    }
    Ok(tpl)
}

/// The coordinator refused a commit because the group is rebalancing (or
/// this member's generation is over).
pub(super) fn refused_by_rebalance(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::RebalanceInProgress
            | RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::UnknownMemberId
    )
}

/// Commit the stored offsets; a refusal is counted, anything else logged.
pub(super) fn commit_stored<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    mode: CommitMode,
    metrics: &PipelineMetrics,
) {
    match consumer.commit_consumer_state(mode) {
        Ok(()) => {}
        // Nothing stored since the last commit.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(KafkaError::ConsumerCommit(c)) if refused_by_rebalance(c) => {
            PipelineMetrics::add(&metrics.commits_refused, 1);
            warn!(error = %c, "offset commit refused: the group is rebalancing");
        }
        Err(e) => warn!(error = %e, "offset commit failed"),
    }
}

/// Exponential backoff without jitter (one consumer per process; the
/// sink's own clients spread their retries).
#[derive(Debug)]
pub(super) struct Backoff {
    pub(super) initial: Duration,
    pub(super) max: Duration,
    pub(super) next: Duration,
}

impl Backoff {
    pub(super) fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }
    pub(super) fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
    pub(super) fn reset(&mut self) {
        self.next = self.initial;
    }
}

impl Runner {
    /// Write the batch, then commit. Invariant (store-before-commit):
    /// offsets are stored only after the sink (or the dead-letter topic)
    /// acknowledged every record below them.
    pub(super) async fn flush(&mut self) {
        let mut batch = std::mem::take(&mut *self.shared.batch());
        // From here to the end of this function `recv` is not polled, so
        // the rebalance callback cannot run and `batch` is ours alone.
        if !batch.events.is_empty() {
            match self.shared.sink.write(&batch.events).await {
                Ok(()) => {
                    PipelineMetrics::add(&self.metrics().written, batch.events.len() as u64);
                }
                Err(e) if e.is_retryable() => {
                    PipelineMetrics::add(&self.metrics().sink_failures, 1);
                    let delay = self.backoff.next_delay();
                    warn!(error = %e, events = batch.events.len(),
                        retry_in_ms = delay.as_millis() as u64, "sink write failed; partitions paused");
                    // Put it back: it is retried as a whole, with whatever
                    // arrives meanwhile.
                    let mut shared = self.shared.batch();
                    let newer = std::mem::take(&mut *shared);
                    batch.append(newer);
                    *shared = batch;
                    drop(shared);
                    if !self.paused {
                        self.paused = true;
                        self.metrics().paused.store(true, Ordering::SeqCst);
                        PipelineMetrics::add(&self.metrics().pauses, 1);
                        self.pause_assignment();
                    }
                    self.retry_at = Some(Instant::now() + delay);
                    return;
                }
                Err(e) => {
                    PipelineMetrics::add(&self.metrics().sink_failures, 1);
                    warn!(error = %e, events = batch.events.len(),
                        "sink refused the batch; dead-lettering it");
                    let rejection = Rejection {
                        reason: RejectReason::SinkRejected,
                        detail: e.to_string(),
                    };
                    let events = std::mem::take(&mut batch.events);
                    let read_at = std::mem::take(&mut batch.read_at);
                    for (i, (ev, &(partition, offset))) in events.iter().zip(&read_at).enumerate() {
                        let key = ev.envelope().client_id.as_deref().map(str::as_bytes);
                        let r = self
                            .dead_letter(
                                key,
                                Some(ev.json().as_bytes()),
                                &[],
                                partition,
                                offset,
                                &rejection,
                            )
                            .await;
                        if r.is_err() {
                            // Shutdown: keep the rest for `finish`, which
                            // will not commit them either.
                            batch.events = events[i..].to_vec();
                            batch.read_at = read_at[i..].to_vec();
                            *self.shared.batch() = batch;
                            return;
                        }
                    }
                }
            }
        }
        match offsets_tpl(&self.cfg.topic, &batch.next_offsets) {
            Ok(tpl) if tpl.count() > 0 => {
                if let Err(e) = self.consumer.store_offsets(&tpl) {
                    warn!(error = %e, "storing offsets failed");
                }
                match self.consumer.commit_consumer_state(CommitMode::Async) {
                    Ok(()) | Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
                    Err(e) => warn!(error = %e, "offset commit failed"),
                }
                PipelineMetrics::add(&self.metrics().commits, 1);
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "building the offset list failed"),
        }
        self.backoff.reset();
        self.retry_at = None;
        if self.paused {
            self.paused = false;
            match self.consumer.assignment() {
                Ok(tpl) => {
                    if let Err(e) = self.consumer.resume(&tpl) {
                        warn!(error = %e, "resume failed");
                    }
                }
                Err(e) => warn!(error = %e, "reading the assignment failed"),
            }
            self.metrics().paused.store(false, Ordering::SeqCst);
            info!("sink recovered; partitions resumed");
        }
    }

    /// Stop fetching on every assigned partition. The consumer keeps
    /// polling, so it stays in the group; memory stays at the batch.
    pub(super) fn pause_assignment(&self) {
        match self.consumer.assignment() {
            Ok(tpl) => {
                if let Err(e) = self.consumer.pause(&tpl) {
                    warn!(error = %e, "pause failed");
                }
            }
            Err(e) => warn!(error = %e, "reading the assignment failed"),
        }
    }
}
