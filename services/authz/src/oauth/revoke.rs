//! Token revocation: RFC 7009 by the client, and a whole grant (family)
//! when a spent code or refresh token is replayed.

use chrono::Utc;
use regwatch_schemas::{Actor, EventPayload, TokenKind, TokenRevoked};

use super::clients::{self, ClientCredentials};
use crate::error::{ErrorCode, OAuthError};
use crate::events::{self, RequestCtx};
use crate::secrets;
use crate::AppState;

/// Revoke every token of a grant, with one `token.revoked` event.
/// Failures are logged: the caller answers the same either way.
pub(crate) async fn revoke_family(
    st: &AppState,
    ctx: &RequestCtx,
    client_id: &str,
    family: &str,
    kind: TokenKind,
    reason: &str,
) {
    let now = Utc::now();
    let res = st
        .store
        .revoke_family(family, now.timestamp_millis(), |n| {
            let payload = EventPayload::TokenRevoked(TokenRevoked {
                token_kind: kind,
                reason: reason.into(),
                family_id: Some(family.into()),
                token_id: None,
                count: n,
            });
            events::event(
                &st.issuer,
                Some(client_id),
                Actor::system("authz"),
                payload,
                ctx,
                now,
            )
        })
        .await;
    match res {
        Ok(n) => {
            tracing::warn!(client_id = %client_id, reason, revoked = n, "token family revoked")
        }
        Err(e) => tracing::error!(error = %e, "could not revoke a token family"),
    }
}

/// `POST /revoke` (RFC 7009): succeeds whatever the token was. A refresh
/// token takes its whole grant with it; an access token goes alone.
pub async fn revoke(
    st: &AppState,
    ctx: &RequestCtx,
    credentials: Option<ClientCredentials>,
    token: Option<&str>,
    token_type_hint: Option<&str>,
) -> Result<(), OAuthError> {
    let client = clients::authenticate(st, ctx, credentials, "revoke").await?;
    if let Some(h) = token_type_hint {
        if h != "access_token" && h != "refresh_token" {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedTokenType,
                "token_type_hint must be access_token or refresh_token",
            ));
        }
    }
    let Some(token) = token else {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "token is required",
        ));
    };
    let hash = secrets::hash_token(token).0;
    // Another client's token, or none: change nothing.
    let Some(t) = st
        .store
        .get_token(&hash)
        .await?
        .filter(|t| t.row.client_id == client.client_id && t.revoked_at.is_none())
    else {
        return Ok(());
    };
    if t.row.kind == "refresh_token" {
        let family = t.row.family_id.as_deref().unwrap_or("");
        let kind = TokenKind::RefreshToken;
        revoke_family(st, ctx, &client.client_id, family, kind, "rfc7009").await;
        return Ok(());
    }
    let now = Utc::now();
    let payload = EventPayload::TokenRevoked(TokenRevoked {
        token_kind: TokenKind::AccessToken,
        reason: "rfc7009".into(),
        family_id: t.row.family_id.clone(),
        token_id: Some(t.row.token_id.clone()),
        count: 1,
    });
    let ev = events::event(
        &st.issuer,
        Some(&client.client_id),
        Actor::client(&client.client_id),
        payload,
        ctx,
        now,
    );
    st.store
        .revoke_one(&hash, now.timestamp_millis(), &ev)
        .await?;
    Ok(())
}
