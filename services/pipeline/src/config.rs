//! Pipeline configuration: one documented struct, unknown keys refused,
//! validated before anything connects ([`PipelineConfig::validate`] names
//! the bad key).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::validate::Limits;
use crate::PipelineError;

/// `[pipeline]`: the Kafka consumer, its batching and its retry policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Kafka bootstrap servers, `host:port[,host:port…]`.
    pub brokers: String,
    /// Consumer group. Instances with the same group share the partitions;
    /// offsets committed under it are where a restart resumes.
    pub group_id: String,
    /// Topic the events are read from.
    pub topic: String,
    /// Topic refused records are written to, with the reason and position.
    pub dlq_topic: String,
    /// Largest record value accepted, in bytes; larger ones are
    /// dead-lettered as `oversized`.
    pub max_record_bytes: usize,
    /// Deepest JSON nesting accepted; deeper records are dead-lettered as
    /// `too_deep` before a parser sees them.
    pub max_depth: usize,
    /// A batch is written to the sink when it holds this many events…
    pub batch_max_events: usize,
    /// …or this many bytes of record values…
    pub batch_max_bytes: usize,
    /// …or when its oldest record has waited this long.
    pub batch_max_wait_ms: u64,
    /// First wait after a retryable sink or dead-letter failure; doubles up
    /// to `retry_max_ms`.
    pub retry_initial_ms: u64,
    /// Longest wait between retries.
    pub retry_max_ms: u64,
    /// How long a rebalance may spend writing the in-flight batch of the
    /// partitions being revoked; past it the batch is dropped unwritten and
    /// uncommitted, so the next owner reads it again.
    pub rebalance_flush_timeout_ms: u64,
    /// librdkafka `fetch.wait.max.ms`: how long the broker may hold a fetch
    /// for data. Low values matter for throughput (see infra.md).
    pub fetch_wait_max_ms: u32,
    /// librdkafka `queued.min.messages`: prefetched messages per partition.
    pub queued_min_messages: u32,
    /// librdkafka `max.partition.fetch.bytes`.
    pub max_partition_fetch_bytes: u32,
    /// librdkafka `session.timeout.ms`: how long a silent member keeps its
    /// partitions.
    pub session_timeout_ms: u32,
    /// librdkafka `auto.offset.reset` for a group without committed
    /// offsets: `earliest` (default, nothing skipped) or `latest`.
    pub auto_offset_reset: String,
    /// How often the consumer lag is measured (a separate connection asks
    /// the broker for watermarks and the group's committed offsets); 0
    /// turns the probe off.
    pub lag_interval_ms: u64,
    /// Extra librdkafka properties (e.g. `security.protocol`). May not
    /// override the ones the delivery guarantees rest on.
    pub librdkafka: BTreeMap<String, String>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            brokers: "127.0.0.1:9092".into(),
            group_id: "regwatch-pipeline".into(),
            topic: regwatch_schemas::EVENTS_TOPIC.into(),
            dlq_topic: regwatch_schemas::DLQ_TOPIC.into(),
            max_record_bytes: 64 * 1024,
            max_depth: 32,
            batch_max_events: 5_000,
            batch_max_bytes: 8 * 1024 * 1024,
            batch_max_wait_ms: 200,
            retry_initial_ms: 100,
            retry_max_ms: 10_000,
            rebalance_flush_timeout_ms: 10_000,
            fetch_wait_max_ms: 5,
            queued_min_messages: 200_000,
            max_partition_fetch_bytes: 10 * 1024 * 1024,
            session_timeout_ms: 45_000,
            auto_offset_reset: "earliest".into(),
            lag_interval_ms: 10_000,
            librdkafka: BTreeMap::new(),
        }
    }
}

/// librdkafka keys the pipeline sets itself: overriding them would break
/// store-before-commit (`enable.auto.commit`, `enable.auto.offset.store`)
/// or the group identity.
pub(crate) const RESERVED_KEYS: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "enable.partition.eof",
];

