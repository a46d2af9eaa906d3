//! The wiring behind the `regwatch` command, as a library so tests start
//! the same shapes in-process. No logic beyond wiring lives here.
//!
//! - [`up`]: the embedded shape: authorization server (SQLite) and, when
//!   asked, the reference MCP server, in one process.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub mod advisor;
pub mod metrics;
pub mod retention;
pub mod scaled;

use anyhow::Context;
use regwatch_authz::config::UserEntry;
use regwatch_authz::{AppState, AuthzConfig, Store};

/// What `regwatch up` was asked for.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub data_dir: PathBuf,
    pub authz_listen: SocketAddr,
    pub mcp_listen: Option<SocketAddr>,
    /// The read API (`/v1/events`, `/v1/alerts`) and the bearer token it
    /// requires; `None`: no API listener.
    pub api: Option<(SocketAddr, String)>,
    /// Admit loopback metadata documents (development only).
    pub cimd_allow_loopback_dev: bool,
    /// `(username, password)` of the local user to create; `None`: an
    /// `admin` user with a generated password, printed once.
    pub user: Option<(String, String)>,
    /// `[detect]`: thresholds, protected names, allowlists.
    pub detect: regwatch_detect::DetectConfig,
    /// `[retention]`: how long events are kept, and the archive.
    pub retention: retention::RetentionConfig,
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
    mut cfg: AuthzConfig,
    ready: impl FnOnce(&Endpoints),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&opts.data_dir)
        .with_context(|| format!("create {}", opts.data_dir.display()))?;
    cfg.database_url = format!("sqlite://{}", opts.data_dir.join("authz.db").display());
    let authz_listener = tokio::net::TcpListener::bind(opts.authz_listen)
        .await
        .with_context(|| format!("bind {}", opts.authz_listen))?;
    let authz_addr = authz_listener.local_addr()?;
    if cfg.issuer.is_empty() {
        cfg.issuer = format!("http://{authz_addr}");
    }
    let issuer = cfg.issuer.trim_end_matches('/').to_string();

    let (username, password, generated) = match opts.user.clone() {
        Some((u, p)) => (u, p, false),
        None => (
            "admin".to_string(),
            regwatch_authz::secrets::new_token(""),
            true,
        ),
    };
    let hash = regwatch_authz::users::hash_password(&password)
        .map_err(|e| anyhow::anyhow!("hash password: {e}"))?;
    cfg.oauth.users.retain(|u| u.username != username);
    cfg.oauth.users.push(UserEntry {
        username: username.clone(),
        password_hash: hash,
    });
    if generated {
        println!("sign-in user: {username}  password: {password}  (generated; shown once; set REGWATCH_USER/REGWATCH_PASSWORD to choose)");
    } else {
        println!("sign-in user: {username} (from REGWATCH_USER)");
    }
    cfg.cimd.fetch.allow_loopback_dev |= opts.cimd_allow_loopback_dev;
    if cfg.cimd.fetch.allow_loopback_dev {
        eprintln!("warning: loopback client metadata documents are admitted (development flag)");
    }

    let mut mcp = None;
    if let Some(listen) = opts.mcp_listen {
        let l = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("bind {listen}"))?;
        let addr = l.local_addr()?;
        let resource = format!("http://{addr}/mcp");
        // One process: a fresh credential for the MCP server to introspect with.
        let credential = regwatch_authz::secrets::new_token("rwi_");
        cfg.oauth.resources.push(resource.clone());
        cfg.oauth.introspection_tokens.push(credential.clone());
        let mcp_cfg = regwatch_mcp::McpConfig {
            resource,
            issuer: cfg.issuer.clone(),
            introspection_endpoint: format!("{issuer}/introspect"),
            introspection_token: credential,
            ..Default::default()
        };
        mcp = Some((l, addr, mcp_cfg));
    }
    let api = match &opts.api {
        Some((listen, token)) => {
            let l = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("bind {listen}"))?;
            let a = l.local_addr()?;
            Some((l, a, token.clone()))
        }
        None => None,
    };
    cfg.validate()?;
    let store = Store::connect(&cfg.database_url, 1)
        .await
        .context("open the authorization server's database")?;
    let mut state = AppState::try_new(cfg.clone(), store)?;
    state.advisor = std::sync::Arc::new(advisor::LookalikeAdvisor::new(Default::default()));
    // The embedded pipeline: outbox (by cursor) → event store + detectors.
    let events: Arc<dyn regwatch_store::EventStore> = Arc::new(
        regwatch_store::sqlite::SqliteStore::open(&opts.data_dir.join("events.db"))
            .await
            .context("open the event store")?,
    );
    opts.retention.validate()?;
    let detector = regwatch_detect::Detector::new(opts.detect.clone())?;
    let sink = Arc::new(regwatch_pipeline::store_detect::StoreAndDetect::new(
        events.clone(),
        detector,
        None,
    ));
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
            let mut stop = metrics_stopped;
            let (a, _) = metrics::serve(addr, registry, async move {
                let _ = stop.changed().await;
            })
            .await?;
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

    let (stop_tx, _) = tokio::sync::broadcast::channel::<()>(1);
    let stopped = |tx: &tokio::sync::broadcast::Sender<()>| {
        let mut rx = tx.subscribe();
        async move {
            let _ = rx.recv().await;
        }
    };
    let mut tasks = tokio::task::JoinSet::new();
    let outbox = state.store.outbox();
    tasks.spawn(regwatch_authz::run(
        state,
        authz_listener,
        stopped(&stop_tx),
    ));
    if let (Some((l, _, _)), Some(api_state)) = (api, api_state) {
        tasks.spawn(regwatch_api::run(api_state, l, stopped(&stop_tx)));
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
    let retention = {
        let mut stop = pipe_stop.clone();
        tokio::spawn(retention::run(
            events.clone(),
            opts.retention.clone(),
            async move {
                let _ = stop.changed().await;
            },
        ))
    };
    let sweeper = {
        let (sink, mut stop) = (sink.clone(), pipe_stop);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = sink.sweep(chrono::Utc::now()).await {
                            tracing::warn!(error = %e, "detector sweep failed");
                        }
                    }
                    _ = stop.changed() => return,
                }
            }
        })
    };
    if let Some((l, _, mcp_cfg)) = mcp {
        tasks.spawn(regwatch_mcp::run(mcp_cfg, l, stopped(&stop_tx)));
    }
    tokio::select! {
        _ = shutdown => {}
        Some(res) = tasks.join_next() => {
            let _ = stop_tx.send(());
            res.context("server task")?.context("server")?;
            anyhow::bail!("a server stopped unexpectedly");
        }
    }
    let _ = stop_tx.send(());
    let _ = pipe_stop_tx.send(true);
    let _ = metrics_stop.send(true);
    let _ = tokio::join!(pipeline, sweeper, retention);
    while let Some(res) = tasks.join_next().await {
        res.context("server task")?.context("server")?;
    }
    Ok(())
}
