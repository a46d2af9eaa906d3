//! The store-and-detect sink: writes each batch to the event store
//! (idempotent on `event_id`), then feeds the same events, in order, to the
//! detection engine and upserts the alerts it raises. Kafka consumer and
//! embedded outbox reader both write through it, so the two shapes share
//! one code path after the source.
//!
//! Order matters for the invariants: events are durable before detection
//! runs, and an alert is stored before `write` returns, so the caller
//! commits its position only after both. A replay (crash, rebalance)
//! re-observes events the detector may have seen; alert ids are derived
//! from the dedup key and the triggering event, so the upserts are
//! idempotent.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use regwatch_detect::Detector;
use regwatch_schemas::Alert;
use regwatch_store::{EventRef, EventStore, InsertOutcome};

use crate::sink::{EventSink, SinkError, SinkEvent};

/// Something that publishes alerts further (Kafka `regwatch.alerts.v1`,
/// see [`crate::alerts`]); optional.
#[async_trait]
pub trait AlertPublisher: Send + Sync {
    async fn publish(&self, alerts: &[Alert]) -> Result<(), SinkError>;
}

pub struct StoreSink {
    store: Arc<dyn EventStore>,
    detector: Mutex<Detector>,
    publisher: Option<Arc<dyn AlertPublisher>>,
}

/// Writes `batch` to `store` without copying it: the store borrows each
/// envelope and raw record. The raw bytes are the record the envelope was
/// parsed from, so they are UTF-8 and borrowed as they are; only a record
/// that is not (which the parse would have refused) is copied, lossily, as
/// before.
pub async fn store_batch(
    store: &dyn EventStore,
    batch: &[SinkEvent],
) -> Result<InsertOutcome, regwatch_store::StoreError> {
    let raws: Vec<Cow<'_, str>> = batch
        .iter()
        .map(|e| match std::str::from_utf8(&e.raw) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(&e.raw),
        })
        .collect();
    let refs: Vec<EventRef<'_>> = batch
        .iter()
        .zip(&raws)
        .map(|(e, raw)| EventRef {
            envelope: &e.envelope,
            raw,
        })
        .collect();
    store.insert_event_refs(&refs).await
}

fn sink_error(e: regwatch_store::StoreError) -> SinkError {
    if e.is_retryable() {
        SinkError::Unavailable(e.to_string())
    } else {
        SinkError::Rejected(e.to_string())
    }
}

impl StoreSink {
    pub fn new(
        store: Arc<dyn EventStore>,
        detector: Detector,
        publisher: Option<Arc<dyn AlertPublisher>>,
    ) -> Self {
        StoreSink {
            store,
            detector: Mutex::new(detector),
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
    /// the window. Events the consumer then reads again (the uncommitted
    /// tail after a crash) are observed twice; that can only raise a rate,
    /// never hide one.
    pub async fn rebuild(
        &self,
        since: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, regwatch_store::StoreError> {
        regwatch_store::scan_events(self.store.as_ref(), since, until, |events| {
            let mut d = self.detector.lock().unwrap_or_else(|p| p.into_inner());
            for e in events {
                if let Some(o) = regwatch_detect::envelope::observation(e) {
                    let _ = d.observe(&o);
                }
            }
            Ok(())
        })
        .await
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
impl EventSink for StoreSink {
    async fn write(&self, batch: &[SinkEvent]) -> Result<(), SinkError> {
        store_batch(self.store.as_ref(), batch)
            .await
            .map_err(sink_error)?;
        let alerts: Vec<Alert> = {
            let mut d = self.detector.lock().unwrap_or_else(|p| p.into_inner());
            batch
                .iter()
                .filter_map(|e| regwatch_detect::envelope::observation(&e.envelope))
                .flat_map(|o| d.observe(&o))
                .collect()
        };
        for a in &alerts {
            tracing::info!(kind = a.kind.as_str(), client_id = %a.client_id, score = a.score, summary = %a.summary, "alert");
        }
        self.deliver(&alerts).await
    }
}
