//! The wiring behind the `regwatch` command, as a library so tests start
//! the same shapes in-process. No logic beyond wiring lives here.
//!
//! Layout:
//! - [`config`]: [`RegwatchConfig`], the one configuration (every table,
//!   the secrets) and its loader, run once by `main`.
//! - this file: [`up`], the embedded shape (authorization server, embedded
//!   pipeline and, when asked, the reference MCP server, the API and the
//!   metrics listener, in one process on SQLite), and the detector sweep
//!   both shapes run.
//! - [`scaled`]: the scaled shape's `pipeline` and its ClickHouse store.
//! - [`metrics`]: Prometheus collectors over the services' atomics.
//! - [`advisor`]: the consent page's lookalike warning: authz's
//!   `ConsentAdvisor` seam filled with detect's name catalog.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub mod advisor;
pub mod config;
pub mod metrics;
pub mod scaled;

use anyhow::Context;
use regwatch_authz::{AppState, Store};
use regwatch_pipeline::store_detect::StoreAndDetect;

pub use config::RegwatchConfig;

/// What `regwatch up` was asked for on the command line; everything else
/// comes from the [`RegwatchConfig`].
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub data_dir: PathBuf,
    pub authz_listen: SocketAddr,
    pub mcp_listen: Option<SocketAddr>,
    /// Serve the read API (`/v1/events`, `/v1/alerts`) here; needs
    /// `[api] token`.
    pub api_listen: Option<SocketAddr>,
    /// Admit loopback metadata documents (development only).
    pub cimd_allow_loopback_dev: bool,
    /// Serve Prometheus metrics at `/metrics` here.
    pub metrics_listen: Option<SocketAddr>,
}

/// Where the embedded shape listens, once started.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub issuer: String,
    pub authz: SocketAddr,
    pub mcp: Option<SocketAddr>,
    pub api: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
    pub database_url: String,
}

/// Bind, configure and serve the embedded shape until `shutdown`.
/// `ready` receives the endpoints once every listener is bound.
pub async fn up(
    opts: UpOptions,
    mut config: RegwatchConfig,
    ready: impl FnOnce(&Endpoints),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // `load` validated a loaded configuration; one built in code is
    // checked here.
    config.validate()?;
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("create {}", opts.data_dir.display()))?;
    let api_token = match opts.api_listen {
        Some(_) => Some(config.require_api_token()?.to_string()),
        None => None,
    };
    let authz_listener = bind(opts.authz_listen).await?;
    let authz_addr = authz_listener.local_addr()?;
    embedded_authz(&mut config, &opts, authz_addr)?;

    let mut mcp = None;
    if let Some(listen) = opts.mcp_listen {
        let l = bind(listen).await?;
        let addr = l.local_addr()?;
        mcp = Some((l, addr, embedded_mcp(&mut config, addr)?));
    }
    let api = match (opts.api_listen, api_token) {
        (Some(listen), Some(token)) => {
            let l = bind(listen).await?;
            let a = l.local_addr()?;
            Some((l, a, token))
        }
        _ => None,
    };
    let cfg = config.authz;
    RegwatchConfig::validate_authz(&cfg)?;
    let store = Store::connect(&cfg.database_url, 1)
        .await
        .context("open the authorization server's database")?;
    let mut state = AppState::try_new(cfg.clone(), store)?;
    // The consent page warns of lookalikes of the protected names that
    // `[detect.impersonation]` configures, as the pipeline alerts on them.
    state.advisor = Arc::new(advisor::LookalikeAdvisor::new(
        config.detect.impersonation.clone(),
    ));
    // The embedded pipeline: outbox (by cursor) → event store + detectors.
    let events: Arc<dyn regwatch_store::EventStore> = Arc::new(
        regwatch_store::sqlite::SqliteStore::open(&opts.data_dir.join("events.db"))
            .await
            .context("open the event store")?,
    );
    let detector = regwatch_detect::Detector::new(config.detect)?;
    let sink = Arc::new(StoreAndDetect::new(events.clone(), detector, None));
    let api_state = match &api {
        Some((_, _, token)) => Some(regwatch_api::ApiState::new(events.clone(), token)?),
        None => None,
    };
    let (metrics_stop, metrics_stopped) = tokio::sync::watch::channel(false);
    let cursor = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let metrics_addr = match opts.metrics_listen {
        Some(addr) => {
            let mut registry = prometheus_client::registry::Registry::default();
            registry.register_collector(Box::new(metrics::DetectorCollector(sink.clone())));
            registry.register_collector(Box::new(metrics::EmbeddedCollector(cursor.clone())));
            let (a, _) = metrics::serve(addr, registry, stopped(metrics_stopped)).await?;
            Some(a)
        }
        None => None,
    };
    let endpoints = Endpoints {
        issuer: cfg.issuer.clone(),
        authz: authz_addr,
        mcp: mcp.as_ref().map(|m| m.1),
        api: api.as_ref().map(|a| a.1),
        metrics: metrics_addr,
        database_url: cfg.database_url.clone(),
    };
    ready(&endpoints);

    let (stop_tx, servers_stop) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    let outbox = state.store.outbox();
    tasks.spawn(regwatch_authz::run(
        state,
        authz_listener,
        stopped(servers_stop.clone()),
    ));
    if let (Some((l, _, _)), Some(api_state)) = (api, api_state) {
        tasks.spawn(regwatch_api::run(
            api_state,
            l,
            stopped(servers_stop.clone()),
        ));
    }
    let (pipe_stop_tx, pipe_stop) = tokio::sync::watch::channel(false);
    let pipeline = tokio::spawn(regwatch_pipeline::embedded::run(
        outbox,
        sink.clone(),
        std::time::Duration::from_millis(100),
        pipe_stop.clone(),
        {
            let cursor = cursor.clone();
            move |c| cursor.store(c, std::sync::atomic::Ordering::Relaxed)
        },
    ));
    let retention = tokio::spawn(regwatch_store::retention::run(
        events.clone(),
        config.retention,
        stopped(pipe_stop.clone()),
    ));
    let sweeper = tokio::spawn(sweep_detectors(
        sink.clone(),
        SWEEP_EVERY,
        stopped(pipe_stop),
    ));
    if let Some((l, _, mcp_cfg)) = mcp {
        tasks.spawn(regwatch_mcp::run(mcp_cfg, l, stopped(servers_stop.clone())));
    }
    tokio::select! {
        _ = shutdown => {}
        Some(res) = tasks.join_next() => {
            let _ = stop_tx.send(true);
            res.context("server task")?.context("server")?;
            anyhow::bail!("a server stopped unexpectedly");
        }
    }
    let _ = stop_tx.send(true);
    let _ = pipe_stop_tx.send(true);
    let _ = metrics_stop.send(true);
    let _ = tokio::join!(pipeline, sweeper, retention);
    while let Some(res) = tasks.join_next().await {
        res.context("server task")?.context("server")?;
    }
    Ok(())
}

