//! Shared harness of the end-to-end tests on real parts: the environment
//! gates, free ports, a tansu broker process and the topics.

#![allow(dead_code)]

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
        _ if std::env::var_os("CI").is_some() => panic!("{name} is not set in CI"),
        _ => {
            eprintln!("skipping: set {name} ({fix})");
            None
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
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

/// The events (3 partitions), dead-letter and alerts topics. A topic that
/// already exists (a producer auto-created it) is fine.
pub async fn create_topics(brokers: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let topics = [
        NewTopic::new(
            regwatch_schemas::EVENTS_TOPIC,
            3,
            TopicReplication::Fixed(1),
        ),
        NewTopic::new(regwatch_schemas::DLQ_TOPIC, 1, TopicReplication::Fixed(1)),
        NewTopic::new(
            regwatch_schemas::ALERTS_TOPIC,
            1,
            TopicReplication::Fixed(1),
        ),
    ];
    for r in admin
        .create_topics(topics.iter(), &AdminOptions::new())
        .await
        .unwrap()
    {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => panic!("create topic {t}: {e}"),
        }
    }
}
