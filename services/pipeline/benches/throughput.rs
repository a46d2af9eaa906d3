//! Pipeline throughput, in events/s and events per CPU-second, each beside
//! a ceiling measured in the same run (see BENCHMARKS.md, "Pipeline
//! throughput"). Not a test: it asserts only that every event arrived.
//!
//! Run through `bench/pipeline.sh`, which starts a tansu broker and a
//! ClickHouse 18.16 server of its own and passes:
//! - `BENCH_BROKERS` (`host:port`), `BENCH_CLICKHOUSE_URL`;
//! - `BENCH_TANSU_PID`, `BENCH_CLICKHOUSE_PID` (their CPU time is read from
//!   `/proc/PID/stat` before and after every phase);
//! - `BENCH_N` (events, default 300000), `BENCH_DIR` (scratch directory for
//!   the SQLite files), `BENCH_PHASES` (comma list to run a subset:
//!   `consume,chraw,chstore,pipe,pipedetect,rebuild,embedded`; default
//!   all). Without a Kafka phase nothing is produced and no broker is
//!   needed: `BENCH_PHASES=embedded` runs on the SQLite files alone.
//!
//! CPU is the process's own user+system time (`/proc/self/stat`), so
//! "events per core" = events / CPU-seconds of this process. Broker and
//! ClickHouse CPU are reported beside it: on this machine all three share
//! the same 2 cores.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use regwatch_detect_corpus::Rng;
use regwatch_outbox::Outbox;
use regwatch_pipeline::store_detect::StoreAndDetect;
use regwatch_pipeline::{EventSink, PipelineConfig, SinkError};
use regwatch_schemas::event::*;
use regwatch_schemas::{Envelope, WireEvent};
use regwatch_store::EventStore;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The batch size the pipeline writes with (its default), used by the
/// insert-only ceilings too so they compare like with like.
const BATCH: usize = 5_000;

// ---------------------------------------------------------------- CPU time

