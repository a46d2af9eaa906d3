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
//!
//! Layout: this file holds the store and its constructors; `schema` the DDL
//! and query files, the migration runner and the expected columns; `ids`
//! the recent-ids memory and the existence check; `page` the windowed page
//! reader; `event_store` the `EventStore` implementation (event and alert
//! writes and pages, retention, ping, schema check); `rows` the row structs.

mod event_store;
mod ids;
mod page;
mod rows;
mod schema;
#[cfg(test)]
mod tests;

use tokio::sync::Mutex;

use crate::sql;
use crate::Result;
use ids::RecentIds;

pub use clickhouse::Client;
pub use ids::DEFAULT_RECENT_IDS;
pub use schema::{migrate, migrate_through, queries, EXPECTED_COLUMNS, MIGRATIONS};

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
}
