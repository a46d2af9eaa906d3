//! Shared harness of the end-to-end tests on real parts: the gates, ports
//! and tansu process come from `regwatch-testkit`; this adds the project's
//! three topics.

#![allow(dead_code, unused_imports)]

pub use regwatch_testkit::{env_or_skip, free_port, wait_until, TansuBroker};

/// The events (3 partitions), dead-letter and alerts topics.
pub async fn create_topics(brokers: &str) {
    regwatch_testkit::create_topics(
        brokers,
        &[
            (regwatch_schemas::EVENTS_TOPIC, 3),
            (regwatch_schemas::DLQ_TOPIC, 1),
            (regwatch_schemas::ALERTS_TOPIC, 1),
        ],
    )
    .await;
}