fn clk_tck() -> f64 {
    std::env::var("CLK_TCK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in seconds (`None` if it is gone).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clk_tck())
}

#[derive(Clone, Copy)]
struct Snap {
    at: Instant,
    me: f64,
    broker: f64,
    ch: f64,
}

struct Env {
    brokers: String,
    ch_url: String,
    tansu_pid: String,
    ch_pid: String,
}

impl Env {
    fn snap(&self) -> Snap {
        Snap {
            at: Instant::now(),
            me: cpu_seconds("self").unwrap_or(0.0),
            broker: cpu_seconds(&self.tansu_pid).unwrap_or(0.0),
            ch: cpu_seconds(&self.ch_pid).unwrap_or(0.0),
        }
    }
}

struct Row {
    name: String,
    events: u64,
    /// Wall time of the steady part (first record read → last durable).
    wall: f64,
    /// Wall time including setup (group join, connections).
    wall_total: f64,
    me: f64,
    broker: f64,
    ch: f64,
}

impl Row {
    fn new(name: &str, events: u64, a: Snap, first: Option<Instant>, b: Snap) -> Row {
        let start = first.unwrap_or(a.at);
        Row {
            name: name.to_string(),
            events,
            wall: b.at.duration_since(start).as_secs_f64(),
            wall_total: b.at.duration_since(a.at).as_secs_f64(),
            me: b.me - a.me,
            broker: b.broker - a.broker,
            ch: b.ch - a.ch,
        }
    }
    fn rate(&self) -> f64 {
        self.events as f64 / self.wall.max(1e-9)
    }
    fn per_core(&self) -> f64 {
        self.events as f64 / self.me.max(1e-9)
    }
    fn per_core_all(&self) -> f64 {
        self.events as f64 / (self.me + self.broker + self.ch).max(1e-9)
    }
}

fn fmt_n(x: f64) -> String {
    let s = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------- events

/// Realistic envelopes: ~20 events per client over many clients, a mix
/// weighted towards tool calls and tokens, `occurred_at` 1 ms apart (so a
/// batch covers a narrow time range, as live traffic does).
fn generate(n: usize) -> Vec<(String, String)> {
    let mut rng = Rng::new(0x0062_656e_6368);
    let base: DateTime<Utc> = Utc
        .with_ymd_and_hms(2026, 11, 22, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let clients: Vec<String> = (0..(n / 20).max(1000))
        .map(|_| rng.uuid().to_string())
        .collect();
    let tools = [
        "search_docs",
        "read_file",
        "create_issue",
        "list_repos",
        "send_message",
        "query_db",
    ];
    let agents = [
        "Claude-User/1.0",
        "node-fetch/3.3.2",
        "python-httpx/0.27.2",
        "Mozilla/5.0 (X11; Linux x86_64)",
    ];
    let resource = "https://mcp.example.com/mcp".to_string();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let at = base + chrono::Duration::milliseconds(i as i64);
        let cid = rng.pick(&clients).clone();
        let user = format!("user-{}", rng.below(5000));
        let scopes = vec!["mcp:read".to_string(), "mcp:tools".to_string()];
        let roll = rng.below(100);
        let payload = match roll {
            0..=54 => {
                let denied = rng.chance(0.05);
                EventPayload::ToolCalled(ToolCalled {
                    tool: rng.pick(&tools).to_string(),
                    decision: if denied {
                        ToolDecision::Denied
                    } else {
                        ToolDecision::Allowed
                    },
                    deciding_scope: Some("mcp:tools".into()),
                    resource: resource.clone(),
                    user_id: Some(user.clone()),
                    reason: denied.then(|| "insufficient_scope".into()),
                })
            }
            55..=69 => EventPayload::TokenIssued(TokenIssued {
                grant_type: "authorization_code".into(),
                scopes: scopes.clone(),
                resource: resource.clone(),
                token_id: format!("{:016x}", rng.next_u64()),
                family_id: Some(rng.uuid().to_string()),
                user_id: Some(user.clone()),
                refresh_token_issued: true,
                expires_in: 3600,
            }),
            70..=79 => EventPayload::TokenRefreshed(TokenRefreshed {
                family_id: rng.uuid().to_string(),
                token_id: format!("{:016x}", rng.next_u64()),
                scopes: scopes.clone(),
                resource: resource.clone(),
                expires_in: 3600,
            }),
            80..=85 => EventPayload::ConsentGranted(ConsentGranted {
                user_id: user.clone(),
                scopes: scopes.clone(),
                resource: resource.clone(),
                redirect_uri: format!("http://127.0.0.1:{}/callback", 30000 + rng.below(30000)),
            }),
            86..=91 => EventPayload::ClientRegistered(ClientRegistered {
                registration_method: RegistrationMethod::Dcr,
                metadata: ClientMetadata {
                    client_name: Some(format!("Tool {}", rng.below(100_000))),
                    redirect_uris: vec![format!(
                        "http://127.0.0.1:{}/callback",
                        30000 + rng.below(30000)
                    )],
                    grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                    response_types: vec!["code".into()],
                    token_endpoint_auth_method: Some("none".into()),
                    scope: Some("mcp:read mcp:tools".into()),
                    ..Default::default()
                },
                confidential: false,
                dropped_fields: vec![],
                initial_access_token: false,
            }),
            92..=94 => EventPayload::TokenRevoked(TokenRevoked {
                token_kind: TokenKind::RefreshToken,
                reason: "rfc7009".into(),
                family_id: Some(rng.uuid().to_string()),
                token_id: Some(format!("{:016x}", rng.next_u64())),
                count: 1,
            }),
            95..=97 => EventPayload::ConsentDenied(ConsentDenied {
                user_id: Some(user.clone()),
                scopes: scopes.clone(),
                resource: Some(resource.clone()),
                reason: "user_denied".into(),
            }),
            _ => EventPayload::ClientAccessDenied(ClientAccessDenied {
                endpoint: "token".into(),
                client_status: "revoked".into(),
                reason: "client is revoked".into(),
            }),
        };
        let actor = match &payload {
            EventPayload::ConsentGranted(_) | EventPayload::ConsentDenied(_) => Actor::user(user),
            _ => Actor::client(cid.clone()),
        };
        let mut env = Envelope::new("https://auth.example.com", actor, payload, at);
        env.event_id = rng.uuid7(at);
        env.client_id = Some(cid.clone());
        env.source = Some(Source {
            ip: Some(format!("203.0.{}.{}", rng.below(256), rng.below(256))),
            user_agent: Some(rng.pick(&agents).to_string()),
        });
        env.request_id = Some(rng.uuid().to_string());
        env.correlation_id = Some(rng.uuid().to_string());
        if matches!(env.payload, EventPayload::ClientRegistered(_)) {
            env.policy = Some(PolicyDecision {
                decision: Decision::Allow,
                matched_rules: vec![],
                risk_signals: vec!["loopback_redirect".into()],
            });
        }
        let json = serde_json::to_string(&env).expect("serialize");
        out.push((cid, json));
    }
    out
}

// ---------------------------------------------------------------- sinks

/// Detection off: the pipeline's sink reduced to the store write
/// (`EventStore::insert_events`, what `StoreAndDetect` writes with, without
/// the detector).
struct ThinSink(Arc<dyn EventStore>);

#[async_trait]
impl EventSink for ThinSink {
    async fn write(&self, batch: &[WireEvent]) -> Result<(), SinkError> {
        self.0
            .insert_events(batch)
            .await
            .map(|_| ())
            .map_err(|e| SinkError::Unavailable(e.to_string()))
    }
}

fn detector_sink(store: Arc<dyn EventStore>) -> Arc<dyn EventSink> {
    let det = regwatch_detect::Detector::new(regwatch_detect::DetectConfig::default())
        .expect("default detector config");
    Arc::new(StoreAndDetect::new(store, det, None))
}

// ---------------------------------------------------------------- kafka

fn consumer_config(brokers: &str, group: &str) -> ClientConfig {
    // The pipeline's own settings (PipelineConfig::default + consumer/).
    let d = PipelineConfig::default();
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", d.session_timeout_ms.to_string())
        .set("fetch.wait.max.ms", d.fetch_wait_max_ms.to_string())
        .set("queued.min.messages", d.queued_min_messages.to_string())
        .set(
            "max.partition.fetch.bytes",
            d.max_partition_fetch_bytes.to_string(),
        );
    c
}

async fn create_topics(brokers: &str) -> Result<(), BoxError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let topics = [
        NewTopic::new(
            regwatch_schemas::EVENTS_TOPIC,
            3,
            TopicReplication::Fixed(1),
        ),
        NewTopic::new(regwatch_schemas::DLQ_TOPIC, 1, TopicReplication::Fixed(1)),
    ];
    for r in admin
        .create_topics(topics.iter(), &AdminOptions::new())
        .await?
    {
        r.map_err(|(t, e)| format!("create topic {t}: {e}"))?;
    }
    Ok(())
}

/// Counts delivery reports: a record is produced only when acknowledged.
#[derive(Default)]
struct Acks {
    ok: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
}

impl rdkafka::ClientContext for Acks {}

impl rdkafka::producer::ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn produce(env: &Env, events: &[(String, String)]) -> Result<Row, BoxError> {
    let producer: BaseProducer<Acks> = ClientConfig::new()
        .set("bootstrap.servers", &env.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create_with_context(Acks::default())?;
    let a = env.snap();
    for (key, json) in events {
        let mut rec = BaseRecord::to(regwatch_schemas::EVENTS_TOPIC)
            .key(key)
            .payload(json);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((e, r)) => {
                    if !matches!(
                        e.rdkafka_error_code(),
                        Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    ) {
                        return Err(e.into());
                    }
                    rec = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120))?;
    let b = env.snap();
    // Every record must be acknowledged by the broker.
    let (ok, failed) = (
        producer.context().ok.load(Ordering::Relaxed),
        producer.context().failed.load(Ordering::Relaxed),
    );
    if ok != events.len() as u64 || failed != 0 {
        return Err(format!("{ok} acknowledged, {failed} failed, of {}", events.len()).into());
    }
    Ok(Row::new(
        "produce (idempotent, acks=all, linger 20 ms) — setup",
        events.len() as u64,
        a,
        None,
        b,
    ))
}

/// Ceiling: the same topic, the same consumer tuning, `recv` + serde_json
/// parse into an `Envelope`, nothing else.
async fn consume_ceiling(env: &Env, n: usize) -> Result<Row, BoxError> {
    let a = env.snap();
    let consumer: StreamConsumer = consumer_config(
        &env.brokers,
        &format!("ceiling-{}", uuid::Uuid::now_v7().simple()),
    )
    .create()?;
    consumer.subscribe(&[regwatch_schemas::EVENTS_TOPIC])?;
    let mut first = None;
    let mut ok = 0usize;
    let mut seen = 0usize;
    while seen < n {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .map_err(|_| format!("ceiling: read {seen} of {n}, then nothing for 60 s"))??;
        first.get_or_insert_with(Instant::now);
        seen += 1;
        if let Some(p) = m.payload() {
            if serde_json::from_slice::<Envelope>(p).is_ok() {
                ok += 1;
            }
        }
    }
    let b = env.snap();
    if ok != n {
        return Err(format!("ceiling parsed {ok} of {n}").into());
    }
    Ok(Row::new(
        "ceiling: rdkafka consume + serde_json parse",
        n as u64,
        a,
        first,
        b,
    ))
}

async fn run_pipeline(
    env: &Env,
    name: &str,
    n: usize,
    sink: Arc<dyn EventSink>,
) -> Result<Row, BoxError> {
    let cfg = PipelineConfig {
        brokers: env.brokers.clone(),
        group_id: format!("bench-{}", uuid::Uuid::now_v7().simple()),
        ..Default::default()
    };
    let a = env.snap();
    let pipeline = regwatch_pipeline::Pipeline::new(cfg, sink)?;
    let metrics = pipeline.metrics();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(pipeline.run(async move {
        let _ = rx.await;
    }));
    let mut first = None;
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        if first.is_none() && metrics.consumed.load(Ordering::Relaxed) > 0 {
            first = Some(Instant::now());
        }
        if metrics.written.load(Ordering::Relaxed) >= n as u64 {
            break;
        }
        if Instant::now() > deadline || task.is_finished() {
            return Err(format!(
                "{name}: pipeline wrote {} of {n}",
                metrics.written.load(Ordering::Relaxed)
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let b = env.snap();
    let _ = tx.send(());
    task.await??;
    if metrics.dead_lettered.load(Ordering::Relaxed) != 0 {
        return Err(format!("{name}: records were dead-lettered").into());
    }
    Ok(Row::new(name, n as u64, a, first, b))
}

// ---------------------------------------------------------------- clickhouse

#[derive(clickhouse::Row, serde::Serialize)]
struct EventRow {
    event_id: String,
    event_type: String,
    schema_version: u32,
    occurred_at: u32,
    occurred_at_ms: u64,
    issuer: String,
    client_id: Option<String>,
    actor_kind: String,
    actor_id: Option<String>,
    source_ip: Option<String>,
    request_id: Option<String>,
    correlation_id: Option<String>,
    raw: String,
}

fn event_row(env: &Envelope, raw: &str) -> EventRow {
    let ms = env.occurred_at.timestamp_millis() as u64;
    EventRow {
        event_id: env.event_id.to_string(),
        event_type: env.event_type().as_str().to_string(),
        schema_version: env.schema_version,
        occurred_at: (ms / 1000) as u32,
        occurred_at_ms: ms,
        issuer: env.issuer.clone(),
        client_id: env.client_id.clone(),
        actor_kind: serde_json::to_value(env.actor.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        actor_id: env.actor.id.clone(),
        source_ip: env.source.as_ref().and_then(|s| s.ip.clone()),
        request_id: env.request_id.clone(),
        correlation_id: env.correlation_id.clone(),
        raw: raw.to_string(),
    }
}

async fn ch_store(
    env: &Env,
    db: &str,
) -> Result<Arc<regwatch_store::clickhouse::ClickHouseStore>, BoxError> {
    Ok(Arc::new(
        regwatch_store::clickhouse::ClickHouseStore::connect(&env.ch_url, db).await?,
    ))
}

async fn ch_count(
    store: &regwatch_store::clickhouse::ClickHouseStore,
    n: usize,
    what: &str,
) -> Result<(), BoxError> {
    let c = store.count_events().await?;
    if c != n as u64 {
        return Err(format!("{what}: ClickHouse holds {c} events, expected {n}").into());
    }
    Ok(())
}

/// Ceiling: the same rows, built beforehand, inserted with the `clickhouse`
/// crate in batches of `BATCH` (no existence check, no parsing).
async fn ch_raw_ceiling(env: &Env, parsed: &[(Envelope, String)]) -> Result<Row, BoxError> {
    let store = ch_store(env, "rwbench_raw").await?;
    let rows: Vec<EventRow> = parsed.iter().map(|(e, raw)| event_row(e, raw)).collect();
    let client = store.client().clone();
    let a = env.snap();
    for chunk in rows.chunks(BATCH) {
        let mut ins = client.insert::<EventRow>("events").await?;
        for r in chunk {
            ins.write(r).await?;
        }
        ins.end().await?;
    }
    let b = env.snap();
    ch_count(&store, parsed.len(), "raw insert").await?;
    Ok(Row::new(
        &format!("ceiling: ClickHouse insert only (clickhouse crate, {BATCH}-row inserts)"),
        parsed.len() as u64,
        a,
        None,
        b,
    ))
}

/// The generated events as the store takes them (parsed here, untimed).
fn stored_events(parsed: &[(Envelope, String)]) -> Vec<WireEvent> {
    parsed
        .iter()
        .map(|(_, raw)| WireEvent::parse(raw.clone()).expect("generated events parse"))
        .collect()
}

/// The store alone: `EventStore::insert_events` on batches of `BATCH`
/// prepared beforehand (event_columns check, existence query, insert).
async fn ch_store_only(env: &Env, parsed: &[(Envelope, String)]) -> Result<Row, BoxError> {
    let store = ch_store(env, "rwbench_store").await?;
    let batch = stored_events(parsed);
    let a = env.snap();
    for chunk in batch.chunks(BATCH) {
        store.insert_events(chunk).await?;
    }
    let b = env.snap();
    ch_count(&store, parsed.len(), "store insert").await?;
    Ok(Row::new(
        &format!("store only: ClickHouseStore::insert_events ({BATCH}-event batches)"),
        parsed.len() as u64,
        a,
        None,
        b,
    ))
}

/// Ceiling: `scan_events` over every stored event (batches read and
/// decoded, nothing done with them); then `StoreAndDetect::rebuild` over the
/// same range into an empty detector. Reuses the detectors-on pipeline's
/// database when that phase ran, otherwise loads the events first.
async fn rebuild_from_store(
    env: &Env,
    parsed: &[(Envelope, String)],
) -> Result<(Row, Row), BoxError> {
    let n = parsed.len() as u64;
    let store = ch_store(env, "rwbench_pipe_detect").await?;
    // Each run has its own ClickHouse server: the database is empty unless
    // the detectors-on pipeline phase filled it.
    if store.count_events().await? == 0 {
        let batch = stored_events(parsed);
        for chunk in batch.chunks(BATCH) {
            store.insert_events(chunk).await?;
        }
    }
    ch_count(&store, parsed.len(), "rebuild").await?;
    let since = Utc.timestamp_opt(0, 0).single().unwrap_or_default();
    let until = Utc::now() + chrono::Duration::days(1);
    let store: Arc<dyn EventStore> = store;

    let a = env.snap();
    let read = regwatch_store::scan_events(store.as_ref(), since, until, |_| Ok(())).await?;
    let b = env.snap();
    if read != n {
        return Err(format!("scan read {read} events, expected {n}").into());
    }
    let scan = Row::new(
        "ceiling: scan_events (batches decoded, then discarded)",
        n,
        a,
        None,
        b,
    );

    let det = regwatch_detect::Detector::new(regwatch_detect::DetectConfig::default())?;
    let sink = StoreAndDetect::new(store, det, None);
    let a = env.snap();
    let read = sink.rebuild(since, until).await?;
    let b = env.snap();
    if read != n {
        return Err(format!("rebuild read {read} events, expected {n}").into());
    }
    let stats = sink.detector_stats();
    println!("\nrebuild: {read} events, detector state afterwards {stats:?}");
    let rebuild = Row::new(
        "StoreAndDetect::rebuild (scan + every detector observes)",
        n,
        a,
        None,
        b,
    );
    Ok((scan, rebuild))
}

// ---------------------------------------------------------------- embedded

async fn fill_outbox(
    dir: &std::path::Path,
    parsed: &[(Envelope, String)],
) -> Result<(Outbox, i64, f64), BoxError> {
    let pool = authz_like_sqlite(&dir.join("authz.db")).await?;
    regwatch_outbox::create_table(&pool).await?;
    let t = Instant::now();
    for chunk in parsed.chunks(10_000) {
        let mut tx = pool.begin().await?;
        for (e, _) in chunk {
            regwatch_outbox::append(&mut tx, e).await?;
        }
        tx.commit().await?;
    }
    let secs = t.elapsed().as_secs_f64();
    let outbox = Outbox::new(pool);
    let n = outbox.count().await?;
    if n != parsed.len() as i64 {
        return Err(format!("outbox holds {n}, expected {}", parsed.len()).into());
    }
    // seq is AUTOINCREMENT from 1.
    Ok((outbox, n, secs))
}

/// A pool on `path` set up as the authorization server's store sets up its
/// SQLite database (one connection, WAL, `synchronous=NORMAL`), so the
/// outbox is read as `regwatch up` reads it.
async fn authz_like_sqlite(path: &std::path::Path) -> Result<sqlx::AnyPool, BoxError> {
    use sqlx::Executor;
    sqlx::any::install_default_drivers();
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode=WAL").await?;
                conn.execute("PRAGMA synchronous=NORMAL").await?;
                conn.execute("PRAGMA busy_timeout=5000").await?;
                Ok(())
            })
        })
        .connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await?;
    Ok(pool)
}

/// Ceiling: read the outbox by cursor (the same query, 1000 rows a page)
/// and parse every payload, nothing else.
async fn outbox_ceiling(env: &Env, outbox: &Outbox, n: usize) -> Result<Row, BoxError> {
    let a = env.snap();
    let mut cursor = 0i64;
    let mut ok = 0usize;
    loop {
        let rows = outbox.after(cursor, 1000).await?;
        let Some(last) = rows.last() else { break };
        cursor = last.seq;
        for r in &rows {
            if serde_json::from_str::<Envelope>(&r.payload).is_ok() {
                ok += 1;
            }
        }
    }
    let b = env.snap();
    if ok != n {
        return Err(format!("outbox ceiling parsed {ok} of {n}").into());
    }
    Ok(Row::new(
        "ceiling: outbox read (Outbox::after, 1000/page) + serde_json parse",
        n as u64,
        a,
        None,
        b,
    ))
}

async fn run_embedded(
    env: &Env,
    name: &str,
    outbox: &Outbox,
    last_seq: i64,
    sink: Arc<dyn EventSink>,
    n: usize,
) -> Result<Row, BoxError> {
    let cursor = Arc::new(AtomicI64::new(0));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let a = env.snap();
    let c = cursor.clone();
    let task = tokio::spawn(regwatch_pipeline::embedded::run(
        outbox.clone(),
        sink,
        Duration::from_millis(100),
        rx,
        move |s| c.store(s, Ordering::Relaxed),
    ));
    while cursor.load(Ordering::Relaxed) < last_seq {
        if task.is_finished() {
            return Err(format!("{name}: stopped early").into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let b = env.snap();
    let _ = tx.send(true);
    task.await?;
    Ok(Row::new(name, n as u64, a, None, b))
}

// ---------------------------------------------------------------- main

fn print_table(title: &str, rows: &[&Row], ceiling: Option<&Row>) {
    println!("\n### {title}\n");
    println!("| measurement | events | wall s | events/s (wall) | bench CPU s | events/s per core (bench process) | tansu CPU s | ClickHouse CPU s | events per CPU-s (all processes) | per-core ratio to ceiling |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let ratio = ceiling
            .map(|c| format!("{:.2}", r.per_core() / c.per_core()))
            .unwrap_or_default();
        println!(
            "| {} | {} | {:.2} ({:.2} with setup) | {} | {:.2} | {} | {:.2} | {:.2} | {} | {} |",
            r.name,
            fmt_n(r.events as f64),
            r.wall,
            r.wall_total,
            fmt_n(r.rate()),
            r.me,
            fmt_n(r.per_core()),
            r.broker,
            r.ch,
            fmt_n(r.per_core_all()),
            ratio
        );
    }
}

async fn main_async() -> Result<(), BoxError> {
    let var =
        |k: &str| std::env::var(k).map_err(|_| format!("{k} is not set (run bench/pipeline.sh)"));
    let env = Env {
        brokers: var("BENCH_BROKERS")?,
        ch_url: var("BENCH_CLICKHOUSE_URL")?,
        tansu_pid: var("BENCH_TANSU_PID")?,
        ch_pid: var("BENCH_CLICKHOUSE_PID")?,
    };
    let n: usize = std::env::var("BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let phases = std::env::var("BENCH_PHASES").unwrap_or_default();
    let on = |p: &str| phases.is_empty() || phases.split(',').any(|x| x == p);
    let dir = std::path::PathBuf::from(
        std::env::var("BENCH_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string()),
    )
    .join(format!("rwbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    let t = Instant::now();
    let events = generate(n);
    let bytes: usize = events.iter().map(|(_, j)| j.len()).sum();
    let clients: std::collections::HashSet<&str> = events.iter().map(|(c, _)| c.as_str()).collect();
    let parsed: Vec<(Envelope, String)> = events
        .iter()
        .map(|(_, j)| {
            (
                serde_json::from_str(j).expect("generated events parse"),
                j.clone(),
            )
        })
        .collect();
    eprintln!("generated {n} events in {:.1}s", t.elapsed().as_secs_f64());
    println!(
        "events: {n}, mean JSON size {} bytes (min {}, max {}), {} distinct client ids; CPU times from /proc (CLK_TCK {}); load average at start: {}",
        bytes / n.max(1),
        events.iter().map(|(_, j)| j.len()).min().unwrap_or(0),
        events.iter().map(|(_, j)| j.len()).max().unwrap_or(0),
        clients.len(),
        clk_tck(),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );

    // (a) Kafka → ClickHouse. Skipped (no broker needed) when only the
    // embedded or rebuild phases are asked for.
    let kafka_phases = ["consume", "chraw", "chstore", "pipe", "pipedetect"];
    if kafka_phases.iter().any(|p| on(p)) {
        create_topics(&env.brokers).await?;
        let produced = produce(&env, &events)?;
        eprintln!("produced {n} in {:.1}s", produced.wall);
        let mut kafka_rows: Vec<Row> = Vec::new();
        if on("consume") {
            kafka_rows.push(consume_ceiling(&env, n).await?);
            eprintln!("consume ceiling done");
        }
        if on("chraw") {
            kafka_rows.push(ch_raw_ceiling(&env, &parsed).await?);
            eprintln!("clickhouse raw insert done");
        }
        if on("chstore") {
            kafka_rows.push(ch_store_only(&env, &parsed).await?);
            eprintln!("clickhouse store insert done");
        }
        if on("pipe") {
            let store = ch_store(&env, "rwbench_pipe").await?;
            let r = run_pipeline(
                &env,
                "pipeline: Kafka → ClickHouse, detection off (ThinSink → insert_events)",
                n,
                Arc::new(ThinSink(store.clone())),
            )
            .await?;
            ch_count(&store, n, "pipeline").await?;
            kafka_rows.push(r);
            eprintln!("pipeline (detection off) done");
        }
        if on("pipedetect") {
            let store = ch_store(&env, "rwbench_pipe_detect").await?;
            let r = run_pipeline(
                &env,
                "pipeline: Kafka → ClickHouse, detectors on (StoreAndDetect)",
                n,
                detector_sink(store.clone()),
            )
            .await?;
            ch_count(&store, n, "pipeline with detectors").await?;
            kafka_rows.push(r);
            eprintln!("pipeline (detectors on) done");
        }
        let consume = kafka_rows
            .iter()
            .find(|r| r.name.starts_with("ceiling: rdkafka"));
        let mut refs: Vec<&Row> = vec![&produced];
        refs.extend(kafka_rows.iter());
        print_table(
            "(a) Kafka (tansu, 3 partitions) → ClickHouse 18.16",
            &refs,
            consume,
        );
        let chraw = kafka_rows
            .iter()
            .find(|r| r.name.starts_with("ceiling: ClickHouse"));
        for r in kafka_rows.iter().filter(|r| r.name.starts_with("pipeline")) {
            if let Some(c) = chraw {
                println!(
                    "- {}: {:.2}× the ClickHouse-insert-only ceiling in wall events/s, {:.2}× in events per CPU-second of all processes",
                    r.name,
                    r.rate() / c.rate(),
                    r.per_core_all() / c.per_core_all()
                );
            }
            if let Some(c) = consume {
                println!(
                    "- {}: {:.2}× the consume+parse ceiling in wall events/s, {:.2}× per core of the bench process",
                    r.name,
                    r.rate() / c.rate(),
                    r.per_core() / c.per_core()
                );
            }
        }
    }

    // (c) Start-up: the scaled pipeline rebuilds its detectors' state from
    // the store before it consumes (`StoreAndDetect::rebuild`).
    if on("rebuild") {
        let (scan, rebuild) = rebuild_from_store(&env, &parsed).await?;
        print_table(
            "(c) detector state rebuilt from ClickHouse at start",
            &[&scan, &rebuild],
            Some(&scan),
        );
    }

    // (b) Outbox → SQLite.
    if on("embedded") {
        let (outbox, last_seq, fill_s) = fill_outbox(&dir, &parsed).await?;
        println!("\noutbox filled with {n} events in {fill_s:.1}s (10,000 per transaction)");
        let ceiling = outbox_ceiling(&env, &outbox, n).await?;
        let thin_store: Arc<dyn EventStore> =
            Arc::new(regwatch_store::sqlite::SqliteStore::open(&dir.join("events-thin.db")).await?);
        let thin = run_embedded(
            &env,
            "embedded: outbox → SQLite, detection off (ThinSink)",
            &outbox,
            last_seq,
            Arc::new(ThinSink(thin_store.clone())),
            n,
        )
        .await?;
        let c = thin_store.count_events().await?;
        if c != n as u64 {
            return Err(format!("embedded: SQLite holds {c}, expected {n}").into());
        }
        let det_store: Arc<dyn EventStore> = Arc::new(
            regwatch_store::sqlite::SqliteStore::open(&dir.join("events-detect.db")).await?,
        );
        let det = run_embedded(
            &env,
            "embedded: outbox → SQLite, detectors on (StoreAndDetect)",
            &outbox,
            last_seq,
            detector_sink(det_store.clone()),
            n,
        )
        .await?;
        let c = det_store.count_events().await?;
        if c != n as u64 {
            return Err(format!("embedded with detectors: SQLite holds {c}, expected {n}").into());
        }
        print_table(
            "(b) embedded: authz SQLite outbox → SQLite event store",
            &[&ceiling, &thin, &det],
            Some(&ceiling),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from argv.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(main_async()) {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}
