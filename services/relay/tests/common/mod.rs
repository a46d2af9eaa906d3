//! An outbox on a real SQLite file, without the authorization server: the
//! table as `regwatch-outbox` describes it, events recorded one by one.

#![allow(dead_code)]

use regwatch_outbox::Outbox;
use sqlx::any::AnyPoolOptions;

/// A fresh outbox in `dir/authz.db`, on one connection (SQLite's single
/// writer, as the authorization server's store has it).
pub async fn sqlite_outbox(dir: &tempfile::TempDir) -> Outbox {
    sqlx::any::install_default_drivers();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("authz.db").display()
    );
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("sqlite outbox");
    regwatch_outbox::create_table(&pool)
        .await
        .expect("outbox table");
    Outbox::new(pool)
}
