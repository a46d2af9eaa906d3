//! Benchmark (not a test): time from a lookalike registration's HTTP answer
//! to its `name_impersonation` alert being readable from the API, in the
//! embedded shape, over many registrations (p50/p99/max). Baseline in the
//! same run: the round trip of a `GET /v1/alerts` itself, which bounds how
//! finely the poll can see. Run: `cargo bench -p regwatch --bench alert_latency`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

const TOKEN: &str = "bench-api-token-0123456";
const N: usize = 200;

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let opts = regwatch::UpOptions {
        data_dir: dir.path().to_path_buf(),
        authz_listen: "127.0.0.1:0".parse().unwrap(),
        mcp_listen: None,
        api: Some(("127.0.0.1:0".parse().unwrap(), TOKEN.into())),
        cimd_allow_loopback_dev: false,
        user: Some(("bench".into(), "bench-password-123".into())),
    };
    let mut cfg = regwatch_authz::AuthzConfig::default();
    cfg.rate_limit.per_minute = 0;
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
    let api = e.api.unwrap();
    let http = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(N);
    let mut polls = Vec::new();
    for i in 0..N {
        let r: Value = http
            .post(format!("{}/register", e.issuer))
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
    println!("embedded alert latency over {N} lookalike registrations: p50 {p50:?}, p99 {p99:?}, max {max:?}");
    println!("baseline: one GET /v1/alerts round trip, p50 {poll50:?} (same run)");
}
