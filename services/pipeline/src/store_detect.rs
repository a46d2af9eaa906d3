//! [`StoreAndDetect`], the sink both shapes write through: it stores each
//! batch in the event store (idempotent on `event_id`), then feeds the same
//! events, in order, to the detection engine and upserts the alerts it
//! raises. The store and the detectors read the envelopes the source
//! parsed; nothing here parses an event again. Kafka consumer and
//! embedded outbox reader both write through it, so the two shapes share
//! one code path after the source.
//!
//! Order matters for the invariants: events are durable before detection
//! runs, and an alert is stored before `write` returns, so the caller
//! commits its position only after both. Alert ids are derived from the
//! dedup key and the triggering event, so upserts are idempotent.
//!
//! A replay (crash, rebalance) hands the consumer events that are already
//! stored. After a rebuild the sink skips the ones the rebuild observed
//! (the uncommitted tail of a crashed process: counting them twice would
//! double a rate and could open a false burst alert); a process that never
//! observed them, such as the next owner of a partition, observes them once.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use regwatch_detect::Detector;
use regwatch_schemas::{Alert, WireEvent};
use regwatch_store::EventStore;

use crate::sink::{EventSink, SinkError};

/// Something that publishes alerts further (Kafka `regwatch.alerts.v1`,
/// see [`crate::alerts`]); optional.
#[async_trait]
pub trait AlertPublisher: Send + Sync {
    async fn publish(&self, alerts: &[Alert]) -> Result<(), SinkError>;
}

/// Store, then detect, then publish: see the module docs.
pub struct StoreAndDetect {
    store: Arc<dyn EventStore>,
    detector: Mutex<Detector>,
    /// The ids the rebuild observed last, for [`EventSink::write`] to skip
    /// when the consumer reads them again.
    rebuilt: Mutex<RebuiltTail>,
    replays_skipped: AtomicU64,
    publisher: Option<Arc<dyn AlertPublisher>>,
}

/// How many of the rebuild's latest event ids are remembered (about 5 MB).
/// The uncommitted tail of a crashed process is its in-flight batches, far
/// fewer; a process lagging by more than this may see part of its tail
/// observed twice, which can only raise a rate.
const REBUILT_TAIL_IDS: usize = 100_000;

/// A bounded set of event ids, oldest evicted first.
#[derive(Default)]
struct RebuiltTail {
    ids: HashSet<uuid::Uuid>,
    order: VecDeque<uuid::Uuid>,
}

