//! Group commit for registrations. A registration is one client row and
//! one outbox row; committing each on its own costs a transaction per
//! request, and SQLite has a single writer. The writer takes what is
//! queued (up to [`MAX_BATCH`]) and commits it in one transaction, so under
//! load many registrations share a commit while a lone one still commits
//! at once. Each registration's state and event stay in the same
//! transaction; if a batch fails, its members are retried one by one so
//! only the faulty one fails.
//!
//! On SQLite the writer is a dedicated thread with its own connection
//! (rusqlite, on the same bundled SQLite as sqlx). Measured: sqlx's
//! SQLite driver hands every statement to its worker thread and back, and
//! those thread wake-ups, not SQLite, bounded registration throughput
//! (BENCHMARKS.md). One hop in and one out per batch removes that. On
//! PostgreSQL the writer is a task using the pool.

use regwatch_schemas::Envelope;
use tokio::sync::{mpsc, oneshot};

use super::{ClientRow, Result, Store, StoreError};

/// Most registrations per transaction.
pub const MAX_BATCH: usize = 256;

struct Job {
    row: ClientRow,
    ev: Envelope,
    done: oneshot::Sender<Result<()>>,
}

/// Handle to the writer; cheap to clone. The writer stops when the last
/// handle is dropped.
#[derive(Clone)]
pub struct RegistrationWriter {
    tx: mpsc::Sender<Job>,
}

impl RegistrationWriter {
    /// Start the writer for `store`.
    pub fn spawn(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        match store.sqlite_path().map(|p| p.to_path_buf()) {
            Some(path) => {
                let spawned = std::thread::Builder::new()
                    .name("regwatch-reg-writer".into())
                    .spawn(move || sqlite_writer(store, path, rx));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "could not start the registration writer");
                }
            }
            None => {
                tokio::spawn(pool_writer(store, rx));
            }
        }
        RegistrationWriter { tx }
    }

    /// Store a client and its event; resolves once committed.
    pub async fn insert(&self, row: ClientRow, ev: Envelope) -> Result<()> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job { row, ev, done })
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        wait.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// Take the first job (waiting) and whatever else is queued.
fn fill(first: Job, rx: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    batch.push(first);
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(j) => batch.push(j),
            Err(_) => break,
        }
    }
}

async fn pool_writer(store: Store, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        fill(first, &mut rx, &mut batch);
        if batch.len() > 1 {
            let items: Vec<(ClientRow, Envelope)> = batch
                .iter()
                .map(|j| (j.row.clone(), j.ev.clone()))
                .collect();
            if store.insert_clients_batch(&items).await.is_ok() {
                for j in batch.drain(..) {
                    let _ = j.done.send(Ok(()));
                }
                continue;
            }
        }
        for j in batch.drain(..) {
            let res = store.insert_client(&j.row, &j.ev).await;
            let _ = j.done.send(res);
        }
    }
}

fn open(path: &std::path::Path) -> rusqlite::Result<rusqlite::Connection> {
    let c = rusqlite::Connection::open(path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(c)
}

fn sqlite_writer(store: Store, path: std::path::PathBuf, mut rx: mpsc::Receiver<Job>) {
    let mut conn = match open(&path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "registration writer cannot open the database");
            while let Some(j) = rx.blocking_recv() {
                let _ = j.done.send(Err(StoreError::WriterStopped));
            }
            return;
        }
    };
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        fill(first, &mut rx, &mut batch);
        if batch.len() > 1 && write(&store, &mut conn, &batch).is_ok() {
            for j in batch.drain(..) {
                let _ = j.done.send(Ok(()));
            }
            continue;
        }
        for j in batch.drain(..) {
            let res = write(&store, &mut conn, std::slice::from_ref(&j));
            let _ = j.done.send(res);
        }
    }
}

/// One transaction for `jobs`: every client row, then every event.
fn write(store: &Store, conn: &mut rusqlite::Connection, jobs: &[Job]) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO clients (client_id, registration_method, metadata, secret_hash, rat_hash, status, created_at, updated_at, last_seen_at, consented_at, source_ip, version) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )?;
        for j in jobs {
            let c = &j.row;
            let md = serde_json::to_string(&c.metadata)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            ins.execute(rusqlite::params![
                c.client_id,
                super::method_str(c.registration_method),
                md,
                c.secret_hash,
                c.rat_hash,
                c.status.as_str(),
                c.created_at,
                c.updated_at,
                c.last_seen_at,
                c.consented_at,
                c.source_ip,
                c.version
            ])?;
        }
    }
    store.check_fault()?;
    regwatch_outbox::append_rusqlite(&tx, jobs.iter().map(|j| &j.ev))?;
    tx.commit()?;
    Ok(())
}
