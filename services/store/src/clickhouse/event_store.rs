//! `EventStore` for ClickHouse: event writes (checked against stored ids),
//! event pages, scans and counts, alert writes and pages, retention by
//! partition, and the schema check.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use regwatch_schemas::{Alert, Envelope, WireEvent};
use uuid::Uuid;

use crate::sql::Lit;
use crate::{
    bound_ms, check_limit, cursor, event_columns, retention_cutoff, wire_name, AlertPage,
    AlertQuery, EventColumns, EventPage, EventQuery, EventStore, ExportHook, InsertOutcome,
    MinuteCount, Result, RetentionReport, SchemaReport, StoreError, MAX_STORED_MS,
};

use super::page::{
    opt_str, trim_page, PageFilters, Windowed, ALERT_WINDOW_MS, PAGE_WINDOW_MS, SCAN_PAGE,
};
use super::rows::{
    AlertRow, ColumnRow, CountRow, EventRow, KeyRow, MinuteRow, PageRow, PartitionRow,
};
use super::schema::{compare_columns, render, template};
use super::{queries, ClickHouseStore};

fn parse_envelope(id: &str, raw: &str) -> Result<Envelope> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
        what: "event",
        id: id.to_string(),
        reason: e.to_string(),
    })
}

#[async_trait]
impl EventStore for ClickHouseStore {
    async fn insert_events(&self, batch: &[WireEvent]) -> Result<InsertOutcome> {
        // Validate everything before writing anything: a bad event refuses
        // the whole batch, never half of it.
        let mut rows: Vec<(&WireEvent, EventColumns)> = Vec::with_capacity(batch.len());
        let mut seen: HashSet<Uuid> = HashSet::with_capacity(batch.len());
        for ev in batch {
            let cols = event_columns(ev)?;
            if seen.insert(ev.envelope().event_id) {
                rows.push((ev, cols));
            }
        }
        let duplicates_of = |inserted: usize| InsertOutcome {
            inserted: inserted as u64,
            duplicates: (batch.len() - inserted) as u64,
        };
        if rows.is_empty() {
            return Ok(duplicates_of(0));
        }

        let mut recent = self.insert_lock.lock().await;
        // Known stored: a duplicate without asking. Unknown: asked.
        rows.retain(|(ev, _)| !recent.contains(&ev.envelope().event_id));
        if rows.is_empty() {
            return Ok(duplicates_of(0));
        }
        let existing = self.existing_ids(&rows).await?;
        rows.retain(|(ev, _)| !existing.contains(&ev.envelope().event_id));
        for id in existing {
            recent.insert(id);
        }
        if !rows.is_empty() {
            let mut insert = self.client.insert::<EventRow<'_>>("events").await?;
            for (ev, cols) in &rows {
                insert.write(&EventRow::new(ev, cols)).await?;
            }
            insert.end().await?;
            // Acknowledged: these are stored now.
            for (ev, _) in &rows {
                recent.insert(ev.envelope().event_id);
            }
        }
        Ok(duplicates_of(rows.len()))
    }

    async fn query_events(&self, q: &EventQuery) -> Result<EventPage> {
        let limit = check_limit(q.limit)?;
        let after = cursor::start(q.cursor.as_deref())?;
        let filters = PageFilters::new(q);
        let (mut rows, _) = self
            .read_page::<PageRow>(
                &filters.windowed(),
                bound_ms(q.since, 0),
                bound_ms(q.until, MAX_STORED_MS),
                &after,
                limit as usize + 1,
                PAGE_WINDOW_MS,
            )
            .await?;
        let next_cursor = trim_page(&mut rows, limit);
        let events = rows
            .iter()
            .map(|r| parse_envelope(&r.event_id, &r.raw))
            .collect::<Result<Vec<_>>>()?;
        Ok(EventPage {
            events,
            next_cursor,
        })
    }

