//! Writing events into the outbox, always inside the caller's transaction:
//! the caller's state change and its event commit together or not at all.
//!
//! Every `INSERT INTO outbox` of the workspace is in this file: one row
//! ([`append`]), many rows in one statement ([`append_all`], the group
//! commit of registrations), and the same on a rusqlite connection
//! ([`append_rusqlite`], the SQLite registration writer).

use regwatch_schemas::Envelope;
use sqlx::{Any, Transaction};

use crate::Result;

const COLUMNS: &str =
    "INSERT INTO outbox (event_id, event_type, client_id, payload, created_at) VALUES ";

/// The column values of one event's row.
struct RowValues {
    event_id: String,
    event_type: &'static str,
    client_id: Option<String>,
    payload: String,
    created_at: i64,
}

impl RowValues {
    fn of(ev: &Envelope) -> Result<Self> {
        Ok(RowValues {
            event_id: ev.event_id.to_string(),
            event_type: ev.event_type().as_str(),
            client_id: ev.client_id.clone(),
            payload: serde_json::to_string(ev)?,
            created_at: ev.occurred_at.timestamp_millis(),
        })
    }
}

/// Append `ev` inside `tx`.
pub async fn append(tx: &mut Transaction<'_, Any>, ev: &Envelope) -> Result<()> {
    append_all(tx, std::iter::once(ev)).await
}

/// Rows per `INSERT` statement: 5,000 bound values, well under SQLite's
/// (32,766) and PostgreSQL's (65,535) limits.
const ROWS_PER_STATEMENT: usize = 1_000;

/// Append every event of `events`, in order, inside `tx`, as multi-row
/// `INSERT`s (one round trip per [`ROWS_PER_STATEMENT`] events). Nothing
/// for an empty list.
pub async fn append_all<'e>(
    tx: &mut Transaction<'_, Any>,
    events: impl IntoIterator<Item = &'e Envelope>,
) -> Result<()> {
    let rows = events
        .into_iter()
        .map(RowValues::of)
        .collect::<Result<Vec<_>>>()?;
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<RowValues> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
        let sql = insert_sql(chunk.len());
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.event_id)
                .bind(r.event_type)
                .bind(r.client_id)
                .bind(r.payload)
                .bind(r.created_at);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// `INSERT … VALUES ($1,…,$5),($6,…,$10),…` for `rows` rows (`$n`
/// placeholders, which SQLite and PostgreSQL both accept).
fn insert_sql(rows: usize) -> String {
    let mut sql = String::with_capacity(COLUMNS.len() + rows * 24);
    sql.push_str(COLUMNS);
    for i in 0..rows {
        let b = i * 5;
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "(${},${},${},${},${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5
        ));
    }
    sql
}

/// Append every event of `events`, in order, on `conn`, which must be
/// inside a transaction the caller commits (a `rusqlite::Transaction`
/// dereferences to its connection). The statement is prepared once per
/// connection and cached.
#[cfg(feature = "rusqlite")]
pub fn append_rusqlite<'e>(
    conn: &rusqlite::Connection,
    events: impl IntoIterator<Item = &'e Envelope>,
) -> Result<()> {
    let mut ins = conn.prepare_cached(
        "INSERT INTO outbox (event_id, event_type, client_id, payload, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for ev in events {
        let r = RowValues::of(ev)?;
        ins.execute(rusqlite::params![
            r.event_id,
            r.event_type,
            r.client_id,
            r.payload,
            r.created_at
        ])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_every_row() {
        assert_eq!(
            insert_sql(2).trim_start_matches(COLUMNS),
            "($1,$2,$3,$4,$5),($6,$7,$8,$9,$10)"
        );
    }
}
