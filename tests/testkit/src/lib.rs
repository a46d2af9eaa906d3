//! What the integration tests on real parts share: the environment gates,
//! free ports, a tansu broker process on a port of its own, topic creation
//! and polling until a condition holds.
//!
//! Gates: under `CI` a missing variable fails the test (a green run must
//! not skip the real parts); locally the test prints the command that
//! fixes it and skips.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

/// The value of `name`; under `CI` its absence fails the test, locally it
/// skips with the command that fixes it.
pub fn env_or_skip(name: &str, fix: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ if std::env::var_os("CI").is_some() => panic!("{name} is not set in CI ({fix})"),
        _ => {
            eprintln!("skipping: set {name} ({fix})");
            None
        }
    }
}

/// The tansu binary from `REGWATCH_TEST_TANSU`, gated as [`env_or_skip`].
pub fn tansu_or_skip() -> Option<String> {
    env_or_skip(
        "REGWATCH_TEST_TANSU",
        "path to a tansu binary: cargo install tansu --locked --features dynostore,postgres",
    )
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local address")
        .port()
}

/// A tansu broker with memory storage on a port of its own; killed on drop.
pub struct TansuBroker {
    child: Option<Child>,
    pub port: u16,
}

impl TansuBroker {
    /// Start on `port` and wait until it listens.
    pub fn start_on(bin: &str, port: u16) -> TansuBroker {
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let t = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "tansu did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        TansuBroker {
            child: Some(child),
            port,
        }
    }

    pub fn start(bin: &str) -> TansuBroker {
        Self::start_on(bin, free_port())
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kill the process and wait for it (idempotent).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Create `(name, partitions)` topics with replication 1. A topic that
/// already exists (a producer auto-created it) is fine.
pub async fn create_topics(brokers: &str, topics: &[(&str, i32)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(new.iter(), &AdminOptions::new())
        .await
        .expect("create topics")
    {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => panic!("create topic {t}: {e}"),
        }
    }
}

/// Poll `f` every 50 ms until it holds; panics after `timeout` naming
/// `what`. Returns how long it took.
pub async fn wait_until(
    what: &str,
    timeout: Duration,
    mut f: impl AsyncFnMut() -> bool,
) -> Duration {
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

/// A consumer assigned every partition `0..partitions` of `topic` from the
/// beginning, outside any group's offsets (a fresh group id, no commits):
/// for reading back exactly what a topic holds.
pub fn reader_from_beginning(
    brokers: &str,
    topic: &str,
    partitions: i32,
) -> rdkafka::consumer::StreamConsumer {
    use rdkafka::consumer::Consumer;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let consumer: rdkafka::consumer::StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{}-{nanos}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "5")
        .create()
        .expect("reader");
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    consumer
}
