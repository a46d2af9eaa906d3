//! The token endpoint as a core: the authorization code grant with PKCE
//! and the refresh grant with rotation and reuse detection. Each grant is
//! a sequence of named checks; a spent code or refresh token presented
//! again revokes everything its grant bought.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use regwatch_schemas::{Actor, EventPayload, TokenIssued, TokenKind, TokenRefreshed};
use sha2::{Digest, Sha256};

use super::clients::{self, ClientCredentials};
use super::revoke::revoke_family;
use crate::admission::Admission;
use crate::error::{ErrorCode, OAuthError};
use crate::events::{self, RequestCtx};
use crate::secrets;
use crate::store::{ClientRow, CodeRow, TokenRow, TokenState};
use crate::text::scope_tokens;
use crate::AppState;

/// The grant parameters of a token request (RFC 6749 §4.1.3, §6).
#[derive(Debug, Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
}

/// Tokens just issued, in clear (sent once).
pub struct Granted {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub scope: String,
    pub expires_in: u64,
}

fn err(code: ErrorCode, d: impl Into<String>) -> OAuthError {
    OAuthError::new(code, d)
}

fn verifier_ok(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Fresh access (and maybe refresh) tokens for a grant.
struct Minted {
    access: String,
    refresh: Option<String>,
    rows: Vec<TokenRow>,
    access_id: String,
}

/// What a grant is for: who, which scopes, which resource, which family.
struct Grant<'a> {
    user: &'a str,
    scopes: &'a str,
    resource: &'a str,
    family: &'a str,
}

fn mint(
    st: &AppState,
    client: &ClientRow,
    g: &Grant<'_>,
    refresh_expires_at: Option<i64>,
    now_ms: i64,
) -> Minted {
    let row = |token_hash: String, token_id: String, kind: &str, expires_at| TokenRow {
        token_hash,
        token_id,
        kind: kind.into(),
        client_id: client.client_id.clone(),
        user_id: Some(g.user.to_string()),
        family_id: Some(g.family.to_string()),
        scopes: g.scopes.to_string(),
        resource: g.resource.to_string(),
        issued_at: now_ms,
        expires_at,
    };
    let access = secrets::new_token("rwt_");
    let ah = secrets::hash_token(&access);
    let access_id = ah.public_id();
    let access_exp = now_ms + (st.cfg.oauth.access_token_ttl_secs as i64) * 1000;
    let mut rows = vec![row(ah.0, access_id.clone(), "access_token", access_exp)];
    let refresh = refresh_expires_at.map(|exp| {
        let r = secrets::new_token("rwf_");
        let h = secrets::hash_token(&r);
        let id = h.public_id();
        rows.push(row(h.0, id, "refresh_token", exp));
        r
    });
    Minted {
        access,
        refresh,
        rows,
        access_id,
    }
}

/// How long a refresh token issued now may live, if at all. Unverified
/// clients get a shorter one, or none.
fn refresh_lifetime(st: &AppState, client: &ClientRow) -> Option<i64> {
    if !client
        .metadata
        .grant_types
        .iter()
        .any(|g| g == "refresh_token")
    {
        return None;
    }
    let o = &st.cfg.oauth;
    let ttl = if o.verified_clients.contains(&client.client_id) {
        o.refresh_token_ttl_secs
    } else {
        o.unverified_refresh_token_ttl_secs
    };
    (ttl > 0).then_some(ttl as i64 * 1000)
}

/// A spent code or refresh token was presented again: someone holds a
/// copy. Revoke what the grant bought and answer `invalid_grant`.
async fn replayed(
    st: &AppState,
    ctx: &RequestCtx,
    client_id: &str,
    family: &str,
    kind: TokenKind,
) -> OAuthError {
    let (reason, msg) = match kind {
        TokenKind::AuthorizationCode => ("code_replay", "authorization code already used"),
        _ => (
            "refresh_reuse",
            "refresh token already used; the grant is revoked",
        ),
    };
    revoke_family(st, ctx, client_id, family, kind, reason).await;
    err(ErrorCode::InvalidGrant, msg)
}

fn granted(st: &AppState, m: Minted, scope: String) -> Granted {
    Granted {
        access_token: m.access,
        refresh_token: m.refresh,
        scope,
        expires_in: st.cfg.oauth.access_token_ttl_secs,
    }
}

