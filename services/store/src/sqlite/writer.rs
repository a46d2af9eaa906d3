//! The SQLite store's writer: one thread, one rusqlite connection, one
//! transaction per batch.
//!
//! Why: sqlx's SQLite driver runs every statement on its worker thread and
//! hands the result back, so a 5,000-event batch cost 10,000 thread
//! hand-offs and capped the embedded pipeline at ~11k events/s
//! (BENCHMARKS.md). The authorization server's registration writer solved
//! the same problem the same way (`regwatch_authz::store::batch`). Here a
//! batch crosses to the writer thread once, runs as one `BEGIN IMMEDIATE`
//! transaction of prepared statements, and its result crosses back once.
//!
//! The connection is on the same file as the store's sqlx pool (reads,
//! retention), in WAL mode with the same busy timeout, so readers never
//! block the writer and a second writer (another process, retention)
//! waits instead of failing. Dedup is unchanged: `INSERT OR IGNORE` on the
//! `event_id` primary key, and the count of rows it really inserted is
//! what `insert_events` reports as new.

use std::ops::Range;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use crate::{EventColumns, Result, StoreError};
use regwatch_schemas::WireEvent;

/// How long a writer waits for another writer's lock before giving up with
/// a retryable error (both connections use it).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Batches waiting for the writer (each caller awaits its own).
const QUEUE: usize = 16;

const INSERT_EVENT: &str = "INSERT OR IGNORE INTO events (event_id, event_type, schema_version, \
     occurred_at_ms, issuer, client_id, actor_kind, actor_id, source_ip, request_id, \
     correlation_id, raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

// Latest updated_at wins; on a tie the last write wins (as
// ReplacingMergeTree keeps the last inserted of equal versions).
const UPSERT_ALERT: &str = "INSERT INTO alerts (alert_id, kind, severity, score, client_id, \
     status, dedup_key, created_at_ms, updated_at_ms, raw) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
     ON CONFLICT (alert_id) DO UPDATE SET kind = excluded.kind, \
     severity = excluded.severity, score = excluded.score, client_id = excluded.client_id, \
     status = excluded.status, dedup_key = excluded.dedup_key, \
     created_at_ms = excluded.created_at_ms, updated_at_ms = excluded.updated_at_ms, \
     raw = excluded.raw WHERE excluded.updated_at_ms >= alerts.updated_at_ms";

/// A batch of checked events, owned so it can cross to the writer thread.
/// Every string column of every row lives in one buffer (`text`), so a
/// batch costs a few allocations, not one per column per event.
pub(crate) struct EventRows {
    text: String,
    rows: Vec<EventRow>,
}

struct EventRow {
    event_id: Range<usize>,
    event_type: &'static str,
    schema_version: i64,
    occurred_at_ms: i64,
    issuer: Range<usize>,
    client_id: Option<Range<usize>>,
    actor_kind: &'static str,
    actor_id: Option<Range<usize>>,
    source_ip: Option<Range<usize>>,
    request_id: Option<Range<usize>>,
    correlation_id: Option<Range<usize>>,
    raw: Range<usize>,
}

impl EventRows {
    /// Room for `events` rows whose raw JSON totals `raw_bytes`.
    pub(crate) fn with_capacity(events: usize, raw_bytes: usize) -> Self {
        EventRows {
            // The raw JSON plus the id and the short columns.
            text: String::with_capacity(raw_bytes + events * 160),
            rows: Vec::with_capacity(events),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn put(&mut self, s: &str) -> Range<usize> {
        let start = self.text.len();
        self.text.push_str(s);
        start..self.text.len()
    }

    fn put_opt(&mut self, s: Option<&str>) -> Option<Range<usize>> {
        s.map(|s| self.put(s))
    }

    /// `cols` comes from `event_columns`, which bounds the timestamp.
    pub(crate) fn push(&mut self, ev: &WireEvent, cols: EventColumns) {
        let env = ev.envelope();
        let row = EventRow {
            event_id: self.put(&cols.event_id),
            event_type: cols.event_type,
            schema_version: i64::from(env.schema_version),
            occurred_at_ms: cols.occurred_at_ms as i64,
            issuer: self.put(&env.issuer),
            client_id: self.put_opt(env.client_id.as_deref()),
            actor_kind: cols.actor_kind,
            actor_id: self.put_opt(env.actor.id.as_deref()),
            source_ip: self.put_opt(env.source.as_ref().and_then(|s| s.ip.as_deref())),
            request_id: self.put_opt(env.request_id.as_deref()),
            correlation_id: self.put_opt(env.correlation_id.as_deref()),
            raw: self.put(ev.json()),
        };
        self.rows.push(row);
    }

    fn get(&self, r: &Range<usize>) -> &str {
        self.text.get(r.clone()).unwrap_or_default()
    }

    fn get_opt(&self, r: &Option<Range<usize>>) -> Option<&str> {
        r.as_ref().map(|r| self.get(r))
    }
}

/// An alert's columns, checked.
pub(crate) struct AlertRow {
    pub alert_id: String,
    pub kind: &'static str,
    pub severity: String,
    pub score: f64,
    pub client_id: String,
    pub status: String,
    pub dedup_key: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub raw: String,
}

enum Job {
    Events(EventRows, oneshot::Sender<Result<u64>>),
    Alerts(Vec<AlertRow>, oneshot::Sender<Result<()>>),
}

/// Handle to the writer thread. The thread finishes the queued batches and
/// stops when the handle is dropped (with the store).
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the sqlite writer thread stopped".into())
}

impl Writer {
    /// Starts the thread and waits until its connection is open, so a file
    /// that cannot be opened fails `SqliteStore::open`, not the first write.
    pub(crate) async fn spawn(path: &Path) -> Result<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (ready_tx, ready_rx) = oneshot::channel();
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("regwatch-store-writer".into())
            .spawn(move || run(path, rx, ready_tx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the sqlite writer: {e}")))?;
        ready_rx.await.map_err(|_| stopped())??;
        Ok(Writer { tx })
    }

    /// Inserts the rows in one transaction; returns how many were new.
    pub(crate) async fn insert_events(&self, rows: EventRows) -> Result<u64> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job::Events(rows, done))
            .await
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }

