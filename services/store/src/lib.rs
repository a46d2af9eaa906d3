//! The regwatch event store: where the pipeline writes events and alerts and
//! where the API reads them.
//!
//! One trait, [`EventStore`], two backends:
//! - [`sqlite::SqliteStore`] for the embedded shape (one file, WAL,
//!   `INSERT OR IGNORE` on `event_id`, writes on one rusqlite writer thread
//!   with a transaction per batch);
//! - [`clickhouse::ClickHouseStore`] for the scaled shape (ClickHouse over
//!   HTTP, `ReplacingMergeTree` tables read with `FINAL`, a per-minute rollup
//!   kept by a materialized view, day partitions dropped by retention).
//!
//! Both pass the same conformance suite (`tests/conformance.rs`), so the
//! pipeline and the API hold an `Arc<dyn EventStore>` and never ask which.
//!
//! Layout:
//! - this file: the trait and the types that cross it ([`EventQuery`],
//!   [`EventPage`], [`AlertQuery`], [`AlertPage`], …). Events come in as
//!   the contract's [`WireEvent`] (the envelope for the columns, its text as
//!   the stored document, parsed once by whoever validated it) and go out
//!   as envelopes; the API shapes its own responses from the pages;
//! - [`error`]: [`StoreError`] and [`StoreError::is_retryable`];
//! - [`cursor`]: the opaque page cursor, `(milliseconds, id)` encoded;
//! - [`sql`]: the `{{name}}` placeholder renderer shared with the chdb suite;
//! - [`sqlite`]: the SQLite backend and its schema (`services/store/sqlite/`);
//! - [`clickhouse`]: the ClickHouse backend, its migration runner and the
//!   query files it runs (`schemas/clickhouse/`, `schemas/clickhouse/queries/`);
//! - [`config`]: [`StoreConfig`], the `[store]` table (ClickHouse);
//! - [`retention`]: the `[retention]` table, the periodic pass over
//!   [`EventStore::apply_retention`] and its JSON Lines archive.
//!
//! Invariants every backend keeps (and the conformance suite checks):
//! - **Idempotent on `event_id`.** Inserting a batch twice, or an event that
//!   is already stored, never adds a row; the pipeline may replay a batch
//!   after a crash between the store and the offset commit.
//! - **Stable order.** Pages are ordered by `(occurred_at ms, event_id)`; a
//!   cursor walk sees every matching event exactly once.
//! - **Exact rollups.** Per-minute counts equal the distinct events, replays
//!   included.
//! - **Alerts update in place.** The stored alert is the one with the latest
//!   `updated_at` (on a tie, the last written).
//! - This crate holds no business rules: it stores what it is given.

pub mod clickhouse;
pub mod config;
pub mod cursor;
pub mod error;
pub mod retention;
pub mod sql;
pub mod sqlite;

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use regwatch_schemas::{ActorKind, Alert, AlertKind, AlertStatus, Envelope, EventType, WireEvent};
use serde::Serialize;

pub use config::StoreConfig;
pub use error::{Result, StoreError};

/// The most rows one page may ask for.
pub const MAX_PAGE_LIMIT: u32 = 1000;
/// The page size when a caller does not say.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;
/// The latest instant a stored timestamp may carry: ClickHouse `DateTime`
/// is seconds in a `UInt32`, so both backends refuse what it cannot hold.
pub const MAX_STORED_MS: u64 = u32::MAX as u64 * 1000;

/// What an insert did. `inserted + duplicates` is the batch length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InsertOutcome {
    /// Events that were not stored before.
    pub inserted: u64,
    /// Events already stored (or repeated inside the batch), skipped.
    pub duplicates: u64,
}

/// A page request over events. `since` is inclusive, `until` exclusive, both
/// on `occurred_at`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventQuery {
    pub event_type: Option<EventType>,
    pub client_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// 1..=[`MAX_PAGE_LIMIT`].
    pub limit: u32,
    /// `next_cursor` of the previous page; `None` for the first page.
    pub cursor: Option<String>,
}

impl Default for EventQuery {
    fn default() -> Self {
        EventQuery {
            event_type: None,
            client_id: None,
            since: None,
            until: None,
            limit: DEFAULT_PAGE_LIMIT,
            cursor: None,
        }
    }
}

/// One page of events and where the next one starts.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub events: Vec<Envelope>,
    /// `None` when this is the last page.
    pub next_cursor: Option<String>,
}

/// A page request over alerts. `since`/`until` are on `created_at` (which
/// never changes, so a page walk stays stable while alerts are updated);
/// `status` matches the latest version of each alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertQuery {
    pub kind: Option<AlertKind>,
    pub client_id: Option<String>,
    pub status: Option<AlertStatus>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
    pub cursor: Option<String>,
}

