//! Sign-in and consent for a parked authorization request: verify the
//! user, show what the client asks for (with the advisor's warnings), and
//! turn the user's answer into a code (`consent.granted`) or a recorded
//! refusal (`consent.denied`). Either way the browser goes back to the
//! client.

use axum::http::StatusCode;
use chrono::Utc;
use regwatch_schemas::{Actor, ConsentGranted, EventPayload, RegistrationMethod};
use subtle::ConstantTimeEq;

use super::authorize::{admit, page, record_refusal, AuthorizeError, BackToClient};
use super::clients;
use super::pending::PendingAuth;
use crate::error::OAuthError;
use crate::events::{self, RequestCtx};
use crate::secrets;
use crate::store::{ClientRow, CodeRow};
use crate::AppState;

fn csrf_ok(expected: &str, got: &str) -> bool {
    expected.as_bytes().ct_eq(got.as_bytes()).into()
}

/// The result of a sign-in form.
pub enum SignIn {
    /// A new session (the cookie value).
    Session(String),
    /// Wrong credentials: show the form again.
    Failed { csrf: String, client_id: String },
}

/// `POST /authorize/login`: check the form, verify the user.
pub async fn sign_in(
    st: &AppState,
    ctx: &RequestCtx,
    pending_id: &str,
    csrf: &str,
    username: &str,
    password: &str,
) -> Result<SignIn, AuthorizeError> {
    admit(st, ctx)?;
    let Some(p) = st.flows.get(pending_id) else {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "this sign-in expired; start again from the application",
        ));
    };
    if !csrf_ok(&p.csrf, csrf) {
        return Err(page(
            StatusCode::FORBIDDEN,
            "invalid_request",
            "the form is stale or forged",
        ));
    }
    let failed = || SignIn::Failed {
        csrf: p.csrf.clone(),
        client_id: p.client_id.clone(),
    };
    if username.len() > 256 || password.len() > 1024 {
        return Ok(failed());
    }
    let users = st.users.clone();
    let (u, pw) = (username.to_string(), password.to_string());
    // Argon2 is deliberately slow: keep it off the async workers.
    let verified = tokio::task::spawn_blocking(move || users.verify(&u, &pw))
        .await
        .ok()
        .flatten();
    let Some(user) = verified else {
        tracing::info!(source = ?ctx.ip, "sign-in failed");
        return Ok(failed());
    };
    Ok(SignIn::Session(st.flows.sign_in(user)))
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

/// What the consent page shows about a parked request.
pub struct ConsentInfo {
    pub csrf: String,
    pub client: ClientRow,
    pub method: &'static str,
    /// Where the user will be sent back: a host, or an app on the device.
    pub redirect_host: String,
    /// Each scope with what it lets the client do.
    pub scopes: Vec<(String, String)>,
    pub resource: String,
    pub warnings: Vec<String>,
}

/// The consent question for a parked request.
pub async fn consent_info(st: &AppState, pending_id: &str) -> Result<ConsentInfo, AuthorizeError> {
    let Some(p) = st.flows.get(pending_id) else {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "this request expired; start again from the application",
        ));
    };
    let client = match st.store.get_client(&p.client_id).await {
        Ok(Some(c)) => c,
        _ => {
            return Err(page(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                "unknown client",
            ))
        }
    };
    let warnings = st.advisor.warnings(
        &client,
        st.cfg.oauth.verified_clients.contains(&client.client_id),
    );
    let redirect_host = url::Url::parse(&p.redirect_uri)
        .ok()
        .map(|u| {
            u.host_str()
                .map(String::from)
                .unwrap_or_else(|| format!("{}: (an app on this device)", u.scheme()))
        })
        .unwrap_or_default();
    let scopes = p
        .scopes
        .iter()
        .map(|s| (s.clone(), scope_description(s).to_string()))
        .collect();
    let method = match client.registration_method {
        RegistrationMethod::Dcr => "dynamic client registration (self-registered)",
        RegistrationMethod::Cimd => "client ID metadata document",
    };
    Ok(ConsentInfo {
        csrf: p.csrf,
        client,
        method,
        redirect_host,
        scopes,
        resource: p.resource,
        warnings,
    })
}

/// `POST /authorize/consent`: the user's answer. Approval stores a code
/// with `consent.granted`; a denial is recorded. Either way the browser
/// goes back to the client.
pub async fn decide(
    st: &AppState,
    ctx: &RequestCtx,
    user: &str,
    pending_id: &str,
    csrf: &str,
    approve: bool,
) -> Result<BackToClient, AuthorizeError> {
    match st.flows.get(pending_id) {
        Some(p) if csrf_ok(&p.csrf, csrf) => {}
        Some(_) => {
            return Err(page(
                StatusCode::FORBIDDEN,
                "invalid_request",
                "the form is stale or forged",
            ))
        }
        None => {
            return Err(page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "this request expired",
            ))
        }
    }
    let Some(p) = st.flows.take(pending_id) else {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "this request was already answered",
        ));
    };
    // The client may have been revoked while the user was reading.
    let client = clients::resolve(st, ctx, &p.client_id, "authorize")
        .await
        .map_err(|e| {
            page(
                StatusCode::BAD_REQUEST,
                "invalid_client",
                e.to_oauth().description,
            )
        })?;
    if !approve {
        let (scopes, resource) = (&p.scopes, Some(p.resource.as_str()));
        let cid = &client.client_id;
        record_refusal(st, ctx, cid, Some(user), scopes, resource, "user_denied").await;
        return Ok(BackToClient::error(
            &p.redirect_uri,
            p.state.as_deref(),
            "access_denied",
            "the user denied access",
        ));
    }
    let code = grant_code(st, ctx, &client, user, &p)
        .await
        .map_err(AuthorizeError::Internal)?;
    tracing::info!(client_id = %client.client_id, "consent granted");
    Ok(BackToClient {
        redirect_uri: p.redirect_uri,
        state: p.state,
        params: vec![("code", code)],
    })
}

/// Store a fresh authorization code for an approved request, with its
/// `consent.granted` event; returns the code in clear (sent once).
async fn grant_code(
    st: &AppState,
    ctx: &RequestCtx,
    client: &ClientRow,
    user: &str,
    p: &PendingAuth,
) -> Result<String, OAuthError> {
    let now = Utc::now();
    let code = secrets::new_token("rwa_");
    let row = CodeRow {
        code_hash: secrets::hash_token(&code).0,
        client_id: client.client_id.clone(),
        user_id: user.to_string(),
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
        user_id: user.to_string(),
        scopes: p.scopes.clone(),
        resource: p.resource.clone(),
        redirect_uri: p.redirect_uri.clone(),
    });
    let ev = events::event(
        &st.issuer,
        Some(&client.client_id),
        Actor::user(user),
        payload,
        ctx,
        now,
    );
    st.store
        .grant_consent(&row, now.timestamp_millis(), &ev)
        .await?;
    Ok(code)
}