impl RebuiltTail {
    fn push(&mut self, id: uuid::Uuid) {
        if self.ids.insert(id) {
            self.order.push_back(id);
        }
        while self.order.len() > REBUILT_TAIL_IDS {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    /// Whether `id` was observed by the rebuild; forgets it (a second replay
    /// of the same event is then judged like any other).
    fn take(&mut self, id: &uuid::Uuid) -> bool {
        if !self.ids.remove(id) {
            return false;
        }
        if self.ids.is_empty() {
            self.order = VecDeque::new();
        }
        true
    }
}

fn sink_error(e: regwatch_store::StoreError) -> SinkError {
    if e.is_retryable() {
        SinkError::Unavailable(e.to_string())
    } else {
        SinkError::Rejected(e.to_string())
    }
}

impl StoreAndDetect {
    pub fn new(
        store: Arc<dyn EventStore>,
        detector: Detector,
        publisher: Option<Arc<dyn AlertPublisher>>,
    ) -> Self {
        StoreAndDetect {
            store,
            detector: Mutex::new(detector),
            rebuilt: Mutex::new(RebuiltTail::default()),
            replays_skipped: AtomicU64::new(0),
            publisher,
        }
    }

    /// Rebuild the detectors' state from the store: every event with
    /// `occurred_at` in `[since, until)`, in stored order, observed as if it
    /// had just arrived; the alerts this raises were raised (and stored)
    /// the first time and are dropped. Returns the number of events read.
    ///
    /// The scaled pipeline calls it once at start, before it consumes, so a
    /// restarted process remembers the clients, names, hosts and rates of
    /// the window. The latest [`REBUILT_TAIL_IDS`] ids it observed are kept:
    /// when the consumer reads them again (the uncommitted tail after a
    /// crash) they are stored already and not observed a second time.
    pub async fn rebuild(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, regwatch_store::StoreError> {
        regwatch_store::scan_events(self.store.as_ref(), since, until, |events| {
            let mut d = self.detector.lock().unwrap_or_else(|p| p.into_inner());
            let mut tail = self.rebuilt.lock().unwrap_or_else(|p| p.into_inner());
            for e in events {
                if let Some(o) = regwatch_detect::envelope::observation(e) {
                    let _ = d.observe(&o);
                    tail.push(e.event_id);
                }
            }
            Ok(())
        })
        .await
    }

    /// Events the consumer delivered again that the rebuild had observed,
    /// so they were stored but not observed twice.
    pub fn replays_skipped(&self) -> u64 {
        self.replays_skipped.load(Ordering::Relaxed)
    }

    /// The detectors' state sizes (for metrics).
    pub fn detector_stats(&self) -> regwatch_detect::StateStats {
        self.detector
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stats()
    }

    /// Run the time-driven detectors (`dormant_client`) at `now`.
    pub async fn sweep(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<Alert>, SinkError> {
        let alerts = self
            .detector
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sweep(now);
        self.deliver(&alerts).await?;
        Ok(alerts)
    }

    async fn deliver(&self, alerts: &[Alert]) -> Result<(), SinkError> {
        // One write for the lot (the same result as one upsert each).
        if !alerts.is_empty() {
            self.store.upsert_alerts(alerts).await.map_err(sink_error)?;
        }
        if let (Some(p), false) = (&self.publisher, alerts.is_empty()) {
            p.publish(alerts).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl EventSink for StoreAndDetect {
    async fn write(&self, batch: &[WireEvent]) -> Result<(), SinkError> {
        self.store.insert_events(batch).await.map_err(sink_error)?;
        let alerts: Vec<Alert> = {
            let mut d = self.detector.lock().unwrap_or_else(|p| p.into_inner());
            let mut tail = self.rebuilt.lock().unwrap_or_else(|p| p.into_inner());
            let mut skipped = 0;
            let alerts = batch
                .iter()
                .filter(|e| {
                    let seen = tail.take(&e.envelope().event_id);
                    skipped += u64::from(seen);
                    !seen
                })
                .filter_map(|e| regwatch_detect::envelope::observation(e.envelope()))
                .flat_map(|o| d.observe(&o))
                .collect();
            if skipped > 0 {
                self.replays_skipped.fetch_add(skipped, Ordering::Relaxed);
                tracing::info!(
                    skipped,
                    "replayed events the rebuild had observed: stored, not observed twice"
                );
            }
            alerts
        };
        for a in &alerts {
            tracing::info!(kind = a.kind.as_str(), client_id = %a.client_id, score = a.score, summary = %a.summary, "alert");
        }
        self.deliver(&alerts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilt_tail_is_bounded_and_forgets_what_it_matched() {
        let mut tail = RebuiltTail::default();
        let ids: Vec<uuid::Uuid> = (0..REBUILT_TAIL_IDS + 10)
            .map(|_| uuid::Uuid::now_v7())
            .collect();
        for id in &ids {
            tail.push(*id);
        }
        tail.push(ids[REBUILT_TAIL_IDS + 9]);
        assert_eq!(tail.ids.len(), REBUILT_TAIL_IDS);
        assert_eq!(tail.order.len(), REBUILT_TAIL_IDS);
        assert!(!tail.take(&ids[9]), "the oldest ten are evicted");
        assert!(tail.take(&ids[10]));
        assert!(!tail.take(&ids[10]), "a match is forgotten");
        assert!(tail.take(&ids[REBUILT_TAIL_IDS + 9]));
    }
}
