//! The authorization endpoint and the pages behind it: sign-in and
//! consent. PKCE S256 and an RFC 8707 `resource` are required; redirect
//! URIs match exactly (loopback port excepted, RFC 8252 §7.3); the answer
//! carries `iss` (RFC 9207). Every consent is shown: no silent
//! re-approval (RFC 8252 §8.6).

use std::time::Instant;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use chrono::Utc;
use regwatch_schemas::{Actor, ConsentDenied, ConsentGranted, EventPayload, RegistrationMethod};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::clients::{self, ClientError};
use super::pages::{self, ConsentView};
use super::pending::PendingAuth;
use crate::events::{self, RequestCtx};
use crate::http::Ctx;
use crate::secrets;
use crate::sources::Admission;
use crate::store::{ClientRow, CodeRow};
use crate::AppState;

const SESSION_COOKIE: &str = "rw_session";

/// Whether `requested` matches `registered`: exactly, or for a loopback
/// redirect, exactly but for the port.
pub fn redirect_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(a), Ok(b)) = (url::Url::parse(registered), url::Url::parse(requested)) else {
        return false;
    };
    let loopback = a.scheme() == "http"
        && a.host()
            .is_some_and(|h| regwatch_checks::addr::is_loopback_host(&h));
    loopback
        && a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.path() == b.path()
        && a.query() == b.query()
        && b.fragment().is_none()
        && b.username().is_empty()
}

