//! One conformance suite, run against every backend: SQLite always, and
//! ClickHouse when `REGWATCH_TEST_CLICKHOUSE_URL` is set (each test in its
//! own randomly named database). Under `CI` a missing ClickHouse fails the
//! run; locally the test prints how to start one and runs SQLite only.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::Rng;
use regwatch_schemas::{
    Actor, Alert, AlertKind, AlertStatus, ClientDeleted, Envelope, EventPayload, EventType,
    Severity, Source, ToolCalled, ToolDecision, WireEvent,
};
use regwatch_store::clickhouse::{self as ch, ClickHouseStore};
use regwatch_store::sqlite::SqliteStore;
use regwatch_store::{
    AlertQuery, EventQuery, EventStore, ExportHook, NoExport, SchemaDiff, StoreError,
};
use uuid::Uuid;

const CH_ENV: &str = "REGWATCH_TEST_CLICKHOUSE_URL";

/// A store under test plus a way to run raw SQL on it (to break its schema).
struct Backend {
    name: &'static str,
    store: Arc<dyn EventStore>,
    raw: Raw,
    _dir: Option<tempfile::TempDir>,
}

enum Raw {
    Sqlite(PathBuf),
    ClickHouse(Box<ChRaw>),
}

struct ChRaw {
    admin: ch::Client,
    db: ch::Client,
    database: String,
}

impl Backend {
    async fn exec(&self, sql: &str) {
        match &self.raw {
            Raw::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("open sqlite file");
                conn.execute_batch(sql).expect(sql);
            }
            Raw::ClickHouse(c) => c.db.query_raw(sql).execute().await.expect(sql),
        }
    }

    /// A second store on the same file or database: what a restarted
    /// process (or another process) sees. `recent_ids` bounds the
    /// ClickHouse store's memory of ids it wrote.
    async fn reopen(&self, recent_ids: usize) -> Arc<dyn EventStore> {
        match &self.raw {
            Raw::Sqlite(path) => Arc::new(SqliteStore::open(path).await.expect("reopen sqlite")),
            Raw::ClickHouse(c) => Arc::new(
                ClickHouseStore::new(c.admin.clone(), &c.database)
                    .expect("store")
                    .with_recent_ids(recent_ids),
            ),
        }
    }

    /// Drops the test database on success (a failed test leaves it for a look).
    async fn finish(self) {
        if let Raw::ClickHouse(c) = &self.raw {
            let _ = c
                .admin
                .query_raw(&format!("DROP DATABASE IF EXISTS {}", c.database))
                .execute()
                .await;
        }
    }
}

fn clickhouse_url() -> Option<String> {
    match std::env::var(CH_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{CH_ENV} is not set under CI: start one with deploy/local/clickhouse-up.sh")
        }
        _ => {
            eprintln!(
                "skipping the ClickHouse backend: {CH_ENV} is not set. Run:\n  \
                 export {CH_ENV}=$(deploy/local/clickhouse-up.sh /tmp/regwatch-ch 58123 59000)"
            );
            None
        }
    }
}

async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("events.db");
    let sqlite = SqliteStore::open(&path).await.expect("open sqlite store");
    let mut out = vec![Backend {
        name: "sqlite",
        store: Arc::new(sqlite),
        raw: Raw::Sqlite(path),
        _dir: Some(dir),
    }];
    if let Some(url) = clickhouse_url() {
        let database = format!("rw_test_{:016x}", rand::thread_rng().gen::<u64>());
        let admin = ch::Client::default().with_url(&url).with_validation(false);
        let applied = ch::migrate(&admin, &database).await.expect("migrate");
        assert_eq!(applied.len(), ch::MIGRATIONS.len());
        let store = ClickHouseStore::new(admin.clone(), &database).expect("store");
        let db = store.client().clone();
        out.push(Backend {
            name: "clickhouse",
            store: Arc::new(store),
            raw: Raw::ClickHouse(Box::new(ChRaw {
                admin,
                db,
                database,
            })),
            _dir: None,
        });
    }
    out
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
        .single()
        .expect("valid time")
}

/// An event at `at`, of a type picked by `kind` (0: tool.called, else
/// client.deleted), for `client`.
fn event(at: DateTime<Utc>, kind: u8, client: &str) -> WireEvent {
    let payload = if kind == 0 {
        EventPayload::ToolCalled(ToolCalled {
            tool: "echo".into(),
            decision: ToolDecision::Allowed,
            deciding_scope: Some("tools:read".into()),
            resource: "https://mcp.example/mcp".into(),
            user_id: None,
            reason: None,
        })
    } else {
        EventPayload::ClientDeleted(ClientDeleted {
            reason: "rfc7592_delete".into(),
            tokens_revoked: 1,
        })
    };
    let mut env = Envelope::new("https://as.example", Actor::client(client), payload, at);
    env.client_id = Some(client.to_string());
    env.source = Some(Source {
        ip: Some("203.0.113.7".into()),
        user_agent: None,
    });
    WireEvent::from_envelope(env).expect("serialize")
}

/// `n` events over a few minutes, several sharing a millisecond, two
/// clients, two types.
fn events(n: usize, start: DateTime<Utc>) -> Vec<WireEvent> {
    (0..n)
        .map(|i| {
            let at = start + Duration::milliseconds((i / 3) as i64 * 7_919);
            event(
                at,
                (i % 2) as u8,
                if i % 5 == 0 { "c-five" } else { "c-other" },
            )
        })
        .collect()
}

/// The ids in store order: (occurred_at ms, event_id).
fn sorted_ids(evs: &[&WireEvent]) -> Vec<Uuid> {
    let mut keyed: Vec<(i64, String, Uuid)> = evs
        .iter()
        .map(|e| {
            (
                e.envelope().occurred_at.timestamp_millis(),
                e.envelope().event_id.to_string(),
                e.envelope().event_id,
            )
        })
        .collect();
    keyed.sort();
    keyed.into_iter().map(|(_, _, id)| id).collect()
}

async fn walk(store: &dyn EventStore, mut q: EventQuery) -> (Vec<Uuid>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let page = store.query_events(&q).await.expect("page");
        pages += 1;
        assert!(page.events.len() <= q.limit as usize);
        ids.extend(page.events.iter().map(|e| e.event_id));
        match page.next_cursor {
            Some(c) => {
                assert!(!page.events.is_empty(), "a cursor after an empty page");
                q.cursor = Some(c);
            }
            None => break,
        }
        assert!(pages < 10_000, "pagination does not end");
    }
    (ids, pages)
}