    /// Upserts the alerts, in order, in one transaction.
    pub(crate) async fn upsert_alerts(&self, rows: Vec<AlertRow>) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job::Alerts(rows, done))
            .await
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    c.busy_timeout(BUSY_TIMEOUT)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.pragma_update(None, "foreign_keys", "ON")?;
    // Measured on a 300k-event load (BENCHMARKS.md): most of a batch's cost
    // is the pages it dirties in the client index (random inserts), each
    // written to the WAL at commit and again at every checkpoint. A larger
    // page cache (grown only as used) keeps that index in memory, and
    // checkpointing every ~40 MiB instead of every ~4 MiB writes a hot page
    // back once per many batches instead of once per batch. The WAL file is
    // cut back to 64 MiB after a checkpoint.
    c.pragma_update(None, "cache_size", -32 * 1024)?;
    c.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    c.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(c)
}

fn run(path: PathBuf, mut rx: mpsc::Receiver<Job>, ready: oneshot::Sender<Result<()>>) {
    let mut conn = match open(&path) {
        Ok(c) => {
            let _ = ready.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = ready.send(Err(e.into()));
            return;
        }
    };
    while let Some(job) = rx.blocking_recv() {
        // A panic must not take the writer down with it: the transaction
        // (dropped while unwinding) rolls back, the caller gets an error,
        // the next batch runs as usual.
        match job {
            Job::Events(rows, done) => {
                let res = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    write_events(&mut conn, &rows).map_err(StoreError::from)
                }))
                .unwrap_or_else(|_| Err(StoreError::Rejected("sqlite writer panicked".into())));
                let _ = done.send(res);
            }
            Job::Alerts(rows, done) => {
                let res = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    write_alerts(&mut conn, &rows).map_err(StoreError::from)
                }))
                .unwrap_or_else(|_| Err(StoreError::Rejected("sqlite writer panicked".into())));
                let _ = done.send(res);
            }
        }
    }
}

fn write_events(conn: &mut Connection, rows: &EventRows) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut inserted = 0u64;
    {
        let mut st = tx.prepare_cached(INSERT_EVENT)?;
        for r in &rows.rows {
            inserted += st.execute(params![
                rows.get(&r.event_id),
                r.event_type,
                r.schema_version,
                r.occurred_at_ms,
                rows.get(&r.issuer),
                rows.get_opt(&r.client_id),
                r.actor_kind,
                rows.get_opt(&r.actor_id),
                rows.get_opt(&r.source_ip),
                rows.get_opt(&r.request_id),
                rows.get_opt(&r.correlation_id),
                rows.get(&r.raw),
            ])? as u64;
        }
    }
    tx.commit()?;
    Ok(inserted)
}

fn write_alerts(conn: &mut Connection, rows: &[AlertRow]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut st = tx.prepare_cached(UPSERT_ALERT)?;
        for a in rows {
            st.execute(params![
                a.alert_id,
                a.kind,
                a.severity,
                a.score,
                a.client_id,
                a.status,
                a.dedup_key,
                a.created_at_ms,
                a.updated_at_ms,
                a.raw,
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}
