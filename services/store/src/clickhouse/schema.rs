//! The schema side: the DDL files and their migration runner, the query
//! files, and the columns the code expects (compared with the live ones by
//! `check_schema`).

use std::collections::{BTreeMap, HashSet};

use crate::sql::{self, Lit};
use crate::{Result, SchemaDiff, SchemaReport, StoreError};

use super::rows::MigrationRow;
use super::Client;

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

/// A query file without its `--` comment lines, ready to render.
pub(super) fn template(file: &str) -> String {
    file.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

pub(super) fn render(file: &str, values: &[(&str, Lit)]) -> Result<String> {
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

/// The differences between live columns and [`EXPECTED_COLUMNS`].
pub(super) fn compare_columns(live: &BTreeMap<String, BTreeMap<String, String>>) -> SchemaReport {
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
