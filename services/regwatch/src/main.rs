//! `regwatch`: one binary, thin wiring over the service libraries.
//!
//! - `regwatch up`: the embedded shape in one process on SQLite: the
//!   authorization server, the embedded pipeline with the detectors and,
//!   when asked, the MCP server, the API and the metrics listener.
//! - `regwatch authz`: the authorization server alone, on the database the
//!   configuration names (PostgreSQL for the scaled shape), with the outbox
//!   relay when `[relay]` is set.
//! - `regwatch pipeline`: Kafka → ClickHouse + detectors.
//! - `regwatch api`: the read API on ClickHouse.
//! - `regwatch migrate`: apply the migrations.
//! - `regwatch schema`: print the event contract's JSON Schema.
//!
//! The configuration is loaded once, before the subcommand runs
//! ([`regwatch::RegwatchConfig::load`]); each subcommand takes its tables
//! from it.

use std::net::SocketAddr;

/// mimalloc: the pipeline and the authorization server allocate per event
/// and per request; measured in BENCHMARKS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use regwatch::RegwatchConfig;
use regwatch_authz::{AppState, AuthzConfig, Store};

#[derive(Parser)]
#[command(
    name = "regwatch",
    version,
    about = "Watch and harden OAuth client registration for MCP servers"
)]
struct Cli {
    /// TOML configuration file (`[authz]`, `[mcp]`, `[relay]`, `[pipeline]`, `[store]`, `[detect]`, `[retention]`, `[api]`, `[sign_in]`); `REGWATCH_<TABLE>__<KEY>` environment variables override it.
    #[arg(long, global = true, env = "REGWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the embedded shape: everything in one process on SQLite.
    Up {
        /// Where the SQLite files live.
        #[arg(long, default_value = "regwatch-data")]
        data_dir: PathBuf,
        /// Authorization server listen address.
        #[arg(long, default_value = "127.0.0.1:8400")]
        authz_listen: SocketAddr,
        /// Also run the reference MCP server (streamable HTTP at /mcp) here.
        #[arg(long)]
        mcp_listen: Option<SocketAddr>,
        /// Admit Client ID Metadata Documents on loopback (development only).
        #[arg(long)]
        cimd_allow_loopback_dev: bool,
        /// Serve the read API (/v1/events, /v1/alerts) here; needs REGWATCH_API_TOKEN (`[api] token`).
        #[arg(long)]
        api_listen: Option<SocketAddr>,
        /// Serve Prometheus metrics (detector state, outbox cursor) at /metrics here.
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
    },
    /// Run the authorization server alone, on the configured database.
    Authz {
        #[arg(long, default_value = "127.0.0.1:8400")]
        listen: SocketAddr,
        /// Serve Prometheus metrics (relay backlog, deliveries) at /metrics here.
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
    },
    /// Run the pipeline: Kafka (`[pipeline]`) → ClickHouse (`[store]`) + detectors.
    Pipeline {
        /// Serve Prometheus metrics (consumed, written, dead-lettered, paused…) at /metrics here.
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
        /// At start, rebuild the detectors' state from this many days of stored events (0: start empty).
        #[arg(long, default_value_t = 7)]
        rebuild_days: u32,
    },
    /// Run the read API on ClickHouse (`[store]`); needs REGWATCH_API_TOKEN (`[api] token`).
    Api {
        #[arg(long, default_value = "127.0.0.1:8600")]
        listen: SocketAddr,
    },
    /// Apply database migrations (authorization server, and ClickHouse when `[store]` is set) and exit.
    Migrate,
    /// Print the JSON Schema of the event contract.
    Schema,
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REGWATCH_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        b.json().init();
    } else {
        b.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

async fn serve_authz(
    mut cfg: AuthzConfig,
    relay: Option<regwatch_relay::RelayConfig>,
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("bind {listen}"))?;
    let addr = listener.local_addr()?;
    if cfg.issuer.is_empty() {
        cfg.issuer = format!("http://{addr}");
    }
    RegwatchConfig::validate_authz(&cfg)?;
    let store = Store::connect(&cfg.database_url, cfg.database_max_connections)
        .await
        .context("open the authorization server's database")?;
    if cfg.admin_token.is_empty() {
        eprintln!("admin API disabled: set REGWATCH_AUTHZ__ADMIN_TOKEN to enable it");
    }
    println!(
        "regwatch authz listening on http://{addr} (issuer {})",
        cfg.issuer
    );
    println!(
        "  metadata: {}/.well-known/oauth-authorization-server",
        cfg.issuer.trim_end_matches('/')
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let relay_task = match relay {
        Some(r) => {
            println!("  relay: outbox → {} ({})", r.brokers, r.topic);
            let relay = regwatch_relay::Relay::new(store.outbox(), r)?;
            if let Some(addr) = metrics_listen {
                let mut registry = prometheus_client::registry::Registry::default();
                registry.register_collector(Box::new(regwatch::metrics::RelayCollector(
                    relay.metrics(),
                )));
                let stop = regwatch::stopped(stop_rx.clone());
                let (a, _) = regwatch::metrics::serve(addr, registry, stop).await?;
                println!("  metrics: http://{a}/metrics");
            }
            Some(tokio::spawn(relay.run(regwatch::stopped(stop_rx.clone()))))
        }
        None => {
            eprintln!(
                "no [relay] table: events stay in the outbox (embedded shapes read it directly)"
            );
            None
        }
    };
    let state = AppState::try_new(cfg, store)?;
    let res = regwatch_authz::run(state, listener, shutdown_signal()).await;
    let _ = stop_tx.send(true);
    if let Some(t) = relay_task {
        let _ = t.await;
    }
    res?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    let cfg = RegwatchConfig::load(cli.config.as_deref())?;
    match cli.cmd {
        Cmd::Up {
            data_dir,
            authz_listen,
            mcp_listen,
            cimd_allow_loopback_dev,
            api_listen,
            metrics_listen,
        } => {
            println!(
                "regwatch up: embedded shape, data in {}",
                data_dir.display()
            );
            let opts = regwatch::UpOptions {
                data_dir,
                authz_listen,
                mcp_listen,
                api_listen,
                cimd_allow_loopback_dev,
                metrics_listen,
            };
            regwatch::up(
                opts,
                cfg,
                |e| {
                    println!("authorization server: {} (metadata: {}/.well-known/oauth-authorization-server)", e.authz, e.issuer);
                    if let Some(m) = e.mcp {
                        println!("MCP server: http://{m}/mcp");
                    }
                    if let Some(a) = e.api {
                        println!("API: http://{a}/v1/events (bearer REGWATCH_API_TOKEN)");
                    }
                    if let Some(m) = e.metrics {
                        println!("metrics: http://{m}/metrics");
                    }
                },
                shutdown_signal(),
            )
            .await
        }
        Cmd::Authz {
            listen,
            metrics_listen,
        } => serve_authz(cfg.authz, cfg.relay, listen, metrics_listen).await,
        Cmd::Pipeline {
            metrics_listen,
            rebuild_days,
        } => {
            let pcfg = cfg.require_pipeline()?.clone();
            let store = regwatch::scaled::clickhouse(cfg.require_store()?).await?;
            println!("regwatch pipeline: {} → ClickHouse", pcfg.brokers);
            regwatch::scaled::pipeline(
                pcfg,
                store,
                regwatch::scaled::PipelineOptions {
                    detect: cfg.detect,
                    retention: cfg.retention,
                    metrics_listen,
                    rebuild_days,
                    ..Default::default()
                },
                shutdown_signal(),
            )
            .await
        }
        Cmd::Api { listen } => {
            let token = cfg.require_api_token()?;
            let store = regwatch::scaled::clickhouse(cfg.require_store()?).await?;
            let state = regwatch_api::ApiState::new(store, token)?;
            let l = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("bind {listen}"))?;
            println!("regwatch api listening on http://{}", l.local_addr()?);
            regwatch_api::run(state, l, shutdown_signal()).await?;
            Ok(())
        }
        Cmd::Migrate => {
            let url = &cfg.authz.database_url;
            Store::connect(url, 1).await.context("migrate")?;
            println!("migrations applied to {}", redact(url));
            if let Some(s) = &cfg.store {
                regwatch::scaled::clickhouse(s).await?;
                println!(
                    "ClickHouse migrations applied to {}/{}",
                    s.clickhouse_url, s.clickhouse_database
                );
            }
            Ok(())
        }
        Cmd::Schema => {
            for (name, text) in regwatch_schemas::json_schema::all() {
                println!("// {name}\n{text}");
            }
            Ok(())
        }
    }
}

/// A database URL without its password, for printing.
fn redact(url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(s, rest)| rest.split_once('@').map(|(cred, host)| (s, cred, host)))
    {
        Some((s, cred, host)) => {
            let user = cred.split(':').next().unwrap_or("");
            format!("{s}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}