#[tokio::test]
async fn insert_is_idempotent_on_event_id() {
    for b in backends().await {
        let s = &b.store;
        let batch = events(50, t0());
        let first = s.insert_events(&batch).await.expect("insert");
        assert_eq!((first.inserted, first.duplicates), (50, 0), "{}", b.name);
        let again = s.insert_events(&batch).await.expect("replay");
        assert_eq!((again.inserted, again.duplicates), (0, 50), "{}", b.name);
        assert_eq!(s.count_events().await.expect("count"), 50, "{}", b.name);

        // A batch with one new event, one stored, and the new one repeated.
        let fresh = event(t0() + Duration::hours(1), 0, "c-new");
        let mixed = vec![fresh.clone(), batch[3].clone(), fresh];
        let out = s.insert_events(&mixed).await.expect("mixed");
        assert_eq!((out.inserted, out.duplicates), (1, 2), "{}", b.name);
        assert_eq!(s.count_events().await.expect("count"), 51, "{}", b.name);
        assert_eq!(s.insert_events(&[]).await.expect("empty").inserted, 0);
        b.finish().await;
    }
}

#[tokio::test]
async fn count_is_distinct_over_overlapping_batches() {
    for b in backends().await {
        let all = events(60, t0());
        b.store.insert_events(&all[..40]).await.expect("a");
        b.store.insert_events(&all[20..]).await.expect("b");
        b.store.insert_events(&all[10..30]).await.expect("c");
        assert_eq!(
            b.store.count_events().await.expect("count"),
            60,
            "{}",
            b.name
        );
        let (ids, _) = walk(
            b.store.as_ref(),
            EventQuery {
                limit: 1000,
                ..Default::default()
            },
        )
        .await;
        assert_eq!(
            ids,
            sorted_ids(&all.iter().collect::<Vec<_>>()),
            "{}",
            b.name
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn invalid_events_are_refused_whole_and_not_retryable() {
    for b in backends().await {
        // A text that is not the envelope's (another event's, or not JSON)
        // cannot reach a store: `WireEvent` is built from one or the other
        // (regwatch-schemas' `wire` tests). What a store still refuses is a
        // time it cannot hold, and one such event refuses the whole batch.
        let good = event(t0(), 0, "c1");
        let ancient = event(Utc.timestamp_opt(-10, 0).single().expect("t"), 0, "c4");
        let err = b
            .store
            .insert_events(&[good.clone(), ancient.clone()])
            .await
            .expect_err("out of range");
        assert!(
            matches!(err, StoreError::InvalidEvent { .. }),
            "{}: {err}",
            b.name
        );
        assert!(!err.is_retryable());
        assert!(b.store.insert_events(&[ancient]).await.is_err());
        assert_eq!(
            b.store.count_events().await.expect("count"),
            0,
            "{}",
            b.name
        );
        b.finish().await;
    }
}

#[tokio::test]
async fn filters_and_time_bounds() {
    for b in backends().await {
        let all = events(90, t0());
        b.store.insert_events(&all).await.expect("insert");
        let expect = |f: &dyn Fn(&WireEvent) -> bool| -> Vec<Uuid> {
            sorted_ids(&all.iter().filter(|e| f(e)).collect::<Vec<_>>())
        };

        let q = EventQuery {
            event_type: Some(EventType::ClientDeleted),
            limit: 1000,
            ..Default::default()
        };
        let (ids, _) = walk(b.store.as_ref(), q).await;
        assert_eq!(
            ids,
            expect(&|e| e.envelope().event_type() == EventType::ClientDeleted),
            "{}",
            b.name
        );
        assert!(!ids.is_empty());

        let q = EventQuery {
            client_id: Some("c-five".into()),
            event_type: Some(EventType::ToolCalled),
            limit: 1000,
            ..Default::default()
        };
        let (ids, _) = walk(b.store.as_ref(), q).await;
        assert_eq!(
            ids,
            expect(&|e| e.envelope().client_id.as_deref() == Some("c-five")
                && e.envelope().event_type() == EventType::ToolCalled),
            "{}",
            b.name
        );
        assert!(!ids.is_empty());

        // since inclusive, until exclusive, both exactly on event times.
        let since = all[30].envelope().occurred_at;
        let until = all[60].envelope().occurred_at;
        let q = EventQuery {
            since: Some(since),
            until: Some(until),
            limit: 1000,
            ..Default::default()
        };
        let (ids, _) = walk(b.store.as_ref(), q).await;
        assert_eq!(
            ids,
            expect(&|e| e.envelope().occurred_at >= since && e.envelope().occurred_at < until),
            "{}",
            b.name
        );
        assert_eq!(ids.len(), 30, "{}", b.name);

        let q = EventQuery {
            client_id: Some("nobody".into()),
            ..Default::default()
        };
        let page = b.store.query_events(&q).await.expect("empty");
        assert!(page.events.is_empty() && page.next_cursor.is_none());
        b.finish().await;
    }
}

#[tokio::test]
async fn pagination_walks_every_page_once_in_order() {
    for b in backends().await {
        let all = events(257, t0());
        b.store.insert_events(&all).await.expect("insert");
        let expected = sorted_ids(&all.iter().collect::<Vec<_>>());
        for limit in [1, 7, 10, 257, 1000] {
            let (ids, pages) = walk(
                b.store.as_ref(),
                EventQuery {
                    limit,
                    ..Default::default()
                },
            )
            .await;
            assert_eq!(ids, expected, "{} limit {limit}", b.name);
            assert_eq!(
                pages,
                257usize.div_ceil(limit as usize).max(1),
                "{} limit {limit}",
                b.name
            );
        }
        // Pages that end exactly at the last event: no trailing empty page.
        let (ids, pages) = walk(
            b.store.as_ref(),
            EventQuery {
                client_id: Some("c-five".into()),
                limit: 4,
                ..Default::default()
            },
        )
        .await;
        let n = expected.len().min(
            all.iter()
                .filter(|e| e.envelope().client_id.as_deref() == Some("c-five"))
                .count(),
        );
        assert_eq!(ids.len(), n);
        assert_eq!(pages, n.div_ceil(4), "{}", b.name);

        // A first page: the rows and a cursor (the API's JSON shape of it
        // is tested in regwatch-api).
        let page = b
            .store
            .query_events(&EventQuery {
                limit: 2,
                ..Default::default()
            })
            .await
            .expect("page");
        assert_eq!(page.events.len(), 2);
        assert!(page.next_cursor.is_some());
        assert_eq!(page.events[0].event_id, expected[0]);

        for limit in [0, 1001] {
            let err = b
                .store
                .query_events(&EventQuery {
                    limit,
                    ..Default::default()
                })
                .await
                .expect_err("limit");
            assert!(matches!(err, StoreError::InvalidQuery(_)), "{}", b.name);
        }
        let err = b
            .store
            .query_events(&EventQuery {
                cursor: Some("' OR 1=1 --".into()),
                ..Default::default()
            })
            .await
            .expect_err("cursor");
        assert!(matches!(err, StoreError::InvalidQuery(_)) && !err.is_retryable());
        b.finish().await;
    }
}

/// Pages over data with months-long gaps, dense clusters and lone events
/// (the ClickHouse store reads a page window by window, widening and
/// jumping): every page walk, filtered or bounded, returns exactly the
/// events a sort of the inserted ones gives.
#[tokio::test]
async fn pagination_across_gaps_and_clusters() {
    for b in backends().await {
        let t = t0();
        let mut all = Vec::new();
        // 30 events in one second, 90 days back.
        for i in 0..30 {
            all.push(event(
                t - Duration::days(90) + Duration::milliseconds(i * 33),
                (i % 2) as u8,
                "c-a",
            ));
        }
        // Lone events: a month back, an hour back, ten minutes ahead.
        all.push(event(t - Duration::days(30), 1, "c-lone"));
        all.push(event(t - Duration::hours(1), 0, "c-lone"));
        all.push(event(t + Duration::minutes(10), 0, "c-a"));
        // Then spacing that widens 4x each time, as a page read's window
        // does. (A read that skipped a window's end event is caught by
        // `scan_reads_every_event_once_in_order`, whose edges it hits.)
        for edge_ms in [10_000, 50_000, 210_000, 850_000] {
            all.push(event(
                t + Duration::minutes(10) + Duration::milliseconds(edge_ms),
                0,
                "c-a",
            ));
        }
        // 50 events one millisecond apart, three sharing each millisecond
        // at the start, at t.
        for i in 0..50 {
            all.push(event(
                t + Duration::milliseconds((i / 3).max(i - 30)),
                (i % 3 == 0) as u8,
                if i % 4 == 0 { "c-lone" } else { "c-b" },
            ));
        }
        b.store.insert_events(&all).await.expect("insert");
        let expect = |f: &dyn Fn(&WireEvent) -> bool| -> Vec<Uuid> {
            sorted_ids(&all.iter().filter(|e| f(e)).collect::<Vec<_>>())
        };
        for limit in [1, 7, 40, 1000] {
            let (ids, _) = walk(
                b.store.as_ref(),
                EventQuery {
                    limit,
                    ..Default::default()
                },
            )
            .await;
            assert_eq!(ids, expect(&|_| true), "{} all, limit {limit}", b.name);

            let (ids, _) = walk(
                b.store.as_ref(),
                EventQuery {
                    client_id: Some("c-lone".into()),
                    limit,
                    ..Default::default()
                },
            )
            .await;
            let lone = |e: &WireEvent| e.envelope().client_id.as_deref() == Some("c-lone");
            assert_eq!(ids, expect(&lone), "{} c-lone, limit {limit}", b.name);

            let (since, until) = (t - Duration::days(31), t + Duration::milliseconds(20));
            let (ids, _) = walk(
                b.store.as_ref(),
                EventQuery {
                    event_type: Some(EventType::ToolCalled),
                    since: Some(since),
                    until: Some(until),
                    limit,
                    ..Default::default()
                },
            )
            .await;
            let bounded = |e: &WireEvent| {
                e.envelope().event_type() == EventType::ToolCalled
                    && e.envelope().occurred_at >= since
                    && e.envelope().occurred_at < until
            };
            assert_eq!(ids, expect(&bounded), "{} bounded, limit {limit}", b.name);
        }
        b.finish().await;
    }
}

/// `scan_events` (the detector rebuild's and the archive's reader) returns
/// every event once, in store order, across batch boundaries and density
/// changes (the ClickHouse store sizes each batch's window from the density
/// of the one before: dense, then sparse, then dense again here).
#[tokio::test]
async fn scan_reads_every_event_once_in_order() {
    for b in backends().await {
        let t = t0();
        let mut all = Vec::new();
        // 12,000 events three to a millisecond, then 9,000 ten ms apart,
        // 300 an hour apart, and 3,000 more three to a millisecond.
        for i in 0..12_000 {
            all.push(event(t + Duration::milliseconds(i / 3), 0, "c-1"));
        }
        let t1 = t + Duration::seconds(5);
        for i in 0..9_000 {
            all.push(event(t1 + Duration::milliseconds(i * 10), 1, "c-2"));
        }
        let t2 = t1 + Duration::minutes(20);
        for i in 0..300 {
            all.push(event(t2 + Duration::hours(i), 0, "c-3"));
        }
        let t3 = t2 + Duration::days(14);
        for i in 0..3_000 {
            all.push(event(t3 + Duration::milliseconds(i / 3), 0, "c-4"));
        }
        for chunk in all.chunks(5_000) {
            b.store.insert_events(chunk).await.expect("insert");
        }
        let scan = |since: DateTime<Utc>, until: DateTime<Utc>| {
            let store = b.store.clone();
            async move {
                let mut ids = Vec::new();
                let n = regwatch_store::scan_events(store.as_ref(), since, until, |page| {
                    ids.extend(page.iter().map(|e| e.event_id));
                    Ok(())
                })
                .await
                .expect("scan");
                assert_eq!(n as usize, ids.len());
                ids
            }
        };
        let everything = scan(t - Duration::days(1), t3 + Duration::days(1)).await;
        assert_eq!(
            everything,
            sorted_ids(&all.iter().collect::<Vec<_>>()),
            "{}",
            b.name
        );
        let (since, until) = (t + Duration::seconds(2), t2 + Duration::hours(100));
        let inside =
            |e: &&WireEvent| e.envelope().occurred_at >= since && e.envelope().occurred_at < until;
        assert_eq!(
            scan(since, until).await,
            sorted_ids(&all.iter().filter(inside).collect::<Vec<_>>()),
            "{} bounded",
            b.name
        );
        b.finish().await;
    }
}

fn alert(
    id: Uuid,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    status: AlertStatus,
    summary: &str,
) -> Alert {
    Alert {
        alert_id: id,
        kind: AlertKind::RedirectDrift,
        severity: Severity::High,
        score: 0.8,
        client_id: "c-1".into(),
        related_client_ids: vec!["c-2".into()],
        event_ids: vec![Uuid::now_v7()],
        evidence: serde_json::json!({"old": "https://a.example/cb", "new": "https://evil.example/cb"}),
        summary: summary.into(),
        dedup_key: format!("redirect_drift:{id}"),
        created_at: created,
        updated_at: updated,
        status,
    }
}

#[tokio::test]
async fn alert_upsert_keeps_the_latest() {
    for b in backends().await {
        let s = &b.store;
        let id = Uuid::now_v7();
        let c = t0();
        s.upsert_alert(&alert(id, c, c, AlertStatus::Open, "v1"))
            .await
            .expect("v1");
        s.upsert_alert(&alert(
            id,
            c,
            c + Duration::seconds(30),
            AlertStatus::Acknowledged,
            "v3",
        ))
        .await
        .expect("v3");
        // Arrives late, older than what is stored: must not win.
        s.upsert_alert(&alert(
            id,
            c,
            c + Duration::seconds(10),
            AlertStatus::Resolved,
            "v2",
        ))
        .await
        .expect("v2");
        let other = Uuid::now_v7();
        let mut second = alert(
            other,
            c + Duration::seconds(1),
            c + Duration::seconds(1),
            AlertStatus::Open,
            "o",
        );
        second.kind = AlertKind::RegistrationBurst;
        second.client_id = "c-9".into();
        s.upsert_alert(&second).await.expect("other");

        let page = s.query_alerts(&AlertQuery::default()).await.expect("all");
        assert_eq!(page.alerts.len(), 2, "{}", b.name);
        assert_eq!(page.alerts[0].alert_id, id);
        assert_eq!(page.alerts[0].summary, "v3", "{}", b.name);
        assert_eq!(page.alerts[0].status, AlertStatus::Acknowledged);
        assert_eq!(page.alerts[0].evidence["new"], "https://evil.example/cb");

        let by = |q: AlertQuery| {
            let s = s.clone();
            async move {
                s.query_alerts(&q)
                    .await
                    .expect("query")
                    .alerts
                    .into_iter()
                    .map(|a| a.alert_id)
                    .collect::<Vec<_>>()
            }
        };
        // Status judges the latest version only.
        assert!(
            by(AlertQuery {
                status: Some(AlertStatus::Resolved),
                ..Default::default()
            })
            .await
            .is_empty(),
            "{}",
            b.name
        );
        assert_eq!(
            by(AlertQuery {
                status: Some(AlertStatus::Open),
                ..Default::default()
            })
            .await,
            vec![other],
            "{}",
            b.name
        );
        assert_eq!(
            by(AlertQuery {
                kind: Some(AlertKind::RedirectDrift),
                ..Default::default()
            })
            .await,
            vec![id]
        );
        assert_eq!(
            by(AlertQuery {
                client_id: Some("c-9".into()),
                ..Default::default()
            })
            .await,
            vec![other]
        );
        assert_eq!(
            by(AlertQuery {
                since: Some(c + Duration::seconds(1)),
                ..Default::default()
            })
            .await,
            vec![other]
        );
        assert_eq!(
            by(AlertQuery {
                until: Some(c + Duration::seconds(1)),
                ..Default::default()
            })
            .await,
            vec![id]
        );

        let first = s
            .query_alerts(&AlertQuery {
                limit: 1,
                ..Default::default()
            })
            .await
            .expect("p1");
        assert_eq!(first.alerts.len(), 1);
        let second_page = s
            .query_alerts(&AlertQuery {
                limit: 1,
                cursor: first.next_cursor.clone(),
                ..Default::default()
            })
            .await
            .expect("p2");
        assert_eq!(
            second_page
                .alerts
                .iter()
                .map(|a| a.alert_id)
                .collect::<Vec<_>>(),
            vec![other]
        );
        assert!(second_page.next_cursor.is_none(), "{}", b.name);
        b.finish().await;
    }
}

/// Every alert id a walk of `q`'s pages returns, in order.
async fn walk_alerts(store: &dyn EventStore, mut q: AlertQuery) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..10_000 {
        let page = store.query_alerts(&q).await.expect("alerts page");
        assert!(page.alerts.len() <= q.limit as usize);
        ids.extend(page.alerts.iter().map(|a| a.alert_id));
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return ids,
        }
    }
    panic!("the alert walk did not end");
}

/// Alert pages over months-long gaps, a dense cluster, lone alerts and
/// alerts on the edges of the first windows (the ClickHouse store reads
/// alert keys window by window, like event pages): every walk, filtered or
/// bounded, returns exactly what a sort of the latest versions gives. Every
/// fifth alert has a later version that resolves it.
#[tokio::test]
async fn alert_pages_across_gaps_and_clusters() {
    for b in backends().await {
        let t = t0();
        let hour = Duration::hours(1);
        let mut created = Vec::new();
        // 300 alerts one second apart, two days back.
        for i in 0..300 {
            created.push(t - Duration::days(2) + Duration::seconds(i));
        }
        // Lone alerts: 90 and 30 days back, an hour back.
        created.extend([t - Duration::days(90), t - Duration::days(30), t - hour]);
        // From t: on the edges of windows growing 4x from one hour.
        created.extend([
            t,
            t + hour - Duration::milliseconds(1),
            t + hour,
            t + hour * 5,
            t + hour * 21,
            t + hour * 85,
        ]);
        let mut latest = Vec::new();
        let mut versions = Vec::new();
        for (i, at) in created.iter().enumerate() {
            let mut a = alert(Uuid::now_v7(), *at, *at, AlertStatus::Open, "v1");
            if i % 3 == 0 {
                a.kind = AlertKind::RegistrationBurst;
            }
            a.client_id = format!("c-{}", i % 2);
            versions.push(a.clone());
            if i % 5 == 0 {
                a.updated_at = *at + Duration::seconds(30);
                a.status = AlertStatus::Resolved;
                versions.push(a.clone());
            }
            latest.push(a);
        }
        b.store.upsert_alerts(&versions).await.expect("alerts");
        let mut sorted = latest.clone();
        sorted.sort_by_key(|a| (a.created_at.timestamp_millis(), a.alert_id.to_string()));
        let expect = |f: &dyn Fn(&Alert) -> bool| -> Vec<Uuid> {
            sorted.iter().filter(|a| f(a)).map(|a| a.alert_id).collect()
        };
        for limit in [1, 7, 40, 1000] {
            let got = walk_alerts(
                b.store.as_ref(),
                AlertQuery {
                    limit,
                    ..Default::default()
                },
            )
            .await;
            assert_eq!(got, expect(&|_| true), "{} all, limit {limit}", b.name);

            let got = walk_alerts(
                b.store.as_ref(),
                AlertQuery {
                    status: Some(AlertStatus::Open),
                    client_id: Some("c-1".into()),
                    limit,
                    ..Default::default()
                },
            )
            .await;
            let open_c1 = |a: &Alert| a.status == AlertStatus::Open && a.client_id == "c-1";
            assert_eq!(got, expect(&open_c1), "{} open c-1, limit {limit}", b.name);

            let got = walk_alerts(
                b.store.as_ref(),
                AlertQuery {
                    status: Some(AlertStatus::Resolved),
                    kind: Some(AlertKind::RegistrationBurst),
                    limit,
                    ..Default::default()
                },
            )
            .await;
            let resolved_bursts = |a: &Alert| {
                a.status == AlertStatus::Resolved && a.kind == AlertKind::RegistrationBurst
            };
            assert_eq!(
                got,
                expect(&resolved_bursts),
                "{} resolved bursts, limit {limit}",
                b.name
            );

            let (since, until) = (t - Duration::days(31), t + hour * 5);
            let got = walk_alerts(
                b.store.as_ref(),
                AlertQuery {
                    since: Some(since),
                    until: Some(until),
                    limit,
                    ..Default::default()
                },
            )
            .await;
            let bounded = |a: &Alert| a.created_at >= since && a.created_at < until;
            assert_eq!(got, expect(&bounded), "{} bounded, limit {limit}", b.name);

            let got = walk_alerts(
                b.store.as_ref(),
                AlertQuery {
                    since: Some(t),
                    limit,
                    ..Default::default()
                },
            )
            .await;
            assert_eq!(
                got,
                expect(&|a: &Alert| a.created_at >= t),
                "{} from t, limit {limit}",
                b.name
            );
        }
        b.finish().await;
    }
}

/// One alert version as a row of the pre-0006 `alerts` table, for
/// `INSERT ... FORMAT JSONEachRow` (what an older release wrote).
fn legacy_alert_row(a: &Alert) -> String {
    let secs = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    serde_json::json!({
        "alert_id": a.alert_id.to_string(),
        "kind": a.kind.as_str(),
        "severity": "high",
        "score": a.score,
        "client_id": a.client_id,
        "status": serde_json::to_value(a.status).expect("status"),
        "dedup_key": a.dedup_key,
        "created_at": secs(a.created_at),
        "created_at_ms": a.created_at.timestamp_millis(),
        "updated_at": secs(a.updated_at),
        "updated_at_ms": a.updated_at.timestamp_millis(),
        "event_ids": a.event_ids.iter().map(Uuid::to_string).collect::<Vec<_>>(),
        "related_client_ids": a.related_client_ids,
        "summary": a.summary,
        "raw": serde_json::to_string(a).expect("raw"),
    })
    .to_string()
}

/// Upgrading a database an older release created: 0006 moves its alerts
/// (every version; the latest still wins) into the table sorted by time,
/// including when a previous run of 0006 stopped midway. `stop_after` is how
/// many of 0006's statements that earlier run got through.
#[tokio::test]
async fn clickhouse_upgrade_moves_alerts_and_survives_an_interrupted_run() {
    let Some(url) = clickhouse_url() else { return };
    let admin = ch::Client::default().with_url(&url).with_validation(false);
    let (_, _, ddl) = ch::MIGRATIONS
        .iter()
        .find(|(v, ..)| *v == 6)
        .expect("migration 6");
    let steps = regwatch_store::sql::statements(ddl);
    for stop_after in 0..=steps.len() {
        let database = format!("rw_test_{:016x}", rand::thread_rng().gen::<u64>());
        let applied = ch::migrate_through(&admin, &database, 5)
            .await
            .expect("old release");
        assert_eq!(applied.len(), 5);
        let db = admin.clone().with_database(&database);
        let c = t0();
        let mut rows = Vec::new();
        let mut ids = Vec::new();
        for i in 0..30i64 {
            let id = Uuid::now_v7();
            ids.push(id);
            let created = c + Duration::seconds(i);
            rows.push(legacy_alert_row(&alert(
                id,
                created,
                created,
                AlertStatus::Open,
                "v1",
            )));
            if i % 3 == 0 {
                rows.push(legacy_alert_row(&alert(
                    id,
                    created,
                    created + Duration::seconds(60),
                    AlertStatus::Resolved,
                    "v2",
                )));
            }
        }
        db.query_raw(&format!(
            "INSERT INTO alerts FORMAT JSONEachRow\n{}",
            rows.join("\n")
        ))
        .execute()
        .await
        .expect("legacy alerts");
        for st in &steps[..stop_after] {
            db.query_raw(st).execute().await.expect(st);
        }

        let now = ch::migrate(&admin, &database).await.expect("upgrade");
        assert_eq!(now, vec!["0006_alerts_by_time".to_string()], "{stop_after}");
        let store = ClickHouseStore::new(admin.clone(), &database).expect("store");
        assert!(store.check_schema().await.expect("schema").is_ok());
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let page = store
                .query_alerts(&AlertQuery {
                    limit: 7,
                    cursor,
                    ..Default::default()
                })
                .await
                .expect("page");
            for a in &page.alerts {
                let latest = if seen.len() % 3 == 0 { "v2" } else { "v1" };
                assert_eq!(a.summary, latest, "{stop_after}: {}", a.alert_id);
                seen.push(a.alert_id);
            }
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert_eq!(seen, ids, "stopped after {stop_after} statements");
        let resolved = store
            .query_alerts(&AlertQuery {
                status: Some(AlertStatus::Resolved),
                ..Default::default()
            })
            .await
            .expect("resolved");
        assert_eq!(resolved.alerts.len(), 10, "{stop_after}");
        let old = db
            .query_raw("EXISTS TABLE alerts")
            .fetch_one::<u8>()
            .await
            .expect("exists");
        assert_eq!(old, 0, "the old table is dropped");
        let _ = admin
            .query_raw(&format!("DROP DATABASE {database}"))
            .execute()
            .await;
    }
}

#[tokio::test]
async fn schema_check_catches_a_missing_column() {
    for b in backends().await {
        let report = b.store.check_schema().await.expect("check");
        assert!(
            report.is_ok(),
            "{}: fresh schema differs: {:?}",
            b.name,
            report.differences
        );
        b.exec("ALTER TABLE events DROP COLUMN source_ip").await;
        let report = b.store.check_schema().await.expect("check");
        assert_eq!(
            report.differences,
            vec![SchemaDiff::MissingColumn {
                table: "events".into(),
                column: "source_ip".into(),
                expected: match b.name {
                    "sqlite" => "TEXT".into(),
                    _ => "Nullable(String)".into(),
                },
            }],
            "{}",
            b.name
        );
        let err = report.into_result().expect_err("mismatch");
        assert!(err.to_string().contains("events.source_ip"), "{err}");
        b.finish().await;
    }
}

/// Records each partition it is given, and checks the partition's events
/// are still readable at that moment (export happens before the drop).
struct RecordingHook {
    store: Arc<dyn EventStore>,
    seen: Mutex<Vec<(String, usize)>>,
    fail_on: Option<String>,
}

#[async_trait]
impl ExportHook for RecordingHook {
    async fn export_partition(&self, partition_id: &str) -> regwatch_store::Result<()> {
        if self.fail_on.as_deref() == Some(partition_id) {
            return Err(StoreError::Unavailable("archive down".into()));
        }
        let day = chrono::NaiveDate::parse_from_str(partition_id, "%Y%m%d")
            .map_err(|e| StoreError::Rejected(e.to_string()))?;
        let since = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
        let q = EventQuery {
            since,
            until: since.map(|s| s + Duration::days(1)),
            limit: 1000,
            ..Default::default()
        };
        let n = self.store.query_events(&q).await?.events.len();
        if let Ok(mut seen) = self.seen.lock() {
            seen.push((partition_id.to_string(), n));
        }
        Ok(())
    }
}

#[tokio::test]
async fn retention_exports_then_drops_old_partitions() {
    for b in backends().await {
        let now = t0();
        let mut batch = events(5, now - Duration::days(10));
        batch.extend(events(4, now - Duration::days(9)));
        batch.extend(events(3, now - Duration::days(1)));
        batch.extend(events(6, now));
        b.store.insert_events(&batch).await.expect("insert");

        // The archive fails on the oldest day: nothing is dropped.
        let failing = RecordingHook {
            store: b.store.clone(),
            seen: Mutex::new(vec![]),
            fail_on: Some("20261112".into()),
        };
        let err = b
            .store
            .apply_retention(7, now, &failing)
            .await
            .expect_err("hook failed");
        assert!(err.is_retryable());
        assert_eq!(
            b.store.count_events().await.expect("count"),
            18,
            "{}",
            b.name
        );

        let hook = RecordingHook {
            store: b.store.clone(),
            seen: Mutex::new(vec![]),
            fail_on: None,
        };
        let report = b
            .store
            .apply_retention(7, now, &hook)
            .await
            .expect("retention");
        assert_eq!(report.dropped, vec!["20261112", "20261113"], "{}", b.name);
        let seen = hook.seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(
            seen,
            vec![("20261112".to_string(), 5), ("20261113".to_string(), 4)],
            "{}: the hook must see each partition before it is dropped",
            b.name
        );
        assert_eq!(
            b.store.count_events().await.expect("count"),
            9,
            "{}",
            b.name
        );
        let again = b
            .store
            .apply_retention(7, now, &NoExport)
            .await
            .expect("again");
        assert!(again.dropped.is_empty());
        b.finish().await;
    }
}

/// The per-minute counts `events` should produce.
fn expected_rollup(evs: &[WireEvent]) -> BTreeMap<(i64, String), u64> {
    let mut expected: BTreeMap<(i64, String), u64> = BTreeMap::new();
    for e in evs {
        let minute = e.envelope().occurred_at.timestamp() / 60 * 60;
        *expected
            .entry((minute, e.envelope().event_type().as_str().to_string()))
            .or_default() += 1;
    }
    expected
}

async fn rollup(store: &dyn EventStore) -> BTreeMap<(i64, String), u64> {
    store
        .event_counts_by_minute(t0() - Duration::days(30), t0() + Duration::days(1))
        .await
        .expect("rollup")
        .into_iter()
        .map(|m| ((m.minute.timestamp(), m.event_type), m.events))
        .collect()
}

/// The ClickHouse store skips the existence check for ids it remembers
/// writing; this checks that forgetting them (eviction from its bounded
/// memory, a restart, another instance) never makes it write one twice:
/// every outcome, the count and the rollup stay exact.
#[tokio::test]
async fn replay_after_eviction_or_restart_writes_nothing_twice() {
    for b in backends().await {
        let all = events(90, t0());
        // Remembers only the last 8 ids it wrote.
        let first = b.reopen(8).await;
        for chunk in all[..60].chunks(20) {
            let out = first.insert_events(chunk).await.expect("insert");
            assert_eq!((out.inserted, out.duplicates), (20, 0), "{}", b.name);
        }
        // Most of these were evicted from its memory.
        let out = first.insert_events(&all[..60]).await.expect("replay");
        assert_eq!(
            (out.inserted, out.duplicates),
            (0, 60),
            "{}: replay after eviction",
            b.name
        );
        // A restarted instance (empty memory) replays and goes further.
        let restarted = b.reopen(8).await;
        let out = restarted
            .insert_events(&all[30..90])
            .await
            .expect("restart");
        assert_eq!(
            (out.inserted, out.duplicates),
            (30, 30),
            "{}: replay after restart",
            b.name
        );
        // The first instance never saw 60..90 written.
        let out = first.insert_events(&all).await.expect("replay all");
        assert_eq!((out.inserted, out.duplicates), (0, 90), "{}", b.name);
        // And a store with no memory at all agrees.
        let forgetful = b.reopen(0).await;
        let out = forgetful.insert_events(&all).await.expect("no memory");
        assert_eq!((out.inserted, out.duplicates), (0, 90), "{}", b.name);

        assert_eq!(
            b.store.count_events().await.expect("count"),
            90,
            "{}",
            b.name
        );
        assert_eq!(
            rollup(b.store.as_ref()).await,
            expected_rollup(&all),
            "{}: the rollup counted a duplicate",
            b.name
        );
        drop((first, restarted, forgetful));
        b.finish().await;
    }
}

/// Retention drops rows the store may remember writing: a replay of a
/// dropped event afterwards is judged by what is stored, as before the
/// memory existed (both backends write it again, exactly once).
#[tokio::test]
async fn replay_after_retention_is_judged_by_what_is_stored() {
    for b in backends().await {
        let now = t0();
        let old = events(6, now - Duration::days(10));
        let recent = events(4, now);
        b.store.insert_events(&old).await.expect("old");
        b.store.insert_events(&recent).await.expect("recent");
        let report = b
            .store
            .apply_retention(7, now, &NoExport)
            .await
            .expect("retention");
        assert_eq!(report.dropped, vec!["20261112"], "{}", b.name);
        assert_eq!(
            b.store.count_events().await.expect("count"),
            4,
            "{}",
            b.name
        );
        let mut replay = old.clone();
        replay.extend(recent.iter().cloned());
        let out = b.store.insert_events(&replay).await.expect("replay");
        assert_eq!((out.inserted, out.duplicates), (6, 4), "{}", b.name);
        let out = b.store.insert_events(&replay).await.expect("again");
        assert_eq!((out.inserted, out.duplicates), (0, 10), "{}", b.name);
        assert_eq!(
            b.store.count_events().await.expect("count"),
            10,
            "{}",
            b.name
        );
        // (The dropped day's rollup is not compared: ClickHouse retention
        // drops events partitions, not the rollup's.)
        let kept: BTreeMap<(i64, String), u64> = b
            .store
            .event_counts_by_minute(now - Duration::hours(1), now + Duration::hours(1))
            .await
            .expect("rollup")
            .into_iter()
            .map(|m| ((m.minute.timestamp(), m.event_type), m.events))
            .collect();
        assert_eq!(kept, expected_rollup(&recent), "{}", b.name);
        b.finish().await;
    }
}

/// Several batches in flight at once on one store (and, on SQLite, a
/// second store on the same file writing at the same time): each event
/// is stored once and counted as new by exactly one call.
#[tokio::test]
async fn concurrent_overlapping_writes_store_each_event_once() {
    for b in backends().await {
        let all = Arc::new(events(300, t0()));
        let mut stores = vec![b.store.clone()];
        if b.name == "sqlite" {
            // Two writer threads on one file: the busy timeout serializes
            // them. (Two ClickHouse instances may race on a new id, see
            // the backend docs; one instance serializes its own writes.)
            stores.push(b.reopen(0).await);
        }
        let mut tasks = Vec::new();
        for i in 0..6usize {
            let store = stores[i % stores.len()].clone();
            let all = all.clone();
            tasks.push(tokio::spawn(async move {
                let mut inserted = 0;
                // Every task covers 0..300 in its own order and chunking.
                let size = 25 + 10 * i;
                let mut chunks: Vec<&[WireEvent]> = all.chunks(size).collect();
                let turn = i % chunks.len();
                chunks.rotate_left(turn);
                for c in chunks {
                    inserted += store.insert_events(c).await.expect("insert").inserted;
                }
                inserted
            }));
        }
        let mut inserted = 0;
        for t in tasks {
            inserted += t.await.expect("task");
        }
        assert_eq!(inserted, 300, "{}: new events reported", b.name);
        assert_eq!(
            b.store.count_events().await.expect("count"),
            300,
            "{}",
            b.name
        );
        assert_eq!(
            rollup(b.store.as_ref()).await,
            expected_rollup(&all),
            "{}",
            b.name
        );
        drop(stores);
        b.finish().await;
    }
}

/// A batch of alert upserts leaves what the same upserts one by one leave,
/// and a bad alert refuses the whole batch.
#[tokio::test]
async fn alert_batch_upsert_equals_one_by_one() {
    for b in backends().await {
        let c = t0();
        let (a, tie, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let batch = vec![
            alert(a, c, c, AlertStatus::Open, "a1"),
            alert(
                a,
                c,
                c + Duration::seconds(30),
                AlertStatus::Acknowledged,
                "a3",
            ),
            // Older than what precedes it: must not win.
            alert(a, c, c + Duration::seconds(10), AlertStatus::Resolved, "a2"),
            alert(tie, c, c, AlertStatus::Open, "tie-first"),
            alert(
                other,
                c + Duration::seconds(1),
                c + Duration::seconds(1),
                AlertStatus::Open,
                "o",
            ),
            // Same updated_at: the later one wins.
            alert(tie, c, c, AlertStatus::Suppressed, "tie-last"),
        ];
        let mut bad = alert(Uuid::now_v7(), c, c, AlertStatus::Open, "bad");
        bad.updated_at = Utc.timestamp_opt(-5, 0).single().expect("t");
        let mut with_bad = batch.clone();
        with_bad.insert(2, bad);
        assert!(
            b.store.upsert_alerts(&with_bad).await.is_err(),
            "{}",
            b.name
        );
        assert!(
            b.store
                .query_alerts(&AlertQuery::default())
                .await
                .expect("none")
                .alerts
                .is_empty(),
            "{}: a refused batch wrote something",
            b.name
        );

        b.store.upsert_alerts(&batch).await.expect("batch");
        let mut got: Vec<(Uuid, String)> = b
            .store
            .query_alerts(&AlertQuery::default())
            .await
            .expect("all")
            .alerts
            .into_iter()
            .map(|x| (x.alert_id, x.summary))
            .collect();
        got.sort();
        let mut want = vec![
            (a, "a3".to_string()),
            (tie, "tie-last".to_string()),
            (other, "o".to_string()),
        ];
        want.sort();
        assert_eq!(got, want, "{}", b.name);

        // A later batch with an older version changes nothing; a newer one
        // does.
        b.store
            .upsert_alerts(&[
                alert(a, c, c + Duration::seconds(20), AlertStatus::Open, "a-old"),
                alert(
                    other,
                    c + Duration::seconds(1),
                    c + Duration::seconds(2),
                    AlertStatus::Resolved,
                    "o2",
                ),
            ])
            .await
            .expect("second batch");
        let got: BTreeMap<Uuid, String> = b
            .store
            .query_alerts(&AlertQuery::default())
            .await
            .expect("all")
            .alerts
            .into_iter()
            .map(|x| (x.alert_id, x.summary))
            .collect();
        assert_eq!(got.get(&a).map(String::as_str), Some("a3"), "{}", b.name);
        assert_eq!(
            got.get(&other).map(String::as_str),
            Some("o2"),
            "{}",
            b.name
        );
        assert!(b.store.upsert_alerts(&[]).await.is_ok());
        b.finish().await;
    }
}

/// The SQLite writer commits a batch as one transaction: a row that fails
/// half way leaves none of the batch, and the writer carries on.
#[tokio::test]
async fn sqlite_batch_is_all_or_nothing_and_the_writer_survives() {
    let b = backends().await.into_iter().next().expect("sqlite backend");
    assert_eq!(b.name, "sqlite");
    b.exec(
        "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.client_id = 'c-boom' \
         BEGIN SELECT RAISE(ABORT, 'boom'); END;",
    )
    .await;
    let mut batch = events(10, t0());
    batch.insert(7, event(t0(), 0, "c-boom"));
    let err = b.store.insert_events(&batch).await.expect_err("trigger");
    assert!(!err.is_retryable(), "{err}");
    assert_eq!(
        b.store.count_events().await.expect("count"),
        0,
        "half a batch was written"
    );
    b.exec("DROP TRIGGER boom").await;
    let out = b.store.insert_events(&batch).await.expect("after");
    assert_eq!(out.inserted, 11);
    assert_eq!(b.store.count_events().await.expect("count"), 11);
    b.finish().await;
}

#[tokio::test]
async fn rollup_stays_exact_under_replay() {
    for b in backends().await {
        let all = events(120, t0());
        b.store.insert_events(&all[..80]).await.expect("a");
        b.store.insert_events(&all[..80]).await.expect("replay");
        b.store.insert_events(&all[40..]).await.expect("overlap");
        b.store.insert_events(&all).await.expect("replay all");

        let mut expected: BTreeMap<(i64, String), u64> = BTreeMap::new();
        for e in &all {
            let minute = e.envelope().occurred_at.timestamp() / 60 * 60;
            *expected
                .entry((minute, e.envelope().event_type().as_str().to_string()))
                .or_default() += 1;
        }
        let got = b
            .store
            .event_counts_by_minute(t0() - Duration::hours(1), t0() + Duration::hours(1))
            .await
            .expect("rollup");
        let got: BTreeMap<(i64, String), u64> = got
            .into_iter()
            .map(|m| ((m.minute.timestamp(), m.event_type), m.events))
            .collect();
        assert_eq!(got, expected, "{}", b.name);
        assert_eq!(got.values().sum::<u64>(), 120);

        // Bounds are whole minutes: the first minute alone.
        let first = b
            .store
            .event_counts_by_minute(t0(), t0() + Duration::seconds(1))
            .await
            .expect("first minute");
        let first_total: u64 = first.iter().map(|m| m.events).sum();
        let want: u64 = expected
            .iter()
            .filter(|((m, _), _)| *m == t0().timestamp())
            .map(|(_, n)| n)
            .sum();
        assert_eq!(first_total, want, "{}", b.name);
        b.finish().await;
    }
}

#[tokio::test]
async fn ping_and_unreachable_store_is_retryable() {
    for b in backends().await {
        b.store.ping().await.expect("ping");
        b.finish().await;
    }
    // Port 1: nothing listens. No server needed for this one.
    let client = ch::Client::default().with_url("http://127.0.0.1:1");
    let store = ClickHouseStore::new(client, "nowhere").expect("store");
    let err = store.ping().await.expect_err("refused");
    assert!(err.is_retryable(), "{err}");
    let err = store
        .insert_events(&events(2, t0()))
        .await
        .expect_err("refused");
    assert!(err.is_retryable(), "{err}");
    assert!(ClickHouseStore::new(ch::Client::default(), "bad-name; DROP").is_err());
}

#[tokio::test]
async fn clickhouse_migrations_are_tracked_and_final_hides_raw_duplicates() {
    let Some(url) = clickhouse_url() else { return };
    let database = format!("rw_test_{:016x}", rand::thread_rng().gen::<u64>());
    let admin = ch::Client::default().with_url(&url).with_validation(false);
    assert_eq!(
        ch::migrate(&admin, &database).await.expect("first").len(),
        ch::MIGRATIONS.len()
    );
    assert!(ch::migrate(&admin, &database)
        .await
        .expect("second")
        .is_empty());

    let store = ClickHouseStore::new(admin.clone(), &database).expect("store");
    let batch = events(3, t0());
    store.insert_events(&batch).await.expect("insert");
    // A duplicate written behind the store's back (as two racing writers
    // would): FINAL still reads each event once.
    let dup = store
        .client()
        .query_raw("INSERT INTO events SELECT * FROM events")
        .execute()
        .await;
    dup.expect("raw duplicate");
    assert_eq!(store.count_events().await.expect("count"), 3);
    let page = store
        .query_events(&EventQuery::default())
        .await
        .expect("page");
    let ids: HashSet<Uuid> = page.events.iter().map(|e| e.event_id).collect();
    assert_eq!((page.events.len(), ids.len()), (3, 3));
    let bad = ch::migrate(&admin, "1bad").await;
    assert!(bad.is_err());
    let _ = admin
        .query_raw(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await;
}
