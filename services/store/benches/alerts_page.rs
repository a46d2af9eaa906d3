//! `GET /v1/alerts` page cost on ClickHouse: the layout before migration
//! 0006 (alerts sorted by `alert_id`, one query reading raw for every row
//! after the cursor) against the current one (sorted by creation time, keys
//! first, raw for the page only), on the same alerts in the same run.
//!
//!     bench/alerts_page.sh [N]     (starts its own ClickHouse; N alerts, default 100000)
//!
//! Or against a running server: `REGWATCH_BENCH_CLICKHOUSE_URL=http://… cargo
//! bench -p regwatch-store --bench alerts_page`. Prints one table, medians of
//! `REPEAT` runs per query, and the ratio old / new. `KEEP=1` keeps the
//! database; `LOG_QUERIES=1` logs each query's server time to
//! `system.query_log`.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use regwatch_schemas::{Alert, AlertKind, AlertStatus, Severity};
use regwatch_store::clickhouse::{self as ch, ClickHouseStore};
use regwatch_store::{AlertQuery, EventStore};
use uuid::Uuid;

const REPEAT: usize = 7;
const PAGE: u32 = 100;
/// Stands in for each alert's id inside the template's raw JSON.
/// The cursor id a page resumes after: below every real id.
const NIL: &str = "00000000-0000-0000-0000-000000000000";
const ID_MARK: &str = "00000000-0000-4000-8000-000000000000";

/// The pre-0006 page query (0003's table, alerts_page.sql before 0006), kept
/// here as the baseline: the schema directory only holds what runs.
const OLD_PAGE: &str = "SELECT alert_id, created_at_ms, raw FROM ( \
    SELECT alert_id, created_at_ms, status, raw FROM alerts FINAL \
    WHERE created_at_ms >= 0 AND created_at_ms < 99999999999999 \
      AND (created_at_ms > {after_ms} OR (created_at_ms = {after_ms} AND alert_id > '{after_id}')) \
    ) ORDER BY created_at_ms, alert_id LIMIT 101";