    /// Pages of [`SCAN_PAGE`] events, each read from a window sized by the
    /// density of the page before it, so every stored event is read about
    /// once (a chain of [`EventStore::query_events`] pages would read each
    /// 10 s window whole for every 1,000 events it returns).
    async fn scan_events(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        each: &mut (dyn for<'e> FnMut(&'e [Envelope]) -> Result<()> + Send),
    ) -> Result<u64> {
        let filters = PageFilters::new(&EventQuery::default());
        let w = filters.windowed();
        let (since, until) = (bound_ms(Some(since), 0), bound_ms(Some(until), 0));
        let mut after = cursor::Position {
            ms: 0,
            id: String::new(),
        };
        let mut window = PAGE_WINDOW_MS;
        let mut read = 0;
        loop {
            let (mut rows, hint) = self
                .read_page::<PageRow>(&w, since, until, &after, SCAN_PAGE + 1, window)
                .await?;
            let more = rows.len() > SCAN_PAGE;
            rows.truncate(SCAN_PAGE);
            let events = rows
                .iter()
                .map(|r| parse_envelope(&r.event_id, &r.raw))
                .collect::<Result<Vec<_>>>()?;
            read += events.len() as u64;
            each(&events)?;
            match rows.pop() {
                Some(last) if more => {
                    after = cursor::Position {
                        ms: last.occurred_at_ms,
                        id: last.event_id,
                    };
                    window = hint;
                }
                _ => return Ok(read),
            }
        }
    }

    async fn count_events(&self) -> Result<u64> {
        let row = self
            .client
            .query_raw(&template(queries::EVENTS_COUNT))
            .fetch_one::<CountRow>()
            .await?;
        Ok(row.events)
    }

    async fn event_counts_by_minute(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<MinuteCount>> {
        let sql = render(
            queries::EVENTS_BY_MINUTE,
            &[
                ("since_s", Lit::UInt(bound_ms(Some(since), 0) / 1000)),
                ("until_s", Lit::UInt(bound_ms(Some(until), 0) / 1000)),
            ],
        )?;
        let rows = self.client.query_raw(&sql).fetch_all::<MinuteRow>().await?;
        Ok(rows
            .into_iter()
            .map(|r| MinuteCount {
                event_type: r.event_type,
                minute: DateTime::from_timestamp(r.minute_s as i64, 0).unwrap_or_default(),
                events: r.events,
            })
            .collect())
    }

    async fn upsert_alert(&self, alert: &Alert) -> Result<()> {
        self.upsert_alerts(std::slice::from_ref(alert)).await
    }

    async fn upsert_alerts(&self, alerts: &[Alert]) -> Result<()> {
        // One insert for the lot. Per alert_id only the version the calls
        // one by one would leave goes in (latest updated_at, on a tie the
        // later one), so the result never depends on how ClickHouse orders
        // equal versions inside one block.
        // Every alert is checked first: a bad one refuses the whole slice,
        // even if a later version of it would replace it.
        let mut rows = alerts
            .iter()
            .map(AlertRow::new)
            .collect::<Result<Vec<_>>>()?;
        let mut winner: HashMap<Uuid, usize> = HashMap::with_capacity(alerts.len());
        for (i, a) in alerts.iter().enumerate() {
            let w = winner.entry(a.alert_id).or_insert(i);
            if a.updated_at >= alerts[*w].updated_at {
                *w = i;
            }
        }
        if winner.len() < rows.len() {
            let keep: HashSet<usize> = winner.into_values().collect();
            let mut i = 0;
            rows.retain(|_| {
                i += 1;
                keep.contains(&(i - 1))
            });
        }
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self.client.insert::<AlertRow>("alerts_by_time").await?;
        for row in &rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }

    async fn query_alerts(&self, q: &AlertQuery) -> Result<AlertPage> {
        let limit = check_limit(q.limit)?;
        let after = cursor::start(q.cursor.as_deref())?;
        let (any_kind, kind) = opt_str(q.kind.map(|k| k.as_str().to_string()));
        let (any_client, client_id) = opt_str(q.client_id.clone());
        let (any_status, status) = opt_str(q.status.as_ref().map(wire_name));
        let filters = [
            ("any_kind", Lit::UInt(any_kind)),
            ("kind", kind),
            ("any_client_id", Lit::UInt(any_client)),
            ("client_id", client_id),
            ("any_status", Lit::UInt(any_status)),
            ("status", status),
        ];
        let w = Windowed {
            page: queries::ALERTS_PAGE,
            page_filters: &filters,
            span: queries::ALERTS_SPAN,
            span_filters: &filters[..4],
        };
        // The page's keys from the light columns, window by window, then raw
        // for those rows only (0006_alerts_by_time.sql, BENCHMARKS.md).
        let (mut keys, _) = self
            .read_page::<KeyRow>(
                &w,
                bound_ms(q.since, 0),
                bound_ms(q.until, MAX_STORED_MS),
                &after,
                limit as usize + 1,
                ALERT_WINDOW_MS,
            )
            .await?;
        let next_cursor = trim_page(&mut keys, limit);
        let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
            return Ok(AlertPage {
                alerts: Vec::new(),
                next_cursor,
            });
        };
        let sql = render(
            queries::ALERTS_RAW,
            &[
                ("first_ms", Lit::UInt(first.ms)),
                ("last_ms", Lit::UInt(last.ms)),
                (
                    "ids",
                    Lit::StrList(keys.iter().map(|k| k.id.clone()).collect()),
                ),
            ],
        )?;
        let rows = self.client.query_raw(&sql).fetch_all::<PageRow>().await?;
        let mut alerts = Vec::with_capacity(rows.len());
        for r in &rows {
            let alert = serde_json::from_str::<Alert>(&r.raw).map_err(|e| StoreError::Corrupt {
                what: "alert",
                id: r.event_id.clone(),
                reason: e.to_string(),
            })?;
            // A newer version may have landed between the two queries; the
            // status filter judges the version returned, so the page never
            // shows an alert whose status does not match. The cursor still
            // comes from the first query, so no later alert is skipped.
            if q.status.as_ref().is_some_and(|s| *s != alert.status) {
                continue;
            }
            alerts.push(alert);
        }
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
        let (before, _) = retention_cutoff(keep_days, now);
        let list = render(
            queries::PARTITIONS_LIST,
            &[
                ("database", Lit::Str(self.database.clone())),
                ("before", Lit::Str(before)),
            ],
        )?;
        let partitions = self
            .client
            .query_raw(&list)
            .fetch_all::<PartitionRow>()
            .await?;
        let mut report = RetentionReport::default();
        for p in partitions {
            // Export first: a failed export keeps the partition (and stops
            // here, so partitions are always dropped oldest first).
            hook.export_partition(&p.partition_id).await?;
            let drop_sql = render(
                queries::PARTITION_DROP,
                &[("partition_id", Lit::Str(p.partition_id.clone()))],
            )?;
            // The ids known stored may be in this partition: forget them
            // all, under the insert lock, so no insert judges by them
            // while or after the rows go.
            let mut recent = self.insert_lock.lock().await;
            let dropped = self.client.query_raw(&drop_sql).execute().await;
            recent.clear();
            drop(recent);
            dropped?;
            tracing::info!(database = %self.database, partition = %p.partition_id, "events partition dropped");
            report.dropped.push(p.partition_id);
        }
        Ok(report)
    }

    async fn ping(&self) -> Result<()> {
        self.client
            .query_raw(&template(queries::PING))
            .fetch_one::<u8>()
            .await?;
        Ok(())
    }

    async fn check_schema(&self) -> Result<SchemaReport> {
        let sql = render(
            queries::SCHEMA_COLUMNS,
            &[("database", Lit::Str(self.database.clone()))],
        )?;
        let rows = self.client.query_raw(&sql).fetch_all::<ColumnRow>().await?;
        let mut live: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for r in rows {
            live.entry(r.table)
                .or_default()
                .insert(r.name, r.column_type);
        }
        Ok(compare_columns(&live))
    }
}
