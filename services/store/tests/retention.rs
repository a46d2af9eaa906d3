//! Retention as the running processes do it (`regwatch_store::retention`): old
//! day partitions are archived as JSON Lines, then dropped; an archive that
//! cannot be written drops nothing. On SQLite always, and on a real
//! ClickHouse when `REGWATCH_TEST_CLICKHOUSE_URL` is set (required in CI).

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use regwatch_schemas::{Actor, ClientDeleted, Envelope, EventPayload, WireEvent};
use regwatch_store::retention::{run_once, RetentionConfig};
use regwatch_store::EventStore;

fn event(at: chrono::DateTime<Utc>) -> Envelope {
    let mut e = Envelope::new(
        "https://issuer.test",
        Actor::admin("ops"),
        EventPayload::ClientDeleted(ClientDeleted {
            reason: "admin".into(),
            tokens_revoked: 0,
        }),
        at,
    );
    e.client_id = Some("retention-client".into());
    e
}

async fn archives_then_drops(store: Arc<dyn EventStore>) {
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    let day = |d: i64| now - Duration::days(d);
    let old_a = [event(day(10)), event(day(10) + Duration::hours(1))];
    let old_b = [event(day(9))];
    let recent = [event(day(1))];
    let all: Vec<WireEvent> = old_a
        .iter()
        .chain(&old_b)
        .chain(&recent)
        .map(|e| WireEvent::from_envelope(e.clone()).unwrap())
        .collect();
    store.insert_events(&all).await.unwrap();
    assert_eq!(store.count_events().await.unwrap(), 4);

    // An archive that cannot be written (a file where the directory should
    // be): the pass fails and nothing is dropped.
    let dir = tempfile::tempdir().unwrap();
    let blocked = dir.path().join("not-a-dir");
    std::fs::write(&blocked, b"x").unwrap();
    let cfg = RetentionConfig {
        keep_days: 7,
        export_dir: Some(blocked),
        ..Default::default()
    };
    let err = run_once(&store, &cfg, now).await.unwrap_err();
    assert!(err.to_string().contains("export before drop"), "{err}");
    assert_eq!(store.count_events().await.unwrap(), 4, "nothing dropped");

    // A writable archive: both old days exported, then dropped.
    let archive = dir.path().join("archive");
    let cfg = RetentionConfig {
        keep_days: 7,
        export_dir: Some(archive.clone()),
        ..Default::default()
    };
    let report = run_once(&store, &cfg, now).await.unwrap();
    let ids = |d: i64| day(d).format("%Y%m%d").to_string();
    assert_eq!(report.dropped, vec![ids(10), ids(9)]);
    for (d, expected) in [(10, &old_a[..]), (9, &old_b[..])] {
        let text =
            std::fs::read_to_string(archive.join(format!("events-{}.jsonl", ids(d)))).unwrap();
        let got: BTreeSet<_> = text
            .lines()
            .map(|l| serde_json::from_str::<Envelope>(l).unwrap().event_id)
            .collect();
        let want: BTreeSet<_> = expected.iter().map(|e| e.event_id).collect();
        assert_eq!(got, want, "archive of day {}", ids(d));
    }
    assert_eq!(
        store.count_events().await.unwrap(),
        1,
        "the recent day stays"
    );
    // No partial file left behind.
    let names: Vec<_> = std::fs::read_dir(&archive)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains("partial")), "{names:?}");

    // Off: keep_days = 0 drops nothing even when asked.
    let off = RetentionConfig::default();
    let report = run_once(&store, &off, now + Duration::days(30))
        .await
        .unwrap();
    assert!(report.dropped.is_empty(), "{report:?}");
    assert_eq!(store.count_events().await.unwrap(), 1);
}

#[tokio::test]
async fn retention_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = regwatch_store::sqlite::SqliteStore::open(&dir.path().join("events.db"))
        .await
        .unwrap();
    archives_then_drops(Arc::new(store)).await;
}

#[tokio::test]
async fn retention_on_clickhouse() {
    let Some(url) = regwatch_testkit::env_or_skip(
        "REGWATCH_TEST_CLICKHOUSE_URL",
        "deploy/local/clickhouse-up.sh DIR 8123 9000",
    ) else {
        return;
    };
    let store = regwatch_store::clickhouse::ClickHouseStore::connect(
        &url,
        &format!("rw_retention_{}", uuid::Uuid::now_v7().simple()),
    )
    .await
    .unwrap();
    archives_then_drops(Arc::new(store)).await;
}
