//! The SQLite backend: the embedded shape's event store, one file.
//!
//! Reads go through sqlx (`sqlite` feature, the same bundled SQLite as the
//! rest of the workspace); event and alert writes through one dedicated
//! writer thread with its own rusqlite connection to the same file
//! (`sqlite/writer.rs`): one transaction of prepared statements per batch,
//! instead of one sqlx statement (and two thread hand-offs) per event. Both
//! use WAL with `synchronous=NORMAL` and a busy timeout, so concurrent
//! writers (a second process, retention) wait rather than fail. Dedup is
//! the primary key on `event_id` with `INSERT OR IGNORE`; the per-minute
//! rollup is a `GROUP BY` over the deduplicated table, so it is exact by
//! construction. Retention deletes whole UTC days, the same "partitions"
//! (`YYYYMMDD`) ClickHouse drops.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use regwatch_schemas::{Alert, Envelope, WireEvent};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::{
    bound_ms, check_limit, cursor, event_columns, retention_cutoff, wire_name, AlertPage,
    AlertQuery, EventPage, EventQuery, EventStore, ExportHook, InsertOutcome, MinuteCount, Result,
    RetentionReport, SchemaDiff, SchemaReport, StoreError, MAX_STORED_MS,
};

mod writer;

use writer::{AlertRow, EventRows, Writer, BUSY_TIMEOUT};

const SCHEMA: &str = include_str!("../sqlite/0001_init.sql");

/// Columns (name, declared type) the code reads and writes.
pub const EXPECTED_COLUMNS: &[(&str, &[(&str, &str)])] = &[
    (
        "events",
        &[
            ("event_id", "TEXT"),
            ("event_type", "TEXT"),
            ("schema_version", "INTEGER"),
            ("occurred_at_ms", "INTEGER"),
            ("issuer", "TEXT"),
            ("client_id", "TEXT"),
            ("actor_kind", "TEXT"),
            ("actor_id", "TEXT"),
            ("source_ip", "TEXT"),
            ("request_id", "TEXT"),
            ("correlation_id", "TEXT"),
            ("raw", "TEXT"),
        ],
    ),
    (
        "alerts",
        &[
            ("alert_id", "TEXT"),
            ("kind", "TEXT"),
            ("severity", "TEXT"),
            ("score", "REAL"),
            ("client_id", "TEXT"),
            ("status", "TEXT"),
            ("dedup_key", "TEXT"),
            ("created_at_ms", "INTEGER"),
            ("updated_at_ms", "INTEGER"),
            ("raw", "TEXT"),
        ],
    ),
];

pub struct SqliteStore {
    /// Reads, schema work and retention.
    pool: SqlitePool,
    /// Event and alert writes.
    writer: Writer,
}

impl SqliteStore {
    /// Opens (creating if missing) the store at `path`, applies the schema
    /// and starts the writer thread.
    pub async fn open(path: &Path) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        migrate(&pool).await?;
        let writer = Writer::spawn(path).await?;
        Ok(SqliteStore { pool, writer })
    }
}

async fn migrate(pool: &SqlitePool) -> Result<()> {
    let mut tx = pool.begin().await?;
    for statement in crate::sql::statements(SCHEMA) {
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

fn parse_envelope(id: &str, raw: &str) -> Result<Envelope> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
        what: "event",
        id: id.to_string(),
        reason: e.to_string(),
    })
}

/// Milliseconds as SQLite's INTEGER (always in range: bounded by
/// `MAX_STORED_MS`).
fn ms_i64(ms: u64) -> i64 {
    ms.min(MAX_STORED_MS) as i64
}

