//! The closed set of refusals `/mcp` answers with before rmcp sees a
//! request, and the one table that maps them to HTTP.

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::introspection::IntrospectionError;

/// Why a request to `/mcp` was refused.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// No `Authorization: Bearer` header (RFC 6750 §3.1: no error code).
    #[error("no bearer token")]
    MissingToken,
    /// A token was sent but is malformed, inactive, expired, or for another
    /// resource. The reason never includes the token.
    #[error("{0}")]
    InvalidToken(&'static str),
    #[error("tool {tool} needs {}", scope.as_deref().unwrap_or("a scope the token lacks"))]
    InsufficientScope { tool: String, scope: Option<String> },
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    BadRequest(String),
    /// The `Mcp-Session-Id` is unknown here or was opened by another
    /// client or user; both answer the same.
    #[error("session not found")]
    UnknownSession,
    /// The introspection endpoint could not be asked: fail closed.
    #[error("authorization server unavailable: {0}")]
    Unavailable(#[source] IntrospectionError),
    /// The introspection answer broke the contract: fail closed.
    #[error("authorization server answer unusable: {0}")]
    Contract(&'static str),
}

impl McpError {
    pub fn status(&self) -> StatusCode {
        match self {
            McpError::MissingToken | McpError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            McpError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            McpError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            McpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            McpError::UnknownSession => StatusCode::NOT_FOUND,
            McpError::Unavailable(_) | McpError::Contract(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The OAuth error code of the JSON body.
    pub fn code(&self) -> &'static str {
        match self {
            McpError::MissingToken => "unauthorized",
            McpError::InvalidToken(_) => "invalid_token",
            McpError::InsufficientScope { .. } => "insufficient_scope",
            McpError::PayloadTooLarge { .. } => "payload_too_large",
            McpError::BadRequest(_) => "invalid_request",
            McpError::UnknownSession => "not_found",
            McpError::Unavailable(_) | McpError::Contract(_) => "temporarily_unavailable",
        }
    }
}

/// What a challenge needs from the server's configuration.
#[derive(Debug)]
pub struct ChallengeContext {
    /// The RFC 9728 metadata URL for `resource_metadata`.
    pub resource_metadata: String,
    pub retry_after_secs: u64,
    /// The `scope` of the 401 challenge (`McpConfig::challenge_scope`).
    pub challenge_scope: String,
}

/// An [`McpError`] ready to answer: the error plus the server's challenge
/// context. 5xx bodies say nothing about the cause; the caller logs it.
#[derive(Debug)]
pub struct Rejection {
    pub error: McpError,
    pub ctx: Arc<ChallengeContext>,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = self.error.status();
        let code = self.error.code();
        let description = self.error.to_string();
        let meta = &self.ctx.resource_metadata;
        let challenge = match &self.error {
            McpError::MissingToken => Some(format!("Bearer resource_metadata=\"{meta}\", scope=\"{}\"", self.ctx.challenge_scope)),
            McpError::InvalidToken(_) => Some(format!(
                "Bearer error=\"invalid_token\", resource_metadata=\"{meta}\", scope=\"{}\", error_description=\"{}\"",
                self.ctx.challenge_scope,
                quoted(&description)
            )),
            McpError::InsufficientScope { scope, .. } => {
                let scope = scope.as_deref().map(|s| format!(", scope=\"{s}\"")).unwrap_or_default();
                Some(format!(
                    "Bearer error=\"insufficient_scope\"{scope}, resource_metadata=\"{meta}\", error_description=\"{}\"",
                    quoted(&description)
                ))
            }
            _ => None,
        };
        let body = if status.is_server_error() {
            json!({ "error": code })
        } else {
            json!({ "error": code, "error_description": description })
        };
        let mut resp = (status, Json(body)).into_response();
        if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(self.ctx.retry_after_secs),
            );
        }
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

/// Make text safe inside an RFC 9110 quoted-string: visible ASCII and space
/// only, no `"` or `\`, bounded. Tool names come from the client.
fn quoted(s: &str) -> String {
    s.chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_strings_cannot_be_broken_out_of() {
        assert_eq!(quoted("tool a\"b\\c\r\né"), "tool a?b?c???");
        assert_eq!(quoted(&"x".repeat(500)).len(), 200);
    }

    #[test]
    fn statuses_follow_the_table() {
        let cases = [
            (McpError::MissingToken, 401),
            (McpError::InvalidToken("x"), 401),
            (
                McpError::InsufficientScope {
                    tool: "t".into(),
                    scope: None,
                },
                403,
            ),
            (McpError::PayloadTooLarge { limit: 1 }, 413),
            (McpError::BadRequest("x".into()), 400),
            (McpError::UnknownSession, 404),
            (McpError::Contract("x"), 503),
        ];
        for (e, status) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
        }
    }
}
