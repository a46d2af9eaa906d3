//! Safe fetching and validation of OAuth Client ID Metadata Documents.
//!
//! # Overview
//!
//! With CIMD (draft-ietf-oauth-client-id-metadata-document, preferred by the
//! MCP authorization spec 2025-11-25) a client's `client_id` is an `https`
//! URL, and the authorization server fetches the client's metadata from it.
//! That turns the AS into an HTTP client driven by strangers, so this crate
//! treats every step as hostile input:
//!
//! 1. [`validate_client_id_url`] checks the URL's shape (https, a path, no
//!    query, fragment, userinfo or dot segments, at most 2048 bytes).
//! 2. [`CimdFetcher::fetch`] GETs it with an SSRF guard: every address a
//!    host name resolves to is checked by [`is_forbidden_ip`] inside the
//!    resolver reqwest connects with, so DNS rebinding cannot slip past a
//!    pre-check; IP-literal hosts are checked before the request. No proxy,
//!    no redirects (a 3xx is an error), only 200, JSON content type, a body
//!    read incrementally and capped at 5 KB, a total and a connect timeout.
//! 3. The body is validated into a [`CimdDocument`]: `client_id` equal to
//!    the URL by simple string comparison, `client_name` and `redirect_uris`
//!    required, no shared secrets, bounded field sizes.
//! 4. Valid documents are cached (bounded, honouring `Cache-Control:
//!    max-age` up to 24 h); errors and invalid documents never are.
//!
//! Every refusal is a [`CimdError`] variant with a stable
//! [`reason_code`](CimdError::reason_code) for audit events and the
//! [`oauth_error`](CimdError::oauth_error) the AS sends (`invalid_client`).
//!
//! # Layout
//!
//! - `client_id` — URL validation.
//! - `ip` — the address policy ([`is_forbidden_ip`]), pure.
//! - `resolve` — [`AddrResolver`] and the guard reqwest resolves through.
//! - `fetch` — [`CimdFetcher`]: the HTTP request, body cap, cache use.
//! - `document` — [`CimdDocument`] and its validation, pure.
//! - `cache` — the bounded TTL cache and `Cache-Control` handling, pure.
//! - `config` — [`CimdConfig`].
//! - `error` — [`CimdError`].
//!
//! # Development flag
//!
//! [`CimdConfig::allow_loopback_dev`] lets the fetcher reach loopback
//! addresses over plain `http`, so tests can serve documents from
//! `127.0.0.1` without TLS. It never unlocks any other internal address.
//! Production runs with it off and is `https` only.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), regwatch_cimd::CimdError> {
//! use regwatch_cimd::{CimdConfig, CimdFetcher};
//!
//! let fetcher = CimdFetcher::new(CimdConfig::default())?;
//! match fetcher.fetch("https://app.example.com/oauth/client.json").await {
//!     Ok(doc) => println!("{} may redirect to {:?}", doc.client_name, doc.redirect_uris),
//!     Err(e) => println!("refused: {} -> {}", e.reason_code(), e.oauth_error()),
//! }
//! # Ok(())
//! # }
//! ```

mod cache;
mod client_id;
mod config;
mod document;
mod error;
mod fetch;
mod ip;
mod resolve;

pub use client_id::{validate_client_id_url, validate_client_id_url_with, MAX_CLIENT_ID_LEN};
pub use config::{CimdConfig, MAX_BYTES_CEILING, MAX_TTL_CEILING};
pub use document::{
    parse_document, CimdDocument, ALLOWED_AUTH_METHODS, MAX_CLIENT_NAME_CHARS, MAX_REDIRECT_URIS,
    MAX_URI_LEN,
};
pub use error::CimdError;
pub use fetch::CimdFetcher;
pub use ip::is_forbidden_ip;
pub use resolve::{AddrResolver, ResolveFuture, SystemResolver};
