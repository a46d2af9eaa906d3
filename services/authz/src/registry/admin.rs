//! What an administrator (or the response capability) does to a client:
//! disable, enable, revoke. Revocation is idempotent, so it can be retried
//! safely. Also the read-only views the admin API serves.

use chrono::Utc;
use regwatch_schemas::{Actor, ClientDisabled, ClientRevoked, EventPayload};

use crate::error::{ErrorCode, OAuthError};
use crate::events::{self, RequestCtx};
use crate::store::{ClientRow, ClientStatus};
use crate::text::truncate_for_display;
use crate::AppState;

/// The client actions the admin API offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    Disable,
    Enable,
    Revoke,
}

impl StatusChange {
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => StatusChange::Disable,
            "enable" => StatusChange::Enable,
            "revoke" => StatusChange::Revoke,
            _ => return None,
        })
    }
}

/// Where a client stands after a status change.
#[derive(Debug, Clone, Copy)]
pub struct StatusChanged {
    pub status: ClientStatus,
    /// False when the client already had the target status.
    pub changed: bool,
    pub tokens_revoked: u64,
}

fn clip(s: Option<String>, default: &str) -> String {
    truncate_for_display(s.as_deref().unwrap_or(default), 500)
}

/// Apply `change` to client `id`, with its event in the same transaction.
pub async fn change_status(
    st: &AppState,
    ctx: &RequestCtx,
    id: &str,
    change: StatusChange,
    reason: Option<String>,
    requested_by: Option<String>,
) -> Result<StatusChanged, OAuthError> {
    let by = clip(requested_by, "admin_api");
    use ClientStatus::*;
    let (from, to, kill_tokens, default_reason): (&[ClientStatus], _, _, _) = match change {
        StatusChange::Disable => (&[Active], Disabled, false, "disabled by an administrator"),
        StatusChange::Enable => (&[Disabled], Active, false, "enabled by an administrator"),
        StatusChange::Revoke => (
            &[Active, Disabled],
            Revoked,
            true,
            "revoked by an administrator",
        ),
    };
    let reason = clip(reason, default_reason);
    let payload = |n| match change {
        StatusChange::Revoke => EventPayload::ClientRevoked(ClientRevoked {
            reason,
            requested_by: by,
            tokens_revoked: n,
        }),
        StatusChange::Disable | StatusChange::Enable => {
            EventPayload::ClientDisabled(ClientDisabled {
                reason,
                requested_by: by,
                disabled: change == StatusChange::Disable,
            })
        }
    };
    let now = Utc::now();
    let res = st
        .store
        .transition(id, from, to, kill_tokens, now.timestamp_millis(), |n| {
            events::event(
                &st.issuer,
                Some(id),
                Actor::admin("admin_api"),
                payload(n),
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
    let (changed, tokens_revoked) = match res {
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
            .with_status(axum::http::StatusCode::CONFLICT))
        }
    };
    tracing::info!(client_id = %id, to = to.as_str(), changed, "admin client action");
    Ok(StatusChanged {
        status: c.status,
        changed,
        tokens_revoked,
    })
}

/// A page of clients, optionally of one status, after `cursor`.
pub async fn list(
    st: &AppState,
    status: Option<ClientStatus>,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Vec<ClientRow>, OAuthError> {
    Ok(st.store.list_clients(status, cursor, limit).await?)
}

/// One client and how many of its tokens are live.
pub async fn inspect(st: &AppState, id: &str) -> Result<(ClientRow, i64), OAuthError> {
    let c = st
        .store
        .get_client(id)
        .await?
        .ok_or_else(|| OAuthError::new(ErrorCode::NotFound, "no such client"))?;
    let live = st
        .store
        .live_tokens(id, Utc::now().timestamp_millis())
        .await?;
    Ok((c, live))
}
