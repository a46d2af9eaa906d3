//! The OAuth core: the MCP authorization flow after registration, free
//! of HTTP. The shell in [`crate::http`] extracts requests and renders
//! what these functions answer.
//!
//! - [`clients`]: resolving a `client_id` to an active client (DCR, or a
//!   CIMD client admitted by the registry) and client authentication.
//! - [`authorize`]: the authorization request, checked and parked.
//! - [`consent`]: sign-in, the consent question and decision, the code.
//! - [`token`]: the code and refresh grants.
//! - [`revoke`]: RFC 7009 and grant-family revocation.
//! - [`introspect`]: RFC 7662 with the per-tool question.
//! - [`pending`]: bounded in-memory requests and sessions.
//! - [`ConsentAdvisor`]: the seam for consent-page warnings.

pub mod authorize;
pub mod clients;
pub mod consent;
pub mod introspect;
pub mod pending;
pub mod revoke;
pub mod token;

use crate::store::ClientRow;

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
