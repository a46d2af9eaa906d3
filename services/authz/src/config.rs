//! Authorization-server configuration: one documented struct, the
//! `[authz]` table of the configuration file (loaded by the `regwatch`
//! command with the other tables), validated at start with a message that
//! names the bad key.

use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::secrets;

/// How registration may be restricted by an initial access token (RFC 7591 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InitialAccessTokenMode {
    /// Open registration (the MCP default).
    #[default]
    Off,
    /// Every registration needs a token.
    Always,
    /// Only registrations asking for a sensitive scope need one.
    Sensitive,
}

/// Which private-use redirect schemes are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RedirectMode {
    /// RFC 8252: https, loopback http, reverse-DNS private-use schemes.
    #[default]
    Standard,
    /// Strict MCP: only https and loopback http.
    StrictMcp,
}

/// Size limits on every registration input.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Most top-level fields in a registration request.
    pub max_fields: usize,
    /// Deepest JSON nesting accepted (the body object is depth 1).
    pub max_depth: usize,
    pub max_redirect_uris: usize,
    /// Longest URI (redirect, client, logo, tos, policy, jwks), in bytes.
    pub max_uri_len: usize,
    /// Longest `client_name`, in characters.
    pub max_name_chars: usize,
    pub max_contacts: usize,
    pub max_scopes: usize,
    /// Longest string of any other field, in bytes.
    pub max_string_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 16 * 1024,
            max_fields: 40,
            max_depth: 6,
            max_redirect_uris: 10,
            max_uri_len: 2048,
            max_name_chars: 200,
            max_contacts: 5,
            max_scopes: 20,
            max_string_len: 1024,
        }
    }
}

/// Per-source registration rate limits and escalation for flagged sources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Registrations per minute per source; 0 disables the limit.
    pub per_minute: u32,
    /// Burst above the steady rate.
    pub burst: u32,
    /// A flagged source's rate is divided by this.
    pub flagged_divisor: u32,
    /// How long a flag lasts after the last time it was raised, in seconds.
    pub flag_ttl_secs: u64,
    /// Most sources tracked at once (memory bound); the stalest are dropped.
    pub max_tracked_sources: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            per_minute: 30,
            burst: 10,
            flagged_divisor: 4,
            flag_ttl_secs: 3600,
            max_tracked_sources: 100_000,
        }
    }
}

/// Client lifecycle: sliding TTLs and the expiry sweep.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    /// A client unused for this long expires (sliding: every use resets it).
    pub idle_ttl_secs: u64,
    /// A client that never reached consent expires after this.
    pub unconsented_ttl_secs: u64,
    /// How often the sweep runs.
    pub sweep_interval_secs: u64,
    /// Most clients expired by one sweep pass.
    pub sweep_batch: u32,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            idle_ttl_secs: 30 * 24 * 3600,
            unconsented_ttl_secs: 24 * 3600,
            sweep_interval_secs: 60,
            sweep_batch: 500,
        }
    }
}

/// The registration policy gate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub redirect_mode: RedirectMode,
    /// Admit private-use schemes without a "." (RFC 8252 §8.4 says SHOULD reject).
    pub allow_non_reverse_dns_schemes: bool,
    /// Scopes a client may register for.
    pub scopes_supported: Vec<String>,
    /// Scopes given when a client asks for none: keep them narrow.
    pub default_scopes: Vec<String>,
    /// Scopes that need an initial access token in `sensitive` mode and
    /// are refused to a source flagged twice.
    pub sensitive_scopes: Vec<String>,
    /// Redirect hosts (and their subdomains) that are refused.
    pub redirect_domain_denylist: Vec<String>,
    /// When non-empty, https redirect hosts must be one of these (or a subdomain).
    pub redirect_domain_allowlist: Vec<String>,
    /// Case-insensitive substrings refused in `client_name`.
    pub name_denylist: Vec<String>,
    /// When non-empty, `client_name` must be one of these (case-insensitive).
    pub name_allowlist: Vec<String>,
    pub initial_access_token: InitialAccessTokenMode,
    /// Initial access tokens, as given (hashed at load, never kept in clear).
    #[serde(default)]
    pub initial_access_tokens: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            redirect_mode: RedirectMode::Standard,
            allow_non_reverse_dns_schemes: false,
            scopes_supported: ["mcp:read", "mcp:write", "mcp:delete", "offline_access"]
                .map(String::from)
                .to_vec(),
            default_scopes: vec!["mcp:read".into()],
            sensitive_scopes: ["mcp:write", "mcp:delete"].map(String::from).to_vec(),
            redirect_domain_denylist: Vec::new(),
            redirect_domain_allowlist: Vec::new(),
            name_denylist: Vec::new(),
            name_allowlist: Vec::new(),
            initial_access_token: InitialAccessTokenMode::Off,
            initial_access_tokens: Vec::new(),
        }
    }
}

