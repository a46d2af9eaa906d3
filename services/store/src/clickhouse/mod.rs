//! The ClickHouse backend: the scaled shape's event store.
//!
//! Talks HTTP through the `clickhouse` crate with validation off (RowBinary;
//! ClickHouse 18.16 has no `RowBinaryWithNamesAndTypes`), so
//! [`ClickHouseStore::check_schema`] compares `system.columns` with
//! [`EXPECTED_COLUMNS`] instead. Every statement it runs is a file under
//! `schemas/clickhouse/` (DDL, applied by [`migrate`]) or
//! `schemas/clickhouse/queries/` (rendered by [`crate::sql::render`]); the
//! same files run on ClickHouse 26.x in `schemas/clickhouse/chdb_suite.py`.
//!
//! Exactly-once, and where it stops:
//! - Reads use `FINAL`, so two rows of one `event_id` (same partition, same
//!   sorting key) read as one.
//! - The per-minute rollup is a materialized view, which counts every row
//!   inserted, duplicates too. So `insert_events` first asks which ids are
//!   stored (`events_existing.sql`) and inserts only the others.
//! - What may skip that question: an id this store instance wrote (or saw
//!   stored) recently is kept in a bounded in-process set (`RecentIds`,
//!   FIFO), and is a duplicate without asking. The set only ever says "is
//!   stored", never "is new": an id it does not hold (evicted, written by
//!   another process, or anything after a restart) is always checked
//!   against ClickHouse. Nothing in memory can prove an id new (the relay
//!   may publish an event twice, another pipeline may have written it), so
//!   every new event costs one existence check; the set saves the check
//!   for replays (retries, re-deliveries), and the check itself is one
//!   query per 5,000 ids. Ids enter the set only after ClickHouse
//!   acknowledged the insert (or answered that they exist), and the set is
//!   cleared when this store drops partitions (retention). A partition
//!   dropped by someone else (another instance's retention, an operator)
//!   can leave ids in the set whose rows are gone: a replay of such an old
//!   event is then skipped rather than written back, which retention
//!   wanted anyway.
//! - The race: two writers inserting the same new `event_id` at the same
//!   moment both see it absent and both insert; `events` still reads it once
//!   (FINAL), the rollup counts it twice. Within one process a mutex
//!   serializes check-then-insert, which closes it for one pipeline
//!   instance. Across instances it needs the same event in two consumers at
//!   once, which Kafka's partition ownership (events keyed by client_id)
//!   allows only during a rebalance while the old owner finishes a batch; the
//!   cost is a rollup minute one too high on a dashboard, while the event
//!   list and `count_events` stay exact. Accepted; the way to close it
//!   fully is one writer per Kafka partition writing to its own shard.
//! - A batch whose insert failed half way (some day partitions written) is
//!   safe to retry: the written events are found by the check and skipped.

mod rows;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use regwatch_schemas::{Alert, Envelope, WireEvent};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::sql::{self, Lit};
use crate::{
    bound_ms, check_limit, cursor, event_columns, retention_cutoff, wire_name, AlertPage,
    AlertQuery, EventColumns, EventPage, EventQuery, EventStore, ExportHook, InsertOutcome,
    MinuteCount, Result, RetentionReport, SchemaDiff, SchemaReport, StoreError, MAX_STORED_MS,
};
use rows::{
    AlertRow, ColumnRow, CountRow, EventRow, IdRow, KeyRow, MigrationRow, MinuteRow, NextRow,
    PageRow, PartitionRow,
};

pub use clickhouse::Client;

