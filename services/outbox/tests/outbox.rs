//! The outbox on a real SQLite file and, when `REGWATCH_TEST_PG_URL` is set,
//! on a real PostgreSQL (a fresh database per test). In CI a missing
//! PostgreSQL fails the run; locally the test says why it skipped.
//!
//! What is checked: an append commits or rolls back with its transaction;
//! rows come back in `seq` order with the envelope's columns; the cursor
//! and the unpublished list; marking; counts; the multi-row and the
//! rusqlite writers write the same rows as the single append.

use chrono::{TimeZone, Utc};
use regwatch_outbox::{Outbox, OutboxRow};
use regwatch_schemas::{
    Actor, ClientDeleted, ClientRegistrationRejected, Envelope, EventPayload, RegistrationMethod,
    Source,
};
use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;

struct Db {
    name: &'static str,
    pool: AnyPool,
    outbox: Outbox,
    /// The SQLite file, kept for the test's life.
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Db {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("outbox.db").display()
    );
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("sqlite");
    regwatch_outbox::create_table(&pool).await.expect("table");
    Db {
        name: "sqlite",
        outbox: Outbox::new(pool.clone()),
        pool,
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL database, or `None` (with the reason printed) when
/// none is configured outside CI.
async fn postgres() -> Option<Db> {
    let Ok(base) = std::env::var("REGWATCH_TEST_PG_URL") else {
        if std::env::var_os("CI").is_some() {
            panic!("REGWATCH_TEST_PG_URL is not set in CI: .ci/run must start PostgreSQL");
        }
        eprintln!(
            "skipping PostgreSQL: set REGWATCH_TEST_PG_URL (deploy/local/pg-up.sh prints it)"
        );
        return None;
    };
    sqlx::any::install_default_drivers();
    let db = format!("t_{}", uuid::Uuid::now_v7().simple());
    let admin = AnyPool::connect(&base)
        .await
        .expect("connect to REGWATCH_TEST_PG_URL");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .expect("create database");
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/').expect("database url");
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .connect(&format!("{prefix}/{db}"))
        .await
        .expect("postgres");
    regwatch_outbox::create_table(&pool).await.expect("table");
    Some(Db {
        name: "postgres",
        outbox: Outbox::new(pool.clone()),
        pool,
        _dir: None,
    })
}

async fn backends() -> Vec<Db> {
    let mut v = vec![sqlite().await];
    v.extend(postgres().await);
    v
}

fn deleted(client: &str, ms: i64) -> Envelope {
    let at = Utc
        .timestamp_millis_opt(1_790_000_000_000 + ms)
        .single()
        .expect("time");
    let mut e = Envelope::new(
        "https://as.example.com",
        Actor::admin("ops"),
        EventPayload::ClientDeleted(ClientDeleted {
            reason: "admin".into(),
            tokens_revoked: 0,
        }),
        at,
    );
    e.client_id = Some(client.into());
    e
}

fn rejected() -> Envelope {
    let mut e = Envelope::new(
        "https://as.example.com",
        Actor::anonymous_client(),
        EventPayload::ClientRegistrationRejected(ClientRegistrationRejected {
            error: "invalid_redirect_uri".into(),
            error_description: "fragment".into(),
            rule: "redirect.fragment".into(),
            http_status: 400,
            registration_method: RegistrationMethod::Dcr,
            operation: "register".into(),
            attempted: None,
            dropped_fields: vec![],
        }),
        Utc::now(),
    );
    e.source = Some(Source {
        ip: Some("10.1.2.3".into()),
        user_agent: None,
    });
    e
}

/// The row an envelope should become (seq aside).
fn expected_row(e: &Envelope) -> OutboxRow {
    OutboxRow {
        seq: 0,
        event_id: e.event_id.to_string(),
        event_type: e.event_type().as_str().to_string(),
        client_id: e.client_id.clone(),
        payload: serde_json::to_string(e).expect("json"),
        created_at: e.occurred_at.timestamp_millis(),
    }
}

fn without_seq(rows: &[OutboxRow]) -> Vec<OutboxRow> {
    rows.iter()
        .map(|r| OutboxRow {
            seq: 0,
            ..r.clone()
        })
        .collect()
}

#[tokio::test]
async fn an_append_commits_and_rolls_back_with_its_transaction() {
    for db in backends().await {
        let kept = deleted("c-kept", 1);
        let mut tx = db.pool.begin().await.expect("begin");
        regwatch_outbox::append(&mut tx, &kept)
            .await
            .expect("append");
        tx.commit().await.expect("commit");

        let dropped = deleted("c-dropped", 2);
        let mut tx = db.pool.begin().await.expect("begin");
        regwatch_outbox::append(&mut tx, &dropped)
            .await
            .expect("append");
        tx.rollback().await.expect("rollback");

        let rows = db.outbox.after(0, 100).await.expect("read");
        assert_eq!(without_seq(&rows), vec![expected_row(&kept)], "{}", db.name);
        assert_eq!(db.outbox.count().await.expect("count"), 1, "{}", db.name);
    }
}

#[tokio::test]
async fn a_duplicate_event_id_fails_its_transaction() {
    for db in backends().await {
        let e = deleted("c-1", 1);
        db.outbox.record(&e).await.expect("first");
        let other = deleted("c-2", 2);
        let mut tx = db.pool.begin().await.expect("begin");
        regwatch_outbox::append(&mut tx, &other)
            .await
            .expect("append");
        let dup = regwatch_outbox::append(&mut tx, &e).await;
        assert!(
            matches!(dup, Err(regwatch_outbox::OutboxError::Db(_))),
            "{}",
            db.name
        );
        drop(tx);
        assert_eq!(db.outbox.count().await.expect("count"), 1, "{}", db.name);
    }
}

#[tokio::test]
async fn cursor_unpublished_marking_and_counts() {
    for db in backends().await {
        let events: Vec<Envelope> = (0..5).map(|i| deleted(&format!("k{i}"), i)).collect();
        for e in &events {
            db.outbox.record(e).await.expect("record");
        }
        let all = db.outbox.after(0, 100).await.expect("all");
        assert_eq!(all.len(), 5, "{}", db.name);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "{}", db.name);
        assert_eq!(
            without_seq(&all),
            events.iter().map(expected_row).collect::<Vec<_>>(),
            "{}",
            db.name
        );
        let page = db.outbox.after(all[0].seq, 2).await.expect("page");
        assert_eq!(
            page.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![all[1].seq, all[2].seq],
            "{}: a page after the cursor",
            db.name
        );
        assert!(db
            .outbox
            .after(all[4].seq, 10)
            .await
            .expect("end")
            .is_empty());

        assert_eq!(db.outbox.backlog().await.expect("backlog"), 5);
        db.outbox
            .mark_published(&[all[0].seq, all[2].seq], Utc::now().timestamp_millis())
            .await
            .expect("mark");
        assert_eq!(
            db.outbox.backlog().await.expect("backlog"),
            3,
            "{}",
            db.name
        );
        assert_eq!(db.outbox.count().await.expect("count"), 5, "{}", db.name);
        let left = db.outbox.unpublished(10).await.expect("unpublished");
        assert_eq!(
            left.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![all[1].seq, all[3].seq, all[4].seq],
            "{}",
            db.name
        );
        let first = db.outbox.unpublished(1).await.expect("unpublished");
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].seq, all[1].seq);
        // Marking is idempotent, and marking nothing is a no-op.
        db.outbox
            .mark_published(&[all[0].seq], 1)
            .await
            .expect("again");
        db.outbox.mark_published(&[], 1).await.expect("nothing");
        assert_eq!(db.outbox.backlog().await.expect("backlog"), 3);
    }
}

