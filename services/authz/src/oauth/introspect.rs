//! RFC 7662 introspection for resource servers holding an introspection
//! credential, with the per-tool question: given `tool`, whether the
//! token's scopes allow that MCP tool, recorded as `tool.called`.

use chrono::{DateTime, Utc};
use regwatch_schemas::{Actor, Envelope, EventPayload, ToolCalled, ToolDecision};

use crate::error::{ErrorCode, OAuthError};
use crate::events::{self, RequestCtx};
use crate::secrets;
use crate::store::{ClientStatus, TokenState};
use crate::text::{scope_tokens, truncate_for_display};
use crate::AppState;

/// The realm of the introspection credential's bearer challenge.
const REALM: &str = "regwatch-introspection";

/// An introspection request.
pub struct IntrospectRequest<'a> {
    /// The resource server's credential (`Authorization: Bearer`).
    pub credential: Option<&'a str>,
    pub token: Option<&'a str>,
    /// Extension: the MCP tool about to be called.
    pub tool: Option<&'a str>,
    pub resource: Option<&'a str>,
}

/// An active access token, as RFC 7662 describes it.
pub struct Active {
    pub client_id: String,
    pub scope: String,
    pub sub: Option<String>,
    pub aud: String,
    /// Seconds since the epoch.
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub tool: Option<ToolAnswer>,
}

/// The answer to the per-tool question.
pub struct ToolAnswer {
    pub name: String,
    pub allowed: bool,
    pub required_scope: Option<String>,
}

/// `Ok(None)`: the token is not active (unknown, revoked, expired, not an
/// access token, or its client is not active).
pub async fn introspect(
    st: &AppState,
    ctx: &RequestCtx,
    req: IntrospectRequest<'_>,
) -> Result<Option<Active>, OAuthError> {
    let authorized = req
        .credential
        .is_some_and(|t| secrets::matches_any(t, &st.introspection_hashes));
    if !authorized {
        return Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "a resource-server credential is required",
        )
        .bearer_challenge(REALM, req.credential.is_some()));
    }
    let Some(token) = req.token else {
        return Ok(None);
    };
    let t = match st.store.get_token(&secrets::hash_token(token).0).await? {
        Some(t) if t.row.kind == "access_token" => t,
        _ => return Ok(None),
    };
    let now = Utc::now();
    let now_ms = now.timestamp_millis();
    let tool = req.tool.map(|s| truncate_for_display(s, 128));
    let resource = req
        .resource
        .map(String::from)
        .unwrap_or_else(|| t.row.resource.clone());
    let tool_event = |decision, scope, why| {
        tool.as_ref()
            .map(|name| tool_called(st, ctx, &t, name, &resource, decision, scope, why, now))
    };
    if let Some(why) = inactive_reason(st, &t, now_ms).await? {
        if let Some(ev) = tool_event(ToolDecision::Denied, None, Some(why)) {
            if let Err(e) = st.store.record_event(&ev).await {
                tracing::error!(error = %e, "could not record a tool call");
            }
        }
        return Ok(None);
    }
    let mut answer = Active {
        client_id: t.row.client_id.clone(),
        scope: t.row.scopes.clone(),
        sub: t.row.user_id.clone(),
        aud: t.row.resource.clone(),
        exp: t.row.expires_at / 1000,
        iat: t.row.issued_at / 1000,
        iss: st.cfg.issuer.clone(),
        tool: None,
    };
    if let Some(name) = &tool {
        let (a, decision, why) = tool_question(st, &t, name, req.resource);
        if let Some(ev) = tool_event(decision, a.required_scope.clone(), why) {
            st.store.record_event(&ev).await?;
        }
        answer.tool = Some(a);
    }
    if let Err(e) = st.store.touch(&t.row.client_id, now_ms).await {
        tracing::warn!(error = %e, "could not slide the idle TTL");
    }
    Ok(Some(answer))
}

/// Why the token is not active, checked in order: its client, revocation,
/// expiry.
async fn inactive_reason(
    st: &AppState,
    t: &TokenState,
    now_ms: i64,
) -> Result<Option<String>, OAuthError> {
    let client = st.store.get_client(&t.row.client_id).await?;
    let client_active = client
        .as_ref()
        .is_some_and(|c| c.status == ClientStatus::Active);
    Ok(if !client_active {
        Some(format!(
            "client_{}",
            client
                .as_ref()
                .map(|c| c.status.as_str())
                .unwrap_or("unknown")
        ))
    } else if t.revoked_at.is_some() {
        Some("token_revoked".to_string())
    } else if t.row.expires_at <= now_ms {
        Some("token_expired".to_string())
    } else {
        None
    })
}

/// Whether the token may call `tool`: the audience (when the resource
/// server names itself) and the scope the tool needs.
fn tool_question(
    st: &AppState,
    t: &TokenState,
    name: &str,
    resource: Option<&str>,
) -> (ToolAnswer, ToolDecision, Option<String>) {
    let scopes: Vec<&str> = scope_tokens(&t.row.scopes).collect();
    let needed = st.cfg.oauth.tools.get(name).cloned();
    let audience_ok = resource.is_none_or(|r| r == t.row.resource);
    let allowed = audience_ok && needed.as_deref().is_some_and(|s| scopes.contains(&s));
    let why = if !audience_ok {
        Some("wrong_audience".to_string())
    } else if needed.is_none() {
        Some("unknown_tool".to_string())
    } else if !allowed {
        Some("insufficient_scope".to_string())
    } else {
        None
    };
    let decision = if allowed {
        ToolDecision::Allowed
    } else {
        ToolDecision::Denied
    };
    let answer = ToolAnswer {
        name: name.to_string(),
        allowed,
        required_scope: needed,
    };
    (answer, decision, why)
}

#[allow(clippy::too_many_arguments)]
fn tool_called(
    st: &AppState,
    ctx: &RequestCtx,
    t: &TokenState,
    tool: &str,
    resource: &str,
    decision: ToolDecision,
    deciding_scope: Option<String>,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Envelope {
    let payload = EventPayload::ToolCalled(ToolCalled {
        tool: tool.to_string(),
        decision,
        deciding_scope,
        resource: resource.to_string(),
        user_id: t.row.user_id.clone(),
        reason,
    });
    events::event(
        &st.issuer,
        Some(&t.row.client_id),
        Actor::client(&t.row.client_id),
        payload,
        ctx,
        now,
    )
}
