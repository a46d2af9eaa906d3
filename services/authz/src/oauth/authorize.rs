//! The authorization endpoint as a core: check an authorization request
//! step by step and park it for sign-in and consent ([`super::consent`]
//! signs the user in and turns the decision into a code). PKCE S256 and an RFC 8707
//! `resource` are required; redirect URIs match exactly (loopback port
//! excepted, RFC 8252 §7.3); every answer to the client carries `iss` (RFC
//! 9207). Every consent is shown: no silent re-approval (RFC 8252 §8.6).
//!
//! Refusals are [`AuthorizeError`]s: a page for the user until the
//! redirect URI is known to be the client's, a redirect back to the
//! client after (RFC 6749 §4.1.2.1). The HTTP shell renders them.

use std::time::Instant;

use axum::http::StatusCode;
use chrono::Utc;
use regwatch_schemas::{Actor, ConsentDenied, EventPayload};

use super::clients::{self, ClientError};
use super::pending::PendingAuth;
use crate::admission::Admission;
use crate::error::OAuthError;
use crate::events::{self, RequestCtx};
use crate::store::ClientRow;
use crate::text::scope_tokens;
use crate::AppState;

/// Where the user's browser goes back to the client: the redirect URI
/// with `params`, then `state` and `iss`.
#[derive(Debug, Clone)]
pub struct BackToClient {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub params: Vec<(&'static str, String)>,
}

impl BackToClient {
    pub(super) fn error(
        redirect_uri: &str,
        state: Option<&str>,
        code: &'static str,
        desc: &str,
    ) -> Self {
        BackToClient {
            redirect_uri: redirect_uri.to_string(),
            state: state.map(String::from),
            params: vec![("error", code.into()), ("error_description", desc.into())],
        }
    }
}

/// A refused browser request.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Shown to the user as an error page.
    Page {
        status: StatusCode,
        error: &'static str,
        description: String,
        /// Seconds, for a rate-limited source.
        retry_after: Option<u64>,
    },
    /// Sent back to the client (its redirect URI is known to be its own).
    Back(BackToClient),
    /// A store failure, answered as a JSON 500.
    Internal(OAuthError),
}

pub(super) fn page(
    status: StatusCode,
    error: &'static str,
    description: impl Into<String>,
) -> AuthorizeError {
    AuthorizeError::Page {
        status,
        error,
        description: description.into(),
        retry_after: None,
    }
}

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

/// Per-source admission for the browser endpoints.
pub fn admit(st: &AppState, ctx: &RequestCtx) -> Result<(), AuthorizeError> {
    match st.admission.admit(ctx.ip, Instant::now()) {
        Admission::Allowed { .. } => Ok(()),
        Admission::Limited {
            retry_after_secs, ..
        } => Err(AuthorizeError::Page {
            status: StatusCode::TOO_MANY_REQUESTS,
            error: "rate_limited",
            description: "too many requests; try again later".into(),
            retry_after: Some(retry_after_secs),
        }),
        Admission::Blocked { .. } => Err(page(
            StatusCode::FORBIDDEN,
            "access_denied",
            "this source is blocked",
        )),
    }
}

/// Record a refused authorization request (`consent.denied` with the
/// check that refused it).
pub(super) async fn record_refusal(
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

/// The query of an authorization request.
pub struct AuthorizeQuery<'a>(pub &'a [(String, String)]);

impl<'a> AuthorizeQuery<'a> {
    fn get(&self, k: &str) -> Option<&'a str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    /// RFC 6749 §3.1: no parameter twice; and bounded sizes.
    fn check_shape(&self) -> Result<(), AuthorizeError> {
        let mut seen = std::collections::HashSet::new();
        if let Some((k, _)) = self.0.iter().find(|(k, _)| !seen.insert(k.as_str())) {
            return Err(page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("parameter {k} appears more than once"),
            ));
        }
        if self.0.iter().any(|(k, v)| k.len() > 64 || v.len() > 4096) || self.0.len() > 30 {
            return Err(page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "request parameters too large",
            ));
        }
        Ok(())
    }
}

/// An authorization request parked for sign-in and consent.
pub struct Parked {
    pub pending_id: String,
    pub csrf: String,
    pub client: ClientRow,
}

/// `GET /authorize`: check the request, then park it.
pub async fn start(
    st: &AppState,
    ctx: &RequestCtx,
    q: AuthorizeQuery<'_>,
) -> Result<Parked, AuthorizeError> {
    admit(st, ctx)?;
    q.check_shape()?;
    let client = requesting_client(st, ctx, &q).await?;
    let redirect_uri = redirect_uri(st, ctx, &client, &q).await?;
    // From here on, errors go back to the client (RFC 6749 §4.1.2.1).
    let state = q.get("state");
    let back = |code, desc: &str| {
        AuthorizeError::Back(BackToClient::error(&redirect_uri, state, code, desc))
    };
    if q.get("response_type") != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let challenge = pkce_challenge(st, ctx, &client, &q)
        .await
        .map_err(|(code, desc)| back(code, desc))?;
    let resource = resource(st, ctx, &client, &q)
        .await
        .map_err(|(code, desc)| back(code, desc))?;
    let scopes = requested_scopes(st, ctx, &client, &q, resource)
        .await
        .map_err(|(code, desc)| back(code, &desc))?;
    let pending = PendingAuth::new(
        client.client_id.clone(),
        redirect_uri.clone(),
        state.map(String::from),
        challenge.to_string(),
        scopes,
        resource.to_string(),
    );
    let csrf = pending.csrf.clone();
    let pending_id = st.flows.park(pending).map_err(|_| {
        page(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "too many sign-ins in progress; retry shortly",
        )
    })?;
    Ok(Parked {
        pending_id,
        csrf,
        client,
    })
}