/// `POST /token`: admit the source, authenticate the client, run the grant.
pub async fn exchange(
    st: &AppState,
    ctx: &RequestCtx,
    credentials: Option<ClientCredentials>,
    req: TokenRequest,
) -> Result<Granted, OAuthError> {
    if let Admission::Limited {
        retry_after_secs, ..
    } = st.admission.admit(ctx.ip, std::time::Instant::now())
    {
        let mut e = err(ErrorCode::RateLimited, "too many requests");
        e.retry_after = Some(retry_after_secs);
        return Err(e);
    }
    let client = clients::authenticate(st, ctx, credentials, "token").await?;
    let now = Utc::now();
    match req.grant_type.as_deref() {
        Some("authorization_code") => code_grant(st, ctx, &client, &req, now).await,
        Some("refresh_token") => refresh_grant(st, ctx, &client, &req, now).await,
        Some(_) => Err(err(
            ErrorCode::UnsupportedGrantType,
            "grant_type must be authorization_code or refresh_token",
        )),
        None => Err(err(ErrorCode::InvalidRequest, "grant_type is required")),
    }
}

/// The authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.6).
async fn code_grant(
    st: &AppState,
    ctx: &RequestCtx,
    client: &ClientRow,
    req: &TokenRequest,
    now: DateTime<Utc>,
) -> Result<Granted, OAuthError> {
    let now_ms = now.timestamp_millis();
    let code = req
        .code
        .as_deref()
        .ok_or_else(|| err(ErrorCode::InvalidRequest, "code is required"))?;
    let hash = secrets::hash_token(code).0;
    let row = st
        .store
        .get_code(&hash)
        .await?
        .ok_or_else(|| err(ErrorCode::InvalidGrant, "unknown authorization code"))?;
    let replay = || {
        let kind = TokenKind::AuthorizationCode;
        replayed(st, ctx, &client.client_id, &row.family_id, kind)
    };
    if row.client_id != client.client_id {
        return Err(err(
            ErrorCode::InvalidGrant,
            "the code was issued to another client",
        ));
    }
    if row.used_at.is_some() {
        // A replayed code: revoke what it already bought (RFC 6749 §4.1.2).
        return Err(replay().await);
    }
    if row.expires_at <= now_ms {
        return Err(err(ErrorCode::InvalidGrant, "authorization code expired"));
    }
    if req.redirect_uri.as_deref() != Some(row.redirect_uri.as_str()) {
        return Err(err(
            ErrorCode::InvalidGrant,
            "redirect_uri does not match the authorization request",
        ));
    }
    check_pkce(&row, req.code_verifier.as_deref())?;
    if req.resource.as_ref().is_some_and(|r| r != &row.resource) {
        return Err(err(
            ErrorCode::InvalidTarget,
            "resource differs from the authorization request",
        ));
    }
    let grant = Grant {
        user: &row.user_id,
        scopes: &row.scopes,
        resource: &row.resource,
        family: &row.family_id,
    };
    let refresh_exp = refresh_lifetime(st, client).map(|ttl| now_ms + ttl);
    let m = mint(st, client, &grant, refresh_exp, now_ms);
    let payload = EventPayload::TokenIssued(TokenIssued {
        grant_type: "authorization_code".into(),
        scopes: scope_tokens(&row.scopes).map(String::from).collect(),
        resource: row.resource.clone(),
        token_id: m.access_id.clone(),
        family_id: Some(row.family_id.clone()),
        user_id: Some(row.user_id.clone()),
        refresh_token_issued: m.refresh.is_some(),
        expires_in: st.cfg.oauth.access_token_ttl_secs,
    });
    let ev = client_event(st, ctx, client, payload, now);
    if !st.store.redeem_code(&hash, now_ms, &m.rows, &ev).await? {
        return Err(replay().await);
    }
    Ok(granted(st, m, row.scopes.clone()))
}

/// PKCE: the code had a challenge, so a verifier is required (no downgrade).
fn check_pkce(row: &CodeRow, verifier: Option<&str>) -> Result<(), OAuthError> {
    let verifier = verifier.ok_or_else(|| {
        err(
            ErrorCode::InvalidRequest,
            "code_verifier is required (PKCE)",
        )
    })?;
    if !verifier_ok(verifier) {
        return Err(err(
            ErrorCode::InvalidRequest,
            "code_verifier must be 43-128 characters of [A-Za-z0-9-._~]",
        ));
    }
    let computed = s256(verifier);
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        computed.as_bytes(),
        row.code_challenge.as_bytes(),
    )) {
        return Err(err(
            ErrorCode::InvalidGrant,
            "code_verifier does not match the code_challenge",
        ));
    }
    Ok(())
}