fn template() -> String {
    // A registration_burst alert listing 40 clients: evidence is what makes
    // raw the widest column (about 2 KB here).
    let clients: Vec<String> = (0..40).map(|i| format!("client-{i:04}-burst")).collect();
    let alert = Alert {
        alert_id: Uuid::parse_str(ID_MARK).expect("mark"),
        kind: AlertKind::RegistrationBurst,
        severity: Severity::High,
        score: 0.91,
        client_id: "client-0000-burst".into(),
        related_client_ids: clients.clone(),
        event_ids: vec![Uuid::nil(); 3],
        evidence: serde_json::json!({
            "key_type": "source_ip", "key": "203.0.113.7", "rate_per_min": 41.0,
            "baseline_per_min": 0.4, "clients": clients,
        }),
        summary: "41 registrations in 60 s from 203.0.113.7 (baseline 0.4/min)".into(),
        dedup_key: "registration_burst:source_ip:203.0.113.7".into(),
        created_at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        updated_at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
        status: AlertStatus::Open,
    };
    serde_json::to_string(&alert).expect("template")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn time<F, Fut>(mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut runs = Vec::with_capacity(REPEAT);
    for _ in 0..REPEAT {
        let t = Instant::now();
        f().await;
        runs.push(t.elapsed());
    }
    median(runs)
}

/// Waits (up to two minutes) until ClickHouse has no merge running in
/// `database`: a background merge of the freshly written parts takes a core
/// of this 2-core machine and would time itself into whichever query runs
/// beside it.
async fn quiesce(admin: &ch::Client, database: &str) {
    let sql = format!("SELECT count() FROM system.merges WHERE database = '{database}'");
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(120) {
        let running = admin
            .query_raw(&sql)
            .fetch_one::<u64>()
            .await
            .expect("system.merges");
        if running == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("merges still running after 120 s; timing anyway");
}

#[tokio::main]
async fn main() {
    let url = std::env::var("REGWATCH_BENCH_CLICKHOUSE_URL")
        .expect("REGWATCH_BENCH_CLICKHOUSE_URL (or run bench/alerts_page.sh)");
    let n: u64 = std::env::var("ALERTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let database = format!("rw_bench_alerts_{}", std::process::id());
    let mut admin = ch::Client::default().with_url(&url).with_validation(false);
    if std::env::var_os("LOG_QUERIES").is_some() {
        // Every query's server-side time lands in system.query_log.
        admin = admin.with_setting("log_queries", "1");
    }
    ch::migrate_through(&admin, &database, 5)
        .await
        .expect("pre-0006 schema");
    let db = admin.clone().with_database(&database);

    // Alert i created at T0 + i s; every third also has a second version.
    let t0_ms: u64 = 1_795_341_600_000;
    let raw = template();
    let (pre, post) = raw.split_once(ID_MARK).expect("the template holds the id");
    let quote = |s: &str| s.replace('\\', "\\\\").replace('\'', "\\'");
    let fill = |versions: &str, filter: &str| {
        format!(
            "INSERT INTO alerts SELECT id, 'registration_burst', 'high', 0.91, \
             concat('client-', toString(number)), {versions}, concat('k-', toString(number)), \
             toDateTime(intDiv(ms, 1000)), ms, toDateTime(intDiv(ms, 1000)), ms + {bump}, \
             ['e'], emptyArrayString(), 'summary', concat('{pre}', id, '{post}') \
             FROM (SELECT number, {t0_ms} + number * 1000 AS ms, \
                   lower(hex(MD5(toString(number)))) AS h, \
                   concat(substring(h, 1, 8), '-', substring(h, 9, 4), '-4', substring(h, 14, 3), \
                          '-8', substring(h, 18, 3), '-', substring(h, 21, 12)) AS id \
                   FROM system.numbers LIMIT {n}) {filter}",
            bump = if filter.is_empty() { 0 } else { 60_000 },
            pre = quote(pre),
            post = quote(post),
        )
    };
    let t = Instant::now();
    db.query_raw(&fill("'open'", ""))
        .execute()
        .await
        .expect("fill");
    db.query_raw(&fill("'acknowledged'", "WHERE number % 3 = 0"))
        .execute()
        .await
        .expect("second versions");
    eprintln!("filled {n} alerts in {:.1?}", t.elapsed());

    let mid_ms = t0_ms + (n / 2) * 1000;
    let late_ms = t0_ms + (n - 150) * 1000;
    let old_query = |after_ms: u64| {
        let db = db.clone();
        async move {
            let sql = OLD_PAGE
                .replace("{after_ms}", &after_ms.to_string())
                .replace("{after_id}", NIL);
            let rows = db
                .query_raw(&sql)
                .fetch_all::<(String, u64, String)>()
                .await
                .expect("old page");
            assert_eq!(rows.len(), 101);
        }
    };
    quiesce(&admin, &database).await;
    let old = [
        time(|| old_query(0)).await,
        time(|| old_query(mid_ms)).await,
        time(|| old_query(late_ms)).await,
    ];

    let t = Instant::now();
    let applied = ch::migrate(&admin, &database).await.expect("0006");
    let moved = t.elapsed();
    assert_eq!(applied, vec!["0006_alerts_by_time".to_string()]);

    quiesce(&admin, &database).await;
    let store = ClickHouseStore::new(admin.clone(), &database).expect("store");
    let cursor_at = |ms: u64| (ms > 0).then(|| regwatch_store::cursor::encode(ms, NIL));
    let new_query = |after_ms: u64| {
        let store = &store;
        let q = AlertQuery {
            limit: PAGE,
            cursor: cursor_at(after_ms),
            ..Default::default()
        };
        async move {
            let page = store.query_alerts(&q).await.expect("new page");
            assert_eq!(page.alerts.len(), PAGE as usize);
        }
    };
    let new = [
        time(|| new_query(0)).await,
        time(|| new_query(mid_ms)).await,
        time(|| new_query(late_ms)).await,
    ];

    println!(
        "alerts: {n} ({} versions), raw {} bytes each",
        n + n.div_ceil(3),
        raw.len()
    );
    println!("migration 0006 (move every version): {:.2?}", moved);
    println!("| page position | before 0006 (ms) | after 0006 (ms) | before / after |");
    println!("|---|---:|---:|---:|");
    for (i, label) in ["first", "middle", "last"].iter().enumerate() {
        println!(
            "| {label} | {:.1} | {:.1} | {:.1}x |",
            old[i].as_secs_f64() * 1e3,
            new[i].as_secs_f64() * 1e3,
            old[i].as_secs_f64() / new[i].as_secs_f64()
        );
    }
    if std::env::var_os("KEEP").is_some() {
        eprintln!("kept database {database}");
        return;
    }
    let _ = admin
        .query_raw(&format!("DROP DATABASE IF EXISTS {database}"))
        .execute()
        .await;
}
