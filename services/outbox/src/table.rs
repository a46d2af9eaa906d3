//! The outbox table's shape.
//!
//! The authorization server creates the table in its migration 0001
//! (`services/authz/migrations/`), beside the clients and tokens whose
//! changes it records; shipped migrations are never edited. [`TABLE_DDL`]
//! is the same statements, kept here so that a database without the
//! authorization server (this crate's tests, the relay's) gets the same
//! table; a test in authz fails if the two drift apart.

use sqlx::{AnyPool, Executor};

use crate::Result;

/// The outbox table and its index, as in authz migration 0001.
/// `{{PK_AUTOINC}}` is the auto-incrementing key of the dialect (the one
/// substitution the migration runner makes).
pub const TABLE_DDL: &str = "\
CREATE TABLE outbox (
    seq         {{PK_AUTOINC}},
    event_id    TEXT NOT NULL UNIQUE,
    event_type  TEXT NOT NULL,
    client_id   TEXT,
    payload     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    published_at BIGINT
);
CREATE INDEX outbox_unpublished ON outbox (published_at, seq);
";

/// Create the outbox table on `pool` unless it exists.
pub async fn create_table(pool: &AnyPool) -> Result<()> {
    let mut conn = pool.acquire().await?;
    let pk = if conn.backend_name().eq_ignore_ascii_case("sqlite") {
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    } else {
        "BIGSERIAL PRIMARY KEY"
    };
    let ddl = TABLE_DDL
        .replace("{{PK_AUTOINC}}", pk)
        .replace("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ")
        .replace("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ");
    for statement in ddl.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        conn.execute(statement).await?;
    }
    Ok(())
}