#[tokio::test]
async fn append_all_writes_the_rows_single_appends_write() {
    for db in backends().await {
        // More than one statement's worth, to cross a statement boundary.
        let events: Vec<Envelope> = (0..1_203)
            .map(|i| match i % 3 {
                0 => rejected(),
                _ => deleted(&format!("c{}", i % 7), i),
            })
            .collect();
        let mut tx = db.pool.begin().await.expect("begin");
        regwatch_outbox::append_all(&mut tx, &events)
            .await
            .expect("append_all");
        regwatch_outbox::append_all(&mut tx, &[])
            .await
            .expect("nothing");
        tx.commit().await.expect("commit");
        let rows = db.outbox.after(0, 10_000).await.expect("read");
        assert_eq!(
            without_seq(&rows),
            events.iter().map(expected_row).collect::<Vec<_>>(),
            "{}: in order, the same columns",
            db.name
        );
        assert_eq!(rows[0].client_id, None, "a rejected registration has none");
    }
}

#[tokio::test]
async fn the_rusqlite_writer_writes_the_same_rows() {
    let db = sqlite().await;
    let events = vec![deleted("c-1", 1), rejected(), deleted("c-2", 2)];
    let path = db._dir.as_ref().expect("dir").path().join("outbox.db");
    let written = events.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = rusqlite::Connection::open(path).expect("open");
        let tx = conn.transaction().expect("begin");
        regwatch_outbox::append_rusqlite(&tx, &written).expect("append");
        tx.commit().expect("commit");
        // A rolled-back one leaves nothing.
        let tx = conn.transaction().expect("begin");
        regwatch_outbox::append_rusqlite(&tx, &[deleted("c-3", 3)]).expect("append");
        tx.rollback().expect("rollback");
    })
    .await
    .expect("writer");
    let rows = db.outbox.after(0, 10).await.expect("read");
    assert_eq!(
        without_seq(&rows),
        events.iter().map(expected_row).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn create_table_is_idempotent() {
    for db in backends().await {
        db.outbox.record(&deleted("c-1", 1)).await.expect("record");
        regwatch_outbox::create_table(&db.pool)
            .await
            .expect("again");
        assert_eq!(db.outbox.count().await.expect("count"), 1, "{}", db.name);
    }
}