impl PipelineConfig {
    /// Check every key; the error names the first bad one.
    pub fn validate(&self) -> Result<(), PipelineError> {
        fn bad(key: &str, why: impl Into<String>) -> Result<(), PipelineError> {
            Err(PipelineError::Config {
                key: format!("pipeline.{key}"),
                reason: why.into(),
            })
        }
        if self.brokers.trim().is_empty() {
            return bad("brokers", "must not be empty");
        }
        if self.group_id.trim().is_empty() {
            return bad("group_id", "must not be empty");
        }
        if self.topic.trim().is_empty() {
            return bad("topic", "must not be empty");
        }
        if self.dlq_topic.trim().is_empty() {
            return bad("dlq_topic", "must not be empty");
        }
        if self.dlq_topic == self.topic {
            return bad("dlq_topic", "must differ from topic");
        }
        if !(256..=16 * 1024 * 1024).contains(&self.max_record_bytes) {
            return bad("max_record_bytes", "must be in 256..=16777216");
        }
        if !(4..=128).contains(&self.max_depth) {
            // serde_json's own recursion limit is 128.
            return bad("max_depth", "must be in 4..=128");
        }
        if !(1..=1_000_000).contains(&self.batch_max_events) {
            return bad("batch_max_events", "must be in 1..=1000000");
        }
        if self.batch_max_bytes < self.max_record_bytes {
            return bad("batch_max_bytes", "must be at least max_record_bytes");
        }
        if !(1..=60_000).contains(&self.batch_max_wait_ms) {
            return bad("batch_max_wait_ms", "must be in 1..=60000");
        }
        if self.retry_initial_ms == 0 {
            return bad("retry_initial_ms", "must be positive");
        }
        if self.retry_max_ms < self.retry_initial_ms {
            return bad("retry_max_ms", "must be at least retry_initial_ms");
        }
        if self.rebalance_flush_timeout_ms == 0 {
            return bad("rebalance_flush_timeout_ms", "must be positive");
        }
        if self.fetch_wait_max_ms > 10_000 {
            return bad("fetch_wait_max_ms", "must be at most 10000");
        }
        if self.queued_min_messages == 0 {
            return bad("queued_min_messages", "must be positive");
        }
        if self.max_partition_fetch_bytes < 1024 {
            return bad("max_partition_fetch_bytes", "must be at least 1024");
        }
        if !(1_000..=3_600_000).contains(&self.session_timeout_ms) {
            return bad("session_timeout_ms", "must be in 1000..=3600000");
        }
        if !matches!(self.auto_offset_reset.as_str(), "earliest" | "latest") {
            return bad("auto_offset_reset", "must be `earliest` or `latest`");
        }
        if self.lag_interval_ms != 0 && self.lag_interval_ms < 100 {
            return bad("lag_interval_ms", "must be 0 (off) or at least 100");
        }
        for k in self.librdkafka.keys() {
            if RESERVED_KEYS.contains(&k.as_str()) {
                return bad(&format!("librdkafka.{k}"), "is set by the pipeline");
            }
        }
        Ok(())
    }

    pub(crate) fn limits(&self) -> Limits {
        Limits {
            max_record_bytes: self.max_record_bytes,
            max_depth: self.max_depth,
        }
    }

    pub(crate) fn batch_max_wait(&self) -> Duration {
        Duration::from_millis(self.batch_max_wait_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(PipelineConfig::default().validate().is_ok());
        // 0 turns the lag probe off.
        let off = PipelineConfig {
            lag_interval_ms: 0,
            ..Default::default()
        };
        assert!(off.validate().is_ok());
    }

    #[test]
    fn errors_name_the_key() {
        type Edit = fn(&mut PipelineConfig);
        let cases: Vec<(Edit, &str)> = vec![
            (|c| c.brokers.clear(), "pipeline.brokers"),
            (|c| c.dlq_topic = c.topic.clone(), "pipeline.dlq_topic"),
            (|c| c.max_depth = 1000, "pipeline.max_depth"),
            (|c| c.batch_max_bytes = 10, "pipeline.batch_max_bytes"),
            (|c| c.retry_max_ms = 1, "pipeline.retry_max_ms"),
            (|c| c.lag_interval_ms = 50, "pipeline.lag_interval_ms"),
            (
                |c| c.auto_offset_reset = "none".into(),
                "pipeline.auto_offset_reset",
            ),
            (
                |c| {
                    c.librdkafka
                        .insert("enable.auto.commit".into(), "true".into());
                },
                "pipeline.librdkafka.enable.auto.commit",
            ),
        ];
        for (edit, key) in cases {
            let mut c = PipelineConfig::default();
            edit(&mut c);
            match c.validate() {
                Err(PipelineError::Config { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: expected a config error, got {other:?}"),
            }
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let r: Result<PipelineConfig, _> =
            serde_json::from_str(r#"{"brokers":"b:1","batch_size":10}"#);
        assert!(r.is_err());
        let r: Result<PipelineConfig, _> = serde_json::from_str(r#"{"brokers":"b:1"}"#);
        assert_eq!(r.map(|c| c.brokers).ok(), Some("b:1".to_string()));
    }
}
