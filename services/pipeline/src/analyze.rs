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

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use regwatch_detect::Detector;
use regwatch_schemas::Alert;
use regwatch_store::{EventStore, StoredEvent};

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
        for a in alerts {
            self.store.upsert_alert(a).await.map_err(sink_error)?;
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
        let stored: Vec<StoredEvent> = batch
            .iter()
            .map(|e| StoredEvent {
                envelope: e.envelope.clone(),
                raw: String::from_utf8_lossy(&e.raw).into_owned(),
            })
            .collect();
        self.store
            .insert_events(&stored)
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
