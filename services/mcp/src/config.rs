//! MCP-server configuration: one documented struct, the `[mcp]` table of
//! the configuration file (loaded by the `regwatch` command with the other
//! tables), validated at start with a message that names the bad key.

use std::fmt;

use serde::Deserialize;

/// The whole MCP-server configuration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// The URL of `/mcp` as clients see it (e.g. `https://mcp.example.com/mcp`).
    /// It is the RFC 9728 `resource`, the RFC 8707 `resource` sent to the
    /// introspection endpoint, and the audience every token must carry.
    /// https, or http on a loopback host for development.
    pub resource: String,
    /// The authorization server's issuer, published in the protected
    /// resource metadata (`authorization_servers`).
    pub issuer: String,
    /// The authorization server's RFC 7662 introspection endpoint. https, or
    /// http on a loopback host.
    pub introspection_endpoint: String,
    /// The shared credential this server presents to the introspection
    /// endpoint (`Authorization: Bearer …`). Never logged.
    pub introspection_token: String,
    /// Largest accepted `/mcp` request body, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// How long one introspection call may take before the request fails
    /// closed with 503, in milliseconds.
    pub introspection_timeout_ms: u64,
    /// The `Retry-After` value, in seconds, sent with a 503 when the
    /// introspection endpoint cannot be reached.
    pub retry_after_secs: u64,
    /// Scopes listed in the protected resource metadata (`scopes_supported`).
    /// Which scope a tool needs is decided by the authorization server.
    pub scopes_supported: Vec<String>,
    /// The `scope` a 401 challenge asks clients to request. MCP clients
    /// (SDK 1.32, SEP-835) request exactly this, so it is what an ordinary
    /// session needs: read and write. Destructive tools need a step-up.
    pub challenge_scope: String,
    /// `Host` values (`host` or `host:port`) the streamable HTTP transport
    /// accepts (DNS-rebinding protection). Empty: the host of `resource`,
    /// with and without its port.
    pub allowed_hosts: Vec<String>,
}

// Written by hand so that `{:?}` never prints the introspection credential.
impl fmt::Debug for McpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("McpConfig")
            .field("resource", &self.resource)
            .field("issuer", &self.issuer)
            .field("introspection_endpoint", &self.introspection_endpoint)
            .field("introspection_token", &"<redacted>")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("introspection_timeout_ms", &self.introspection_timeout_ms)
            .field("retry_after_secs", &self.retry_after_secs)
            .field("challenge_scope", &self.challenge_scope)
            .field("scopes_supported", &self.scopes_supported)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

