//! Unit tests: the migration and query lists against their directories,
//! insert columns against the row structs, and the schema comparison.

use std::collections::BTreeMap;

use crate::SchemaDiff;

use super::rows::{AlertRow, EventRow};
use super::schema::{compare_columns, template};
use super::*;

fn dir_files(dir: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut names: Vec<String> = std::fs::read_dir(&path)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".sql"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn every_ddl_file_is_a_migration_in_order() {
    let files = dir_files("../../schemas/clickhouse");
    let listed: Vec<String> = MIGRATIONS
        .iter()
        .map(|(_, n, _)| format!("{n}.sql"))
        .collect();
    assert_eq!(files, listed);
    for (i, (version, name, _)) in MIGRATIONS.iter().enumerate() {
        assert_eq!(*version as usize, i + 1);
        assert!(name.starts_with(&format!("{version:04}_")), "{name}");
    }
}

#[test]
fn every_query_file_is_known() {
    let mut listed: Vec<String> = queries::ALL.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(dir_files("../../schemas/clickhouse/queries"), listed);
}

fn insert_columns(file: &str) -> Vec<String> {
    let t = template(file);
    let open = t.find('(').unwrap_or(0);
    let close = t.find(')').unwrap_or(0);
    t[open + 1..close]
        .split(',')
        .map(|c| c.trim().to_string())
        .collect()
}

#[test]
fn insert_mirrors_match_the_row_structs() {
    use clickhouse::Row;
    assert_eq!(
        insert_columns(queries::EVENTS_INSERT),
        EventRow::<'static>::COLUMN_NAMES
    );
    assert_eq!(
        insert_columns(queries::ALERTS_INSERT),
        AlertRow::COLUMN_NAMES
    );
    let expected = |table: &str| -> Vec<&str> {
        EXPECTED_COLUMNS
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, c)| c.iter().map(|(n, _)| *n).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        EventRow::<'static>::COLUMN_NAMES,
        expected("events").as_slice()
    );
    assert_eq!(
        AlertRow::COLUMN_NAMES,
        expected("alerts_by_time").as_slice()
    );
}

#[test]
fn schema_compare_names_each_difference() {
    let mut live: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (table, cols) in EXPECTED_COLUMNS {
        let t = live.entry(table.to_string()).or_default();
        for (c, ty) in *cols {
            t.insert(c.to_string(), ty.to_string());
        }
    }
    assert!(compare_columns(&live).is_ok());
    if let Some(events) = live.get_mut("events") {
        events.remove("source_ip");
        events.insert("schema_version".into(), "UInt8".into());
    }
    live.remove("revocations");
    let diffs = compare_columns(&live).differences;
    assert_eq!(diffs.len(), 3, "{diffs:?}");
    assert!(diffs
        .iter()
        .any(|d| matches!(d, SchemaDiff::MissingColumn { column, .. } if column == "source_ip")));
    assert!(diffs
        .iter()
        .any(|d| matches!(d, SchemaDiff::WrongType { found, .. } if found == "UInt8")));
    assert!(diffs
        .iter()
        .any(|d| matches!(d, SchemaDiff::MissingTable { table } if table == "revocations")));
}