impl Default for AlertQuery {
    fn default() -> Self {
        AlertQuery {
            kind: None,
            client_id: None,
            status: None,
            since: None,
            until: None,
            limit: DEFAULT_PAGE_LIMIT,
            cursor: None,
        }
    }
}

/// One page of alerts, ordered by `(created_at ms, alert_id)`. A page may
/// hold fewer than `limit` alerts while `next_cursor` is set (with a status
/// filter, an alert updated while the page was read is left out); only a
/// `None` cursor means the end.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPage {
    pub alerts: Vec<Alert>,
    /// `None` when this is the last page.
    pub next_cursor: Option<String>,
}

/// Events of one type in one minute (the rollup behind the dashboards).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MinuteCount {
    pub event_type: String,
    /// The start of the minute, UTC.
    pub minute: DateTime<Utc>,
    pub events: u64,
}

/// How the live schema differs from what the code reads and writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SchemaDiff {
    MissingTable {
        table: String,
    },
    MissingColumn {
        table: String,
        column: String,
        expected: String,
    },
    WrongType {
        table: String,
        column: String,
        expected: String,
        found: String,
    },
}

impl fmt::Display for SchemaDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaDiff::MissingTable { table } => write!(f, "table {table} is missing"),
            SchemaDiff::MissingColumn {
                table,
                column,
                expected,
            } => write!(f, "column {table}.{column} ({expected}) is missing"),
            SchemaDiff::WrongType {
                table,
                column,
                expected,
                found,
            } => write!(
                f,
                "column {table}.{column} is {found}, the code expects {expected}"
            ),
        }
    }
}

/// The result of [`EventStore::check_schema`]. Extra columns are not a
/// difference: a newer migration may add columns older code ignores.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchemaReport {
    pub differences: Vec<SchemaDiff>,
}

impl SchemaReport {
    pub fn is_ok(&self) -> bool {
        self.differences.is_empty()
    }

    /// `Err(StoreError::Schema)` naming every difference, for callers that
    /// refuse to start on a drifted schema.
    pub fn into_result(self) -> Result<()> {
        if self.is_ok() {
            return Ok(());
        }
        let list: Vec<String> = self.differences.iter().map(|d| d.to_string()).collect();
        Err(StoreError::Schema(list.join("; ")))
    }
}

/// What [`EventStore::apply_retention`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    /// Day partitions (`YYYYMMDD`) exported and dropped, oldest first.
    pub dropped: Vec<String>,
}

/// Called with each partition id (`YYYYMMDD`, UTC day of `occurred_at`)
/// before the partition is dropped. An error keeps that partition and every
/// later one, and is returned by `apply_retention` as is.
#[async_trait]
pub trait ExportHook: Send + Sync {
    async fn export_partition(&self, partition_id: &str) -> Result<()>;
}

/// An [`ExportHook`] that exports nothing (retention without an archive).
pub struct NoExport;

#[async_trait]
impl ExportHook for NoExport {
    async fn export_partition(&self, _partition_id: &str) -> Result<()> {
        Ok(())
    }
}

/// The event store. Object safe: the pipeline and the API hold an
/// `Arc<dyn EventStore>`.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores the events whose `event_id` is not stored yet. Safe to call
    /// again with the same batch (after a crash, a retry, a replay). Every
    /// event is checked before anything is written, and a bad one refuses
    /// the whole batch. Each event's envelope gives the columns and its
    /// text is stored as is; neither is parsed or copied again first.
    async fn insert_events(&self, batch: &[WireEvent]) -> Result<InsertOutcome>;

    /// One page in `(occurred_at ms, event_id)` order.
    async fn query_events(&self, q: &EventQuery) -> Result<EventPage>;

    /// Distinct events stored.
    async fn count_events(&self) -> Result<u64>;

    /// Per-minute counts by event type for minutes in `[since, until)`,
    /// ordered by minute then event type.
    async fn event_counts_by_minute(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<MinuteCount>>;

    /// Inserts or updates an alert by `alert_id`; the stored version is the
    /// one with the latest `updated_at`.
    async fn upsert_alert(&self, alert: &Alert) -> Result<()>;

    /// [`EventStore::upsert_alert`] for each alert, in order, as one write
    /// where the backend can: the result is the one the calls one by one
    /// would leave (per `alert_id`, the latest `updated_at`; on a tie, the
    /// later one in the slice). An error means nothing may be assumed
    /// written; the whole slice may be written again.
    async fn upsert_alerts(&self, alerts: &[Alert]) -> Result<()> {
        for a in alerts {
            self.upsert_alert(a).await?;
        }
        Ok(())
    }

    /// One page of alerts in `(created_at ms, alert_id)` order.
    async fn query_alerts(&self, q: &AlertQuery) -> Result<AlertPage>;

    /// Exports then drops every day partition of events older than
    /// `keep_days` full days before `now`'s day (UTC).
    async fn apply_retention(
        &self,
        keep_days: u32,
        now: DateTime<Utc>,
        hook: &dyn ExportHook,
    ) -> Result<RetentionReport>;

    /// Every event with `occurred_at` in `[since, until)`, in stored order,
    /// a batch at a time to `each`; returns how many were read. The default
    /// walks [`EventStore::query_events`] pages of [`MAX_PAGE_LIMIT`]; a
    /// backend whose pages cost more than their size overrides it. Callers
    /// use the free function [`scan_events`].
    async fn scan_events(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        each: &mut (dyn for<'e> FnMut(&'e [Envelope]) -> Result<()> + Send),
    ) -> Result<u64> {
        let mut cursor = None;
        let mut read = 0u64;
        loop {
            let page = self
                .query_events(&EventQuery {
                    since: Some(since),
                    until: Some(until),
                    limit: MAX_PAGE_LIMIT,
                    cursor,
                    ..Default::default()
                })
                .await?;
            read += page.events.len() as u64;
            each(&page.events)?;
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(read),
            }
        }
    }

    /// Cheap round trip: is the store reachable?
    async fn ping(&self) -> Result<()>;

    /// Compares the live tables and columns with what this code expects.
    async fn check_schema(&self) -> Result<SchemaReport>;
}

