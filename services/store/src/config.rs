//! `[store]`: where the scaled shape keeps events and alerts (ClickHouse).
//! The embedded shape needs no table: it keeps `events.db` in `--data-dir`.

use serde::Deserialize;

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// ClickHouse HTTP URL, e.g. `http://127.0.0.1:8123`.
    pub clickhouse_url: String,
    /// Database; created and migrated at start.
    #[serde(default = "default_database")]
    pub clickhouse_database: String,
}

fn default_database() -> String {
    "regwatch".into()
}
