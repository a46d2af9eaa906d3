//! Consumer lag, measured from outside the consumer loop.
//!
//! Lag here is what an operator needs during an incident: how many records
//! of the events topic the group has not yet made durable. Per partition it
//! is the high watermark minus the group's committed offset (minus the low
//! watermark when nothing is committed yet, which `auto.offset.reset =
//! earliest` reads from), summed over partitions.
//!
//! Why not librdkafka's own `consumer_lag` statistic: it is computed from
//! the high watermark of the last fetch response, and a paused partition is
//! not fetched. While the store is down (the case lag matters most) it would
//! freeze at its value at the pause. So a probe with its own connection asks
//! the broker directly (ListOffsets, OffsetFetch) on a timer. It never
//! subscribes, so it is not a member of the group and cannot move a
//! partition.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::config::PipelineConfig;
use crate::consumer::{client_config, PipelineMetrics};

/// Records not yet committed on one partition. `committed` is `None` when
/// the group has no offset there; everything retained is then unread.
pub(crate) fn partition_lag(low: i64, high: i64, committed: Option<i64>) -> u64 {
    let from = committed.unwrap_or(low).max(low);
    u64::try_from(high - from).unwrap_or(0)
}

struct Probe {
    consumer: BaseConsumer,
    topic: String,
    timeout: Duration,
}

impl Probe {
    fn new(cfg: &PipelineConfig) -> Result<Self, KafkaError> {
        let consumer: BaseConsumer = client_config(cfg)
            .set("group.id", &cfg.group_id)
            .set("enable.auto.commit", "false")
            .create()?;
        Ok(Probe {
            consumer,
            topic: cfg.topic.clone(),
            timeout: Duration::from_millis(cfg.lag_interval_ms.clamp(1_000, 5_000)),
        })
    }

    /// One measurement: blocking, bounded by `timeout` per request.
    fn measure(&self) -> Result<u64, KafkaError> {
        let md = self
            .consumer
            .fetch_metadata(Some(&self.topic), self.timeout)?;
        let partitions: Vec<i32> = md
            .topics()
            .iter()
            .filter(|t| t.name() == self.topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(&self.topic, *p);
        }
        let committed = self.consumer.committed_offsets(tpl, self.timeout)?;
        let mut total = 0;
        for p in partitions {
            let (low, high) = self
                .consumer
                .fetch_watermarks(&self.topic, p, self.timeout)?;
            let c = match committed.find_partition(&self.topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            };
            total += partition_lag(low, high, c);
        }
        Ok(total)
    }
}

/// Measure every `lag_interval_ms` until `stop`, publishing into
/// `metrics.consumer_lag`. A failed measurement keeps the last value and is
/// counted in `metrics.lag_probe_failures`.
pub(crate) async fn run(
    cfg: PipelineConfig,
    metrics: Arc<PipelineMetrics>,
    mut stop: watch::Receiver<bool>,
) {
    let probe = match Probe::new(&cfg) {
        Ok(p) => Arc::new(p),
        Err(e) => {
            warn!(error = %e, "consumer lag probe not started");
            return;
        }
    };
    let every = Duration::from_millis(cfg.lag_interval_ms);
    loop {
        let p = probe.clone();
        match tokio::task::spawn_blocking(move || p.measure()).await {
            Ok(Ok(lag)) => {
                debug!(lag, "consumer lag");
                metrics
                    .consumer_lag
                    .store(i64::try_from(lag).unwrap_or(i64::MAX), Ordering::Relaxed);
            }
            Ok(Err(e)) => {
                metrics.lag_probe_failures.fetch_add(1, Ordering::Relaxed);
                debug!(error = %e, "consumer lag probe failed");
            }
            Err(_) => return,
        }
        if *stop.borrow_and_update() {
            return;
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::partition_lag;

    #[test]
    fn lag_per_partition() {
        // (low, high, committed) -> lag
        let cases = [
            ((0, 0, None), 0),
            ((0, 10, None), 10),
            ((4, 10, None), 6),
            ((0, 10, Some(10)), 0),
            ((0, 10, Some(3)), 7),
            // Committed below the log start (retention deleted the rest):
            // only what still exists can be read.
            ((5, 10, Some(2)), 5),
            // A committed offset past the high watermark (topic recreated)
            // is not negative lag.
            ((0, 10, Some(12)), 0),
        ];
        for ((low, high, c), want) in cases {
            assert_eq!(partition_lag(low, high, c), want, "{low} {high} {c:?}");
        }
    }
}
