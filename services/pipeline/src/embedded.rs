//! The embedded shape's source: the authorization server's outbox, read
//! by cursor in the same process instead of from Kafka, through
//! `regwatch-outbox` (an [`Outbox`] on the authorization server's
//! database; the pipeline does not depend on the authorization server).
//! Records go through the same validation (one parse: the payload moves
//! into its [`WireEvent`](regwatch_schemas::WireEvent)) and the same sink
//! as the Kafka consumer; a record that fails validation is logged and skipped (there
//! is no dead-letter topic without Kafka; the row stays in the outbox).
//!
//! The cursor is the last outbox `seq` written to the sink. It lives in
//! memory: at start the reader replays the outbox from the beginning,
//! which rebuilds the detector's state and rewrites nothing (inserts and
//! alert upserts are idempotent). That keeps restarts simple at the
//! embedded shape's size; the scaled shape keeps offsets in Kafka.

use std::sync::Arc;
use std::time::Duration;

use regwatch_outbox::Outbox;
use regwatch_schemas::WireEvent;

use crate::sink::EventSink;
use crate::validate::{validate_owned, Limits};

/// Outbox rows read, and written to the sink, at a time: the Kafka
/// pipeline's default batch (`batch_max_events`). Larger batches matter
/// for the SQLite store, whose commit cost grows with the pages a batch
/// dirties, not with its rows (BENCHMARKS.md).
const BATCH: u32 = 5_000;

/// Read `outbox` after `cursor` into `sink` until `stop` turns true.
/// `on_batch` is told the new cursor after each durable batch (metrics).
pub async fn run(
    outbox: Outbox,
    sink: Arc<dyn EventSink>,
    poll: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    on_batch: impl Fn(i64) + Send,
) {
    // The same bounds as the Kafka consumer's defaults.
    let limits = Limits {
        max_record_bytes: 64 * 1024,
        max_depth: 32,
    };
    let mut cursor = 0i64;
    let mut backoff = poll;
    loop {
        let rows = match outbox.after(cursor, BATCH).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "embedded pipeline: outbox read failed; retrying");
                Vec::new()
            }
        };
        if !rows.is_empty() {
            let last = rows.last().map(|r| r.seq).unwrap_or(cursor);
            // The rows are ours: each payload moves into its event uncopied.
            let batch: Vec<WireEvent> = rows
                .into_iter()
                .filter_map(|r| match validate_owned(r.payload, &limits) {
                    Ok(event) => Some(event),
                    Err(rej) => {
                        tracing::error!(seq = r.seq, reason = rej.reason.as_str(), detail = %rej.detail, "embedded pipeline: outbox row fails the contract; skipped");
                        None
                    }
                })
                .collect();
            match sink.write(&batch).await {
                Ok(()) => {
                    cursor = last;
                    backoff = poll;
                    on_batch(cursor);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "embedded pipeline: sink failed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.changed() => return,
        }
    }
}
