//! Prometheus exposition of the process's counters and gauges
//! (`GET /metrics`, text format), on a listener of its own
//! (`--metrics-listen`) so it can stay off the public interfaces.
//!
//! The services own their metrics as plain atomics (no exporter dependency
//! in the libraries); the collectors here read them at scrape time.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::Context;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use regwatch_pipeline::PipelineMetrics;
use regwatch_relay::RelayMetrics;

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: i64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

/// The outbox relay (`regwatch authz` with `[relay]`).
#[derive(Debug)]
pub struct RelayCollector(pub Arc<RelayMetrics>);

impl Collector for RelayCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let m = &self.0;
        let c = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        gauge(
            &mut e,
            "regwatch_relay_backlog",
            "Outbox rows not yet acknowledged by the broker (as of the last read).",
            m.backlog.load(Ordering::Relaxed),
        )?;
        counter(
            &mut e,
            "regwatch_relay_published",
            "Outbox rows acknowledged by the broker and marked published.",
            c(&m.published),
        )?;
        counter(
            &mut e,
            "regwatch_relay_delivery_failures",
            "Deliveries that failed (each is retried).",
            c(&m.delivery_failures),
        )?;
        counter(
            &mut e,
            "regwatch_relay_failed_rounds",
            "Relay rounds that failed and were retried after backoff.",
            c(&m.failed_rounds),
        )?;
        counter(
            &mut e,
            "regwatch_relay_producer_replacements",
            "Kafka producers replaced after a fatal error or a run of failed rounds.",
            c(&m.producer_replacements),
        )
    }
}

/// The Kafka consumer (`regwatch pipeline`).
#[derive(Debug)]
pub struct PipelineCollector(pub Arc<PipelineMetrics>);

impl Collector for PipelineCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let m = &self.0;
        let c = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let counters: [(&str, &str, u64); 10] = [
            (
                "regwatch_pipeline_consumed",
                "Records received from Kafka.",
                c(&m.consumed),
            ),
            (
                "regwatch_pipeline_written",
                "Events the store acknowledged (a replayed event counts again).",
                c(&m.written),
            ),
            (
                "regwatch_pipeline_dead_lettered",
                "Records written to the dead-letter topic.",
                c(&m.dead_lettered),
            ),
            (
                "regwatch_pipeline_sink_failures",
                "Store writes that returned an error.",
                c(&m.sink_failures),
            ),
            (
                "regwatch_pipeline_pauses",
                "Times the partitions were paused because the store was failing.",
                c(&m.pauses),
            ),
            (
                "regwatch_pipeline_commits",
                "Offset commits requested after a durable batch.",
                c(&m.commits),
            ),
            (
                "regwatch_pipeline_rebalance_written",
                "Events of revoked partitions written and committed before the handover.",
                c(&m.rebalance_written),
            ),
            (
                "regwatch_pipeline_rebalance_dropped",
                "Events of revoked partitions left unwritten to the next owner.",
                c(&m.rebalance_dropped),
            ),
            (
                "regwatch_pipeline_commits_refused",
                "Offset commits the coordinator refused during a rebalance.",
                c(&m.commits_refused),
            ),
            (
                "regwatch_pipeline_lag_probe_failures",
                "Consumer lag measurements that failed (the lag gauge keeps its last value).",
                c(&m.lag_probe_failures),
            ),
        ];
        for (name, help, v) in counters {
            counter(&mut e, name, help, v)?;
        }
        gauge(
            &mut e,
            "regwatch_pipeline_paused",
            "1 while the partitions are paused because the store is failing.",
            i64::from(m.paused.load(Ordering::Relaxed)),
        )?;
        gauge(
            &mut e,
            "regwatch_pipeline_consumer_lag",
            "Records of the events topic the group has not committed (high watermark minus committed offset, summed over partitions); -1 until first measured.",
            m.consumer_lag.load(Ordering::Relaxed),
        )
    }
}

/// The detectors' correlation state (both shapes): how much is tracked
/// against the configured bounds.
pub struct DetectorCollector(pub Arc<regwatch_pipeline::store_detect::StoreAndDetect>);

impl std::fmt::Debug for DetectorCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DetectorCollector")
    }
}

impl Collector for DetectorCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = self.0.detector_stats();
        let n = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        let gauges: [(&str, &str, i64); 7] = [
            (
                "regwatch_detect_clients",
                "Clients tracked by the detectors.",
                n(s.clients),
            ),
            (
                "regwatch_detect_rate_keys",
                "Burst rate keys tracked.",
                n(s.rate_keys),
            ),
            (
                "regwatch_detect_established_names",
                "Established client names indexed.",
                n(s.established_names),
            ),
            (
                "regwatch_detect_redirect_hosts",
                "Redirect hosts tracked.",
                n(s.hosts),
            ),
            (
                "regwatch_detect_fingerprints",
                "Registration fingerprints tracked.",
                n(s.fingerprints),
            ),
            (
                "regwatch_detect_revoked_clients",
                "Revoked or deleted clients remembered.",
                n(s.revoked),
            ),
            (
                "regwatch_detect_dormancy_pending",
                "Dormancy checks pending.",
                n(s.dormant_pending),
            ),
        ];
        for (name, help, v) in gauges {
            gauge(&mut e, name, help, v)?;
        }
        counter(
            &mut e,
            "regwatch_detect_client_evictions",
            "Clients evicted from the bounded client table.",
            s.client_evictions,
        )?;
        counter(
            &mut e,
            "regwatch_detect_replays_skipped",
            "Events read again after a restart that the start-up rebuild had already observed (stored, not observed twice).",
            self.0.replays_skipped(),
        )
    }
}

/// The embedded shape's outbox reader: the last outbox sequence number
/// written to the store.
#[derive(Debug)]
pub struct EmbeddedCollector(pub Arc<std::sync::atomic::AtomicI64>);

impl Collector for EmbeddedCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        gauge(
            &mut e,
            "regwatch_embedded_outbox_cursor",
            "Last outbox sequence number the embedded pipeline made durable.",
            self.0.load(Ordering::Relaxed),
        )
    }
}

/// The `/metrics` router over `registry`.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let registry = registry.clone();
            async move {
                let mut body = String::new();
                match prometheus_client::encoding::text::encode(&mut body, &registry) {
                    Ok(()) => (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                        .into_response(),
                    Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
                }
            }
        }),
    )
}

/// Bind `addr` and serve `/metrics` until `shutdown`; returns the bound
/// address and the server task.
pub async fn serve(
    addr: SocketAddr,
    registry: Registry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind the metrics listener {addr}"))?;
    let local = listener.local_addr()?;
    let app = router(Arc::new(registry));
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "metrics listener stopped");
        }
    });
    Ok((local, task))
}