/// A local user (the built-in identity source).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEntry {
    pub username: String,
    /// Argon2 PHC string (`$argon2id$…`), never a clear password.
    pub password_hash: String,
}

/// The authorization code flow, tokens and per-tool authorization.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthConfig {
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// Refresh-token lifetime for clients not in `verified_clients`; 0: none.
    pub unverified_refresh_token_ttl_secs: u64,
    pub code_ttl_secs: u64,
    pub session_ttl_secs: u64,
    /// RFC 8707 resources tokens may be issued for (the MCP servers).
    pub resources: Vec<String>,
    /// MCP tool name → the scope it needs (function-level authorization).
    /// A tool not listed is denied.
    pub tools: std::collections::BTreeMap<String, String>,
    /// Client ids (or CIMD URLs) whose identity is assured.
    pub verified_clients: Vec<String>,
    /// Credentials of resource servers allowed to introspect (hashed at load).
    pub introspection_tokens: Vec<String>,
    pub users: Vec<UserEntry>,
    /// Most authorization requests waiting for sign-in or consent.
    pub max_pending: usize,
}

impl Default for OAuthConfig {
    fn default() -> Self {
        OAuthConfig {
            access_token_ttl_secs: 600,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            unverified_refresh_token_ttl_secs: 24 * 3600,
            code_ttl_secs: 60,
            session_ttl_secs: 8 * 3600,
            resources: Vec::new(),
            tools: [
                ("list_items", "mcp:read"),
                ("get_item", "mcp:read"),
                ("update_item", "mcp:write"),
                ("delete_item", "mcp:delete"),
            ]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
            verified_clients: Vec::new(),
            introspection_tokens: Vec::new(),
            users: Vec::new(),
            max_pending: 10_000,
        }
    }
}

/// Client ID Metadata Documents.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CimdSettings {
    pub enabled: bool,
    /// Fetch limits (`[authz.cimd.fetch]`); `allow_loopback_dev` is for development only.
    pub fetch: regwatch_cimd::CimdConfig,
}

impl Default for CimdSettings {
    fn default() -> Self {
        CimdSettings {
            enabled: true,
            fetch: regwatch_cimd::CimdConfig::default(),
        }
    }
}

/// The whole authorization-server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthzConfig {
    /// The issuer identifier; every endpoint URL is built from it. https,
    /// or http on a loopback host for development. Empty: `regwatch`
    /// derives `http://<listen address>` (development only).
    pub issuer: String,
    /// `sqlite://path` or `postgres://…`.
    pub database_url: String,
    /// Pool size; SQLite is always one writer connection.
    pub database_max_connections: u32,
    /// Proxies whose `X-Forwarded-For` is believed. Empty: the TCP peer is the source.
    pub trusted_proxies: Vec<IpNet>,
    /// Admin API bearer token (hashed at load). Empty disables the admin API.
    pub admin_token: String,
    pub limits: Limits,
    pub rate_limit: RateLimitConfig,
    pub lifecycle: LifecycleConfig,
    pub policy: PolicyConfig,
    pub oauth: OAuthConfig,
    pub cimd: CimdSettings,
}

