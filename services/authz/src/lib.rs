//! regwatch's MCP authorization server: a domain core behind a thin HTTP
//! shell.
//!
//! A library with a thin `main` (in the `regwatch` binary): [`run`] takes a
//! bound listener and a shutdown future, so tests start it on port 0.
//!
//! Layout (each layer imports only the ones below it):
//! - [`http`]: the shell. One router; handlers extract the request, call
//!   a core, and map its error ([`error::OAuthError`], one table).
//! - [`registry`]: register, read, update, delete (RFC 7591/7592), admit
//!   a CIMD client, disable, enable, revoke. Each operation runs the gate
//!   once and writes the client row with its event in one transaction.
//! - [`oauth`]: authorize, sign-in and consent, token (code and refresh),
//!   revoke, introspect (with the per-tool question); client resolution.
//! - [`gate`]: the registration gate (pure): typed metadata from a DCR
//!   body or a CIMD document, limits, redirect rules, scopes, initial
//!   access tokens, escalation.
//! - [`admission`]: the request's source, per-source rate limits, flags.
//! - [`lifecycle`]: sliding TTLs and the expiry sweep.
//! - [`store`]: clients, codes, tokens and the transactional outbox on
//!   SQLite or PostgreSQL; migrations; group commit.
//! - [`events`]: contract events from a request's facts.
//! - [`users`]: the identity seam, argon2 local users.
//! - [`secrets`]: token generation, hashing, constant-time comparison.
//! - [`config`]: the documented, validated `[authz]` configuration.
//! - [`text`]: display truncation and scope syntax (a leaf).
//!
//! Invariants: every state change commits with its event (outbox); no
//! secret or token is stored in clear, logged, or put in an event; the
//! gate runs before anything is stored.

pub mod admission;
pub mod config;
pub mod error;
pub mod events;
pub mod gate;
pub mod http;
pub mod lifecycle;
pub mod oauth;
pub mod registry;
pub mod secrets;
pub mod store;
pub mod text;
pub mod users;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use config::AuthzConfig;
pub use oauth::{BasicAdvisor, ConsentAdvisor};
pub use store::Store;

/// Shared state of the server. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<AuthzConfig>,
    pub store: Store,
    pub admission: Arc<admission::SourceGuard>,
    /// Hashes of the configured initial access tokens.
    pub iat_hashes: Arc<Vec<secrets::TokenHash>>,
    /// Hash of the admin token; `None` disables the admin API.
    pub admin_hash: Option<secrets::TokenHash>,
    /// The issuer without a trailing slash; endpoint URLs hang off it.
    pub issuer: Arc<str>,
    /// Hashes of the resource servers' introspection credentials.
    pub introspection_hashes: Arc<Vec<secrets::TokenHash>>,
    pub users: Arc<dyn users::IdentityProvider>,
    pub flows: Arc<oauth::pending::FlowState>,
    /// `None` when CIMD is disabled.
    pub cimd: Option<Arc<regwatch_cimd::CimdFetcher>>,
    pub advisor: Arc<dyn oauth::ConsentAdvisor>,
    /// Group-commit writer for registrations.
    pub writer: store::RegistrationWriter,
}

impl AppState {
    /// Build the state. Fails only when the CIMD fetcher cannot be built.
    pub fn new(cfg: AuthzConfig, store: Store) -> Self {
        Self::try_new(cfg, store).expect("CIMD fetcher")
    }

    pub fn try_new(cfg: AuthzConfig, store: Store) -> Result<Self, regwatch_cimd::CimdError> {
        let iat_hashes = Arc::new(cfg.initial_access_token_hashes());
        let admin_hash =
            (!cfg.admin_token.is_empty()).then(|| secrets::hash_token(&cfg.admin_token));
        let issuer: Arc<str> = cfg.issuer.trim_end_matches('/').into();
        let introspection_hashes = Arc::new(
            cfg.oauth
                .introspection_tokens
                .iter()
                .map(|t| secrets::hash_token(t))
                .collect(),
        );
        let cimd = if cfg.cimd.enabled {
            Some(Arc::new(regwatch_cimd::CimdFetcher::new(
                cfg.cimd.fetch.clone(),
            )?))
        } else {
            None
        };
        Ok(AppState {
            introspection_hashes,
            users: Arc::new(users::LocalUsers::new(&cfg.oauth.users)),
            flows: Arc::new(oauth::pending::FlowState::new(
                cfg.oauth.max_pending,
                std::time::Duration::from_secs(cfg.oauth.session_ttl_secs),
            )),
            cimd,
            advisor: Arc::new(oauth::BasicAdvisor),
            writer: store::RegistrationWriter::spawn(store.clone()),
            admission: Arc::new(admission::SourceGuard::new(cfg.rate_limit.clone())),
            cfg: Arc::new(cfg),
            store,
            iat_hashes,
            admin_hash,
            issuer,
        })
    }

    /// `issuer` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// Serve the authorization server on `listener` until `shutdown` resolves,
/// with the expiry sweep running beside it.
pub async fn run(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let sweeper = tokio::spawn(lifecycle::run_sweeper(state.clone(), stop_rx));
    let app = http::router(state);
    let res = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    let _ = stop_tx.send(true);
    let _ = sweeper.await;
    res
}
