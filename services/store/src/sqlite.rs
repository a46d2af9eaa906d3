//! The SQLite backend: the embedded shape's event store, one file.
//!
//! sqlx (`sqlite` feature, the same bundled SQLite as the rest of the
//! workspace), WAL with `synchronous=NORMAL`, a busy timeout so concurrent
//! writers wait rather than fail. Dedup is the primary key on `event_id`
//! with `INSERT OR IGNORE`; the per-minute rollup is a `GROUP BY` over the
//! deduplicated table, so it is exact by construction. Retention deletes
//! whole UTC days, the same "partitions" (`YYYYMMDD`) ClickHouse drops.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use regwatch_schemas::{Alert, Envelope};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::{
    bound_ms, check_limit, cursor, event_columns, retention_cutoff, wire_name, AlertPage,
    AlertQuery, EventPage, EventQuery, EventStore, ExportHook, InsertOutcome, MinuteCount, Result,
    RetentionReport, SchemaDiff, SchemaReport, StoreError, StoredEvent, MAX_STORED_MS,
};

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
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the store at `path` and applies the schema.
    pub async fn open(path: &Path) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str("sqlite:")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        let store = SqliteStore { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for statement in crate::sql::statements(SCHEMA) {
            sqlx::query(&statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
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

#[async_trait]
impl EventStore for SqliteStore {
    async fn insert_events(&self, batch: &[StoredEvent]) -> Result<InsertOutcome> {
        let mut checked = Vec::with_capacity(batch.len());
        for ev in batch {
            checked.push((ev, event_columns(ev)?));
        }
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0u64;
        for (ev, cols) in checked {
            let env = &ev.envelope;
            let done = sqlx::query(
                "INSERT OR IGNORE INTO events (event_id, event_type, schema_version, occurred_at_ms, \
                 issuer, client_id, actor_kind, actor_id, source_ip, request_id, correlation_id, raw) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&cols.event_id)
            .bind(cols.event_type)
            .bind(i64::from(env.schema_version))
            .bind(ms_i64(cols.occurred_at_ms))
            .bind(&env.issuer)
            .bind(env.client_id.as_deref())
            .bind(wire_name(&env.actor.kind))
            .bind(env.actor.id.as_deref())
            .bind(env.source.as_ref().and_then(|s| s.ip.as_deref()))
            .bind(env.request_id.as_deref())
            .bind(env.correlation_id.as_deref())
            .bind(&ev.raw)
            .execute(&mut *tx)
            .await?;
            inserted += done.rows_affected();
        }
        tx.commit().await?;
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
        let raw = serde_json::to_string(alert).map_err(|e| StoreError::InvalidEvent {
            event_id: id.clone(),
            reason: format!("cannot serialize: {e}"),
        })?;
        // Latest updated_at wins; on a tie the last write wins (as
        // ReplacingMergeTree keeps the last inserted of equal versions).
        sqlx::query(
            "INSERT INTO alerts (alert_id, kind, severity, score, client_id, status, dedup_key, \
             created_at_ms, updated_at_ms, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (alert_id) DO UPDATE SET kind = excluded.kind, \
             severity = excluded.severity, score = excluded.score, client_id = excluded.client_id, \
             status = excluded.status, dedup_key = excluded.dedup_key, \
             created_at_ms = excluded.created_at_ms, updated_at_ms = excluded.updated_at_ms, \
             raw = excluded.raw WHERE excluded.updated_at_ms >= alerts.updated_at_ms",
        )
        .bind(&id)
        .bind(alert.kind.as_str())
        .bind(wire_name(&alert.severity))
        .bind(alert.score)
        .bind(&alert.client_id)
        .bind(wire_name(&alert.status))
        .bind(&alert.dedup_key)
        .bind(ms(alert.created_at)?)
        .bind(ms(alert.updated_at)?)
        .bind(&raw)
        .execute(&self.pool)
        .await?;
        Ok(())
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
