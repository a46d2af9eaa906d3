//! The dead-letter writer: a record that fails validation goes to the
//! dead-letter topic, with its reason and origin in headers.

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use tracing::warn;

use crate::validate::Rejection;

use super::commit::Backoff;
use super::{PipelineMetrics, Runner, Stopped};

/// Largest value written to the dead-letter topic; a longer original is
/// truncated (and says so in a header) so the dead-letter write itself
/// cannot fail on the broker's message size limit.
pub(super) const DLQ_MAX_VALUE_BYTES: usize = 900 * 1024;
/// Delivery timeout of one dead-letter write; retried after it.
pub(super) const DLQ_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

impl Runner {
    /// Write one record to the dead-letter topic, retrying until the broker
    /// acknowledges it. The value is the original bytes; headers carry the
    /// reason and the original position.
    pub(super) async fn dead_letter(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        original_headers: &[(String, Option<Vec<u8>>)],
        partition: i32,
        offset: i64,
        rejection: &Rejection,
    ) -> Result<(), Stopped> {
        let value = value.unwrap_or(&[]);
        let truncated = value.len() > DLQ_MAX_VALUE_BYTES;
        let body = &value[..value.len().min(DLQ_MAX_VALUE_BYTES)];
        let partition_s = partition.to_string();
        let offset_s = offset.to_string();
        let original_len = value.len().to_string();
        let mut backoff = Backoff::new(
            Duration::from_millis(self.cfg.retry_initial_ms),
            Duration::from_millis(self.cfg.retry_max_ms),
        );
        loop {
            let mut headers = OwnedHeaders::new_with_capacity(original_headers.len() + 7);
            for (k, v) in original_headers {
                headers = headers.insert(Header {
                    key: k,
                    value: v.as_deref(),
                });
            }
            let fields: [(&str, &str); 5] = [
                ("dlq_reason", rejection.reason.as_str()),
                ("dlq_detail", &rejection.detail),
                ("dlq_topic", &self.cfg.topic),
                ("dlq_partition", &partition_s),
                ("dlq_offset", &offset_s),
            ];
            for (k, v) in fields {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            if truncated {
                headers = headers.insert(Header {
                    key: "dlq_truncated_from",
                    value: Some(&original_len),
                });
            }
            let mut rec = FutureRecord::to(&self.cfg.dlq_topic)
                .payload(body)
                .headers(headers);
            if let Some(k) = key {
                rec = rec.key(k);
            }
            match self.dlq.send(rec, Timeout::Never).await {
                Ok(_) => {
                    PipelineMetrics::add(&self.metrics().dead_lettered, 1);
                    return Ok(());
                }
                Err((e, _)) => {
                    let delay = backoff.next_delay();
                    warn!(error = %e, partition, offset, retry_in_ms = delay.as_millis() as u64,
                        "dead-letter write failed");
                    self.sleep_or_stop(delay).await?;
                }
            }
        }
    }
}