/// The DDL files, in order: `(version, name, text)`. A unit test checks
/// this list against the directory, so a new file cannot be forgotten.
pub const MIGRATIONS: &[(u32, &str, &str)] = &[
    (
        1,
        "0001_events",
        include_str!("../../../../schemas/clickhouse/0001_events.sql"),
    ),
    (
        2,
        "0002_clients",
        include_str!("../../../../schemas/clickhouse/0002_clients.sql"),
    ),
    (
        3,
        "0003_alerts",
        include_str!("../../../../schemas/clickhouse/0003_alerts.sql"),
    ),
    (
        4,
        "0004_revocations",
        include_str!("../../../../schemas/clickhouse/0004_revocations.sql"),
    ),
    (
        5,
        "0005_events_per_minute",
        include_str!("../../../../schemas/clickhouse/0005_events_per_minute.sql"),
    ),
    (
        6,
        "0006_alerts_by_time",
        include_str!("../../../../schemas/clickhouse/0006_alerts_by_time.sql"),
    ),
];

/// The query files, by name. Also checked against the directory.
pub mod queries {
    macro_rules! q {
        ($name:ident, $file:literal) => {
            pub const $name: &str =
                include_str!(concat!("../../../../schemas/clickhouse/queries/", $file));
        };
    }
    q!(DATABASE_CREATE, "database_create.sql");
    q!(MIGRATIONS_CREATE, "migrations_create.sql");
    q!(MIGRATIONS_APPLIED, "migrations_applied.sql");
    q!(MIGRATIONS_RECORD, "migrations_record.sql");
    q!(PING, "ping.sql");
    q!(EVENTS_EXISTING, "events_existing.sql");
    q!(EVENTS_INSERT, "events_insert.sql");
    q!(EVENTS_PAGE, "events_page.sql");
    q!(EVENTS_SPAN, "events_span.sql");
    q!(EVENTS_COUNT, "events_count.sql");
    q!(EVENTS_BY_MINUTE, "events_by_minute.sql");
    q!(ALERTS_INSERT, "alerts_insert.sql");
    q!(ALERTS_PAGE, "alerts_page.sql");
    q!(ALERTS_RAW, "alerts_raw.sql");
    q!(ALERTS_SPAN, "alerts_span.sql");
    q!(SCHEMA_COLUMNS, "schema_columns.sql");
    q!(PARTITIONS_LIST, "partitions_list.sql");
    q!(PARTITION_DROP, "partition_drop.sql");

    /// Every file above, for the directory check.
    pub const ALL: &[&str] = &[
        "database_create.sql",
        "migrations_create.sql",
        "migrations_applied.sql",
        "migrations_record.sql",
        "ping.sql",
        "events_existing.sql",
        "events_insert.sql",
        "events_page.sql",
        "events_span.sql",
        "events_count.sql",
        "events_by_minute.sql",
        "alerts_insert.sql",
        "alerts_page.sql",
        "alerts_raw.sql",
        "alerts_span.sql",
        "schema_columns.sql",
        "partitions_list.sql",
        "partition_drop.sql",
    ];
}

/// The columns (name, ClickHouse type) the code reads and writes, per table.
pub const EXPECTED_COLUMNS: &[(&str, &[(&str, &str)])] = &[
    (
        "events",
        &[
            ("event_id", "String"),
            ("event_type", "String"),
            ("schema_version", "UInt32"),
            ("occurred_at", "DateTime('UTC')"),
            ("occurred_at_ms", "UInt64"),
            ("issuer", "String"),
            ("client_id", "Nullable(String)"),
            ("actor_kind", "String"),
            ("actor_id", "Nullable(String)"),
            ("source_ip", "Nullable(String)"),
            ("request_id", "Nullable(String)"),
            ("correlation_id", "Nullable(String)"),
            ("raw", "String"),
        ],
    ),
    (
        "alerts_by_time",
        &[
            ("alert_id", "String"),
            ("kind", "String"),
            ("severity", "String"),
            ("score", "Float64"),
            ("client_id", "String"),
            ("status", "String"),
            ("dedup_key", "String"),
            ("created_at", "DateTime('UTC')"),
            ("created_at_ms", "UInt64"),
            ("updated_at", "DateTime('UTC')"),
            ("updated_at_ms", "UInt64"),
            ("event_ids", "Array(String)"),
            ("related_client_ids", "Array(String)"),
            ("summary", "String"),
            ("raw", "String"),
        ],
    ),
    (
        "events_per_minute",
        &[
            ("event_type", "String"),
            ("minute", "DateTime('UTC')"),
            ("events", "UInt64"),
        ],
    ),
    (
        "clients",
        &[("client_id", "String"), ("version_ms", "UInt64")],
    ),
    (
        "revocations",
        &[("revocation_id", "String"), ("updated_at_ms", "UInt64")],
    ),
    (
        "regwatch_migrations",
        &[("version", "UInt32"), ("name", "String")],
    ),
];

