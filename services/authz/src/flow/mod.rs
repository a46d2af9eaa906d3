//! The MCP authorization flow after registration: the authorization
//! endpoint with sign-in and consent, the token endpoint, revocation,
//! introspection (with the per-tool question), and CIMD clients.

pub mod authorize;
pub mod clients;
pub mod pages;
pub mod pending;
pub mod token;

use axum::routing::{get, post};
use axum::Router;

use crate::store::ClientRow;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize::authorize))
        .route("/authorize/login", post(authorize::login))
        .route(
            "/authorize/consent",
            get(authorize::consent_get).post(authorize::consent_post),
        )
        .route("/token", post(token::token))
        .route("/revoke", post(token::revoke))
        .route("/introspect", post(token::introspect))
}

/// Warnings the consent page shows about a client. A seam: the binary
/// plugs in the detection engine's lookalike check.
pub trait ConsentAdvisor: Send + Sync {
    fn warnings(&self, client: &ClientRow, verified: bool) -> Vec<String>;
}

/// Warnings that need no detection state: unverified identity, names
/// with invisible or mixed-script characters, loopback-only redirects.
pub struct BasicAdvisor;

impl ConsentAdvisor for BasicAdvisor {
    fn warnings(&self, client: &ClientRow, verified: bool) -> Vec<String> {
        let mut w = Vec::new();
        if !verified {
            w.push("This client registered itself; nobody has verified who runs it. Its name proves nothing.".to_string());
        }
        if let Some(name) = &client.metadata.client_name {
            if regwatch_checks::text::has_hidden(name) {
                w.push("The client's name contains invisible characters, a common impersonation trick.".to_string());
            }
            if !unicode_security::MixedScript::is_single_script(name.as_str()) {
                w.push("The client's name mixes alphabets (for example Latin and Cyrillic), so it may imitate another name.".to_string());
            }
        }
        let redirects = &client.metadata.redirect_uris;
        if !redirects.is_empty()
            && redirects
                .iter()
                .all(|u| regwatch_checks::addr::is_loopback_http(u))
        {
            w.push("This client only returns to a program on your own computer; any local program could claim to be it.".to_string());
        }
        w
    }
}