impl Default for AuthzConfig {
    fn default() -> Self {
        AuthzConfig {
            issuer: String::new(),
            database_url: "sqlite://regwatch-authz.db".into(),
            database_max_connections: 8,
            trusted_proxies: Vec::new(),
            admin_token: String::new(),
            limits: Limits::default(),
            rate_limit: RateLimitConfig::default(),
            lifecycle: LifecycleConfig::default(),
            policy: PolicyConfig::default(),
            oauth: OAuthConfig::default(),
            cimd: CimdSettings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// Why a configured credential fails `regwatch_checks::bearer::is_token`.
const BEARER_SYNTAX: &str =
    "must be a bearer token (RFC 6750: letters, digits, - . _ ~ + /, optional trailing =; at most 4096 bytes)";

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl AuthzConfig {
    /// Check every value; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.issuer.is_empty() {
            return Err(invalid("issuer", "must be set"));
        }
        let issuer = url::Url::parse(&self.issuer).map_err(|e| invalid("issuer", e.to_string()))?;
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(invalid(
                "issuer",
                "must have no query or fragment (RFC 8414 §2)",
            ));
        }
        match issuer.scheme() {
            "https" => {}
            "http"
                if issuer
                    .host()
                    .is_some_and(|h| regwatch_checks::addr::is_loopback_host(&h)) => {}
            _ => {
                return Err(invalid(
                    "issuer",
                    "must be https (http only on a loopback host)",
                ))
            }
        }
        if !(self.database_url.starts_with("sqlite:") || self.database_url.starts_with("postgres"))
        {
            return Err(invalid(
                "database_url",
                "must start with sqlite: or postgres://",
            ));
        }
        if self.database_max_connections == 0 {
            return Err(invalid("database_max_connections", "must be at least 1"));
        }
        let l = &self.limits;
        for (k, v) in [
            ("limits.max_body_bytes", l.max_body_bytes),
            ("limits.max_fields", l.max_fields),
            ("limits.max_depth", l.max_depth),
            ("limits.max_redirect_uris", l.max_redirect_uris),
            ("limits.max_uri_len", l.max_uri_len),
            ("limits.max_name_chars", l.max_name_chars),
            ("limits.max_scopes", l.max_scopes),
            ("limits.max_string_len", l.max_string_len),
        ] {
            if v == 0 {
                return Err(invalid(k, "must be greater than 0"));
            }
        }
        if l.max_body_bytes > 1024 * 1024 {
            return Err(invalid("limits.max_body_bytes", "at most 1 MiB"));
        }
        if self.rate_limit.flagged_divisor == 0 {
            return Err(invalid("rate_limit.flagged_divisor", "must be at least 1"));
        }
        if self.rate_limit.max_tracked_sources == 0 {
            return Err(invalid(
                "rate_limit.max_tracked_sources",
                "must be at least 1",
            ));
        }
        let lc = &self.lifecycle;
        if lc.idle_ttl_secs == 0 || lc.unconsented_ttl_secs == 0 || lc.sweep_interval_secs == 0 {
            return Err(invalid(
                "lifecycle",
                "TTLs and the sweep interval must be greater than 0",
            ));
        }
        if lc.unconsented_ttl_secs > lc.idle_ttl_secs {
            return Err(invalid(
                "lifecycle.unconsented_ttl_secs",
                "must not exceed lifecycle.idle_ttl_secs",
            ));
        }
        let p = &self.policy;
        if p.scopes_supported.is_empty() {
            return Err(invalid(
                "policy.scopes_supported",
                "must list at least one scope",
            ));
        }
        for s in p.scopes_supported.iter().chain(&p.default_scopes) {
            if !crate::text::is_scope_token(s) {
                return Err(invalid(
                    "policy.scopes_supported",
                    format!("{s:?} is not a valid scope token"),
                ));
            }
        }
        for s in &p.default_scopes {
            if !p.scopes_supported.contains(s) {
                return Err(invalid(
                    "policy.default_scopes",
                    format!("{s:?} is not in scopes_supported"),
                ));
            }
        }
        for s in &p.sensitive_scopes {
            if !p.scopes_supported.contains(s) {
                return Err(invalid(
                    "policy.sensitive_scopes",
                    format!("{s:?} is not in scopes_supported"),
                ));
            }
        }
        if p.initial_access_token != InitialAccessTokenMode::Off
            && p.initial_access_tokens.is_empty()
        {
            return Err(invalid(
                "policy.initial_access_tokens",
                "must hold at least one token when initial_access_token is not off",
            ));
        }
        if p.initial_access_tokens.iter().any(|t| t.len() < 16) {
            return Err(invalid(
                "policy.initial_access_tokens",
                "each token needs at least 16 characters",
            ));
        }
        let o = &self.oauth;
        if o.access_token_ttl_secs == 0 || o.code_ttl_secs == 0 || o.session_ttl_secs == 0 {
            return Err(invalid(
                "oauth",
                "token, code and session TTLs must be greater than 0",
            ));
        }
        for r in &o.resources {
            let u = url::Url::parse(r)
                .map_err(|e| invalid("oauth.resources", format!("{r:?}: {e}")))?;
            if u.fragment().is_some() {
                return Err(invalid(
                    "oauth.resources",
                    format!("{r:?} must not have a fragment (RFC 8707)"),
                ));
            }
        }
        for (tool, scope) in &o.tools {
            if !p.scopes_supported.contains(scope) {
                return Err(invalid(
                    "oauth.tools",
                    format!(
                        "tool {tool:?} needs {scope:?}, which is not in policy.scopes_supported"
                    ),
                ));
            }
        }
        if o.introspection_tokens.iter().any(|t| t.len() < 16) {
            return Err(invalid(
                "oauth.introspection_tokens",
                "each token needs at least 16 characters",
            ));
        }
        // A credential the bearer parser refuses could never be presented.
        if !o
            .introspection_tokens
            .iter()
            .all(|t| regwatch_checks::bearer::is_token(t))
        {
            return Err(invalid("oauth.introspection_tokens", BEARER_SYNTAX));
        }
        for u in &o.users {
            if u.username.is_empty() || !u.password_hash.starts_with("$argon2") {
                return Err(invalid(
                    "oauth.users",
                    format!(
                        "user {:?} needs a name and an argon2 password_hash",
                        u.username
                    ),
                ));
            }
        }
        self.cimd
            .fetch
            .validate()
            .map_err(|e| invalid("cimd", e.to_string()))?;
        if !self.admin_token.is_empty() && self.admin_token.len() < 16 {
            return Err(invalid("admin_token", "needs at least 16 characters"));
        }
        if !self.admin_token.is_empty() && !regwatch_checks::bearer::is_token(&self.admin_token) {
            return Err(invalid("admin_token", BEARER_SYNTAX));
        }
        Ok(())
    }

