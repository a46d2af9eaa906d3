//! The scaled shape's wiring: `regwatch authz` (with the outbox relay to
//! Kafka), `regwatch pipeline` (Kafka → ClickHouse + detectors) and
//! `regwatch api` (reads ClickHouse), each a separate process configured by
//! the same file and environment.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use regwatch_store::EventStore;
use serde::Deserialize;

/// Where the scaled shape keeps events and alerts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// ClickHouse HTTP URL, e.g. `http://127.0.0.1:8123`.
    pub clickhouse_url: String,
    /// Database; created and migrated at start.
    #[serde(default = "default_database")]
    pub clickhouse_database: String,
}

fn default_database() -> String {
    "regwatch".into()
}

/// The tables of the configuration file beside `[authz]`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ScaledConfig {
    /// `[relay]`: publish the authorization server's outbox to Kafka.
    pub relay: Option<regwatch_relay::RelayConfig>,
    /// `[pipeline]`: the Kafka consumer.
    pub pipeline: Option<regwatch_pipeline::PipelineConfig>,
    /// `[store]`: ClickHouse.
    pub store: Option<StoreConfig>,
    /// `[detect]`: thresholds, protected names, allowlists.
    pub detect: Option<regwatch_detect::DetectConfig>,
    /// `[retention]`: keep_days, check interval, export directory.
    pub retention: Option<crate::retention::RetentionConfig>,
}

impl ScaledConfig {
    /// The `[relay]`, `[pipeline]`, `[store]`, `[detect]` tables of `file`,
    /// with `REGWATCH_<TABLE>__<KEY>` environment overrides.
    pub fn load(file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        use figment::providers::{Env, Format, Toml};
        let mut fig = figment::Figment::new();
        if let Some(f) = file {
            fig = fig.merge(Toml::file(f));
        }
        let fig = fig.merge(Env::prefixed("REGWATCH_").split("__"));
        fn table<T: serde::de::DeserializeOwned>(
            fig: &figment::Figment,
            name: &str,
        ) -> anyhow::Result<Option<T>> {
            if fig.find_value(name).is_err() {
                return Ok(None);
            }
            fig.extract_inner(name)
                .map(Some)
                .map_err(|e| anyhow::anyhow!("[{name}]: {e}"))
        }
        Ok(ScaledConfig {
            relay: table(&fig, "relay")?,
            pipeline: table(&fig, "pipeline")?,
            store: table(&fig, "store")?,
            detect: table(&fig, "detect")?,
            retention: table(&fig, "retention")?,
        })
    }

    pub fn store(&self) -> anyhow::Result<&StoreConfig> {
        self.store
            .as_ref()
            .context("the [store] table (clickhouse_url) is required for this command")
    }
}

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
    pub retention: crate::retention::RetentionConfig,
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
            sweep_every: std::time::Duration::from_secs(60),
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
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.changed().await;
    };
    let retention_task = tokio::spawn(crate::retention::run(
        store,
        opts.retention,
        stopped(stop_rx.clone()),
    ));
    let sweeper = {
        let (sink, stop) = (sink.clone(), stopped(stop_rx.clone()));
        let every = opts.sweep_every;
        tokio::spawn(async move {
            tokio::pin!(stop);
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = sink.sweep(chrono::Utc::now()).await {
                            tracing::warn!(error = %e, "detector sweep failed");
                        }
                    }
                    _ = &mut stop => return,
                }
            }
        })
    };
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
