//! The token endpoint (authorization code with PKCE, refresh with rotation
//! and reuse detection), RFC 7009 revocation and RFC 7662 introspection
//! with the per-tool question.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::Utc;
use regwatch_schemas::{
    Actor, EventPayload, TokenIssued, TokenKind, TokenRefreshed, TokenRevoked, ToolCalled,
    ToolDecision,
};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::clients::{self, ClientError};
use crate::error::{ErrorCode, OAuthError};
use crate::events::{self, RequestCtx};
use crate::http::{bearer, Ctx};
use crate::secrets;
use crate::store::{ClientRow, ClientStatus, TokenRow};
use crate::AppState;

#[derive(Deserialize, Default)]
pub struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    refresh_token: Option<String>,
    resource: Option<String>,
    scope: Option<String>,
}

fn err(code: ErrorCode, d: impl Into<String>) -> OAuthError {
    OAuthError::new(code, d)
}

/// Client authentication at the token and revocation endpoints:
/// `client_secret_basic`, `client_secret_post`, or `none` (public).
async fn authenticate_client(
    st: &AppState,
    ctx: &RequestCtx,
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
    endpoint: &str,
) -> Result<ClientRow, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let (id, secret, used_basic) = match (&basic, form_id) {
        (Some((id, sec)), _) => {
            let id = url::form_urlencoded::parse(format!("a={id}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let sec = url::form_urlencoded::parse(format!("a={sec}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            (id, Some(sec), true)
        }
        (None, Some(id)) => (id.to_string(), form_secret.map(String::from), false),
        (None, None) => {
            return Err(err(
                ErrorCode::InvalidClient,
                "client authentication required",
            ))
        }
    };
    let unauthorized = |d: &str| {
        let e = err(ErrorCode::InvalidClient, d);
        if used_basic {
            let mut e = e;
            e.www_authenticate = Some("Basic realm=\"regwatch\"".into());
            e
        } else {
            e
        }
    };
    let client = match clients::resolve(st, ctx, &id, endpoint).await {
        Ok(c) => c,
        Err(ClientError::Store(e)) => return Err(e),
        Err(e) => return Err(unauthorized(&e.to_oauth().description)),
    };
    match (&client.secret_hash, secret) {
        (Some(h), Some(s)) if secrets::hash_token(&s).ct_eq(&secrets::TokenHash(h.clone())) => {
            Ok(client)
        }
        (Some(_), _) => Err(unauthorized("client authentication failed")),
        (None, None) => Ok(client),
        (None, Some(_)) => Err(unauthorized("this client is public and has no secret")),
    }
}

fn token_response(body: serde_json::Value) -> Response {
    let mut r = (StatusCode::OK, Json(body)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
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

#[allow(clippy::too_many_arguments)]
fn mint(
    st: &AppState,
    client: &ClientRow,
    user: &str,
    scopes: &str,
    resource: &str,
    family: &str,
    refresh_expires_at: Option<i64>,
    now_ms: i64,
) -> Minted {
    let access = secrets::new_token("rwt_");
    let ah = secrets::hash_token(&access);
    let access_id = ah.public_id();
    let mut rows = vec![TokenRow {
        token_hash: ah.0,
        token_id: access_id.clone(),
        kind: "access_token".into(),
        client_id: client.client_id.clone(),
        user_id: Some(user.to_string()),
        family_id: Some(family.to_string()),
        scopes: scopes.to_string(),
        resource: resource.to_string(),
        issued_at: now_ms,
        expires_at: now_ms + (st.cfg.oauth.access_token_ttl_secs as i64) * 1000,
    }];
    let refresh = refresh_expires_at.map(|exp| {
        let r = secrets::new_token("rwf_");
        let h = secrets::hash_token(&r);
        rows.push(TokenRow {
            token_id: h.public_id(),
            token_hash: h.0,
            kind: "refresh_token".into(),
            client_id: client.client_id.clone(),
            user_id: Some(user.to_string()),
            family_id: Some(family.to_string()),
            scopes: scopes.to_string(),
            resource: resource.to_string(),
            issued_at: now_ms,
            expires_at: exp,
        });
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

async fn revoke_family(
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

/// The token response for freshly minted tokens.
fn grant_response(st: &AppState, m: Minted, scopes: &str) -> Response {
    let mut body = json!({"access_token": m.access, "token_type": "Bearer", "expires_in": st.cfg.oauth.access_token_ttl_secs, "scope": scopes});
    if let Some(r) = m.refresh {
        body["refresh_token"] = r.into();
    }
    token_response(body)
}

/// `POST /token`.
pub async fn token(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    match token_inner(&st, &ctx, &headers, f).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn token_inner(
    st: &AppState,
    ctx: &RequestCtx,
    headers: &HeaderMap,
    f: TokenForm,
) -> Result<Response, OAuthError> {
    if let crate::sources::Admission::Limited {
        retry_after_secs, ..
    } = st.sources.admit(ctx.ip, std::time::Instant::now())
    {
        let mut e = err(ErrorCode::RateLimited, "too many requests");
        e.retry_after = Some(retry_after_secs);
        return Err(e);
    }
    let client = authenticate_client(
        st,
        ctx,
        headers,
        f.client_id.as_deref(),
        f.client_secret.as_deref(),
        "token",
    )
    .await?;
    let now = Utc::now();
    let now_ms = now.timestamp_millis();
    match f.grant_type.as_deref() {
        Some("authorization_code") => {
            let code = f
                .code
                .as_deref()
                .ok_or_else(|| err(ErrorCode::InvalidRequest, "code is required"))?;
            let hash = secrets::hash_token(code).0;
            let row = st
                .store
                .get_code(&hash)
                .await?
                .ok_or_else(|| err(ErrorCode::InvalidGrant, "unknown authorization code"))?;
            if row.client_id != client.client_id {
                return Err(err(
                    ErrorCode::InvalidGrant,
                    "the code was issued to another client",
                ));
            }
            if row.used_at.is_some() {
                // A replayed code: revoke what it already bought (RFC 6749 §4.1.2).
                return Err(replayed(
                    st,
                    ctx,
                    &client.client_id,
                    &row.family_id,
                    TokenKind::AuthorizationCode,
                )
                .await);
            }
            if row.expires_at <= now_ms {
                return Err(err(ErrorCode::InvalidGrant, "authorization code expired"));
            }
            if f.redirect_uri.as_deref() != Some(row.redirect_uri.as_str()) {
                return Err(err(
                    ErrorCode::InvalidGrant,
                    "redirect_uri does not match the authorization request",
                ));
            }
            // PKCE: the code had a challenge, so a verifier is required (no downgrade).
            let verifier = f.code_verifier.as_deref().ok_or_else(|| {
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
            if let Some(r) = &f.resource {
                if r != &row.resource {
                    return Err(err(
                        ErrorCode::InvalidTarget,
                        "resource differs from the authorization request",
                    ));
                }
            }
            let refresh_exp = refresh_lifetime(st, &client).map(|ttl| now_ms + ttl);
            let m = mint(
                st,
                &client,
                &row.user_id,
                &row.scopes,
                &row.resource,
                &row.family_id,
                refresh_exp,
                now_ms,
            );
            let payload = EventPayload::TokenIssued(TokenIssued {
                grant_type: "authorization_code".into(),
                scopes: row
                    .scopes
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                resource: row.resource.clone(),
                token_id: m.access_id.clone(),
                family_id: Some(row.family_id.clone()),
                user_id: Some(row.user_id.clone()),
                refresh_token_issued: m.refresh.is_some(),
                expires_in: st.cfg.oauth.access_token_ttl_secs,
            });
            let ev = events::event(
                &st.issuer,
                Some(&client.client_id),
                Actor::client(&client.client_id),
                payload,
                ctx,
                now,
            );
            if !st.store.redeem_code(&hash, now_ms, &m.rows, &ev).await? {
                return Err(replayed(
                    st,
                    ctx,
                    &client.client_id,
                    &row.family_id,
                    TokenKind::AuthorizationCode,
                )
                .await);
            }
            Ok(grant_response(st, m, &row.scopes))
        }
        Some("refresh_token") => {
            let presented = f
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
            if t.used_at.is_some() {
                // Reuse of a rotated refresh token: someone holds a copy. Kill the family.
                return Err(
                    replayed(st, ctx, &client.client_id, &family, TokenKind::RefreshToken).await,
                );
            }
            if t.revoked_at.is_some() || t.row.expires_at <= now_ms {
                return Err(err(
                    ErrorCode::InvalidGrant,
                    "refresh token is no longer valid",
                ));
            }
            if let Some(r) = &f.resource {
                if r != &t.row.resource {
                    return Err(err(
                        ErrorCode::InvalidTarget,
                        "resource differs from the grant",
                    ));
                }
            }
            let granted: Vec<&str> = t.row.scopes.split(' ').filter(|s| !s.is_empty()).collect();
            let scopes = match f.scope.as_deref().filter(|s| !s.trim().is_empty()) {
                Some(s) => {
                    let asked: Vec<&str> = s.split(' ').filter(|x| !x.is_empty()).collect();
                    if let Some(bad) = asked.iter().find(|a| !granted.contains(a)) {
                        return Err(err(
                            ErrorCode::InvalidScope,
                            format!("scope {bad:?} exceeds the grant"),
                        ));
                    }
                    asked.join(" ")
                }
                None => granted.join(" "),
            };
            let user = t.row.user_id.clone().unwrap_or_default();
            // The family keeps its absolute lifetime across rotations.
            let m = mint(
                st,
                &client,
                &user,
                &scopes,
                &t.row.resource,
                &family,
                Some(t.row.expires_at),
                now_ms,
            );
            let payload = EventPayload::TokenRefreshed(TokenRefreshed {
                family_id: family.clone(),
                token_id: m.access_id.clone(),
                scopes: scopes
                    .split(' ')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                resource: t.row.resource.clone(),
                expires_in: st.cfg.oauth.access_token_ttl_secs,
            });
            let ev = events::event(
                &st.issuer,
                Some(&client.client_id),
                Actor::client(&client.client_id),
                payload,
                ctx,
                now,
            );
            if !st.store.rotate_refresh(&hash, now_ms, &m.rows, &ev).await? {
                return Err(
                    replayed(st, ctx, &client.client_id, &family, TokenKind::RefreshToken).await,
                );
            }
            Ok(grant_response(st, m, &scopes))
        }
        Some(_) => Err(err(
            ErrorCode::UnsupportedGrantType,
            "grant_type must be authorization_code or refresh_token",
        )),
        None => Err(err(ErrorCode::InvalidRequest, "grant_type is required")),
    }
}

#[derive(Deserialize)]
pub struct RevokeForm {
    token: Option<String>,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// `POST /revoke` (RFC 7009): 200 whatever the token was.
pub async fn revoke(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<RevokeForm>,
) -> Response {
    let client = match authenticate_client(
        &st,
        &ctx,
        &headers,
        f.client_id.as_deref(),
        f.client_secret.as_deref(),
        "revoke",
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if let Some(h) = f.token_type_hint.as_deref() {
        if h != "access_token" && h != "refresh_token" {
            return err(
                ErrorCode::UnsupportedTokenType,
                "token_type_hint must be access_token or refresh_token",
            )
            .into_response();
        }
    }
    let Some(token) = f.token.as_deref() else {
        return err(ErrorCode::InvalidRequest, "token is required").into_response();
    };
    let hash = secrets::hash_token(token).0;
    let t = match st.store.get_token(&hash).await {
        Ok(t) => t,
        Err(e) => return OAuthError::from(e).into_response(),
    };
    // Another client's token, or none: answer 200 and change nothing.
    let Some(t) = t.filter(|t| t.row.client_id == client.client_id && t.revoked_at.is_none())
    else {
        return StatusCode::OK.into_response();
    };
    let now = Utc::now();
    if t.row.kind == "refresh_token" {
        revoke_family(
            &st,
            &ctx,
            &client.client_id,
            t.row.family_id.as_deref().unwrap_or(""),
            TokenKind::RefreshToken,
            "rfc7009",
        )
        .await;
    } else {
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
            &ctx,
            now,
        );
        if let Err(e) = st
            .store
            .revoke_one(&hash, now.timestamp_millis(), &ev)
            .await
        {
            return OAuthError::from(e).into_response();
        }
    }
    StatusCode::OK.into_response()
}

#[derive(Deserialize)]
pub struct IntrospectForm {
    token: Option<String>,
    /// Extension: the MCP tool about to be called.
    tool: Option<String>,
    resource: Option<String>,
}

/// `POST /introspect` (RFC 7662), for resource servers holding an
/// introspection credential. With `tool`, it also answers whether the
/// token's scopes allow that tool, and records `tool.called`.
pub async fn introspect(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<IntrospectForm>,
) -> Response {
    let authorized =
        bearer(&headers).is_some_and(|t| secrets::matches_any(t, &st.introspection_hashes));
    if !authorized {
        return err(
            ErrorCode::InvalidToken,
            "a resource-server credential is required",
        )
        .bearer_challenge("regwatch-introspection", bearer(&headers).is_some())
        .into_response();
    }
    let inactive = || token_response(json!({"active": false}));
    let Some(token) = f.token.as_deref() else {
        return inactive();
    };
    let t = match st.store.get_token(&secrets::hash_token(token).0).await {
        Ok(Some(t)) if t.row.kind == "access_token" => t,
        Ok(_) => return inactive(),
        Err(e) => return OAuthError::from(e).into_response(),
    };
    let now = Utc::now();
    let now_ms = now.timestamp_millis();
    let client = match st.store.get_client(&t.row.client_id).await {
        Ok(c) => c,
        Err(e) => return OAuthError::from(e).into_response(),
    };
    let client_active = client
        .as_ref()
        .is_some_and(|c| c.status == ClientStatus::Active);
    let reason = if !client_active {
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
    };
    let resource = f.resource.clone().unwrap_or_else(|| t.row.resource.clone());
    let tool = f
        .tool
        .as_deref()
        .map(|s| crate::policy::truncate_for_display(s, 128));
    let ctx_user = t.row.user_id.clone();
    let record_tool = |decision: ToolDecision, scope: Option<String>, why: Option<String>| {
        tool.as_ref().map(|name| {
            let payload = EventPayload::ToolCalled(ToolCalled {
                tool: name.clone(),
                decision,
                deciding_scope: scope,
                resource: resource.clone(),
                user_id: ctx_user.clone(),
                reason: why,
            });
            events::event(
                &st.issuer,
                Some(&t.row.client_id),
                Actor::client(&t.row.client_id),
                payload,
                &ctx,
                now,
            )
        })
    };
    if let Some(why) = reason {
        if let Some(ev) = record_tool(ToolDecision::Denied, None, Some(why)) {
            if let Err(e) = st.store.record_event(&ev).await {
                tracing::error!(error = %e, "could not record a tool call");
            }
        }
        return inactive();
    }
    let scopes: Vec<&str> = t.row.scopes.split(' ').filter(|s| !s.is_empty()).collect();
    let mut body = json!({
        "active": true,
        "client_id": t.row.client_id,
        "scope": t.row.scopes,
        "sub": t.row.user_id,
        "aud": t.row.resource,
        "exp": t.row.expires_at / 1000,
        "iat": t.row.issued_at / 1000,
        "token_type": "Bearer",
        "iss": st.cfg.issuer,
    });
    if let Some(name) = &tool {
        let needed = st.cfg.oauth.tools.get(name.as_str()).cloned();
        let audience_ok = f.resource.as_deref().is_none_or(|r| r == t.row.resource);
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
        if let Some(ev) = record_tool(decision, needed.clone(), why) {
            if let Err(e) = st.store.record_event(&ev).await {
                return OAuthError::from(e).into_response();
            }
        }
        body["tool"] = json!({"name": name, "allowed": allowed, "required_scope": needed});
    }
    if let Err(e) = st.store.touch(&t.row.client_id, now_ms).await {
        tracing::warn!(error = %e, "could not slide the idle TTL");
    }
    token_response(body)
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