/// Checks a page limit against `1..=MAX_PAGE_LIMIT`.
/// Every event with `occurred_at` in `[since, until)`, in stored order, a
/// batch at a time to `each_page`; returns how many were read. For
/// whole-window readers (detector rebuild, archive before retention).
pub async fn scan_events(
    store: &dyn EventStore,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    mut each_page: impl FnMut(&[Envelope]) -> Result<()> + Send,
) -> Result<u64> {
    store.scan_events(since, until, &mut each_page).await
}

pub(crate) fn check_limit(limit: u32) -> Result<u32> {
    if (1..=MAX_PAGE_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(StoreError::InvalidQuery(format!(
            "limit must be in 1..={MAX_PAGE_LIMIT}, got {limit}"
        )))
    }
}

/// A time bound as milliseconds clamped to what can be stored.
pub(crate) fn bound_ms(t: Option<DateTime<Utc>>, default: u64) -> u64 {
    match t {
        Some(t) => t.timestamp_millis().clamp(0, MAX_STORED_MS as i64) as u64,
        None => default,
    }
}

/// The columns both backends derive from an envelope, checked once.
pub(crate) struct EventColumns {
    pub event_id: String,
    pub event_type: &'static str,
    pub occurred_at_ms: u64,
    pub actor_kind: &'static str,
}

/// Validates what a backend is about to store: a timestamp it can hold.
/// (That the stored text carries the envelope's `event_id` needs no check:
/// a [`WireEvent`]'s text and envelope are one by construction.)
pub(crate) fn event_columns(ev: &WireEvent) -> Result<EventColumns> {
    let envelope = ev.envelope();
    let ms = envelope.occurred_at.timestamp_millis();
    if ms < 0 || ms as u64 >= MAX_STORED_MS {
        return Err(StoreError::InvalidEvent {
            event_id: envelope.event_id.to_string(),
            reason: format!("occurred_at {} is outside 1970..2106", envelope.occurred_at),
        });
    }
    Ok(EventColumns {
        event_id: envelope
            .event_id
            .hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            .to_owned(),
        event_type: envelope.event_type().as_str(),
        occurred_at_ms: ms as u64,
        actor_kind: actor_kind_str(envelope.actor.kind),
    })
}

/// The wire name of an actor kind, without a trip through serde (a unit
/// test checks it against serde).
pub(crate) fn actor_kind_str(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::Client => "client",
        ActorKind::User => "user",
        ActorKind::Admin => "admin",
        ActorKind::System => "system",
        ActorKind::Detector => "detector",
    }
}

/// The serde wire name of a unit enum variant (`"open"`, `"high"`, …).
pub(crate) fn wire_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The `YYYYMMDD` id of the UTC day `keep_days` before `now`'s day: day
/// partitions strictly below it are dropped by retention.
pub(crate) fn retention_cutoff(keep_days: u32, now: DateTime<Utc>) -> (String, u64) {
    let day = now.date_naive() - chrono::Days::new(u64::from(keep_days));
    let start = day
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis().max(0) as u64)
        .unwrap_or(0);
    (day.format("%Y%m%d").to_string(), start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actor_kind_names_are_the_wire_names() {
        for k in [
            ActorKind::Client,
            ActorKind::User,
            ActorKind::Admin,
            ActorKind::System,
            ActorKind::Detector,
        ] {
            assert_eq!(actor_kind_str(k), wire_name(&k));
        }
    }
}