/// Ids per existence check: one query for a default 5,000-event batch,
/// still below `max_query_size` (256 KiB by default; 5,000 quoted UUIDs
/// are 200,000 bytes).
const EXISTING_CHUNK: usize = 5000;

/// Event ids the recent-ids set holds by default (~13 MB).
pub const DEFAULT_RECENT_IDS: usize = 1 << 18;

/// Event ids known to be stored: written by this instance (after
/// ClickHouse acknowledged the insert) or reported stored by an existence
/// check. Bounded: the oldest entry leaves first. See the module docs for
/// why it may only ever answer "stored".
struct RecentIds {
    capacity: usize,
    set: HashSet<Uuid>,
    order: VecDeque<Uuid>,
}

impl RecentIds {
    fn new(capacity: usize) -> Self {
        RecentIds {
            capacity,
            set: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    fn contains(&self, id: &Uuid) -> bool {
        self.set.contains(id)
    }

    fn insert(&mut self, id: Uuid) {
        if self.capacity == 0 || !self.set.insert(id) {
            return;
        }
        self.order.push_back(id);
        if self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    fn clear(&mut self) {
        self.set.clear();
        self.order.clear();
    }
}

/// Cut a page fetched with `limit + 1` rows down to `limit`; the cursor
/// of its last row when there was more.
fn trim_page<R: SortKey>(rows: &mut Vec<R>, limit: u32) -> Option<String> {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    match rows.last() {
        Some(last) if more => Some(cursor::encode(last.sort_ms(), last.sort_id())),
        _ => None,
    }
}

/// The first time window one event page query covers. ClickHouse 18.16
/// cannot stop reading at `LIMIT` when rows must come out in sort-key order
/// (no read-in-order optimization, and `FINAL` merges whatever it reads),
/// so one query over `[cursor, until)` reads every event after the cursor:
/// 1 s per page at 700k events left, which made a start-up rebuild of 1M
/// events take quarter of an hour (BENCHMARKS.md, "Detector state
/// rebuild"). A page is read window by window instead: a window this wide
/// is read directly (at 1,000 events/s it holds ten API pages); a wider one
/// is counted first and narrowed when dense (`ClickHouseStore::read_page`).
const PAGE_WINDOW_MS: u64 = 10_000;

/// The first window an alerts page reads. Alerts are far sparser than
/// events (an ongoing condition updates one alert), so the first window is
/// wide, and counted before it is read like any window wider than
/// [`PAGE_WINDOW_MS`].
const ALERT_WINDOW_MS: u64 = 3_600_000;

/// Events per [`EventStore::scan_events`] batch.
const SCAN_PAGE: usize = 10_000;

/// The page filters as query values (`any_*` = 1 when unset).
struct PageFilters([(&'static str, Lit); 4]);

impl PageFilters {
    fn new(q: &EventQuery) -> Self {
        let (any_type, event_type) = opt_str(q.event_type.map(|t| t.as_str().to_string()));
        let (any_client, client_id) = opt_str(q.client_id.clone());
        PageFilters([
            ("any_event_type", Lit::UInt(any_type)),
            ("event_type", event_type),
            ("any_client_id", Lit::UInt(any_client)),
            ("client_id", client_id),
        ])
    }

    /// The events table's windowed read with these filters.
    fn windowed(&self) -> Windowed<'_> {
        Windowed {
            page: queries::EVENTS_PAGE,
            page_filters: &self.0,
            span: queries::EVENTS_SPAN,
            span_filters: &self.0,
        }
    }
}

/// What [`ClickHouseStore::read_page`] reads: one table's page query and
/// span query (query files), with the filter values each takes. Both take
/// the same filters except where the span cannot judge one cheaply (the
/// alerts' status, which needs FINAL): a span that ignores a filter counts
/// too much, which only narrows a window more than needed or jumps short of
/// the next match, never past it.
struct Windowed<'a> {
    /// `since_ms`, `until_ms`, `after_ms`, `after_id`, `limit` and the page
    /// filters; rows in `(ms, id)` order.
    page: &'static str,
    page_filters: &'a [(&'static str, Lit)],
    /// `from_ms`, `until_ms` and the span filters; one row `(count, first ms)`.
    span: &'static str,
    span_filters: &'a [(&'static str, Lit)],
}