fn valid_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn throttled(st: &AppState, ctx: &RequestCtx) -> Option<Response> {
    match st.sources.admit(ctx.ip, Instant::now()) {
        Admission::Allowed { .. } => None,
        Admission::Limited {
            retry_after_secs, ..
        } => {
            let mut r = pages::error_page(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests; try again later",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            Some(r)
        }
        Admission::Blocked { .. } => Some(pages::error_page(
            StatusCode::FORBIDDEN,
            "access_denied",
            "this source is blocked",
        )),
    }
}

/// Redirect back to the client with `params`, plus `state` and `iss`.
fn back_to_client(
    st: &AppState,
    redirect_uri: &str,
    state: Option<&str>,
    params: &[(&str, &str)],
) -> Response {
    let Ok(mut u) = url::Url::parse(redirect_uri) else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "bad redirect URI",
        );
    };
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
        if let Some(s) = state {
            q.append_pair("state", s);
        }
        q.append_pair("iss", &st.cfg.issuer);
    }
    let mut r = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(u.as_str()) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Record a refused authorization request (`consent.denied` with the
/// check that refused it).
async fn record_refusal(
    st: &AppState,
    ctx: &RequestCtx,
    client_id: &str,
    user: Option<&str>,
    scopes: &[String],
    resource: Option<&str>,
    reason: &str,
) {
    let payload = EventPayload::ConsentDenied(ConsentDenied {
        user_id: user.map(String::from),
        scopes: scopes.to_vec(),
        resource: resource.map(String::from),
        reason: reason.to_string(),
    });
    let actor = user
        .map(Actor::user)
        .unwrap_or_else(|| Actor::client(client_id));
    let ev = events::event(&st.issuer, Some(client_id), actor, payload, ctx, Utc::now());
    if let Err(e) = st.store.record_event(&ev).await {
        tracing::error!(error = %e, "could not record a consent refusal");
    }
}

/// `GET /authorize`.
pub async fn authorize(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(r) = throttled(&st, &ctx) {
        return r;
    }
    // RFC 6749 §3.1: no parameter may appear twice.
    let mut seen = std::collections::HashSet::new();
    if let Some((k, _)) = q.iter().find(|(k, _)| !seen.insert(k.as_str())) {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("parameter {k} appears more than once"),
        );
    }
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if q.iter().any(|(k, v)| k.len() > 64 || v.len() > 4096) || q.len() > 30 {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "request parameters too large",
        );
    }
    let Some(client_id) = get("client_id") else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id is required",
        );
    };
    let client = match clients::resolve(&st, &ctx, client_id, "authorize").await {
        Ok(c) => c,
        Err(ClientError::Store(e)) => return e.into_response(),
        Err(e) => {
            return pages::error_page(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                &e.to_oauth().description,
            )
        }
    };
    let redirect_uri = match get("redirect_uri") {
        Some(r) => {
            if !client
                .metadata
                .redirect_uris
                .iter()
                .any(|reg| redirect_matches(reg, r))
            {
                record_refusal(
                    &st,
                    &ctx,
                    client_id,
                    None,
                    &[],
                    get("resource"),
                    "redirect_uri_mismatch",
                )
                .await;
                return pages::error_page(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "redirect_uri does not match a registered redirect URI",
                );
            }
            r.to_string()
        }
        None if client.metadata.redirect_uris.len() == 1 => {
            client.metadata.redirect_uris[0].clone()
        }
        None => {
            return pages::error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "redirect_uri is required",
            )
        }
    };
    // From here on, errors go back to the client (RFC 6749 §4.1.2.1).
    let state = get("state");
    let fail = |code: &'static str, desc: &str| {
        back_to_client(
            &st,
            &redirect_uri,
            state,
            &[("error", code), ("error_description", desc)],
        )
    };
    if get("response_type") != Some("code") {
        return fail("unsupported_response_type", "response_type must be code");
    }
    let Some(challenge) = get("code_challenge") else {
        record_refusal(
            &st,
            &ctx,
            client_id,
            None,
            &[],
            get("resource"),
            "pkce_missing",
        )
        .await;
        return fail("invalid_request", "code_challenge is required (PKCE)");
    };
    if get("code_challenge_method") != Some("S256") {
        record_refusal(
            &st,
            &ctx,
            client_id,
            None,
            &[],
            get("resource"),
            "pkce_not_s256",
        )
        .await;
        return fail("invalid_request", "code_challenge_method must be S256");
    }
    if !valid_challenge(challenge) {
        return fail(
            "invalid_request",
            "code_challenge must be 43 base64url characters",
        );
    }
    let Some(resource) = get("resource") else {
        record_refusal(&st, &ctx, client_id, None, &[], None, "resource_missing").await;
        return fail("invalid_target", "resource is required (RFC 8707)");
    };
    if !st.cfg.oauth.resources.iter().any(|r| r == resource) {
        record_refusal(
            &st,
            &ctx,
            client_id,
            None,
            &[],
            Some(resource),
            "resource_unknown",
        )
        .await;
        return fail(
            "invalid_target",
            "resource is not served by this authorization server",
        );
    }
    let registered: Vec<String> = client
        .metadata
        .scope
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let scopes: Vec<String> = match get("scope") {
        Some(s) if !s.trim().is_empty() => s
            .split(' ')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect(),
        _ => registered.clone(),
    };
    if let Some(bad) = scopes.iter().find(|s| !registered.contains(s)) {
        record_refusal(
            &st,
            &ctx,
            client_id,
            None,
            &scopes,
            Some(resource),
            "scope_not_registered",
        )
        .await;
        return fail(
            "invalid_scope",
            &format!("scope {bad:?} was not registered by this client"),
        );
    }
    let pending = PendingAuth::new(
        client.client_id.clone(),
        redirect_uri.clone(),
        state.map(String::from),
        challenge.to_string(),
        scopes,
        resource.to_string(),
    );
    let csrf = pending.csrf.clone();
    let id = match st.flows.park(pending) {
        Ok(id) => id,
        Err(_) => {
            return pages::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "too many sign-ins in progress; retry shortly",
            )
        }
    };
    match cookie(&headers, SESSION_COOKIE).and_then(|c| st.flows.user(&c)) {
        Some(user) => consent_page(&st, &id, &user).await,
        None => pages::sign_in(
            &id,
            &csrf,
            client
                .metadata
                .client_name
                .as_deref()
                .unwrap_or(&client.client_id),
            false,
        ),
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    pending: String,
    csrf: String,
    username: String,
    password: String,
}

fn csrf_ok(expected: &str, got: &str) -> bool {
    expected.as_bytes().ct_eq(got.as_bytes()).into()
}