    pub fn lifecycle_idle_ttl(&self) -> Duration {
        Duration::from_secs(self.lifecycle.idle_ttl_secs)
    }

    /// The initial access tokens, hashed (what the server keeps in memory).
    pub fn initial_access_token_hashes(&self) -> Vec<secrets::TokenHash> {
        self.policy
            .initial_access_tokens
            .iter()
            .map(|t| secrets::hash_token(t))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> AuthzConfig {
        AuthzConfig {
            issuer: "http://127.0.0.1:8400".into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_validate_once_an_issuer_is_set() {
        valid().validate().unwrap();
        assert!(AuthzConfig::default().validate().is_err());
    }

    /// The issuer's loopback exception uses the shared host check: every
    /// spelling of a loopback address counts, names under localhost do not.
    #[test]
    fn http_issuer_only_on_a_loopback_host() {
        for (issuer, ok) in [
            ("http://localhost:8400", true),
            ("http://[::1]:8400", true),
            ("http://0x7f000001:8400", true),
            ("http://127.1:8400", true),
            ("http://app.localhost:8400", false),
            ("http://127.0.0.1.evil.example:8400", false),
        ] {
            let c = AuthzConfig {
                issuer: issuer.into(),
                ..Default::default()
            };
            assert_eq!(c.validate().is_ok(), ok, "{issuer}");
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        type Case = (fn(&mut AuthzConfig), &'static str);
        let cases: Vec<Case> = vec![
            (|c| c.issuer = "http://as.example.com".into(), "issuer"),
            (
                |c| c.issuer = "https://as.example.com/?x=1".into(),
                "issuer",
            ),
            (|c| c.database_url = "mysql://x".into(), "database_url"),
            (|c| c.limits.max_body_bytes = 0, "limits.max_body_bytes"),
            (
                |c| c.policy.default_scopes = vec!["admin".into()],
                "policy.default_scopes",
            ),
            (
                |c| c.policy.initial_access_token = InitialAccessTokenMode::Always,
                "policy.initial_access_tokens",
            ),
            (
                |c| c.lifecycle.unconsented_ttl_secs = u64::MAX,
                "lifecycle.unconsented_ttl_secs",
            ),
            (|c| c.admin_token = "short".into(), "admin_token"),
            (
                |c| c.admin_token = "correct horse battery staple".into(),
                "admin_token",
            ),
            (
                |c| c.oauth.introspection_tokens = vec!["resource server \"one\"".into()],
                "oauth.introspection_tokens",
            ),
        ];
        for (mutate, key) in cases {
            let mut c = valid();
            mutate(&mut c);
            match c.validate() {
                Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key),
                other => panic!("expected error on {key}, got {other:?}"),
            }
        }
    }
}