/// A page row's sort key `(ms, id)`: what a page cursor resumes after.
trait SortKey {
    fn sort_ms(&self) -> u64;
    fn sort_id(&self) -> &str;
}

impl SortKey for PageRow {
    fn sort_ms(&self) -> u64 {
        self.occurred_at_ms
    }
    fn sort_id(&self) -> &str {
        &self.event_id
    }
}

impl SortKey for KeyRow {
    fn sort_ms(&self) -> u64 {
        self.ms
    }
    fn sort_id(&self) -> &str {
        &self.id
    }
}

/// A query file without its `--` comment lines, ready to render.
fn template(file: &str) -> String {
    file.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

fn render(file: &str, values: &[(&str, Lit)]) -> Result<String> {
    sql::render(&template(file), values)
}

/// Creates `database` if missing, then applies every DDL file not yet in its
/// `regwatch_migrations` ledger, in order, recording each. `client` must not
/// carry a default database that does not exist yet (the database is
/// created through it). Returns the names applied now.
///
/// Every statement can run again (ClickHouse has no transactional DDL, so a
/// run that stops midway repeats the file): `IF NOT EXISTS` throughout, and
/// 0006's copy is safe to repeat. Two instances migrating at once converge;
/// while one runs 0006's move the other may fail (the table it copies from
/// is dropped under it), and succeeds when started again.
pub async fn migrate(client: &Client, database: &str) -> Result<Vec<String>> {
    migrate_through(client, database, u32::MAX).await
}

/// [`migrate`], stopping after migration `last`: how a database created by
/// an older release looks (the upgrade tests start from one).
pub async fn migrate_through(client: &Client, database: &str, last: u32) -> Result<Vec<String>> {
    sql::check_ident(database)?;
    let create = render(
        queries::DATABASE_CREATE,
        &[("database", Lit::Ident(database.into()))],
    )?;
    client.query_raw(&create).execute().await?;
    let db = client.clone().with_database(database);
    db.query_raw(&template(queries::MIGRATIONS_CREATE))
        .execute()
        .await?;
    let applied: HashSet<u32> = db
        .query_raw(&template(queries::MIGRATIONS_APPLIED))
        .fetch_all::<MigrationRow>()
        .await?
        .into_iter()
        .map(|r| r.version)
        .collect();
    let mut now_applied = Vec::new();
    for (version, name, text) in MIGRATIONS.iter().filter(|(v, ..)| *v <= last) {
        if applied.contains(version) {
            continue;
        }
        let wrap = |source: StoreError| StoreError::Migration {
            name: (*name).to_string(),
            source: Box::new(source),
        };
        for statement in sql::statements(text) {
            db.query_raw(&statement)
                .execute()
                .await
                .map_err(|e| wrap(e.into()))?;
        }
        let record = render(
            queries::MIGRATIONS_RECORD,
            &[
                ("version", Lit::UInt(u64::from(*version))),
                ("name", Lit::Str((*name).to_string())),
            ],
        )?;
        db.query_raw(&record)
            .execute()
            .await
            .map_err(|e| wrap(e.into()))?;
        tracing::info!(database, migration = name, "clickhouse migration applied");
        now_applied.push((*name).to_string());
    }
    Ok(now_applied)
}

/// The ClickHouse event store for one database.
pub struct ClickHouseStore {
    /// Bound to `database`; validation off (see the module docs).
    client: Client,
    /// Needed by the `system.*` queries (schema check, partitions).
    database: String,
    /// Serializes existence-check + insert within this process (see the
    /// module docs on the race), and guards the ids known to be stored.
    insert_lock: Mutex<RecentIds>,
}

impl ClickHouseStore {
    /// Connects to `url` (e.g. `http://127.0.0.1:8123`), creates and
    /// migrates `database`, and returns the store.
    pub async fn connect(url: &str, database: &str) -> Result<Self> {
        let client = Client::default().with_url(url).with_validation(false);
        migrate(&client, database).await?;
        Self::new(client, database)
    }

    /// A store on an already migrated `database`. `client` is used with
    /// validation off.
    pub fn new(client: Client, database: &str) -> Result<Self> {
        sql::check_ident(database)?;
        Ok(ClickHouseStore {
            client: client.with_validation(false).with_database(database),
            database: database.to_string(),
            insert_lock: Mutex::new(RecentIds::new(DEFAULT_RECENT_IDS)),
        })
    }

    /// How many recently stored event ids this instance remembers to skip
    /// the existence check on a replay ([`DEFAULT_RECENT_IDS`]; 0 turns the
    /// memory off, every id is then checked).
    pub fn with_recent_ids(self, capacity: usize) -> Self {
        ClickHouseStore {
            insert_lock: Mutex::new(RecentIds::new(capacity)),
            ..self
        }
    }

    /// The client, bound to this store's database (for exports and tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// Up to `want` rows of `w` (events, or alert keys) after `after` with
    /// sort-key milliseconds in `[since, until)`, in sort-key order, read
    /// window by window (see [`PAGE_WINDOW_MS`]), starting with
    /// `[lo, lo + window)`:
    /// - a window wider than [`PAGE_WINDOW_MS`] is counted first (`w.span`,
    ///   sort key and filter columns only) and narrowed to about 1.25x what
    ///   the page still needs when it holds more than twice that, so a dense
    ///   stretch is never read whole;
    /// - a window with some rows but fewer than needed makes the next one 4x
    ///   wider; an empty one jumps to the next row the span accepts, keeping
    ///   the wider window (sparse data stays cheap).
    ///
    /// Also returns a window for the next page: about 1.25 pages at the
    /// density of the last window read.
    async fn read_page<R>(
        &self,
        w: &Windowed<'_>,
        since: u64,
        until: u64,
        after: &cursor::Position,
        want: usize,
        window: u64,
    ) -> Result<(Vec<R>, u64)>
    where
        R: clickhouse::RowOwned + clickhouse::RowRead + SortKey,
    {
        let mut lo = since.max(after.ms);
        let mut window = window.max(1);
        let mut rows: Vec<R> = Vec::new();
        while rows.len() < want && lo < until {
            let need = (want - rows.len()) as u64;
            let mut hi = lo.saturating_add(window).min(until);
            if hi - lo > PAGE_WINDOW_MS {
                let span = self.span(w, lo, hi).await?;
                if span.events == 0 {
                    match self.next_event_ms(w, hi, until).await? {
                        Some(ms) => lo = ms,
                        None => break,
                    }
                    window = window.saturating_mul(4);
                    continue;
                }
                if span.events > 2 * need {
                    window = ((hi - lo).saturating_mul(need + need / 4) / span.events).max(1);
                    hi = lo.saturating_add(window).min(until);
                }
            }
            let mut values = vec![
                ("since_ms", Lit::UInt(lo)),
                ("until_ms", Lit::UInt(hi)),
                ("after_ms", Lit::UInt(after.ms)),
                ("after_id", Lit::Str(after.id.clone())),
                ("limit", Lit::UInt(need)),
            ];
            values.extend(w.page_filters.iter().cloned());
            let sql = render(w.page, &values)?;
            let got = self.client.query_raw(&sql).fetch_all::<R>().await?;
            if got.is_empty() {
                match self.next_event_ms(w, hi, until).await? {
                    Some(ms) => lo = ms,
                    None => break,
                }
                window = window.saturating_mul(4);
                continue;
            }
            let (n, last_ms) = (got.len() as u64, got[got.len() - 1].sort_ms());
            rows.extend(got);
            if n >= need {
                // `n` rows in `last_ms - lo + 1` ms: a window for `want`
                // rows at that density, plus a quarter.
                let span = (last_ms.saturating_sub(lo) + 1).saturating_mul(want as u64) / n;
                return Ok((rows, span.saturating_add(span / 4).max(1)));
            }
            lo = hi;
            window = window.saturating_mul(4);
        }
        Ok((rows, window))
    }

    /// How many rows the span filters accept in `[from, until)`, and the
    /// earliest one's sort-key milliseconds.
    async fn span(&self, w: &Windowed<'_>, from: u64, until: u64) -> Result<NextRow> {
        let mut values = vec![("from_ms", Lit::UInt(from)), ("until_ms", Lit::UInt(until))];
        values.extend(w.span_filters.iter().cloned());
        let sql = render(w.span, &values)?;
        Ok(self.client.query_raw(&sql).fetch_one::<NextRow>().await?)
    }

    /// The first row the span filters accept at or after `from` (and before
    /// `until`); always `>= from`, so a caller moving to it moves forward.
    async fn next_event_ms(&self, w: &Windowed<'_>, from: u64, until: u64) -> Result<Option<u64>> {
        let span = self.span(w, from, until).await?;
        Ok((span.events > 0).then_some(span.first_ms.max(from)))
    }

    /// Which of `rows` are stored already, one query per
    /// [`EXISTING_CHUNK`] ids, each bounded by its rows' time range.
    async fn existing_ids(&self, rows: &[(&WireEvent, EventColumns)]) -> Result<HashSet<Uuid>> {
        let mut found = HashSet::new();
        for chunk in rows.chunks(EXISTING_CHUNK) {
            let min_ms = chunk
                .iter()
                .map(|(_, c)| c.occurred_at_ms)
                .min()
                .unwrap_or(0);
            let max_ms = chunk
                .iter()
                .map(|(_, c)| c.occurred_at_ms)
                .max()
                .unwrap_or(0);
            let q = render(
                queries::EVENTS_EXISTING,
                &[
                    ("min_ms", Lit::UInt(min_ms)),
                    ("max_ms", Lit::UInt(max_ms)),
                    (
                        "event_ids",
                        Lit::StrList(chunk.iter().map(|(_, c)| c.event_id.clone()).collect()),
                    ),
                ],
            )?;
            for row in self.client.query_raw(&q).fetch_all::<IdRow>().await? {
                // Only ids of this chunk can match, and they parse.
                if let Ok(id) = Uuid::parse_str(&row.event_id) {
                    found.insert(id);
                }
            }
        }
        Ok(found)
    }
}

fn parse_envelope(id: &str, raw: &str) -> Result<Envelope> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
        what: "event",
        id: id.to_string(),
        reason: e.to_string(),
    })
}

