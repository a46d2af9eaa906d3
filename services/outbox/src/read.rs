//! [`Outbox`]: reading the outbox, for the relay (unpublished rows, marked
//! once the broker acknowledged them) and the embedded pipeline (rows after
//! a cursor); and recording an event that changes no state.

use regwatch_schemas::Envelope;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::{OutboxRow, Result};

const AFTER: &str = "SELECT seq, event_id, event_type, client_id, payload, created_at \
     FROM outbox WHERE seq > $1 ORDER BY seq LIMIT $2";
const UNPUBLISHED: &str = "SELECT seq, event_id, event_type, client_id, payload, created_at \
     FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT $1";

/// A handle on the outbox table of one database; cheap to clone (it shares
/// the pool). Built from the pool of whoever owns the database (the
/// authorization server's store), so readers and writers share its
/// connections and its SQLite settings.
#[derive(Clone, Debug)]
pub struct Outbox {
    pool: AnyPool,
}

impl Outbox {
    pub fn new(pool: AnyPool) -> Self {
        Outbox { pool }
    }

    /// Append an event that changes no state (a rejected registration, a
    /// refused authorization) in a transaction of its own. An event that
    /// goes with a state change is appended with [`crate::append`] in that
    /// change's transaction instead.
    pub async fn record(&self, ev: &Envelope) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        crate::append(&mut tx, ev).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Rows with `seq > after`, oldest first, at most `limit` (the embedded
    /// pipeline's cursor).
    pub async fn after(&self, after: i64, limit: u32) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query(AFTER)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row).collect()
    }

    /// Rows not yet marked published, oldest first, at most `limit` (the
    /// relay's work list).
    pub async fn unpublished(&self, limit: u32) -> Result<Vec<OutboxRow>> {
        let rows = sqlx::query(UNPUBLISHED)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row).collect()
    }

    /// Mark rows published at `now_ms`, in one transaction. The relay calls
    /// it only with rows the broker acknowledged.
    pub async fn mark_published(&self, seqs: &[i64], now_ms: i64) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for s in seqs {
            sqlx::query("UPDATE outbox SET published_at = $1 WHERE seq = $2")
                .bind(now_ms)
                .bind(*s)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Rows not yet published (the relay's backlog gauge).
    pub async fn backlog(&self) -> Result<i64> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM outbox WHERE published_at IS NULL")
                .fetch_one(&self.pool)
                .await?
                .try_get("n")?,
        )
    }

    /// Every row, published or not.
    pub async fn count(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM outbox")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }
}

fn row(r: &AnyRow) -> Result<OutboxRow> {
    Ok(OutboxRow {
        seq: r.try_get("seq")?,
        event_id: r.try_get("event_id")?,
        event_type: r.try_get("event_type")?,
        client_id: r.try_get("client_id")?,
        payload: r.try_get("payload")?,
        created_at: r.try_get("created_at")?,
    })
}
