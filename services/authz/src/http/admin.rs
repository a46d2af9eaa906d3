//! The admin API: list, inspect, disable, enable and revoke clients; flag
//! sources. Bearer-protected by the configured admin token (compared as a
//! hash, in constant time). Revocation is idempotent, so the response
//! capability can retry it safely.

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use regwatch_schemas::{Actor, ClientDisabled, ClientRevoked, EventPayload};
use serde::Deserialize;
use serde_json::json;

use super::{bearer, Ctx};
use crate::error::{ErrorCode, OAuthError};
use crate::events;
use crate::secrets;
use crate::store::{ClientRow, ClientStatus};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/clients", get(list))
        .route("/admin/clients/{client_id}", get(inspect))
        .route("/admin/clients/{client_id}/{action}", post(client_action))
        .route(
            "/admin/sources/{ip}/flag",
            post(flag_source).delete(unflag_source),
        )
}

fn authorize(st: &AppState, headers: &HeaderMap) -> Result<(), OAuthError> {
    let Some(expected) = &st.admin_hash else {
        return Err(OAuthError::new(
            ErrorCode::NotFound,
            "the admin API is disabled",
        ));
    };
    match bearer(headers) {
        Some(t) if secrets::hash_token(t).ct_eq(expected) => Ok(()),
        Some(_) => Err(
            OAuthError::new(ErrorCode::InvalidToken, "invalid admin token")
                .bearer_challenge("regwatch-admin", true),
        ),
        None => Err(
            OAuthError::new(ErrorCode::InvalidToken, "admin token required")
                .bearer_challenge("regwatch-admin", false),
        ),
    }
}

fn view(c: &ClientRow) -> serde_json::Value {
    json!({
        "client_id": c.client_id,
        "status": c.status.as_str(),
        "registration_method": c.registration_method,
        "metadata": c.metadata,
        "confidential": c.secret_hash.is_some(),
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "last_seen_at": c.last_seen_at,
        "consented_at": c.consented_at,
        "source_ip": c.source_ip,
        "version": c.version,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

async fn list(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, OAuthError> {
    authorize(&st, &headers)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(ClientStatus::parse(s).ok_or_else(|| {
            OAuthError::new(ErrorCode::InvalidRequest, format!("unknown status {s:?}"))
        })?),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = st
        .store
        .list_clients(status, q.cursor.as_deref(), limit)
        .await?;
    let next = (rows.len() == limit as usize)
        .then(|| rows.last().map(|c| c.client_id.clone()))
        .flatten();
    Ok(
        Json(json!({"clients": rows.iter().map(view).collect::<Vec<_>>(), "next_cursor": next}))
            .into_response(),
    )
}

async fn inspect(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, OAuthError> {
    authorize(&st, &headers)?;
    let c = st
        .store
        .get_client(&id)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::NotFound, "no such client"))?;
    let mut v = view(&c);
    v["live_tokens"] = st
        .store
        .live_tokens(&id, Utc::now().timestamp_millis())
        .await?
        .into();
    Ok(Json(v).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    #[serde(default)]
    reason: Option<String>,
    /// Who asked: `admin_api` (default) or the response capability's name.
    #[serde(default)]
    requested_by: Option<String>,
}

fn clip(s: Option<String>, default: &str) -> String {
    crate::policy::truncate_for_display(s.as_deref().unwrap_or(default), 500)
}

/// Apply a transition; answers the client's state and whether it changed.
async fn act(
    st: &AppState,
    ctx: &events::RequestCtx,
    id: &str,
    from: &[ClientStatus],
    to: ClientStatus,
    kill_tokens: bool,
    make: impl FnOnce(u64) -> EventPayload,
) -> Result<Response, OAuthError> {
    let now = Utc::now();
    let res = st
        .store
        .transition(id, from, to, kill_tokens, now.timestamp_millis(), |n| {
            events::event(
                &st.issuer,
                Some(id),
                Actor::admin("admin_api"),
                make(n),
                ctx,
                now,
            )
        })
        .await?;
    let c = st
        .store
        .get_client(id)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::NotFound, "no such client"))?;
    let (changed, tokens) = match res {
        Some((n, _)) => (true, n),
        None if c.status == to => (false, 0),
        None => {
            return Err(OAuthError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "client is {} and cannot become {}",
                    c.status.as_str(),
                    to.as_str()
                ),
            )
            .with_status(StatusCode::CONFLICT))
        }
    };
    tracing::info!(client_id = %id, to = to.as_str(), changed, "admin client action");
    Ok(Json(json!({"client_id": id, "status": c.status.as_str(), "changed": changed, "tokens_revoked": tokens})).into_response())
}

/// The three client actions the admin API offers.
#[derive(Clone, Copy)]
enum Action {
    Disable,
    Enable,
    Revoke,
}

impl Action {
    fn from_path(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => Action::Disable,
            "enable" => Action::Enable,
            "revoke" => Action::Revoke,
            _ => return None,
        })
    }
}

/// `POST /admin/clients/{id}/{disable|enable|revoke}`.
async fn client_action(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<ActionBody>>,
) -> Result<Response, OAuthError> {
    authorize(&st, &headers)?;
    let action = Action::from_path(&action)
        .ok_or_else(|| OAuthError::new(ErrorCode::NotFound, "unknown action"))?;
    let b = body.map(|b| b.0).unwrap_or_default();
    let by = clip(b.requested_by, "admin_api");
    use ClientStatus::*;
    let (from, to, kill, default_reason): (&[ClientStatus], _, _, _) = match action {
        Action::Disable => (&[Active], Disabled, false, "disabled by an administrator"),
        Action::Enable => (&[Disabled], Active, false, "enabled by an administrator"),
        Action::Revoke => (
            &[Active, Disabled],
            Revoked,
            true,
            "revoked by an administrator",
        ),
    };
    let reason = clip(b.reason, default_reason);
    act(&st, &ctx, &id, from, to, kill, |n| match action {
        Action::Revoke => EventPayload::ClientRevoked(ClientRevoked {
            reason,
            requested_by: by,
            tokens_revoked: n,
        }),
        Action::Disable | Action::Enable => EventPayload::ClientDisabled(ClientDisabled {
            reason,
            requested_by: by,
            disabled: matches!(action, Action::Disable),
        }),
    })
    .await
}

fn parse_ip(s: &str) -> Result<IpAddr, OAuthError> {
    s.parse()
        .map_err(|_| OAuthError::new(ErrorCode::InvalidRequest, "not an IP address"))
}

async fn flag_source(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(ip): Path<String>,
) -> Result<Response, OAuthError> {
    authorize(&st, &headers)?;
    let ip = parse_ip(&ip)?;
    let level = st.sources.flag(ip, Instant::now());
    tracing::info!(source = %ip, level, "source flagged");
    Ok(Json(json!({"source": ip.to_string(), "flag_level": level})).into_response())
}

async fn unflag_source(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(ip): Path<String>,
) -> Result<Response, OAuthError> {
    authorize(&st, &headers)?;
    let ip = parse_ip(&ip)?;
    st.sources.unflag(ip);
    Ok(Json(json!({"source": ip.to_string(), "flag_level": 0})).into_response())
}
