//! The consumer loop: read, validate, dead-letter or batch, write, commit.
//!
//! One task owns the [`StreamConsumer`]. Between two `recv` calls it either
//! takes one record into the batch, or writes the batch to the sink and
//! commits. librdkafka runs the rebalance callback inside `recv`, so a
//! callback never sees a sink write in progress: at that moment the batch
//! is either entirely in [`Shared::batch`] (not written) or written and its
//! offsets stored.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::config::PipelineConfig;
use crate::sink::EventSink;
use crate::validate::{validate, RejectReason, Rejection};
use crate::PipelineError;
use regwatch_schemas::WireEvent;

/// Largest value written to the dead-letter topic; a longer original is
/// truncated (and says so in a header) so the dead-letter write itself
/// cannot fail on the broker's message size limit.
const DLQ_MAX_VALUE_BYTES: usize = 900 * 1024;
/// Delivery timeout of one dead-letter write; retried after it.
const DLQ_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

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

/// The in-flight batch: everything read but not yet committed.
#[derive(Debug, Default)]
struct Batch {
    /// The valid events, in the order read: what the sink writes.
    events: Vec<WireEvent>,
    /// `(partition, offset)` of `events[i]`, for dead-lettering an event
    /// the sink refuses and for taking a revoked partition's events out.
    read_at: Vec<(i32, i64)>,
    /// Sum of the events' JSON lengths, for the byte bound.
    bytes: usize,
    /// Per partition, the offset to commit once this batch is durable: one
    /// past the last record taken from it (valid or dead-lettered). Records
    /// arrive in offset order per partition, so everything below it is in
    /// this batch or already durable.
    next_offsets: BTreeMap<i32, i64>,
    /// When the first record of this batch arrived.
    started: Option<Instant>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.events.is_empty() && self.next_offsets.is_empty()
    }

    fn note(&mut self, partition: i32, offset: i64) {
        self.next_offsets.insert(partition, offset + 1);
        self.started.get_or_insert_with(Instant::now);
    }

    /// A valid event read at `(partition, offset)`.
    fn push(&mut self, event: WireEvent, partition: i32, offset: i64) {
        self.bytes += event.json().len();
        self.events.push(event);
        self.read_at.push((partition, offset));
        self.note(partition, offset);
    }

    /// Put `newer` (read while this batch was out) after this batch.
    fn append(&mut self, newer: Batch) {
        self.events.extend(newer.events);
        self.read_at.extend(newer.read_at);
        self.bytes += newer.bytes;
        self.next_offsets.extend(newer.next_offsets);
    }

    /// Remove and return what belongs to `partitions`.
    fn take_partitions(&mut self, partitions: &BTreeSet<i32>) -> Batch {
        let mut out = Batch::default();
        let events = std::mem::take(&mut self.events);
        let read_at = std::mem::take(&mut self.read_at);
        for (event, at) in events.into_iter().zip(read_at) {
            let keep = if partitions.contains(&at.0) {
                &mut out
            } else {
                &mut *self
            };
            keep.events.push(event);
            keep.read_at.push(at);
        }
        out.bytes = out.events.iter().map(|e| e.json().len()).sum();
        self.bytes = self.bytes.saturating_sub(out.bytes);
        for p in partitions {
            if let Some(o) = self.next_offsets.remove(p) {
                out.next_offsets.insert(*p, o);
            }
        }
        if self.is_empty() {
            self.started = None;
        }
        out
    }
}

/// State shared between the loop and the rebalance callback.
struct Shared {
    topic: String,
    batch: Mutex<Batch>,
    sink: Arc<dyn EventSink>,
    metrics: Arc<PipelineMetrics>,
    rebalance_flush_timeout: Duration,
    runtime: tokio::runtime::Handle,
    /// Set after every rebalance so the loop re-pauses a new assignment
    /// while the sink is failing.
    assignment_changed: AtomicBool,
}

impl Shared {
    fn batch(&self) -> MutexGuard<'_, Batch> {
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
    fn on_revoke(&self, consumer: &BaseConsumer<PipelineContext>, tpl: &TopicPartitionList) {
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
    fn write_blocking(&self, events: &[WireEvent]) -> bool {
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
    shared: Arc<Shared>,
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

fn store_offsets<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    next: &BTreeMap<i32, i64>,
) -> Result<(), KafkaError> {
    if next.is_empty() {
        return Ok(());
    }
    consumer.store_offsets(&offsets_tpl(topic, next)?)
}

fn offsets_tpl(topic: &str, next: &BTreeMap<i32, i64>) -> Result<TopicPartitionList, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in next {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))?;
    }
    Ok(tpl)
}

