//! The scaled shape's wiring: `regwatch pipeline` (Kafka → ClickHouse +
//! detectors) and the ClickHouse store that it and `regwatch api` open.
//! `regwatch authz` (with the outbox relay to Kafka) is wired in `main`.
//! Each is a separate process configured by the same file and environment
//! ([`crate::RegwatchConfig`]).

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use regwatch_store::retention::RetentionConfig;
use regwatch_store::{EventStore, StoreConfig};

/// Open (and migrate) the ClickHouse store.
pub async fn clickhouse(cfg: &StoreConfig) -> anyhow::Result<Arc<dyn regwatch_store::EventStore>> {
    let s = regwatch_store::clickhouse::ClickHouseStore::connect(
        &cfg.clickhouse_url,
        &cfg.clickhouse_database,
    )
    .await
    .with_context(|| format!("connect to ClickHouse at {}", cfg.clickhouse_url))?;
    s.check_schema().await?.into_result()?;
    Ok(Arc::new(s))
}

/// What `regwatch pipeline` runs beside the consumer.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// `[detect]`.
    pub detect: regwatch_detect::DetectConfig,
    /// `[retention]`.
    pub retention: RetentionConfig,
    /// Serve `/metrics` here.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// At start, rebuild the detectors' state from the events of this many
    /// days before now (0: start empty).
    pub rebuild_days: u32,
    /// How often the time-driven detectors (`dormant_client`) run.
    pub sweep_every: std::time::Duration,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            detect: Default::default(),
            retention: Default::default(),
            metrics_listen: None,
            rebuild_days: 7,
            sweep_every: crate::SWEEP_EVERY,
        }
    }
}

/// Kafka → store + detectors, until `shutdown`; with the detector state
/// rebuilt from the store first, the periodic sweep, retention and the
/// metrics listener as `opts` says.
pub async fn pipeline(
    cfg: regwatch_pipeline::PipelineConfig,
    store: Arc<dyn regwatch_store::EventStore>,
    opts: PipelineOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    opts.retention.validate()?;
    let detector = regwatch_detect::Detector::new(opts.detect)?;
    // Alerts go to regwatch.alerts.v1 too, after they are stored.
    let publisher: Arc<dyn regwatch_pipeline::store_detect::AlertPublisher> =
        Arc::new(regwatch_pipeline::alerts::KafkaAlertPublisher::new(
            &cfg.brokers,
            regwatch_schemas::ALERTS_TOPIC,
        )?);
    let sink = Arc::new(regwatch_pipeline::store_detect::StoreAndDetect::new(
        store.clone(),
        detector,
        Some(publisher),
    ));
    if opts.rebuild_days > 0 {
        let now = chrono::Utc::now();
        let since = now - chrono::Duration::days(i64::from(opts.rebuild_days));
        let t = std::time::Instant::now();
        let read = sink
            .rebuild(since, now)
            .await
            .context("rebuild the detectors' state from the store")?;
        println!(
            "  detector state rebuilt from {read} events of the last {} days in {:?}",
            opts.rebuild_days,
            t.elapsed()
        );
    }
    let pipeline = regwatch_pipeline::Pipeline::new(cfg, sink.clone())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = crate::stopped;
    let retention_task = tokio::spawn(regwatch_store::retention::run(
        store,
        opts.retention,
        stopped(stop_rx.clone()),
    ));
    let sweeper = tokio::spawn(crate::sweep_detectors(
        sink.clone(),
        opts.sweep_every,
        stopped(stop_rx.clone()),
    ));
    if let Some(addr) = opts.metrics_listen {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(crate::metrics::PipelineCollector(
            pipeline.metrics(),
        )));
        registry.register_collector(Box::new(crate::metrics::DetectorCollector(sink.clone())));
        let (a, _) = crate::metrics::serve(addr, registry, stopped(stop_rx.clone())).await?;
        println!("  metrics: http://{a}/metrics");
    }
    let res = pipeline.run(shutdown).await;
    let _ = stop_tx.send(true);
    let _ = tokio::join!(retention_task, sweeper);
    res?;
    Ok(())
}
