//! The pipeline killed at random points, many times, still ends exactly
//! once. Real parts: the `regwatch pipeline` binary (SIGKILL, no chance to
//! flush or commit), a tansu broker, ClickHouse 18.16. Some rounds run two
//! pipeline processes in one group, so partitions move between them
//! (rebalances) while batches are in flight.
//!
//! Exactly once is checked three ways on the server: rows after dedup
//! (`FINAL`), distinct `event_id`s, and the per-minute rollup that a
//! materialized view fills from every insert (a duplicate ever inserted
//! would show there). Per-client order is checked through the store API.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{create_topics, env_or_skip, TansuBroker};
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use regwatch_schemas::{Actor, Envelope, EventPayload, ToolCalled, ToolDecision};
use regwatch_store::EventQuery;

const CLIENTS: usize = 20;
const PER_CLIENT: usize = 1_000;

/// A child process killed (SIGKILL) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A small deterministic generator: the kill points differ per round but
/// a failing run can be replayed from the printed seed.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn pipeline(brokers: &str, group: &str, ch: &str, db: &str) -> Killed {
    pipeline_with(brokers, group, ch, db, &[])
}

fn pipeline_with(brokers: &str, group: &str, ch: &str, db: &str, args: &[&str]) -> Killed {
    Killed(
        Command::new(env!("CARGO_BIN_EXE_regwatch"))
            .arg("pipeline")
            .args(args)
            .env("REGWATCH_PIPELINE__BROKERS", brokers)
            .env("REGWATCH_PIPELINE__GROUP_ID", group)
            // Small batches, so a kill usually lands between a store write
            // and its commit, or in the middle of a batch.
            .env("REGWATCH_PIPELINE__BATCH_MAX_EVENTS", "37")
            .env("REGWATCH_PIPELINE__BATCH_MAX_WAIT_MS", "20")
            .env("REGWATCH_PIPELINE__SESSION_TIMEOUT_MS", "6000")
            .env("REGWATCH_PIPELINE__LAG_INTERVAL_MS", "500")
            .env("REGWATCH_STORE__CLICKHOUSE_URL", ch)
            .env("REGWATCH_STORE__CLICKHOUSE_DATABASE", db)
            .env("REGWATCH_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn regwatch pipeline"),
    )
}

