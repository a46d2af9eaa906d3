//! The pipeline against librdkafka's mock cluster (in process, real TCP):
//! end to end, dead-lettering, a failing sink, and a consumer killed after
//! a durable write but before its commit. The mock cluster's consumer
//! groups are slow (~185 msg/s), so N stays small.

mod common;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rdkafka::mocking::MockCluster;
use regwatch_pipeline::{EventSink, Pipeline};
use tokio::sync::oneshot;

const PARTITIONS: i32 = 3;
const LONG: Duration = Duration::from_secs(90);

struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), regwatch_pipeline::PipelineError>>,
    metrics: Arc<regwatch_pipeline::PipelineMetrics>,
}

fn start(cfg: regwatch_pipeline::PipelineConfig, sink: Arc<MemSink>) -> Running {
    let (stop, rx) = oneshot::channel::<()>();
    let sink: Arc<dyn EventSink> = sink;
    let p = Pipeline::new(cfg, sink).expect("valid config");
    let metrics = p.metrics();
    let task = tokio::spawn(p.run(async move {
        let _ = rx.await;
    }));
    Running {
        stop,
        task,
        metrics,
    }
}

async fn stop(r: Running) {
    let _ = r.stop.send(());
    let res = tokio::time::timeout(Duration::from_secs(30), r.task)
        .await
        .expect("pipeline stops in time")
        .expect("pipeline task");
    res.expect("pipeline result");
}

fn cluster(
    topics: &[(&str, i32)],
) -> MockCluster<'static, rdkafka::producer::DefaultProducerContext> {
    let c = MockCluster::new(1).expect("mock cluster");
    for (t, n) in topics {
        c.create_topic(t, *n, 1).expect("create topic");
    }
    c
}

