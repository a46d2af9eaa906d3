//! RowBinary row shapes. Field order is column order (validation is off, so
//! nothing else checks it): the insert rows are compared with the
//! `*_insert.sql` mirrors and with `EXPECTED_COLUMNS` by unit tests, the
//! read rows with the `SELECT` lists of their query files by the
//! conformance suite.

use clickhouse::Row;
use regwatch_schemas::Alert;
use serde::{Deserialize, Serialize};

use crate::{wire_name, EventColumns, Result, StoreError, MAX_STORED_MS};
use regwatch_schemas::WireEvent;

/// One `events` row, borrowed from the event being stored (the insert
/// serializes straight from the envelope and the raw JSON, no copy).
#[derive(Debug, Row, Serialize)]
pub(super) struct EventRow<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    pub schema_version: u32,
    /// `DateTime` is seconds since the epoch as `UInt32`.
    pub occurred_at: u32,
    pub occurred_at_ms: u64,
    pub issuer: &'a str,
    pub client_id: Option<&'a str>,
    pub actor_kind: &'a str,
    pub actor_id: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
    pub raw: &'a str,
}

impl<'a> EventRow<'a> {
    /// `cols` comes from `event_columns`, which bounds the timestamp.
    pub fn new(ev: &'a WireEvent, cols: &'a EventColumns) -> Self {
        let env = ev.envelope();
        EventRow {
            event_id: &cols.event_id,
            event_type: cols.event_type,
            schema_version: env.schema_version,
            occurred_at: (cols.occurred_at_ms / 1000) as u32,
            occurred_at_ms: cols.occurred_at_ms,
            issuer: &env.issuer,
            client_id: env.client_id.as_deref(),
            actor_kind: cols.actor_kind,
            actor_id: env.actor.id.as_deref(),
            source_ip: env.source.as_ref().and_then(|s| s.ip.as_deref()),
            request_id: env.request_id.as_deref(),
            correlation_id: env.correlation_id.as_deref(),
            raw: ev.json(),
        }
    }
}

#[derive(Debug, Row, Serialize)]
pub(super) struct AlertRow {
    pub alert_id: String,
    pub kind: String,
    pub severity: String,
    pub score: f64,
    pub client_id: String,
    pub status: String,
    pub dedup_key: String,
    pub created_at: u32,
    pub created_at_ms: u64,
    pub updated_at: u32,
    pub updated_at_ms: u64,
    pub event_ids: Vec<String>,
    pub related_client_ids: Vec<String>,
    pub summary: String,
    pub raw: String,
}

impl AlertRow {
    pub fn new(alert: &Alert) -> Result<Self> {
        let id = alert.alert_id.to_string();
        let bad = |reason: String| StoreError::InvalidEvent {
            event_id: id.clone(),
            reason,
        };
        let ms = |t: chrono::DateTime<chrono::Utc>, what: &str| -> Result<u64> {
            let ms = t.timestamp_millis();
            if ms < 0 || ms as u64 >= MAX_STORED_MS {
                return Err(bad(format!("alert {what} {t} is outside 1970..2106")));
            }
            Ok(ms as u64)
        };
        let created_at_ms = ms(alert.created_at, "created_at")?;
        let updated_at_ms = ms(alert.updated_at, "updated_at")?;
        let raw =
            serde_json::to_string(alert).map_err(|e| bad(format!("cannot serialize: {e}")))?;
        Ok(AlertRow {
            alert_id: id.clone(),
            kind: alert.kind.as_str().to_string(),
            severity: wire_name(&alert.severity),
            score: alert.score,
            client_id: alert.client_id.clone(),
            status: wire_name(&alert.status),
            dedup_key: alert.dedup_key.clone(),
            created_at: (created_at_ms / 1000) as u32,
            created_at_ms,
            updated_at: (updated_at_ms / 1000) as u32,
            updated_at_ms,
            event_ids: alert.event_ids.iter().map(|u| u.to_string()).collect(),
            related_client_ids: alert.related_client_ids.clone(),
            summary: alert.summary.clone(),
            raw,
        })
    }
}

/// `events_page.sql` and `alerts_raw.sql`: `(id, sort ms, raw)`.
#[derive(Debug, Row, Deserialize)]
pub(super) struct PageRow {
    pub event_id: String,
    pub occurred_at_ms: u64,
    pub raw: String,
}

/// `alerts_page.sql`: `(id, sort ms)`, the page's keys without raw.
#[derive(Debug, Row, Deserialize)]
pub(super) struct KeyRow {
    pub id: String,
    pub ms: u64,
}

/// `events_span.sql`.
#[derive(Debug, Row, Deserialize)]
pub(super) struct NextRow {
    pub events: u64,
    pub first_ms: u64,
}

#[derive(Debug, Row, Deserialize)]
pub(super) struct IdRow {
    pub event_id: String,
}

#[derive(Debug, Row, Deserialize)]
pub(super) struct CountRow {
    pub events: u64,
}

#[derive(Debug, Row, Deserialize)]
pub(super) struct MinuteRow {
    pub event_type: String,
    pub minute_s: u64,
    pub events: u64,
}

#[derive(Debug, Row, Deserialize)]
pub(super) struct ColumnRow {
    pub table: String,
    pub name: String,
    pub column_type: String,
}

#[derive(Debug, Row, Deserialize)]
pub(super) struct PartitionRow {
    pub partition_id: String,
}

#[derive(Debug, Row, Deserialize)]
pub(super) struct MigrationRow {
    pub version: u32,
    #[allow(dead_code)]
    pub name: String,
}