impl Default for McpConfig {
    fn default() -> Self {
        McpConfig {
            resource: String::new(),
            issuer: String::new(),
            introspection_endpoint: String::new(),
            introspection_token: String::new(),
            max_body_bytes: 1024 * 1024,
            introspection_timeout_ms: 5_000,
            retry_after_secs: 5,
            challenge_scope: "mcp:read mcp:write".into(),
            scopes_supported: ["mcp:read", "mcp:write", "mcp:delete"]
                .map(String::from)
                .to_vec(),
            allowed_hosts: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config key `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// Largest `max_body_bytes` accepted: JSON-RPC messages are small.
const MAX_BODY_LIMIT: usize = 16 * 1024 * 1024;

impl McpConfig {
    /// Check every value; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let resource = parse_url("resource", &self.resource)?;
        if resource.query().is_some() {
            return Err(invalid("resource", "must have no query (RFC 8707 §2)"));
        }
        if resource.path().ends_with('/') {
            return Err(invalid(
                "resource",
                "must not end with '/' (it is the URL of /mcp)",
            ));
        }
        parse_url("issuer", &self.issuer)?;
        parse_url("introspection_endpoint", &self.introspection_endpoint)?;
        if self.introspection_token.len() < 16 {
            return Err(invalid(
                "introspection_token",
                "needs at least 16 characters",
            ));
        }
        // Sent as a bearer token: the authorization server parses it with
        // the same `regwatch_checks::bearer` rules.
        if !regwatch_checks::bearer::is_token(&self.introspection_token) {
            return Err(invalid(
                "introspection_token",
                "must be a bearer token (RFC 6750: letters, digits, - . _ ~ + /, optional trailing =)",
            ));
        }
        if self.max_body_bytes == 0 || self.max_body_bytes > MAX_BODY_LIMIT {
            return Err(invalid("max_body_bytes", "must be between 1 and 16 MiB"));
        }
        if self.introspection_timeout_ms == 0 || self.introspection_timeout_ms > 60_000 {
            return Err(invalid(
                "introspection_timeout_ms",
                "must be between 1 and 60000",
            ));
        }
        if self.retry_after_secs == 0 || self.retry_after_secs > 3600 {
            return Err(invalid("retry_after_secs", "must be between 1 and 3600"));
        }
        if self.scopes_supported.is_empty() {
            return Err(invalid("scopes_supported", "must list at least one scope"));
        }
        if let Some(s) = self.scopes_supported.iter().find(|s| !is_scope_token(s)) {
            return Err(invalid(
                "scopes_supported",
                format!("{s:?} is not a valid scope token"),
            ));
        }
        if let Some(h) = self
            .allowed_hosts
            .iter()
            .find(|h| h.is_empty() || h.contains(['/', ' ']))
        {
            return Err(invalid(
                "allowed_hosts",
                format!("{h:?} is not a host or host:port"),
            ));
        }
        Ok(())
    }

    /// The `Host` values the transport accepts: `allowed_hosts`, or the host
    /// of `resource` with and without its port.
    pub fn effective_allowed_hosts(&self) -> Vec<String> {
        if !self.allowed_hosts.is_empty() {
            return self.allowed_hosts.clone();
        }
        let Ok(url) = url::Url::parse(&self.resource) else {
            return Vec::new();
        };
        let Some(host) = url.host_str() else {
            return Vec::new();
        };
        let mut hosts = vec![host.to_string()];
        if let Some(port) = url.port() {
            hosts.push(format!("{host}:{port}"));
        }
        hosts
    }
}

/// An absolute http(s) URL without fragment or userinfo; http only on a
/// loopback host.
fn parse_url(key: &'static str, value: &str) -> Result<url::Url, ConfigError> {
    if value.is_empty() {
        return Err(invalid(key, "must be set"));
    }
    let url = url::Url::parse(value).map_err(|e| invalid(key, e.to_string()))?;
    if url.fragment().is_some() {
        return Err(invalid(key, "must have no fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(key, "must have no userinfo"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http"
            if url
                .host()
                .is_some_and(|h| regwatch_checks::addr::is_loopback_host(&h)) =>
        {
            Ok(url)
        }
        _ => Err(invalid(key, "must be https (http only on a loopback host)")),
    }
}

/// RFC 6749 §3.3 scope-token: `%x21 / %x23-5B / %x5D-7E`, at least one.
pub(crate) fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> McpConfig {
        McpConfig {
            resource: "http://127.0.0.1:8500/mcp".into(),
            issuer: "http://127.0.0.1:8400".into(),
            introspection_endpoint: "http://127.0.0.1:8400/introspect".into(),
            introspection_token: "0123456789abcdef".into(),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_validate_once_the_urls_and_credential_are_set() {
        valid().validate().unwrap();
        assert!(McpConfig::default().validate().is_err());
    }

    /// Plain http is allowed on a loopback host in any spelling the URL
    /// parser reads as one (`regwatch_checks::addr`).
    #[test]
    fn http_urls_on_any_loopback_spelling() {
        let mut c = valid();
        c.issuer = "http://0x7f000001:8400".into();
        c.introspection_endpoint = "http://[::ffff:7f00:1]:8400/introspect".into();
        c.validate().unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        type Mutate = fn(&mut McpConfig);
        let cases: Vec<(Mutate, &str)> = vec![
            (|c| c.resource = String::new(), "resource"),
            (
                |c| c.resource = "http://mcp.example.com/mcp".into(),
                "resource",
            ),
            (
                |c| c.resource = "https://mcp.example.com/mcp?x=1".into(),
                "resource",
            ),
            (
                |c| c.resource = "https://mcp.example.com/mcp#f".into(),
                "resource",
            ),
            (
                |c| c.resource = "https://mcp.example.com/mcp/".into(),
                "resource",
            ),
            (|c| c.issuer = "ftp://as.example.com".into(), "issuer"),
            (
                |c| c.introspection_endpoint = "not a url".into(),
                "introspection_endpoint",
            ),
            (
                |c| c.introspection_endpoint = "https://u:p@as.example.com/i".into(),
                "introspection_endpoint",
            ),
            (
                |c| c.introspection_token = "short".into(),
                "introspection_token",
            ),
            (
                |c| c.introspection_token = "0123456789abcdef\n".into(),
                "introspection_token",
            ),
            (
                |c| c.introspection_token = "0123456789\"abcdef".into(),
                "introspection_token",
            ),
            (|c| c.issuer = "http://app.localhost:8400".into(), "issuer"),
            (|c| c.max_body_bytes = 0, "max_body_bytes"),
            (
                |c| c.introspection_timeout_ms = 0,
                "introspection_timeout_ms",
            ),
            (|c| c.retry_after_secs = 0, "retry_after_secs"),
            (
                |c| c.scopes_supported = vec!["mcp read".into()],
                "scopes_supported",
            ),
            (|c| c.allowed_hosts = vec!["a/b".into()], "allowed_hosts"),
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

    #[test]
    fn debug_output_redacts_the_introspection_credential() {
        let shown = format!("{:?}", valid());
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn allowed_hosts_default_to_the_resource_host() {
        assert_eq!(
            valid().effective_allowed_hosts(),
            vec!["127.0.0.1", "127.0.0.1:8500"]
        );
        let c = McpConfig {
            allowed_hosts: vec!["mcp.internal".into()],
            ..valid()
        };
        assert_eq!(c.effective_allowed_hosts(), vec!["mcp.internal"]);
    }
}