fn opt_str(v: Option<String>) -> (u64, Lit) {
    match v {
        Some(s) => (0, Lit::Str(s)),
        None => (1, Lit::Str(String::new())),
    }
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

/// The differences between live columns and [`EXPECTED_COLUMNS`].
fn compare_columns(live: &BTreeMap<String, BTreeMap<String, String>>) -> SchemaReport {
    let mut report = SchemaReport::default();
    for (table, columns) in EXPECTED_COLUMNS {
        let Some(have) = live.get(*table) else {
            report.differences.push(SchemaDiff::MissingTable {
                table: table.to_string(),
            });
            continue;
        };
        for (column, expected) in *columns {
            match have.get(*column) {
                None => report.differences.push(SchemaDiff::MissingColumn {
                    table: table.to_string(),
                    column: column.to_string(),
                    expected: expected.to_string(),
                }),
                // 18.16 prints `DateTime('UTC')`, 26.x the same; compare
                // without spaces so a formatting change is not drift.
                Some(found) if found.replace(' ', "") != expected.replace(' ', "") => {
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
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_files(dir: &str) -> Vec<String> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let mut names: Vec<String> = std::fs::read_dir(&path)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".sql"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn every_ddl_file_is_a_migration_in_order() {
        let files = dir_files("../../schemas/clickhouse");
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|(_, n, _)| format!("{n}.sql"))
            .collect();
        assert_eq!(files, listed);
        for (i, (version, name, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, i + 1);
            assert!(name.starts_with(&format!("{version:04}_")), "{name}");
        }
    }

    #[test]
    fn every_query_file_is_known() {
        let mut listed: Vec<String> = queries::ALL.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(dir_files("../../schemas/clickhouse/queries"), listed);
    }

    fn insert_columns(file: &str) -> Vec<String> {
        let t = template(file);
        let open = t.find('(').unwrap_or(0);
        let close = t.find(')').unwrap_or(0);
        t[open + 1..close]
            .split(',')
            .map(|c| c.trim().to_string())
            .collect()
    }

    #[test]
    fn insert_mirrors_match_the_row_structs() {
        use clickhouse::Row;
        assert_eq!(
            insert_columns(queries::EVENTS_INSERT),
            EventRow::<'static>::COLUMN_NAMES
        );
        assert_eq!(
            insert_columns(queries::ALERTS_INSERT),
            AlertRow::COLUMN_NAMES
        );
        let expected = |table: &str| -> Vec<&str> {
            EXPECTED_COLUMNS
                .iter()
                .find(|(t, _)| *t == table)
                .map(|(_, c)| c.iter().map(|(n, _)| *n).collect())
                .unwrap_or_default()
        };
        assert_eq!(
            EventRow::<'static>::COLUMN_NAMES,
            expected("events").as_slice()
        );
        assert_eq!(
            AlertRow::COLUMN_NAMES,
            expected("alerts_by_time").as_slice()
        );
    }

    #[test]
    fn schema_compare_names_each_difference() {
        let mut live: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for (table, cols) in EXPECTED_COLUMNS {
            let t = live.entry(table.to_string()).or_default();
            for (c, ty) in *cols {
                t.insert(c.to_string(), ty.to_string());
            }
        }
        assert!(compare_columns(&live).is_ok());
        if let Some(events) = live.get_mut("events") {
            events.remove("source_ip");
            events.insert("schema_version".into(), "UInt8".into());
        }
        live.remove("revocations");
        let diffs = compare_columns(&live).differences;
        assert_eq!(diffs.len(), 3, "{diffs:?}");
        assert!(diffs.iter().any(
            |d| matches!(d, SchemaDiff::MissingColumn { column, .. } if column == "source_ip")
        ));
        assert!(diffs
            .iter()
            .any(|d| matches!(d, SchemaDiff::WrongType { found, .. } if found == "UInt8")));
        assert!(diffs
            .iter()
            .any(|d| matches!(d, SchemaDiff::MissingTable { table } if table == "revocations")));
    }
}
