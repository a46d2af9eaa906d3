//! The HTTP shell: one router; each handler extracts the request, calls
//! the registry or the OAuth core, and answers. Errors are
//! [`crate::error::OAuthError`] (one mapping to status, body and headers);
//! the browser pages map [`crate::oauth::authorize::AuthorizeError`].

mod admin;
mod authorize;
mod discovery;
mod pages;
mod register;
mod token;

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::Router;

use crate::events::RequestCtx;
use crate::AppState;

/// Requests other than registration bodies never need more than this.
const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    // RFC 8414 §3: the well-known segment goes before the issuer's path;
    // OpenID Discovery appends it after. MCP clients try both.
    let issuer_path = url::Url::parse(&state.issuer)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default();
    let mut r = Router::new()
        .route(
            &format!("/.well-known/oauth-authorization-server{issuer_path}"),
            get(discovery::metadata),
        )
        .route(
            &format!("{issuer_path}/.well-known/openid-configuration"),
            get(discovery::metadata),
        );
    if !issuer_path.is_empty() {
        r = r.route(
            "/.well-known/openid-configuration",
            get(discovery::metadata),
        );
    }
    r.route(
        "/register",
        post(register::register).layer(axum::extract::DefaultBodyLimit::disable()),
    )
    .route(
        "/register/{client_id}",
        get(register::read)
            .put(register::update)
            .delete(register::delete)
            .layer(axum::extract::DefaultBodyLimit::disable()),
    )
    .route("/authorize", get(authorize::authorize))
    .route("/authorize/login", post(authorize::login))
    .route(
        "/authorize/consent",
        get(authorize::consent_get).post(authorize::consent_post),
    )
    .route("/token", post(token::token))
    .route("/revoke", post(token::revoke))
    .route("/introspect", post(token::introspect))
    .merge(admin::router())
    .layer(axum::extract::DefaultBodyLimit::max(DEFAULT_BODY_LIMIT))
    .with_state(state)
}

/// Extracts the request's source (honouring trusted proxies), user agent
/// and request id.
pub struct Ctx(pub RequestCtx);

impl FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // The extractor also honours `MockConnectInfo` in tests.
        let peer: Option<IpAddr> = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .ok()
            .map(|c| c.0.ip());
        let ip = crate::admission::client_ip(peer, &parts.headers, &state.cfg.trusted_proxies);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| crate::text::truncate_for_display(s, 256));
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|s| s.len() <= 128)
            .map(String::from)
            .or_else(|| Some(uuid::Uuid::now_v7().to_string()));
        Ok(Ctx(RequestCtx {
            ip,
            user_agent,
            request_id,
        }))
    }
}

/// The bearer token of `Authorization`, if any (RFC 6750 §2.1, parsed by
/// `regwatch_checks::bearer`): `None` for another scheme or a malformed
/// token alike, which callers answer with a bare challenge.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    regwatch_checks::bearer::parse(v).ok()
}
