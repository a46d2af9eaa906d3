//! Where validated events go: the [`EventSink`] seam.
//!
//! The pipeline owns this small trait so its sources (the Kafka consumer,
//! the embedded outbox reader) do not depend on what stores the events;
//! [`crate::store_detect::StoreAndDetect`] implements it over
//! `regwatch-store`. A sink gets each event as the source validated it (a
//! [`WireEvent`]: parsed once, with its text); where it was read (partition
//! and offset, or outbox seq) stays with the source, which commits it.

use async_trait::async_trait;
use regwatch_schemas::WireEvent;

/// Why a batch was not written.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The store is unreachable or overloaded: the same batch may succeed
    /// later. The pipeline pauses and retries with backoff.
    #[error("sink unavailable: {0}")]
    Unavailable(String),
    /// The store refused the batch and will refuse it again (e.g. a value
    /// it cannot represent). The pipeline dead-letters the batch's events.
    #[error("sink rejected the batch: {0}")]
    Rejected(String),
}

impl SinkError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Unavailable(_))
    }
}

/// A durable destination for events.
///
/// Contract the pipeline relies on:
/// - `Ok(())` means every event of the batch is durable: the pipeline
///   commits the offsets right after.
/// - Writes are idempotent on the envelope's `event_id`: the same batch, or an
///   overlapping one, may be written again after a crash or a rebalance
///   and must not create a second copy.
/// - An error means nothing may be assumed written; the pipeline writes the
///   whole batch again (retryable) or dead-letters it (not retryable).
#[async_trait]
pub trait EventSink: Send + Sync {
    async fn write(&self, batch: &[WireEvent]) -> Result<(), SinkError>;
}