/// The coordinator refused a commit because the group is rebalancing (or
/// this member's generation is over).
fn refused_by_rebalance(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::RebalanceInProgress
            | RDKafkaErrorCode::IllegalGeneration
            | RDKafkaErrorCode::UnknownMemberId
    )
}

/// Commit the stored offsets; a refusal is counted, anything else logged.
fn commit_stored<C: ConsumerContext>(
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
struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }
    fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
    fn reset(&mut self) {
        self.next = self.initial;
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

    /// Write one record to the dead-letter topic, retrying until the broker
    /// acknowledges it. The value is the original bytes; headers carry the
    /// reason and the original position.
    async fn dead_letter(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        original_headers: &[(String, Option<Vec<u8>>)],
        partition: i32,
        offset: i64,
        rejection: &Rejection,
    ) -> Result<(), Stopped> {
        let value = value.unwrap_or(&[]);
        let truncated = value.len() > DLQ_MAX_VALUE_BYTES;
        let body = &value[..value.len().min(DLQ_MAX_VALUE_BYTES)];
        let partition_s = partition.to_string();
        let offset_s = offset.to_string();
        let original_len = value.len().to_string();
        let mut backoff = Backoff::new(
            Duration::from_millis(self.cfg.retry_initial_ms),
            Duration::from_millis(self.cfg.retry_max_ms),
        );
        loop {
            let mut headers = OwnedHeaders::new_with_capacity(original_headers.len() + 7);
            for (k, v) in original_headers {
                headers = headers.insert(Header {
                    key: k,
                    value: v.as_deref(),
                });
            }
            let fields: [(&str, &str); 5] = [
                ("dlq_reason", rejection.reason.as_str()),
                ("dlq_detail", &rejection.detail),
                ("dlq_topic", &self.cfg.topic),
                ("dlq_partition", &partition_s),
                ("dlq_offset", &offset_s),
            ];
            for (k, v) in fields {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            if truncated {
                headers = headers.insert(Header {
                    key: "dlq_truncated_from",
                    value: Some(&original_len),
                });
            }
            let mut rec = FutureRecord::to(&self.cfg.dlq_topic)
                .payload(body)
                .headers(headers);
            if let Some(k) = key {
                rec = rec.key(k);
            }
            match self.dlq.send(rec, Timeout::Never).await {
                Ok(_) => {
                    PipelineMetrics::add(&self.metrics().dead_lettered, 1);
                    return Ok(());
                }
                Err((e, _)) => {
                    let delay = backoff.next_delay();
                    warn!(error = %e, partition, offset, retry_in_ms = delay.as_millis() as u64,
                        "dead-letter write failed");
                    self.sleep_or_stop(delay).await?;
                }
            }
        }
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

    /// Write the batch, then commit. Invariant (store-before-commit):
    /// offsets are stored only after the sink (or the dead-letter topic)
    /// acknowledged every record below them.
    async fn flush(&mut self) {
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
    fn pause_assignment(&self) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let got: Vec<u64> = (0..4).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(got, vec![100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn take_partitions_splits_events_and_offsets() {
        let event = |client: &str| {
            let mut e = regwatch_schemas::Envelope::new(
                "https://issuer.test",
                regwatch_schemas::Actor::admin("ops"),
                regwatch_schemas::EventPayload::ClientDeleted(regwatch_schemas::ClientDeleted {
                    reason: "admin".into(),
                    tokens_revoked: 0,
                }),
                chrono::Utc::now(),
            );
            e.client_id = Some(client.into());
            WireEvent::from_envelope(e).expect("json")
        };
        let mut b = Batch::default();
        b.push(event("p0-a"), 0, 3);
        b.note(0, 4);
        b.push(event("p1-a"), 1, 8);
        b.push(event("p0-b"), 0, 4);
        b.note(1, 9);
        b.note(2, 1);
        let bytes = b.bytes;
        let taken = b.take_partitions(&[1, 2].into_iter().collect());
        let clients = |b: &Batch| -> Vec<String> {
            b.events
                .iter()
                .map(|e| e.envelope().client_id.clone().unwrap_or_default())
                .collect()
        };
        assert_eq!(clients(&taken), vec!["p1-a"]);
        assert_eq!(taken.read_at, vec![(1, 8)]);
        assert_eq!(clients(&b), vec!["p0-a", "p0-b"]);
        assert_eq!(b.read_at, vec![(0, 3), (0, 4)]);
        assert_eq!(taken.bytes + b.bytes, bytes);
        assert_eq!(taken.bytes, taken.events[0].json().len());
        assert_eq!(
            taken.next_offsets.into_iter().collect::<Vec<_>>(),
            vec![(1, 10), (2, 2)]
        );
        assert_eq!(b.next_offsets.into_iter().collect::<Vec<_>>(), vec![(0, 5)]);
    }
}