fn poison_records() -> Vec<(&'static str, Vec<u8>)> {
    let mut unknown_version = serde_json::to_value(envelope("c-poison")).expect("json");
    unknown_version["schema_version"] = 99.into();
    let mut unknown_type = serde_json::to_value(envelope("c-poison")).expect("json");
    unknown_type["event_type"] = "client.teleported".into();
    let mut oversized = serde_json::to_value(envelope("c-poison")).expect("json");
    oversized["issuer"] = "x".repeat(70 * 1024).into();
    let deep = format!("{}1{}", "{\"a\":".repeat(100), "}".repeat(100));
    vec![
        ("invalid_json", b"{\"event_id\": nope".to_vec()),
        (
            "unknown_schema_version",
            unknown_version.to_string().into_bytes(),
        ),
        ("unknown_event_type", unknown_type.to_string().into_bytes()),
        ("oversized", oversized.to_string().into_bytes()),
        ("too_deep", deep.into_bytes()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_once_in_client_order_and_poison_goes_to_the_dlq() {
    let (topic, dlq, group) = (unique("events"), unique("dlq"), unique("group"));
    let c = cluster(&[(&topic, PARTITIONS), (&dlq, 1)]);
    let brokers = c.bootstrap_servers();
    let p = producer(&brokers);
    let clients = ["c-a", "c-b", "c-c", "c-d"];

    // Valid events, the poison records in the middle, more valid events.
    let mut sent = produce_events(&p, &topic, &clients, 20).await;
    let poison = poison_records();
    for (_, bytes) in &poison {
        produce(&p, &topic, "c-a", bytes).await;
    }
    merge(&mut sent, produce_events(&p, &topic, &clients, 20).await);

    let sink = Arc::new(MemSink::default());
    let run = start(config(&brokers, &topic, &dlq, &group), sink.clone());
    wait_until("40 events and 5 dead letters", LONG, || {
        sink.distinct() >= 40 && run.metrics.dead_lettered.load(Ordering::SeqCst) >= 5
    })
    .await;
    let metrics = run.metrics.clone();
    stop(run).await;

    assert_exactly_once_in_order(&sink, &sent);
    assert_eq!(sink.duplicates(), 0, "no replay in a clean run");
    assert_eq!(metrics.dead_lettered.load(Ordering::SeqCst), 5);

    // The dead letters: original bytes, reason, original position.
    let dead = read_all(&brokers, &dlq, 1, 5, Duration::from_secs(20)).await;
    assert_eq!(dead.len(), 5, "dead-letter records");
    let mut reasons: Vec<String> = dead
        .iter()
        .map(|d| d.headers.get("dlq_reason").cloned().unwrap_or_default())
        .collect();
    reasons.sort();
    let mut expected: Vec<String> = poison.iter().map(|(r, _)| r.to_string()).collect();
    expected.sort();
    assert_eq!(reasons, expected);
    let originals: HashMap<&str, &Vec<u8>> = poison.iter().map(|(r, b)| (*r, b)).collect();
    for d in &dead {
        let reason = d
            .headers
            .get("dlq_reason")
            .map(String::as_str)
            .unwrap_or("");
        assert_eq!(originals.get(reason), Some(&&d.value), "value of {reason}");
        assert_eq!(d.headers.get("dlq_topic"), Some(&topic));
        assert!(d
            .headers
            .get("dlq_offset")
            .and_then(|o| o.parse::<i64>().ok())
            .is_some());
        assert!(d
            .headers
            .get("dlq_partition")
            .and_then(|o| o.parse::<i32>().ok())
            .is_some());
        assert!(!d
            .headers
            .get("dlq_detail")
            .cloned()
            .unwrap_or_default()
            .is_empty());
        assert_eq!(d.key.as_deref(), Some(&b"c-a"[..]));
    }

    // Everything durable, everything committed.
    assert_fully_committed(&brokers, &group, &topic);
}

/// Every non-empty partition committed up to its end (an empty partition
/// never had anything to commit).
fn assert_fully_committed(brokers: &str, group: &str, topic: &str) {
    let high = high_watermarks(brokers, topic, PARTITIONS);
    let expected: Vec<Option<i64>> = high.iter().map(|h| (*h > 0).then_some(*h)).collect();
    assert_eq!(committed(brokers, group, topic, PARTITIONS), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_sink_pauses_commits_nothing_then_resumes_without_loss() {
    let (topic, dlq, group) = (unique("events"), unique("dlq"), unique("group"));
    let c = cluster(&[(&topic, PARTITIONS), (&dlq, 1)]);
    let brokers = c.bootstrap_servers();
    let p = producer(&brokers);
    let clients = ["c-a", "c-b", "c-c"];
    let mut sent = produce_events(&p, &topic, &clients, 20).await;

    let sink = Arc::new(MemSink::default());
    sink.failing.store(true, Ordering::SeqCst);
    let run = start(config(&brokers, &topic, &dlq, &group), sink.clone());
    wait_until("paused after repeated failures", LONG, || {
        run.metrics.paused.load(Ordering::SeqCst) && sink.failed_writes.load(Ordering::SeqCst) >= 4
    })
    .await;
    // More events while paused.
    merge(&mut sent, produce_events(&p, &topic, &clients, 10).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(run.metrics.paused.load(Ordering::SeqCst), "still paused");
    assert_eq!(sink.distinct(), 0);
    assert_eq!(
        committed(&brokers, &group, &topic, PARTITIONS),
        vec![None; PARTITIONS as usize],
        "nothing committed while the sink fails"
    );
    assert_eq!(run.metrics.pauses.load(Ordering::SeqCst), 1);

    sink.failing.store(false, Ordering::SeqCst);
    wait_until("all 30 events after recovery", LONG, || {
        sink.distinct() >= 30
    })
    .await;
    wait_until("resumed", LONG, || {
        !run.metrics.paused.load(Ordering::SeqCst)
    })
    .await;
    stop(run).await;

    assert_exactly_once_in_order(&sink, &sent);
    assert_eq!(sink.duplicates(), 0);
    assert_fully_committed(&brokers, &group, &topic);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_killed_after_a_durable_write_replays_without_loss_or_duplicate() {
    let (topic, dlq, group) = (unique("events"), unique("dlq"), unique("group"));
    let c = cluster(&[(&topic, PARTITIONS), (&dlq, 1)]);
    let brokers = c.bootstrap_servers();
    let p = producer(&brokers);
    let clients = ["c-a", "c-b", "c-c"];
    let mut sent = produce_events(&p, &topic, &clients, 15).await;

    let sink = Arc::new(MemSink::default());
    let first = start(config(&brokers, &topic, &dlq, &group), sink.clone());
    wait_until("first 15 written and committed", LONG, || {
        sink.distinct() >= 15 && first.metrics.commits.load(Ordering::SeqCst) >= 1
    })
    .await;
    wait_until("first 15 committed", LONG, || {
        committed(&brokers, &group, &topic, PARTITIONS)
            .iter()
            .flatten()
            .sum::<i64>()
            == 15
    })
    .await;

    // The next write is made durable, then the process "dies" before it
    // commits: the task is dropped, the consumer with it.
    sink.hang_after_write.store(true, Ordering::SeqCst);
    merge(&mut sent, produce_events(&p, &topic, &clients, 15).await);
    wait_until("a write hung", LONG, || sink.hung.load(Ordering::SeqCst)).await;
    let written_before_kill = sink.distinct();
    assert!(written_before_kill > 15);
    first.task.abort();
    let _ = first.task.await;
    let after_kill: i64 = committed(&brokers, &group, &topic, PARTITIONS)
        .iter()
        .flatten()
        .sum();
    assert_eq!(after_kill, 15, "the killed consumer committed nothing more");

    // Restart in the same group: the uncommitted records are read again.
    let second = start(config(&brokers, &topic, &dlq, &group), sink.clone());
    wait_until("all 30 committed", LONG, || {
        committed(&brokers, &group, &topic, PARTITIONS)
            .iter()
            .flatten()
            .sum::<i64>()
            == 30
    })
    .await;
    stop(second).await;

    assert_exactly_once_in_order(&sink, &sent);
    assert_eq!(
        sink.duplicates(),
        written_before_kill - 15,
        "the durable-but-uncommitted batch was replayed, and deduplicated"
    );
}
