//! regwatch's reference MCP server.
//!
//! An MCP server built on the official Rust SDK (`rmcp`), serving
//! streamable HTTP at `/mcp` inside an axum router. It is an OAuth
//! protected resource (RFC 9728) with no token logic of its own: every
//! request's bearer token is checked by the authorization server's RFC 7662
//! introspection endpoint, and every `tools/call` is put to it with
//! `tool=<name>`, because the authorization server holds the tool→scope map
//! and records the `tool.called` audit event.
//!
//! Like the other services, it is a library: [`run`] takes a bound listener
//! and a shutdown future, so tests start it on port 0; [`router`] gives the
//! bare axum router for `tower::ServiceExt::oneshot`.
//!
//! Layout:
//! - [`config`]: the documented, validated configuration.
//! - [`http`]: the routes: protected resource metadata, and `/mcp` behind
//!   the bearer check, which hands allowed requests to rmcp.
//! - [`jsonrpc`]: finding the tool calls in a JSON-RPC body (pure).
//! - [`introspection`]: the RFC 7662 client and the pure judgement of an
//!   answer (active, audience, tool decision).
//! - [`sessions`]: MCP session ids bound to the client that opened them.
//! - [`error`]: the refusals and their one status/challenge table.
//! - [`tools`]: the tools (`list_items`, `get_item`, `update_item`,
//!   `delete_item`) over an in-memory store of notes.
//!
//! Invariants:
//! - No request reaches rmcp without an introspection answer from this very
//!   request: nothing is cached, so a revoked token or client fails on its
//!   next call.
//! - A `tools/call` reaches rmcp only if the authorization server allowed
//!   that tool for that token; a body this server cannot read unambiguously
//!   is refused, not passed on.
//! - The audience is checked: a token whose `aud` is not this `resource`
//!   is refused (MCP 2025-06-18: no token passthrough or reuse).
//! - When the authorization server cannot answer, requests fail closed
//!   (503 with `Retry-After`).
//! - A legacy MCP session (`Mcp-Session-Id`) is usable only with a token of
//!   the client and user that opened it.
//! - No token, neither the client's nor the introspection credential, is
//!   logged, put in an error, or handed to the tools.

pub mod config;
pub mod error;
pub mod http;
pub mod introspection;
pub mod jsonrpc;
pub mod sessions;
pub mod tools;

use std::future::Future;
use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

pub use config::McpConfig;
pub use introspection::Caller;
pub use tools::ItemStore;

/// The name published as `resource_name` (RFC 9728).
pub const RESOURCE_NAME: &str = "regwatch reference MCP server";

/// Why the server could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("introspection client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Shared state of the server. Cheap to clone.
#[derive(Clone)]
pub struct McpState {
    pub cfg: Arc<McpConfig>,
    /// The notes the tools work on.
    pub store: ItemStore,
    introspection: introspection::IntrospectionClient,
    /// The rmcp streamable HTTP service; its config holds the cancellation
    /// token that ends open SSE streams at shutdown.
    mcp: StreamableHttpService<tools::ItemTools, LocalSessionManager>,
    /// What the 401/403/503 answers need, built once.
    challenge: Arc<error::ChallengeContext>,
    /// The RFC 9728 document, built once.
    metadata: Arc<serde_json::Value>,
    /// Which client opened which MCP session.
    sessions: Arc<sessions::SessionBindings>,
}

impl McpState {
    /// Validate `cfg` and build the state around `store`.
    pub fn new(cfg: McpConfig, store: ItemStore) -> Result<Self, StartError> {
        cfg.validate()?;
        let introspection = introspection::IntrospectionClient::new(&cfg)?;
        let rmcp_cfg = StreamableHttpServerConfig::default()
            .with_allowed_hosts(cfg.effective_allowed_hosts())
            .with_max_request_body_bytes(cfg.max_body_bytes);
        let tools_store = store.clone();
        let mcp = StreamableHttpService::new(
            move || Ok(tools::ItemTools::new(tools_store.clone())),
            Arc::new(LocalSessionManager::default()),
            rmcp_cfg,
        );
        let challenge = Arc::new(error::ChallengeContext {
            resource_metadata: metadata_url(&cfg.resource),
            retry_after_secs: cfg.retry_after_secs,
            challenge_scope: cfg.challenge_scope.clone(),
        });
        let metadata = Arc::new(serde_json::json!({
            "resource": cfg.resource,
            "authorization_servers": [cfg.issuer],
            "scopes_supported": cfg.scopes_supported,
            "bearer_methods_supported": ["header"],
            "resource_name": RESOURCE_NAME,
        }));
        Ok(McpState {
            cfg: Arc::new(cfg),
            store,
            introspection,
            mcp,
            challenge,
            metadata,
            sessions: Arc::new(sessions::SessionBindings::new(sessions::MAX_SESSIONS)),
        })
    }

    /// The RFC 9728 metadata URL of this resource.
    pub fn metadata_url(&self) -> &str {
        &self.challenge.resource_metadata
    }

    fn resource_path(&self) -> String {
        url::Url::parse(&self.cfg.resource)
            .map(|u| u.path().to_owned())
            .unwrap_or_default()
    }

    /// End every open MCP session and SSE stream.
    pub fn close_sessions(&self) {
        self.mcp.config.cancellation_token.cancel();
    }
}

/// RFC 9728 §3.1: the well-known segment goes between the host and the path.
fn metadata_url(resource: &str) -> String {
    match url::Url::parse(resource) {
        Ok(u) => {
            let origin = u.origin().ascii_serialization();
            let path = u.path().trim_end_matches('/');
            format!("{origin}{}{path}", http::METADATA_PREFIX)
        }
        Err(_) => String::new(),
    }
}

/// The axum router: metadata and `/mcp`.
pub fn router(state: McpState) -> axum::Router {
    http::router(state)
}

/// Serve the MCP server on `listener` until `shutdown` resolves, with a
/// fresh, empty item store.
pub async fn run(
    config: McpConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = McpState::new(config, ItemStore::default()).map_err(std::io::Error::other)?;
    serve(state, listener, shutdown).await
}

/// Serve an already-built state (tests seed its store first).
pub async fn serve(
    state: McpState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closer = state.clone();
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Open SSE streams would otherwise hold graceful shutdown forever.
            closer.close_sessions();
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_url_inserts_the_well_known_segment() {
        assert_eq!(
            metadata_url("http://127.0.0.1:8500/mcp"),
            "http://127.0.0.1:8500/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            metadata_url("https://mcp.example.com/tenant/mcp"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/tenant/mcp"
        );
        assert_eq!(
            metadata_url("https://mcp.example.com"),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
    }
}