/// The refresh grant (RFC 6749 §6) with rotation: the presented token is
/// spent, a new one issued; the family keeps its absolute lifetime.
async fn refresh_grant(
    st: &AppState,
    ctx: &RequestCtx,
    client: &ClientRow,
    req: &TokenRequest,
    now: DateTime<Utc>,
) -> Result<Granted, OAuthError> {
    let now_ms = now.timestamp_millis();
    let presented = req
        .refresh_token
        .as_deref()
        .ok_or_else(|| err(ErrorCode::InvalidRequest, "refresh_token is required"))?;
    let hash = secrets::hash_token(presented).0;
    let t = st
        .store
        .get_token(&hash)
        .await?
        .ok_or_else(|| err(ErrorCode::InvalidGrant, "unknown refresh token"))?;
    if t.row.kind != "refresh_token" || t.row.client_id != client.client_id {
        return Err(err(ErrorCode::InvalidGrant, "unknown refresh token"));
    }
    let family = t.row.family_id.clone().unwrap_or_default();
    let replay = || replayed(st, ctx, &client.client_id, &family, TokenKind::RefreshToken);
    if t.used_at.is_some() {
        // Reuse of a rotated refresh token: someone holds a copy. Kill the family.
        return Err(replay().await);
    }
    if t.revoked_at.is_some() || t.row.expires_at <= now_ms {
        return Err(err(
            ErrorCode::InvalidGrant,
            "refresh token is no longer valid",
        ));
    }
    if req.resource.as_ref().is_some_and(|r| r != &t.row.resource) {
        return Err(err(
            ErrorCode::InvalidTarget,
            "resource differs from the grant",
        ));
    }
    let scopes = narrowed_scopes(&t, req.scope.as_deref())?;
    let user = t.row.user_id.clone().unwrap_or_default();
    let grant = Grant {
        user: &user,
        scopes: &scopes,
        resource: &t.row.resource,
        family: &family,
    };
    // The family keeps its absolute lifetime across rotations.
    let m = mint(st, client, &grant, Some(t.row.expires_at), now_ms);
    let payload = EventPayload::TokenRefreshed(TokenRefreshed {
        family_id: family.clone(),
        token_id: m.access_id.clone(),
        scopes: scope_tokens(&scopes).map(String::from).collect(),
        resource: t.row.resource.clone(),
        expires_in: st.cfg.oauth.access_token_ttl_secs,
    });
    let ev = client_event(st, ctx, client, payload, now);
    if !st.store.rotate_refresh(&hash, now_ms, &m.rows, &ev).await? {
        return Err(replay().await);
    }
    Ok(granted(st, m, scopes))
}

/// The scopes of a refresh: those asked for, each within the grant, or
/// the whole grant when none are asked for.
fn narrowed_scopes(t: &TokenState, asked: Option<&str>) -> Result<String, OAuthError> {
    let granted: Vec<&str> = scope_tokens(&t.row.scopes).collect();
    match asked.filter(|s| !s.trim().is_empty()) {
        Some(s) => {
            let asked: Vec<&str> = scope_tokens(s).collect();
            if let Some(bad) = asked.iter().find(|a| !granted.contains(a)) {
                return Err(err(
                    ErrorCode::InvalidScope,
                    format!("scope {bad:?} exceeds the grant"),
                ));
            }
            Ok(asked.join(" "))
        }
        None => Ok(granted.join(" ")),
    }
}

/// An event about `client`, by `client`.
fn client_event(
    st: &AppState,
    ctx: &RequestCtx,
    client: &ClientRow,
    payload: EventPayload,
    now: DateTime<Utc>,
) -> regwatch_schemas::Envelope {
    events::event(
        &st.issuer,
        Some(&client.client_id),
        Actor::client(&client.client_id),
        payload,
        ctx,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(verifier_ok("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"));
        assert!(!verifier_ok("too-short"));
        assert!(!verifier_ok(&"a".repeat(129)));
        assert!(!verifier_ok(&format!("{}+", "a".repeat(50))));
    }
}