/// `POST /authorize/login`.
pub async fn login(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Form(f): Form<LoginForm>,
) -> Response {
    if let Some(r) = throttled(&st, &ctx) {
        return r;
    }
    let Some(p) = st.flows.get(&f.pending) else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "this sign-in expired; start again from the application",
        );
    };
    if !csrf_ok(&p.csrf, &f.csrf) {
        return pages::error_page(
            StatusCode::FORBIDDEN,
            "invalid_request",
            "the form is stale or forged",
        );
    }
    if f.username.len() > 256 || f.password.len() > 1024 {
        return pages::sign_in(&f.pending, &p.csrf, &p.client_id, true);
    }
    let users = st.users.clone();
    let (u, pw) = (f.username.clone(), f.password.clone());
    // Argon2 is deliberately slow: keep it off the async workers.
    let verified = tokio::task::spawn_blocking(move || users.verify(&u, &pw))
        .await
        .ok()
        .flatten();
    let Some(user) = verified else {
        tracing::info!(source = ?ctx.ip, "sign-in failed");
        return pages::sign_in(&f.pending, &p.csrf, &p.client_id, true);
    };
    let session = st.flows.sign_in(user);
    let secure = if st.cfg.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let mut r = StatusCode::SEE_OTHER.into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax{secure}"
    )) {
        h.insert(header::SET_COOKIE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("/authorize/consent?pending={}", f.pending)) {
        h.insert(header::LOCATION, v);
    }
    r
}

#[derive(Deserialize)]
pub struct PendingQuery {
    pending: String,
}

/// `GET /authorize/consent`.
pub async fn consent_get(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PendingQuery>,
) -> Response {
    let Some(user) = cookie(&headers, SESSION_COOKIE).and_then(|c| st.flows.user(&c)) else {
        return pages::error_page(
            StatusCode::UNAUTHORIZED,
            "login_required",
            "sign in first; start again from the application",
        );
    };
    consent_page(&st, &q.pending, &user).await
}

fn scope_description(s: &str) -> &'static str {
    match s {
        "mcp:read" => "read your data through the MCP server's tools",
        "mcp:write" => "change your data",
        "mcp:delete" => "delete your data",
        "offline_access" => "keep access while you are away",
        _ => "",
    }
}

async fn consent_page(st: &AppState, pending_id: &str, user: &str) -> Response {
    let Some(p) = st.flows.get(pending_id) else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "this request expired; start again from the application",
        );
    };
    let client = match st.store.get_client(&p.client_id).await {
        Ok(Some(c)) => c,
        _ => return pages::error_page(StatusCode::BAD_REQUEST, "invalid_client", "unknown client"),
    };
    let warnings = st.advisor.warnings(
        &client,
        st.cfg.oauth.verified_clients.contains(&client.client_id),
    );
    let host = url::Url::parse(&p.redirect_uri)
        .ok()
        .map(|u| {
            u.host_str()
                .map(String::from)
                .unwrap_or_else(|| format!("{}: (an app on this device)", u.scheme()))
        })
        .unwrap_or_default();
    let scopes: Vec<(String, String)> = p
        .scopes
        .iter()
        .map(|s| (s.clone(), scope_description(s).to_string()))
        .collect();
    let method = match client.registration_method {
        RegistrationMethod::Dcr => "dynamic client registration (self-registered)",
        RegistrationMethod::Cimd => "client ID metadata document",
    };
    pages::consent(
        pending_id,
        &p.csrf,
        &ConsentView {
            client_name: client
                .metadata
                .client_name
                .as_deref()
                .unwrap_or("(unnamed client)"),
            client_id: &client.client_id,
            method,
            redirect_host: &host,
            scopes: &scopes,
            resource: &p.resource,
            warnings: &warnings,
            user,
        },
    )
}

#[derive(Deserialize)]
pub struct ConsentForm {
    pending: String,
    csrf: String,
    decision: String,
}

