//! The axum routes: RFC 9728 metadata, and `/mcp` behind the bearer check.
//!
//! Order of checks on `/mcp`: bearer token present (401) → body bounded
//! (413) and readable as JSON-RPC (400) → one introspection, or one per
//! `tools/call` asking about that tool (401 / 403 / 503) → rmcp. rmcp gets
//! the buffered body unchanged, without the `Authorization` header (the
//! token is never passed through) and with the introspected [`Caller`] in
//! the request extensions. A legacy MCP session is usable only by the
//! client and user that opened it ([`crate::sessions`]).

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use regwatch_checks::bearer::{self, BearerError};
use tower::ServiceExt;

use crate::config::is_scope_token;
use crate::error::{McpError, Rejection};
use crate::introspection::{judge, Caller, Verdict};
use crate::{jsonrpc, McpState};

/// The streamable HTTP session header (protocol versions before 2026-07-28).
const SESSION_HEADER: &str = "mcp-session-id";

/// The protected resource metadata path prefix (RFC 9728 §3).
pub const METADATA_PREFIX: &str = "/.well-known/oauth-protected-resource";

pub fn router(state: McpState) -> Router {
    let mut r = Router::new()
        .route(METADATA_PREFIX, get(metadata))
        .route(&format!("{METADATA_PREFIX}/mcp"), get(metadata));
    // Behind a proxy the resource path may differ from `/mcp`; serve the
    // metadata where RFC 9728 §3.1 puts it for that path too.
    let path = state.resource_path();
    if path != "/mcp" && path != "/" && !path.is_empty() {
        r = r.route(&format!("{METADATA_PREFIX}{path}"), get(metadata));
    }
    r.route("/mcp", any(mcp)).with_state(state)
}

async fn metadata(State(st): State<McpState>) -> Response {
    let mut resp = Json(st.metadata.as_ref().clone()).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    resp
}

async fn mcp(State(st): State<McpState>, req: Request) -> Response {
    let session = req
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (req, caller) = match authorize(&st, req).await {
        Ok(req) => req,
        Err(error) => return refuse(&st, error),
    };
    if let Some(sid) = &session {
        if !st.sessions.owned_by(sid, &caller) {
            tracing::warn!(client_id = %caller.client_id, "mcp session not opened by this client");
            return refuse(&st, McpError::UnknownSession);
        }
    }
    let is_delete = req.method() == Method::DELETE;
    let resp = match st.mcp.clone().oneshot(req).await {
        Ok(resp) => resp.map(Body::new),
        Err(never) => match never {},
    };
    match (
        &session,
        resp.headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok()),
    ) {
        (None, Some(opened)) => st.sessions.bind(opened, &caller),
        (Some(sid), _) if is_delete && resp.status().is_success() => st.sessions.unbind(sid),
        _ => {}
    }
    resp
}

fn refuse(st: &McpState, error: McpError) -> Response {
    if error.status().is_server_error() {
        tracing::warn!(error = %error, "mcp request refused: authorization server unusable");
    } else {
        tracing::info!(status = error.status().as_u16(), error = %error, "mcp request refused");
    }
    Rejection {
        error,
        ctx: st.challenge.clone(),
    }
    .into_response()
}

/// Check the request; on success return it rebuilt for rmcp, and the caller.
async fn authorize(st: &McpState, req: Request) -> Result<(Request, Caller), McpError> {
    let (mut parts, body) = req.into_parts();
    let token = bearer_token(&parts.headers)?.to_owned();
    let (body, calls) = if parts.method == Method::POST {
        let bytes = read_body(&parts.headers, body, st.cfg.max_body_bytes).await?;
        let calls = jsonrpc::tool_calls(&bytes).map_err(|e| McpError::BadRequest(e.to_string()))?;
        (Body::from(bytes), calls)
    } else {
        (body, Vec::new())
    };
    let caller = if calls.is_empty() {
        check(st, &token, None).await?
    } else {
        // Every call is asked about (and audited by the authorization
        // server), and one refusal refuses the whole body.
        let mut caller = None;
        for name in &calls {
            caller = Some(check(st, &token, Some(name)).await?);
        }
        caller.ok_or(McpError::Contract("no tool decision"))?
    };
    tracing::debug!(client_id = %caller.client_id, tools = ?calls, "mcp request allowed");
    parts.headers.remove(header::AUTHORIZATION);
    parts.extensions.insert(caller.clone());
    Ok((Request::from_parts(parts, body), caller))
}

