//! The closed set of reasons a CIMD `client_id` is refused.

use std::net::IpAddr;

/// Why a Client ID Metadata Document could not be used.
///
/// Each variant is one refusal reason. [`CimdError::reason_code`] gives a
/// stable snake_case code for audit events; [`CimdError::oauth_error`] gives
/// the OAuth error code the authorization server sends back.
///
/// # OAuth error mapping
///
/// Every fetch or document failure maps to `invalid_client`: the client
/// could not be identified, whatever the cause (bad URL, SSRF refusal,
/// network failure, bad document). At the token endpoint that is the RFC 6749
/// §5.2 error as is. At the authorization endpoint the AS must not redirect
/// to an unverified `redirect_uri` (RFC 6749 §4.1.2.1): it shows the error
/// to the user instead. Only [`CimdError::Config`], a fault of our own
/// deployment, maps to `server_error`.
///
/// The `Display` text is for logs. It may contain the fetched URL or an
/// address, so do not echo it in `error_description` to untrusted callers
/// without thought; `reason_code` is the safe thing to return.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CimdError {
    /// The `client_id` is not an acceptable CIMD URL.
    #[error("invalid client_id url: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },

    /// The host is, or resolved to, an address we never fetch from
    /// (RFC 6890 special-use, private, loopback without the dev flag, ...).
    #[error("refusing to connect to forbidden address {addr}")]
    ForbiddenAddress {
        /// The first forbidden address seen.
        addr: IpAddr,
    },

    /// Name resolution failed or returned no address.
    #[error("dns resolution failed for {host}: {message}")]
    Dns {
        /// The name we tried to resolve.
        host: String,
        /// The resolver's message.
        message: String,
    },

    /// The TCP or TLS connection could not be established.
    #[error("connection failed: {message}")]
    Connect {
        /// The transport's message.
        message: String,
    },

    /// The total or connect timeout elapsed.
    #[error("timed out fetching the client metadata document")]
    Timeout,

    /// The server answered with a redirect; CIMD fetches never follow one.
    #[error("redirect refused (HTTP {status})")]
    Redirect {
        /// The 3xx status.
        status: u16,
    },

    /// The server answered with a status other than 200.
    #[error("unexpected HTTP status {status}")]
    HttpStatus {
        /// The status received.
        status: u16,
    },

    /// The body is larger than the configured cap (declared or actual).
    #[error("document exceeds {limit} bytes")]
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },

    /// The `Content-Type` is missing or not JSON.
    #[error("content type is not json: {content_type:?}")]
    NotJson {
        /// The content type received, if any (truncated).
        content_type: Option<String>,
    },

    /// The body is not valid JSON, or not a JSON object.
    #[error("document is not valid json: {reason}")]
    InvalidJson {
        /// The parser's message.
        reason: String,
    },

    /// The document misses a required field or has a malformed one.
    #[error("invalid client metadata document: {reason}")]
    InvalidDocument {
        /// Which field and why.
        reason: String,
    },

    /// The document's `client_id` is not exactly the URL it was fetched from.
    #[error("client_id in the document ({found:?}) does not match the url ({expected:?})")]
    ClientIdMismatch {
        /// The URL we fetched (the presented `client_id`).
        expected: String,
        /// The `client_id` the document claims (truncated).
        found: String,
    },

    /// The document carries a shared secret or private key material, which
    /// CIMD forbids (`client_secret`, `client_secret_expires_at`, private
    /// or symmetric members of a JWK).
    #[error("document contains secret material in {field}")]
    SharedSecret {
        /// The offending member.
        field: String,
    },

    /// `token_endpoint_auth_method` is not `none` or `private_key_jwt`.
    #[error("token_endpoint_auth_method {method:?} is not allowed for cimd clients")]
    ForbiddenAuthMethod {
        /// The method the document asks for (truncated).
        method: String,
    },

    /// Any other transport failure while sending or reading the response.
    #[error("http error: {message}")]
    Http {
        /// The transport's message.
        message: String,
    },

    /// Our own configuration is invalid (raised by `CimdFetcher::new`).
    #[error("invalid cimd configuration: {reason}")]
    Config {
        /// Which key and why.
        reason: String,
    },
}

impl CimdError {
    /// Stable snake_case code for audit events and metrics. Never changes
    /// for an existing variant.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. } => "invalid_url",
            Self::ForbiddenAddress { .. } => "forbidden_address",
            Self::Dns { .. } => "dns_failure",
            Self::Connect { .. } => "connect_failed",
            Self::Timeout => "timeout",
            Self::Redirect { .. } => "redirect_refused",
            Self::HttpStatus { .. } => "http_status",
            Self::TooLarge { .. } => "too_large",
            Self::NotJson { .. } => "not_json",
            Self::InvalidJson { .. } => "invalid_json",
            Self::InvalidDocument { .. } => "invalid_document",
            Self::ClientIdMismatch { .. } => "client_id_mismatch",
            Self::SharedSecret { .. } => "shared_secret",
            Self::ForbiddenAuthMethod { .. } => "forbidden_auth_method",
            Self::Http { .. } => "http_error",
            Self::Config { .. } => "invalid_config",
        }
    }

    /// The OAuth error code the authorization server sends for this
    /// refusal: `invalid_client` for every fetch or document failure,
    /// `server_error` for our own misconfiguration. See the type docs.
    pub fn oauth_error(&self) -> &'static str {
        match self {
            Self::Config { .. } => "server_error",
            _ => "invalid_client",
        }
    }

    pub(crate) fn invalid_url(reason: impl Into<String>) -> Self {
        Self::InvalidUrl {
            reason: reason.into(),
        }
    }

    pub(crate) fn invalid_document(reason: impl Into<String>) -> Self {
        Self::InvalidDocument {
            reason: reason.into(),
        }
    }
}

/// Cut untrusted text to at most `max` characters for error messages.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((idx, _)) => format!("{}...", &s[..idx]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_distinct_snake_case() {
        let all = [
            CimdError::invalid_url("x"),
            CimdError::ForbiddenAddress {
                addr: IpAddr::from([10, 0, 0, 1]),
            },
            CimdError::Dns {
                host: "h".into(),
                message: "m".into(),
            },
            CimdError::Connect {
                message: "m".into(),
            },
            CimdError::Timeout,
            CimdError::Redirect { status: 302 },
            CimdError::HttpStatus { status: 500 },
            CimdError::TooLarge { limit: 5120 },
            CimdError::NotJson { content_type: None },
            CimdError::InvalidJson { reason: "r".into() },
            CimdError::invalid_document("r"),
            CimdError::ClientIdMismatch {
                expected: "a".into(),
                found: "b".into(),
            },
            CimdError::SharedSecret {
                field: "client_secret".into(),
            },
            CimdError::ForbiddenAuthMethod {
                method: "client_secret_basic".into(),
            },
            CimdError::Http {
                message: "m".into(),
            },
            CimdError::Config { reason: "r".into() },
        ];
        let mut codes: Vec<&str> = all.iter().map(CimdError::reason_code).collect();
        for code in &codes {
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        for e in &all {
            let expected = if matches!(e, CimdError::Config { .. }) {
                "server_error"
            } else {
                "invalid_client"
            };
            assert_eq!(e.oauth_error(), expected, "{e}");
        }
    }

    #[test]
    fn truncate_is_char_safe() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc...");
        assert_eq!(truncate("ééé", 2), "éé...");
    }
}
