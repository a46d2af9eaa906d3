//! Benchmark (not a test): time from a lookalike registration's HTTP answer
//! to its `name_impersonation` alert being readable from the API, over many
//! registrations (p50/p99/max). Baseline in the same run: the round trip of
//! a `GET /v1/alerts` itself, which bounds how finely the poll can see.
//!
//! ```text
//! cargo bench -p regwatch --bench alert_latency                  # embedded: regwatch up (SQLite)
//! ALERT_LATENCY_SHAPE=scaled REGWATCH_TEST_TANSU=$(command -v tansu) \
//!   REGWATCH_TEST_CLICKHOUSE_URL=http://127.0.0.1:8123 \
//!   cargo bench -p regwatch --bench alert_latency                # scaled
//! ```
//!
//! Scaled: authorization server + relay → a tansu broker (started here) →
//! pipeline with detectors → ClickHouse (a fresh database) → the API on
//! ClickHouse, all with their default settings except the rate limit.

// The end-to-end tests' harness (tansu, topics, authz with its relay).
#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};

const TOKEN: &str = "bench-api-token-0123456";
const N: usize = 200;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Issuer URL and API address of a running stack; the guard keeps its
/// parts (temp dir, broker process) alive.
struct Stack {
    issuer: String,
    api: std::net::SocketAddr,
    _guard: Box<dyn std::any::Any>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let shape = std::env::var("ALERT_LATENCY_SHAPE").unwrap_or_else(|_| "embedded".into());
    let stack = match shape.as_str() {
        "embedded" => embedded().await,
        "scaled" => scaled().await,
        other => panic!("ALERT_LATENCY_SHAPE={other}: embedded or scaled"),
    };
    measure(&shape, &stack).await;
}

async fn scaled() -> Stack {
    let tansu = std::env::var("REGWATCH_TEST_TANSU").expect("REGWATCH_TEST_TANSU (tansu binary)");
    let ch_url = std::env::var("REGWATCH_TEST_CLICKHOUSE_URL")
        .expect("REGWATCH_TEST_CLICKHOUSE_URL (deploy/local/clickhouse-up.sh)");
    let broker = common::TansuBroker::start(&tansu);
    let brokers = broker.brokers();
    common::create_topics(&brokers).await;
    let authz = common::AuthzWithRelay::start(
        None,
        regwatch_relay::RelayConfig {
            brokers: brokers.clone(),
            ..Default::default()
        },
    )
    .await;
    let issuer = authz.issuer.clone();
    let events = regwatch::scaled::clickhouse(&regwatch_store::StoreConfig {
        clickhouse_url: ch_url,
        clickhouse_database: format!("rw_bench_{}", uuid::Uuid::now_v7().simple()),
    })
    .await
    .unwrap();
    let pcfg = regwatch_pipeline::PipelineConfig {
        brokers,
        group_id: format!("bench-{}", uuid::Uuid::now_v7().simple()),
        ..Default::default()
    };
    tokio::spawn(regwatch::scaled::pipeline(
        pcfg,
        events.clone(),
        Default::default(),
        std::future::pending(),
    ));
    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = api_listener.local_addr().unwrap();
    let state = regwatch_api::ApiState::new(events, TOKEN).unwrap();
    tokio::spawn(regwatch_api::run(
        state,
        api_listener,
        std::future::pending(),
    ));
    Stack {
        issuer,
        api,
        _guard: Box::new((broker, authz)),
    }
}

async fn embedded() -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let opts = regwatch::UpOptions {
        data_dir: dir.path().to_path_buf(),
        authz_listen: "127.0.0.1:0".parse().unwrap(),
        mcp_listen: None,
        api_listen: Some("127.0.0.1:0".parse().unwrap()),
        cimd_allow_loopback_dev: false,
        metrics_listen: None,
    };
    let mut cfg = regwatch::RegwatchConfig::default();
    cfg.authz.rate_limit.per_minute = 0;
    cfg.api.token = Some(regwatch::config::Secret::new(TOKEN));
    cfg.sign_in.user = Some("bench".into());
    cfg.sign_in.password = Some(regwatch::config::Secret::new("bench-password-123"));
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        regwatch::up(
            opts,
            cfg,
            move |e| drop(tx.send(e.clone())),
            std::future::pending(),
        )
        .await
        .unwrap();
    });
    let e = rx.await.unwrap();
    Stack {
        issuer: e.issuer.clone(),
        api: e.api.unwrap(),
        _guard: Box::new(dir),
    }
}

async fn measure(shape: &str, stack: &Stack) {
    let (issuer, api) = (&stack.issuer, stack.api);
    let http = reqwest::Client::new();
    // Wait until the API answers and the first alert made it through
    // (group join, topic metadata), outside the measurement.
    warm_up(&http, issuer, api).await;
    let mut latencies = Vec::with_capacity(N);
    let mut polls = Vec::new();
    for i in 0..N {
        let r: Value = http
            .post(format!("{issuer}/register"))
            .json(&json!({"client_name": "ChatGP\u{0422}", "redirect_uris": [format!("https://chat-{i}.example.net/cb")], "token_endpoint_auth_method": "none"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let t0 = Instant::now();
        let id = r["client_id"].as_str().unwrap().to_string();
        loop {
            let p0 = Instant::now();
            let a: Value = http
                .get(format!(
                    "http://{api}/v1/alerts?client_id={id}&kind=name_impersonation"
                ))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            polls.push(p0.elapsed());
            if !a["alerts"].as_array().unwrap().is_empty() {
                latencies.push(t0.elapsed());
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "no alert for {id}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let (p50, p99, max) = (
        pct(&mut latencies, 0.5),
        pct(&mut latencies, 0.99),
        pct(&mut latencies, 1.0),
    );
    let poll50 = pct(&mut polls, 0.5);
    println!("{shape} alert latency over {N} lookalike registrations: p50 {p50:?}, p99 {p99:?}, max {max:?}");
    println!("baseline: one GET /v1/alerts round trip, p50 {poll50:?} (same run)");
}

/// One lookalike registration, waited for without a deadline that matters
/// (up to 60 s): the scaled shape's first alert includes the consumer
/// group's join.
async fn warm_up(http: &reqwest::Client, issuer: &str, api: std::net::SocketAddr) {
    let r: Value = http
        .post(format!("{issuer}/register"))
        .json(&json!({"client_name": "ChatGP\u{0422}", "redirect_uris": ["https://warm-up.example.net/cb"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = r["client_id"].as_str().unwrap().to_string();
    let t0 = Instant::now();
    loop {
        let a: Value = http
            .get(format!("http://{api}/v1/alerts?client_id={id}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if a["alerts"].as_array().is_some_and(|v| !v.is_empty()) {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "no warm-up alert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
