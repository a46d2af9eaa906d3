//! Migrations: numbered SQL files under `services/authz/migrations/`, one
//! set for both backends, applied in order and tracked in a table.
//!
//! Written here rather than with `sqlx::migrate!` because one file must
//! serve SQLite and PostgreSQL, and the two disagree on exactly one thing
//! we need (an auto-incrementing key, for the outbox cursor), which a
//! single `{{PK_AUTOINC}}` substitution settles.

use sqlx::{Executor, Row};

use super::{Backend, Result, Store, StoreError};

/// `(version, name, sql)`, in order. Never edit a shipped one: add a new file.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "clients_tokens_outbox",
        include_str!("../../migrations/0001_clients_tokens_outbox.sql"),
    ),
    (
        2,
        "authorization_codes",
        include_str!("../../migrations/0002_authorization_codes.sql"),
    ),
];

fn render(sql: &str, backend: Backend) -> String {
    let pk = match backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    sql.replace("{{PK_AUTOINC}}", pk)
}

/// Statements of a file: split on `;` at line ends (our files hold no
/// semicolons inside literals), comments dropped.
fn statements(sql: &str) -> Vec<String> {
    let body: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    body.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

pub(super) async fn run(store: &Store) -> Result<()> {
    let mut conn = store.pool.acquire().await?;
    if store.backend == Backend::Postgres {
        // Several authz instances may start at once: one migrates.
        conn.execute("SELECT pg_advisory_lock(7591)").await?;
    }
    let res = apply(store, &mut conn).await;
    if store.backend == Backend::Postgres {
        conn.execute("SELECT pg_advisory_unlock(7591)").await?;
    }
    res
}

async fn apply(store: &Store, conn: &mut sqlx::pool::PoolConnection<sqlx::Any>) -> Result<()> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS regwatch_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let done: Vec<i64> = sqlx::query("SELECT version FROM regwatch_migrations")
        .fetch_all(&mut **conn)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>("version"))
        .collect::<Result<_, _>>()?;
    for (version, name, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        let mut tx = sqlx::Connection::begin(&mut **conn).await?;
        for stmt in statements(&render(sql, store.backend)) {
            tx.execute(stmt.as_str())
                .await
                .map_err(|source| StoreError::Migration {
                    version: *version,
                    source,
                })?;
        }
        sqlx::query(
            "INSERT INTO regwatch_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(*version)
        .bind(name.to_string())
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(version, name, "migration applied");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_per_backend_and_splits() {
        let sql = MIGRATIONS[0].2;
        assert!(render(sql, Backend::Sqlite).contains("INTEGER PRIMARY KEY AUTOINCREMENT"));
        assert!(render(sql, Backend::Postgres).contains("BIGSERIAL PRIMARY KEY"));
        let s = statements(&render(sql, Backend::Sqlite));
        assert_eq!(
            s.iter().filter(|s| s.starts_with("CREATE TABLE")).count(),
            3
        );
        assert!(s.iter().all(|s| !s.contains("{{")));
    }

    /// `regwatch-outbox` keeps a copy of the outbox's DDL for databases
    /// without these migrations; it must be the table 0001 creates.
    #[test]
    fn the_outbox_crate_describes_the_table_0001_creates() {
        let words = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let ours: Vec<String> = statements(MIGRATIONS[0].2)
            .iter()
            .filter(|s| s.contains(" outbox"))
            .map(|s| words(s))
            .collect();
        let theirs: Vec<String> = statements(regwatch_outbox::TABLE_DDL)
            .iter()
            .map(|s| words(s))
            .collect();
        assert_eq!(ours.len(), 2);
        assert_eq!(ours, theirs);
    }
}
