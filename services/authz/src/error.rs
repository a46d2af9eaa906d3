//! The closed set of OAuth error codes this server answers with, and the
//! one table that maps them to HTTP.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// OAuth / RFC 7591 / RFC 6750 error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // RFC 7591 §3.2.2
    InvalidRedirectUri,
    InvalidClientMetadata,
    InvalidSoftwareStatement,
    UnapprovedSoftwareStatement,
    // RFC 6750 §3.1
    InvalidRequest,
    InvalidToken,
    InsufficientScope,
    // RFC 6749 §5.2 / §4.1.2.1
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    // RFC 8707
    InvalidTarget,
    // RFC 7009
    UnsupportedTokenType,
    // Not in an RFC: the request was refused by a rate limit (429).
    RateLimited,
    NotFound,
    ServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::InvalidSoftwareStatement => "invalid_software_statement",
            ErrorCode::UnapprovedSoftwareStatement => "unapproved_software_statement",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::InsufficientScope => "insufficient_scope",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NotFound => "not_found",
            ErrorCode::ServerError => "server_error",
        }
    }

    /// The status an error gets when the caller does not say otherwise.
    pub fn default_status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidToken | ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::InsufficientScope | ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An error answer: `{"error","error_description"}` plus the headers the
/// RFCs ask for. 5xx bodies say nothing about the cause; it is logged.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    pub status: StatusCode,
    /// `WWW-Authenticate` value for 401/403 bearer errors (RFC 6750 §3).
    pub www_authenticate: Option<String>,
    /// Seconds, for 429 and 503.
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            status: code.default_status(),
            www_authenticate: None,
            retry_after: None,
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// RFC 6750 bearer challenge. With no error code (the request had no
    /// credentials) the challenge carries only the realm.
    pub fn bearer_challenge(mut self, realm: &str, with_error: bool) -> Self {
        let v = if with_error {
            format!(
                "Bearer realm=\"{realm}\", error=\"{}\", error_description=\"{}\"",
                self.code.as_str(),
                self.description.replace(['"', '\\'], "'")
            )
        } else {
            format!("Bearer realm=\"{realm}\"")
        };
        self.www_authenticate = Some(v);
        self
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        OAuthError::new(ErrorCode::ServerError, "internal error")
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let desc = if self.status.is_server_error() {
            "internal error"
        } else {
            &self.description
        };
        let mut res = (
            self.status,
            axum::Json(Body {
                error: self.code.as_str(),
                error_description: desc,
            }),
        )
            .into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(w) = self
            .www_authenticate
            .and_then(|w| HeaderValue::from_str(&w).ok())
        {
            h.insert(header::WWW_AUTHENTICATE, w);
        }
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        OAuthError::internal(e)
    }
}