/// The active client named by `client_id` (a refusal is a page: nothing
/// is known yet about where to send the user back).
async fn requesting_client(
    st: &AppState,
    ctx: &RequestCtx,
    q: &AuthorizeQuery<'_>,
) -> Result<ClientRow, AuthorizeError> {
    let Some(client_id) = q.get("client_id") else {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id is required",
        ));
    };
    match clients::resolve(st, ctx, client_id, "authorize").await {
        Ok(c) => Ok(c),
        Err(ClientError::Store(e)) => Err(AuthorizeError::Internal(e)),
        Err(e) => Err(page(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            e.to_oauth().description,
        )),
    }
}

/// The redirect URI: one of the client's, or its only one when absent.
async fn redirect_uri(
    st: &AppState,
    ctx: &RequestCtx,
    client: &ClientRow,
    q: &AuthorizeQuery<'_>,
) -> Result<String, AuthorizeError> {
    let registered = &client.metadata.redirect_uris;
    match q.get("redirect_uri") {
        Some(r) if registered.iter().any(|reg| redirect_matches(reg, r)) => Ok(r.to_string()),
        Some(_) => {
            let (cid, resource) = (&client.client_id, q.get("resource"));
            record_refusal(st, ctx, cid, None, &[], resource, "redirect_uri_mismatch").await;
            Err(page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "redirect_uri does not match a registered redirect URI",
            ))
        }
        None if registered.len() == 1 => Ok(registered[0].clone()),
        None => Err(page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "redirect_uri is required",
        )),
    }
}

/// The refusal sent back to the client: an error code and description.
type BackError<D = &'static str> = (&'static str, D);

/// The PKCE S256 challenge (RFC 7636); a missing or plain one is recorded.
async fn pkce_challenge<'q>(
    st: &AppState,
    ctx: &RequestCtx,
    client: &ClientRow,
    q: &AuthorizeQuery<'q>,
) -> Result<&'q str, BackError> {
    let cid = &client.client_id;
    let Some(challenge) = q.get("code_challenge") else {
        record_refusal(st, ctx, cid, None, &[], q.get("resource"), "pkce_missing").await;
        return Err(("invalid_request", "code_challenge is required (PKCE)"));
    };
    if q.get("code_challenge_method") != Some("S256") {
        record_refusal(st, ctx, cid, None, &[], q.get("resource"), "pkce_not_s256").await;
        return Err(("invalid_request", "code_challenge_method must be S256"));
    }
    if !valid_challenge(challenge) {
        return Err((
            "invalid_request",
            "code_challenge must be 43 base64url characters",
        ));
    }
    Ok(challenge)
}

/// The RFC 8707 resource: required, and one this server issues for.
async fn resource<'q>(
    st: &AppState,
    ctx: &RequestCtx,
    client: &ClientRow,
    q: &AuthorizeQuery<'q>,
) -> Result<&'q str, BackError> {
    let cid = &client.client_id;
    let Some(resource) = q.get("resource") else {
        record_refusal(st, ctx, cid, None, &[], None, "resource_missing").await;
        return Err(("invalid_target", "resource is required (RFC 8707)"));
    };
    if !st.cfg.oauth.resources.iter().any(|r| r == resource) {
        record_refusal(st, ctx, cid, None, &[], Some(resource), "resource_unknown").await;
        return Err((
            "invalid_target",
            "resource is not served by this authorization server",
        ));
    }
    Ok(resource)
}

/// The scopes asked for (all the registered ones when none are), each
/// registered by the client.
async fn requested_scopes(
    st: &AppState,
    ctx: &RequestCtx,
    client: &ClientRow,
    q: &AuthorizeQuery<'_>,
    resource: &str,
) -> Result<Vec<String>, BackError<String>> {
    let registered: Vec<String> = scope_tokens(client.metadata.scope.as_deref().unwrap_or(""))
        .map(String::from)
        .collect();
    let scopes: Vec<String> = match q.get("scope") {
        Some(s) if !s.trim().is_empty() => scope_tokens(s).map(String::from).collect(),
        _ => registered.clone(),
    };
    if let Some(bad) = scopes.iter().find(|s| !registered.contains(s)) {
        let reason = "scope_not_registered";
        let cid = &client.client_id;
        record_refusal(st, ctx, cid, None, &scopes, Some(resource), reason).await;
        return Err((
            "invalid_scope",
            format!("scope {bad:?} was not registered by this client"),
        ));
    }
    Ok(scopes)
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