/// `POST /authorize/consent`.
pub async fn consent_post(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<ConsentForm>,
) -> Response {
    let Some(user) = cookie(&headers, SESSION_COOKIE).and_then(|c| st.flows.user(&c)) else {
        return pages::error_page(StatusCode::UNAUTHORIZED, "login_required", "sign in first");
    };
    match st.flows.get(&f.pending) {
        Some(p) if csrf_ok(&p.csrf, &f.csrf) => {}
        Some(_) => {
            return pages::error_page(
                StatusCode::FORBIDDEN,
                "invalid_request",
                "the form is stale or forged",
            )
        }
        None => {
            return pages::error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "this request expired",
            )
        }
    }
    let Some(p) = st.flows.take(&f.pending) else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "this request was already answered",
        );
    };
    // The client may have been revoked while the user was reading.
    let client: ClientRow = match clients::resolve(&st, &ctx, &p.client_id, "authorize").await {
        Ok(c) => c,
        Err(e) => {
            return pages::error_page(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                &e.to_oauth().description,
            )
        }
    };
    let now = Utc::now();
    if f.decision != "approve" {
        record_refusal(
            &st,
            &ctx,
            &client.client_id,
            Some(&user),
            &p.scopes,
            Some(&p.resource),
            "user_denied",
        )
        .await;
        return back_to_client(
            &st,
            &p.redirect_uri,
            p.state.as_deref(),
            &[
                ("error", "access_denied"),
                ("error_description", "the user denied access"),
            ],
        );
    }
    let code = secrets::new_token("rwa_");
    let row = CodeRow {
        code_hash: secrets::hash_token(&code).0,
        client_id: client.client_id.clone(),
        user_id: user.clone(),
        redirect_uri: p.redirect_uri.clone(),
        code_challenge: p.code_challenge.clone(),
        scopes: p.scopes.join(" "),
        resource: p.resource.clone(),
        family_id: uuid::Uuid::now_v7().to_string(),
        issued_at: now.timestamp_millis(),
        expires_at: now.timestamp_millis() + (st.cfg.oauth.code_ttl_secs as i64) * 1000,
        used_at: None,
    };
    let payload = EventPayload::ConsentGranted(ConsentGranted {
        user_id: user.clone(),
        scopes: p.scopes.clone(),
        resource: p.resource.clone(),
        redirect_uri: p.redirect_uri.clone(),
    });
    let ev = events::event(
        &st.issuer,
        Some(&client.client_id),
        Actor::user(&user),
        payload,
        &ctx,
        now,
    );
    if let Err(e) = st
        .store
        .grant_consent(&row, now.timestamp_millis(), &ev)
        .await
    {
        return crate::error::OAuthError::from(e).into_response();
    }
    tracing::info!(client_id = %client.client_id, "consent granted");
    back_to_client(&st, &p.redirect_uri, p.state.as_deref(), &[("code", &code)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_matching() {
        let cases = [
            ("https://a.example.com/cb", "https://a.example.com/cb", true),
            (
                "https://a.example.com/cb",
                "https://a.example.com/cb/",
                false,
            ),
            (
                "https://a.example.com/cb",
                "https://a.example.com:8443/cb",
                false,
            ),
            (
                "https://a.example.com/cb",
                "https://A.example.com/cb",
                false,
            ),
            ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", true),
            (
                "http://127.0.0.1:3000/cb",
                "http://127.0.0.1:51234/cb",
                true,
            ),
            ("http://[::1]:1/cb", "http://[::1]:2/cb", true),
            ("http://localhost:1/cb", "http://localhost:2/cb", true),
            (
                "http://127.0.0.1:3000/cb",
                "http://127.0.0.1:3000/other",
                false,
            ),
            (
                "http://127.0.0.1:3000/cb",
                "http://127.0.0.2:3000/cb",
                false,
            ),
            (
                "http://127.0.0.1:3000/cb",
                "http://127.0.0.1:3000/cb?x=1",
                false,
            ),
            ("com.example.app:/cb", "com.example.app:/cb", true),
        ];
        for (reg, req, want) in cases {
            assert_eq!(redirect_matches(reg, req), want, "{reg} vs {req}");
        }
    }

    #[test]
    fn challenge_shape() {
        assert!(valid_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!valid_challenge("short"));
        assert!(!valid_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"
        ));
    }
}