/// Introspect `token` (asking about `tool` when given) and judge the answer.
async fn check(st: &McpState, token: &str, tool: Option<&str>) -> Result<Caller, McpError> {
    let answer = st
        .introspection
        .introspect(token, tool)
        .await
        .map_err(McpError::Unavailable)?;
    match judge(&answer, &st.cfg.resource, tool, unix_now()) {
        Verdict::Allowed(caller) => Ok(caller),
        Verdict::InvalidToken(reason) => Err(McpError::InvalidToken(reason)),
        Verdict::ToolDenied { required_scope } => {
            if let Some(client_id) = &answer.client_id {
                tracing::info!(client_id = %client_id, tool = tool.unwrap_or(""), "tool call outside the grant");
            }
            Err(McpError::InsufficientScope {
                tool: tool.unwrap_or_default().to_owned(),
                // It goes into a header: only a well-formed scope is repeated.
                scope: required_scope.filter(|s| s.split(' ').all(is_scope_token)),
            })
        }
        Verdict::Contract(reason) => Err(McpError::Contract(reason)),
    }
}

/// The bearer token of the one `Authorization` header (RFC 6750 §2.1,
/// parsed by `regwatch_checks::bearer`; at most `MAX_TOKEN_LEN` bytes are
/// ever sent on to the authorization server).
fn bearer_token(headers: &HeaderMap) -> Result<&str, McpError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(McpError::MissingToken);
    };
    if values.next().is_some() {
        return Err(McpError::BadRequest(
            "more than one Authorization header".into(),
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| McpError::InvalidToken("malformed Authorization header"))?;
    bearer::parse(value).map_err(|e| match e {
        // Credentials of another scheme are no bearer credentials at all.
        BearerError::NotBearer => McpError::MissingToken,
        BearerError::Malformed => McpError::InvalidToken("malformed bearer token"),
    })
}

/// The whole body, at most `limit` bytes.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, McpError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(McpError::PayloadTooLarge { limit });
    }
    match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)).await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(McpError::PayloadTooLarge { limit })
        }
        Err(_) => Err(McpError::BadRequest(
            "the request body could not be read".into(),
        )),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_of(value: Option<&str>) -> Result<String, &'static str> {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        bearer_token(&h).map(str::to_owned).map_err(|e| e.code())
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        assert_eq!(
            token_of(Some("Bearer abc.DEF-_~+/==")),
            Ok("abc.DEF-_~+/==".into())
        );
        assert_eq!(token_of(Some("bearer abc")), Ok("abc".into()));
        assert_eq!(token_of(None), Err("unauthorized"));
        assert_eq!(token_of(Some("Basic dXNlcjpwYXNz")), Err("unauthorized"));
        assert_eq!(token_of(Some("Bearer")), Err("invalid_token"));
        assert_eq!(token_of(Some("Bearer ")), Err("invalid_token"));
        assert_eq!(token_of(Some("Bearer a b")), Err("invalid_token"));
        assert_eq!(token_of(Some("Bearer a\"b")), Err("invalid_token"));
        assert_eq!(
            token_of(Some(&format!(
                "Bearer {}",
                "a".repeat(bearer::MAX_TOKEN_LEN + 1)
            ))),
            Err("invalid_token")
        );
    }

    #[test]
    fn two_authorization_headers_are_refused() {
        let mut h = HeaderMap::new();
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer a"));
        h.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert_eq!(
            bearer_token(&h).map_err(|e| e.code()),
            Err("invalid_request")
        );
    }
}