/// An alert's columns, checked, ready for the writer.
fn alert_row(alert: &Alert) -> Result<AlertRow> {
    let id = alert.alert_id.to_string();
    let ms = |t: DateTime<Utc>| -> Result<i64> {
        let ms = t.timestamp_millis();
        if ms < 0 || ms as u64 >= MAX_STORED_MS {
            return Err(StoreError::InvalidEvent {
                event_id: id.clone(),
                reason: format!("alert time {t} is outside 1970..2106"),
            });
        }
        Ok(ms)
    };
    let created_at_ms = ms(alert.created_at)?;
    let updated_at_ms = ms(alert.updated_at)?;
    let raw = serde_json::to_string(alert).map_err(|e| StoreError::InvalidEvent {
        event_id: id.clone(),
        reason: format!("cannot serialize: {e}"),
    })?;
    Ok(AlertRow {
        alert_id: id,
        kind: alert.kind.as_str(),
        severity: wire_name(&alert.severity),
        score: alert.score,
        client_id: alert.client_id.clone(),
        status: wire_name(&alert.status),
        dedup_key: alert.dedup_key.clone(),
        created_at_ms,
        updated_at_ms,
        raw,
    })
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn insert_events(&self, batch: &[WireEvent]) -> Result<InsertOutcome> {
        // Validate everything before writing anything: a bad event refuses
        // the whole batch, never half of it.
        let mut rows =
            EventRows::with_capacity(batch.len(), batch.iter().map(|e| e.json().len()).sum());
        for ev in batch {
            let cols = event_columns(ev)?;
            rows.push(ev, cols);
        }
        if rows.is_empty() {
            return Ok(InsertOutcome::default());
        }
        let inserted = self.writer.insert_events(rows).await?;
        Ok(InsertOutcome {
            inserted,
            duplicates: batch.len() as u64 - inserted,
        })
    }

    async fn query_events(&self, q: &EventQuery) -> Result<EventPage> {
        let limit = check_limit(q.limit)?;
        let after = cursor::start(q.cursor.as_deref())?;
        let rows = sqlx::query(
            "SELECT event_id, occurred_at_ms, raw FROM events \
             WHERE occurred_at_ms >= ? AND occurred_at_ms < ? \
               AND (? IS NULL OR event_type = ?) \
               AND (? IS NULL OR client_id = ?) \
               AND (occurred_at_ms > ? OR (occurred_at_ms = ? AND event_id > ?)) \
             ORDER BY occurred_at_ms, event_id LIMIT ?",
        )
        .bind(ms_i64(bound_ms(q.since, 0)))
        .bind(ms_i64(bound_ms(q.until, MAX_STORED_MS)))
        .bind(q.event_type.map(|t| t.as_str()))
        .bind(q.event_type.map(|t| t.as_str()))
        .bind(q.client_id.as_deref())
        .bind(q.client_id.as_deref())
        .bind(ms_i64(after.ms))
        .bind(ms_i64(after.ms))
        .bind(&after.id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > limit as usize;
        let mut events = Vec::with_capacity(rows.len().min(limit as usize));
        let mut last = None;
        for row in rows.iter().take(limit as usize) {
            let id: String = row.try_get(0)?;
            let ms: i64 = row.try_get(1)?;
            let raw: String = row.try_get(2)?;
            events.push(parse_envelope(&id, &raw)?);
            last = Some((ms, id));
        }
        let next_cursor = match last {
            Some((ms, id)) if more => Some(cursor::encode(ms.max(0) as u64, &id)),
            _ => None,
        };
        Ok(EventPage {
            events,
            next_cursor,
        })
    }

    async fn count_events(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as u64)
    }

    async fn event_counts_by_minute(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<MinuteCount>> {
        // Whole minutes only, like the ClickHouse rollup's `minute` column.
        let since_ms = bound_ms(Some(since), 0).div_ceil(60_000) * 60_000;
        let until_ms = bound_ms(Some(until), 0).div_ceil(60_000) * 60_000;
        let rows = sqlx::query(
            "SELECT event_type, (occurred_at_ms / 60000) * 60 AS minute_s, count(*) AS n \
             FROM events WHERE occurred_at_ms >= ? AND occurred_at_ms < ? \
             GROUP BY event_type, minute_s ORDER BY minute_s, event_type",
        )
        .bind(ms_i64(since_ms))
        .bind(ms_i64(until_ms))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let minute_s: i64 = row.try_get(1)?;
            let n: i64 = row.try_get(2)?;
            out.push(MinuteCount {
                event_type: row.try_get(0)?,
                minute: DateTime::from_timestamp(minute_s, 0).unwrap_or_default(),
                events: n.max(0) as u64,
            });
        }
        Ok(out)
    }

    async fn upsert_alert(&self, alert: &Alert) -> Result<()> {
        self.writer.upsert_alerts(vec![alert_row(alert)?]).await
    }

    async fn upsert_alerts(&self, alerts: &[Alert]) -> Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        let rows = alerts.iter().map(alert_row).collect::<Result<Vec<_>>>()?;
        self.writer.upsert_alerts(rows).await
    }

    async fn query_alerts(&self, q: &AlertQuery) -> Result<AlertPage> {
        let limit = check_limit(q.limit)?;
        let after = cursor::start(q.cursor.as_deref())?;
        let kind = q.kind.map(|k| k.as_str());
        let status = q.status.as_ref().map(wire_name);
        let rows = sqlx::query(
            "SELECT alert_id, created_at_ms, raw FROM alerts \
             WHERE created_at_ms >= ? AND created_at_ms < ? \
               AND (? IS NULL OR kind = ?) \
               AND (? IS NULL OR client_id = ?) \
               AND (? IS NULL OR status = ?) \
               AND (created_at_ms > ? OR (created_at_ms = ? AND alert_id > ?)) \
             ORDER BY created_at_ms, alert_id LIMIT ?",
        )
        .bind(ms_i64(bound_ms(q.since, 0)))
        .bind(ms_i64(bound_ms(q.until, MAX_STORED_MS)))
        .bind(kind)
        .bind(kind)
        .bind(q.client_id.as_deref())
        .bind(q.client_id.as_deref())
        .bind(status.as_deref())
        .bind(status.as_deref())
        .bind(ms_i64(after.ms))
        .bind(ms_i64(after.ms))
        .bind(&after.id)
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await?;
        let more = rows.len() > limit as usize;
        let mut alerts = Vec::new();
        let mut last = None;
        for row in rows.iter().take(limit as usize) {
            let id: String = row.try_get(0)?;
            let ms: i64 = row.try_get(1)?;
            let raw: String = row.try_get(2)?;
            alerts.push(
                serde_json::from_str::<Alert>(&raw).map_err(|e| StoreError::Corrupt {
                    what: "alert",
                    id: id.clone(),
                    reason: e.to_string(),
                })?,
            );
            last = Some((ms, id));
        }
        let next_cursor = match last {
            Some((ms, id)) if more => Some(cursor::encode(ms.max(0) as u64, &id)),
            _ => None,
        };
        Ok(AlertPage {
            alerts,
            next_cursor,
        })
    }

    async fn apply_retention(
        &self,
        keep_days: u32,
        now: DateTime<Utc>,
        hook: &dyn ExportHook,
    ) -> Result<RetentionReport> {
        let (_, cutoff_ms) = retention_cutoff(keep_days, now);
        let days: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT strftime('%Y%m%d', occurred_at_ms / 1000, 'unixepoch') AS day \
             FROM events WHERE occurred_at_ms < ? ORDER BY day",
        )
        .bind(ms_i64(cutoff_ms))
        .fetch_all(&self.pool)
        .await?;
        let mut report = RetentionReport::default();
        for day in days {
            let start = chrono::NaiveDate::parse_from_str(&day, "%Y%m%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp_millis())
                .ok_or_else(|| StoreError::Rejected(format!("bad day partition {day}")))?;
            hook.export_partition(&day).await?;
            sqlx::query("DELETE FROM events WHERE occurred_at_ms >= ? AND occurred_at_ms < ?")
                .bind(start)
                .bind(start + 86_400_000)
                .execute(&self.pool)
                .await?;
            tracing::info!(partition = %day, "sqlite events day deleted");
            report.dropped.push(day);
        }
        Ok(report)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn check_schema(&self) -> Result<SchemaReport> {
        let mut report = SchemaReport::default();
        for (table, columns) in EXPECTED_COLUMNS {
            let live: Vec<(String, String)> =
                sqlx::query_as("SELECT name, type FROM pragma_table_info(?)")
                    .bind(*table)
                    .fetch_all(&self.pool)
                    .await?;
            if live.is_empty() {
                report.differences.push(SchemaDiff::MissingTable {
                    table: table.to_string(),
                });
                continue;
            }
            for (column, expected) in *columns {
                match live.iter().find(|(n, _)| n == column) {
                    None => report.differences.push(SchemaDiff::MissingColumn {
                        table: table.to_string(),
                        column: column.to_string(),
                        expected: expected.to_string(),
                    }),
                    Some((_, found)) if !found.eq_ignore_ascii_case(expected) => {
                        report.differences.push(SchemaDiff::WrongType {
                            table: table.to_string(),
                            column: column.to_string(),
                            expected: expected.to_string(),
                            found: found.clone(),
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(report)
    }
}