/// `[authz]` for the embedded shape: its SQLite file in the data
/// directory, the issuer derived from where it listens when unset, the
/// sign-in user (printed once), the development CIMD flag.
fn embedded_authz(
    config: &mut RegwatchConfig,
    opts: &UpOptions,
    addr: SocketAddr,
) -> anyhow::Result<()> {
    let cfg = &mut config.authz;
    cfg.database_url = format!("sqlite://{}", opts.data_dir.join("authz.db").display());
    if cfg.issuer.is_empty() {
        cfg.issuer = format!("http://{addr}");
    }
    let user = regwatch_authz::users::bootstrap(cfg, config.sign_in.given()?)
        .map_err(|e| anyhow::anyhow!("hash password: {e}"))?;
    match &user.generated_password {
        Some(password) => println!("sign-in user: {}  password: {password}  (generated; shown once; set REGWATCH_USER/REGWATCH_PASSWORD to choose)", user.username),
        None => println!("sign-in user: {} (from REGWATCH_USER)", user.username),
    }
    cfg.cimd.fetch.allow_loopback_dev |= opts.cimd_allow_loopback_dev;
    if cfg.cimd.fetch.allow_loopback_dev {
        eprintln!("warning: loopback client metadata documents are admitted (development flag)");
    }
    Ok(())
}

/// `[mcp]` for the MCP server `up` runs beside the authorization server, on
/// `addr`: what the table leaves empty is derived (`resource` from `addr`,
/// the issuer and introspection endpoint from `[authz]`, a fresh
/// introspection credential), and the authorization server is told the
/// resource and the credential, since one process holds both ends.
fn embedded_mcp(
    config: &mut RegwatchConfig,
    addr: SocketAddr,
) -> Result<regwatch_mcp::McpConfig, config::ConfigError> {
    let (mut mcp, authz) = (config.mcp.clone(), &mut config.authz);
    if mcp.resource.is_empty() {
        mcp.resource = format!("http://{addr}/mcp");
    }
    if mcp.issuer.is_empty() {
        mcp.issuer = authz.issuer.clone();
    }
    if mcp.introspection_endpoint.is_empty() {
        let issuer = authz.issuer.trim_end_matches('/');
        mcp.introspection_endpoint = format!("{issuer}/introspect");
    }
    if mcp.introspection_token.is_empty() {
        mcp.introspection_token = regwatch_authz::secrets::new_token("rwi_");
    }
    RegwatchConfig::validate_mcp(&mcp)?;
    let oauth = &mut authz.oauth;
    if !oauth.resources.contains(&mcp.resource) {
        oauth.resources.push(mcp.resource.clone());
    }
    if !oauth
        .introspection_tokens
        .contains(&mcp.introspection_token)
    {
        oauth
            .introspection_tokens
            .push(mcp.introspection_token.clone());
    }
    Ok(mcp)
}

/// How often the time-driven detectors (`dormant_client`) run.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs the time-driven detectors every `every` until `stop` (both shapes).
/// A failed sweep is logged and tried again at the next tick.
pub async fn sweep_detectors(
    sink: Arc<StoreAndDetect>,
    every: std::time::Duration,
    stop: impl Future<Output = ()>,
) {
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
}

/// Resolves once `rx` changes (the stop signal of a background task).
pub async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.changed().await;
}

async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {addr}"))
}
