//! The admin API: list, inspect, disable, enable and revoke clients
//! ([`crate::registry::admin`]); flag sources ([`crate::admission`]).
//! Bearer-protected by the configured admin token (compared as a hash, in
//! constant time).

use std::net::IpAddr;
use std::time::Instant;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{bearer, Ctx};
use crate::error::{ErrorCode, OAuthError};
use crate::registry::admin::{self, StatusChange};
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
    let rows = admin::list(&st, status, q.cursor.as_deref(), limit).await?;
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
    let (c, live_tokens) = admin::inspect(&st, &id).await?;
    let mut v = view(&c);
    v["live_tokens"] = live_tokens.into();
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

/// `POST /admin/clients/{id}/{disable|enable|revoke}`.
async fn client_action(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<ActionBody>>,
) -> Result<Response, OAuthError> {
    authorize(&st, &headers)?;
    let change = StatusChange::from_name(&action)
        .ok_or_else(|| OAuthError::new(ErrorCode::NotFound, "unknown action"))?;
    let b = body.map(|b| b.0).unwrap_or_default();
    let done = admin::change_status(&st, &ctx, &id, change, b.reason, b.requested_by).await?;
    Ok(Json(json!({
        "client_id": id,
        "status": done.status.as_str(),
        "changed": done.changed,
        "tokens_revoked": done.tokens_revoked,
    }))
    .into_response())
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
    let level = st.admission.flag(ip, Instant::now());
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
    st.admission.unflag(ip);
    Ok(Json(json!({"source": ip.to_string(), "flag_level": 0})).into_response())
}