async fn ch_number(http: &reqwest::Client, url: &str, sql: String) -> u64 {
    let r = http.post(url).body(sql.clone()).send().await.unwrap();
    let text = r.text().await.unwrap();
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{sql}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_killed_many_times_ends_exactly_once() {
    let (Some(tansu), Some(ch)) = (
        env_or_skip("REGWATCH_TEST_TANSU", "see README, Testing"),
        env_or_skip("REGWATCH_TEST_CLICKHOUSE_URL", "see README, Testing"),
    ) else {
        return;
    };
    let started = Instant::now();
    let broker = TansuBroker::start(&tansu);
    let brokers = broker.brokers();
    create_topics(&brokers).await;

    // The events, produced up front: CLIENTS clients, PER_CLIENT each, in order.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        // One record per batch. tansu 0.6 answers a fetch from an offset
        // inside a multi-record batch with nothing (measured: from offset
        // 0 of a 100-record batch, 3 records at once; from 50 or 99, none
        // in 10 s; Kafka returns the whole batch and the client skips the
        // records before the offset). A pipeline restarted from a commit
        // inside a batch would then wait forever. With batches of several
        // records, the last process stalled part-way in 5 runs of 5.
        .set("batch.num.messages", "1")
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let mut expected: Vec<Vec<String>> = vec![Vec::new(); CLIENTS];
    let base = chrono::Utc::now() - chrono::Duration::minutes(5);
    let mut bodies: Vec<(String, Vec<u8>)> = Vec::with_capacity(CLIENTS * PER_CLIENT);
    for i in 0..PER_CLIENT {
        for (c, ids) in expected.iter_mut().enumerate() {
            let client = format!("crash-client-{c:02}");
            let payload = EventPayload::ToolCalled(ToolCalled {
                tool: "get_item".into(),
                decision: ToolDecision::Allowed,
                deciding_scope: Some("mcp:read".into()),
                resource: "http://127.0.0.1:8500/mcp".into(),
                user_id: Some("alice".into()),
                reason: None,
            });
            let at = base + chrono::Duration::milliseconds((i * CLIENTS + c) as i64);
            let mut e = Envelope::new("http://127.0.0.1:8400", Actor::client(&client), payload, at);
            e.client_id = Some(client.clone());
            ids.push(e.event_id.to_string());
            bodies.push((client, serde_json::to_vec(&e).unwrap()));
        }
    }
    // Poison, spread through the stream: each must reach the dead-letter
    // topic with its reason while the pipeline keeps going.
    let mut deep = String::new();
    for _ in 0..200 {
        deep.push('[');
    }
    let mut unknown_version = serde_json::to_value(Envelope::new(
        "http://127.0.0.1:8400",
        Actor::client("poison"),
        EventPayload::ClientDeleted(regwatch_schemas::ClientDeleted {
            reason: "x".into(),
            tokens_revoked: 0,
        }),
        base,
    ))
    .unwrap();
    unknown_version["schema_version"] = 99.into();
    let poison: Vec<(&str, Vec<u8>)> = vec![
        ("invalid_json", b"{not json".to_vec()),
        (
            "unknown_schema_version",
            serde_json::to_vec(&unknown_version).unwrap(),
        ),
        ("oversized", vec![b' '; 200 * 1024]),
        ("too_deep", deep.into_bytes()),
    ];
    for (i, (_, p)) in poison.iter().enumerate() {
        bodies.insert(1 + i * 5000, (format!("poison-{i}"), p.clone()));
    }
    // In flight together; the idempotent producer keeps per-partition order.
    // `send_result` enqueues at once (`send` is a future that enqueues only
    // when polled: awaited one by one it waited for each acknowledgement in
    // turn, 5 ms per record: 108 s for these 20,000).
    let deliveries: Vec<_> = bodies
        .iter()
        .map(|(k, b)| {
            producer
                .send_result(
                    FutureRecord::to(regwatch_schemas::EVENTS_TOPIC)
                        .key(k.as_bytes())
                        .payload(b),
                )
                .map_err(|(e, _)| e)
                .expect("enqueued")
        })
        .collect();
    for d in deliveries {
        d.await
            .expect("delivery reported")
            .map_err(|(e, _)| e)
            .expect("acknowledged by the broker");
    }
    let total = (CLIENTS * PER_CLIENT) as u64;

    let db = format!("rw_crash_{}", uuid::Uuid::now_v7().simple());
    let group = format!("crash-{}", uuid::Uuid::now_v7().simple());
    // Create the database and tables once, so every process starts equal.
    let store = regwatch::scaled::clickhouse(&regwatch_store::StoreConfig {
        clickhouse_url: ch.clone(),
        clickhouse_database: db.clone(),
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!(
        "kill schedule seed {seed} ({:?} into the test)",
        started.elapsed()
    );
    let mut rng = Lcg(seed);

    // Rounds: start one or two processes; once the group is writing (the
    // stored count moved), kill -9 at a random point, so every kill lands
    // mid-batch or between a batch's write and its commit, not during the
    // group join. A round starts only after the killed members' sessions
    // (6 s) expired: tansu 0.6 hands a joining member nothing while a
    // killed member is still in its session. Without that wait, rounds 4
    // to 7 of a run stored nothing (the processes they killed were idle).
    let mut kills = 0;
    let mut kills_while_writing = 0;
    let mut progress = Vec::new();
    for round in 0..8 {
        if round > 0 {
            tokio::time::sleep(Duration::from_secs(7)).await;
        }
        let two = round % 3 == 1;
        let at_start = store.count_events().await.unwrap();
        let a = pipeline(&brokers, &group, &ch, &db);
        let b = two.then(|| pipeline(&brokers, &group, &ch, &db));
        let t = Instant::now();
        let mut writing = false;
        let mut first_write = None;
        while t.elapsed() < Duration::from_secs(30) {
            let n = store.count_events().await.unwrap();
            if n > at_start || n == total {
                writing = n < total;
                first_write = Some(t.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.below(400))).await;
        drop(a);
        kills += 1;
        kills_while_writing += usize::from(writing);
        if let Some(b) = b {
            // The survivor keeps writing its partitions, then dies too.
            tokio::time::sleep(Duration::from_millis(100 + rng.below(400))).await;
            drop(b);
            kills += 1;
        }
        let stored = store.count_events().await.unwrap();
        progress.push(stored);
        eprintln!(
            "round {round}: {stored}/{total} stored after {kills} kills \
             ({kills_while_writing} while writing; first write {first_write:?} after start)"
        );
        if stored == total {
            break;
        }
    }
    assert!(
        kills_while_writing >= 6,
        "only {kills_while_writing} kills landed while the pipeline was writing \
         (stored after each round: {progress:?})"
    );
    // The last one runs to the end, with its metrics listener on. It joins
    // only after the killed members' sessions (6 s) expired: tansu 0.6
    // hands a joining member nothing while a killed member is still in its
    // session, and then does not rebalance when that session expires (seen
    // here: the last member assigned `[]` for 180 s; Kafka would rebalance).
    tokio::time::sleep(Duration::from_secs(8)).await;
    let metrics_addr = format!("127.0.0.1:{}", common::free_port());
    let _last = pipeline_with(
        &brokers,
        &group,
        &ch,
        &db,
        &["--metrics-listen", &metrics_addr],
    );
    let t = Instant::now();
    while store.count_events().await.unwrap() < total {
        assert!(
            // Generous: the last process first waits out the killed
            // members' session timeouts (6 s each) and the group join.
            t.elapsed() < Duration::from_secs(180),
            "the pipeline did not finish after the kills"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "last process: all stored {:?} after its start ({:?} into the test)",
        t.elapsed(),
        started.elapsed()
    );
    assert!(
        kills >= 3,
        "the test killed the pipeline only {kills} times"
    );
    // The binary exports its counters for Prometheus; its lag gauge reaches
    // 0 once everything is committed (the probe reads the broker's
    // committed offsets, so this also proves the last commit landed).
    let scrape = async || {
        http.get(format!("http://{metrics_addr}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let lag_line = "regwatch_pipeline_consumer_lag 0";
    let t = Instant::now();
    let mut metrics = scrape().await;
    while !metrics.lines().any(|l| l == lag_line) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no `{lag_line}` in /metrics:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
        metrics = scrape().await;
    }
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{metrics}"))
    };
    assert_eq!(value("regwatch_pipeline_paused"), 0);
    assert!(value("regwatch_pipeline_consumed_total") >= value("regwatch_pipeline_written_total"));
    value("regwatch_pipeline_dead_lettered_total");
    value("regwatch_pipeline_commits_refused_total");
    value("regwatch_detect_clients");

    let q = |sql: String| ch_number(&http, &ch, sql);
    let final_rows = q(format!("SELECT count() FROM {db}.events FINAL")).await;
    let distinct = q(format!("SELECT uniqExact(event_id) FROM {db}.events")).await;
    let rollup = q(format!("SELECT sum(events) FROM {db}.events_per_minute")).await;
    assert_eq!(
        (final_rows, distinct, rollup),
        (total, total, total),
        "(rows FINAL, distinct, rollup) after {kills} kills"
    );

    // The dead-letter topic holds each poison record, with its reason.
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::message::Headers;
    use rdkafka::Message;
    let dlq: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", format!("dlq-{}", uuid::Uuid::now_v7().simple()))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    dlq.subscribe(&[regwatch_schemas::DLQ_TOPIC]).unwrap();
    let mut reasons = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reasons.len() < poison.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = tokio::time::timeout(left, dlq.recv())
            .await
            .expect("dead-letter records")
            .unwrap();
        let headers = m.headers().expect("dead-letter headers");
        for h in headers.iter() {
            if h.key == "dlq_reason" {
                reasons.insert(String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned());
            }
        }
    }
    eprintln!("dead letters read ({:?} into the test)", started.elapsed());
    let want: std::collections::BTreeSet<String> =
        poison.iter().map(|(r, _)| r.to_string()).collect();
    assert_eq!(
        reasons, want,
        "one dead letter per poison record, with its reason"
    );

    for (c, ids) in expected.iter().enumerate() {
        let page = store
            .query_events(&EventQuery {
                client_id: Some(format!("crash-client-{c:02}")),
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        let got: Vec<String> = page.events.iter().map(|e| e.event_id.to_string()).collect();
        assert_eq!(&got, ids, "client {c}: every event once, in order");
    }
}
