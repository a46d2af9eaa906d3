//! The transactional outbox: the seam between the authorization server,
//! which writes events, and what publishes or reads them (the relay, the
//! embedded pipeline).
//!
//! The authorization server appends every event to the `outbox` table in
//! the same database transaction as the state change it describes
//! ([`append`], [`append_all`], and `append_rusqlite` for its SQLite
//! registration writer). Readers walk the table by its `seq` cursor through
//! an [`Outbox`] handle over the same database, SQLite or PostgreSQL,
//! through `sqlx::Any`. Neither side depends on the other: readers depend
//! on this crate and on the contract (`regwatch-schemas`), never on the
//! authorization server.
//!
//! Layout:
//! - this file: [`OutboxRow`] and [`OutboxError`];
//! - `append`: writing rows inside a caller's transaction (all the outbox's
//!   `INSERT`s);
//! - `read`: [`Outbox`], the cursor reader (`after`, `unpublished`,
//!   `mark_published`, `backlog`, `count`) and `record`, for an event
//!   that changes no state;
//! - `table`: the table's DDL ([`TABLE_DDL`]) and [`create_table`], for a
//!   database without the authorization server's migrations (tests).
//!
//! Invariants:
//! - A row is never written on its own: [`append`] takes the caller's
//!   transaction, so the event commits or rolls back with its state change.
//! - `seq` only grows. On SQLite (one writer) rows also commit in `seq`
//!   order, so a cursor reader ([`Outbox::after`], the embedded pipeline)
//!   never skips one. On PostgreSQL concurrent transactions may commit out
//!   of `seq` order, so the relay reads by state instead
//!   ([`Outbox::unpublished`]: every row not yet marked, whatever its seq).
//! - This crate does not interpret payloads: the JSON is the contract's
//!   [`Envelope`](regwatch_schemas::Envelope), read by whoever consumes it.

mod append;
mod read;
mod table;

#[cfg(feature = "rusqlite")]
pub use append::append_rusqlite;
pub use append::{append, append_all};
pub use read::Outbox;
pub use table::{create_table, TABLE_DDL};

/// One row of the outbox table: an event as serialized when its state
/// change committed, with the columns the readers select and key on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// The cursor: assigned at insert, increasing.
    pub seq: i64,
    /// The envelope's `event_id` (UUIDv7, text).
    pub event_id: String,
    /// The envelope's `event_type` wire name.
    pub event_type: String,
    /// The envelope's `client_id`, for keying without reading the payload.
    pub client_id: Option<String>,
    /// The envelope as JSON.
    pub payload: String,
    /// The envelope's `occurred_at`, in milliseconds.
    pub created_at: i64,
}

/// Why an outbox read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("event cannot be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
    #[cfg(feature = "rusqlite")]
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

pub type Result<T, E = OutboxError> = std::result::Result<T, E>;
