//! Publishing alerts to Kafka (`regwatch.alerts.v1`, key = client_id), for
//! SOAR and SIEM consumers that read the topic rather than the API. The
//! store stays the source of truth: an alert is upserted before it is
//! published, and a republished alert (after a replay) carries the same
//! `alert_id`, so consumers deduplicate on it.

use std::time::Duration;

use async_trait::async_trait;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use regwatch_schemas::Alert;

use crate::sink::SinkError;
use crate::store_detect::AlertPublisher;

pub struct KafkaAlertPublisher {
    producer: FutureProducer,
    topic: String,
    timeout: Duration,
}

impl KafkaAlertPublisher {
    /// An idempotent producer to `brokers`, publishing to `topic`.
    pub fn new(brokers: &str, topic: &str) -> Result<Self, rdkafka::error::KafkaError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "30000")
            .create()?;
        Ok(KafkaAlertPublisher {
            producer,
            topic: topic.to_string(),
            timeout: Duration::from_secs(30),
        })
    }
}

#[async_trait]
impl AlertPublisher for KafkaAlertPublisher {
    async fn publish(&self, alerts: &[Alert]) -> Result<(), SinkError> {
        let payloads: Vec<Vec<u8>> = alerts
            .iter()
            .map(|a| serde_json::to_vec(a).map_err(|e| SinkError::Rejected(e.to_string())))
            .collect::<Result<_, _>>()?;
        let mut pending = Vec::with_capacity(alerts.len());
        for (a, payload) in alerts.iter().zip(&payloads) {
            let headers = OwnedHeaders::new().insert(Header {
                key: "alert_kind",
                value: Some(a.kind.as_str()),
            });
            let record = FutureRecord::to(&self.topic)
                .key(a.client_id.as_bytes())
                .payload(payload)
                .headers(headers);
            pending.push(self.producer.send(record, self.timeout));
        }
        // Every alert is acknowledged before the batch counts as done, so
        // the caller commits its offsets only after the broker has them.
        for p in pending {
            p.await
                .map_err(|(e, _)| SinkError::Unavailable(format!("alert publish: {e}")))?;
        }
        Ok(())
    }
}
