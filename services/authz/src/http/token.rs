//! The token, revocation and introspection endpoints: read the form and
//! the client's credentials, call [`crate::oauth`], answer JSON.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::{bearer, Ctx};
use crate::error::OAuthError;
use crate::oauth::clients::ClientCredentials;
use crate::oauth::introspect::{self, IntrospectRequest};
use crate::oauth::revoke;
use crate::oauth::token::{self, TokenRequest};
use crate::AppState;

/// The client's credentials: `Authorization: Basic` first, else the form's.
fn client_credentials(
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Option<ClientCredentials> {
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
    match (&basic, form_id) {
        (Some((id, sec)), _) => {
            // RFC 6749 §2.3.1: both halves are form-urlencoded.
            let id = url::form_urlencoded::parse(format!("a={id}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let sec = url::form_urlencoded::parse(format!("a={sec}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            Some(ClientCredentials {
                client_id: id,
                secret: Some(sec),
                basic: true,
            })
        }
        (None, Some(id)) => Some(ClientCredentials {
            client_id: id.to_string(),
            secret: form_secret.map(String::from),
            basic: false,
        }),
        (None, None) => None,
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

/// `POST /token`.
pub async fn token(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Result<Response, OAuthError> {
    let creds = client_credentials(&headers, f.client_id.as_deref(), f.client_secret.as_deref());
    let req = TokenRequest {
        grant_type: f.grant_type,
        code: f.code,
        redirect_uri: f.redirect_uri,
        code_verifier: f.code_verifier,
        refresh_token: f.refresh_token,
        resource: f.resource,
        scope: f.scope,
    };
    let g = token::exchange(&st, &ctx, creds, req).await?;
    let mut body = json!({"access_token": g.access_token, "token_type": "Bearer", "expires_in": g.expires_in, "scope": g.scope});
    if let Some(r) = g.refresh_token {
        body["refresh_token"] = r.into();
    }
    Ok(token_response(body))
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
) -> Result<Response, OAuthError> {
    let creds = client_credentials(&headers, f.client_id.as_deref(), f.client_secret.as_deref());
    let (token, hint) = (f.token.as_deref(), f.token_type_hint.as_deref());
    revoke::revoke(&st, &ctx, creds, token, hint).await?;
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
pub struct IntrospectForm {
    token: Option<String>,
    /// Extension: the MCP tool about to be called.
    tool: Option<String>,
    resource: Option<String>,
}

/// `POST /introspect` (RFC 7662).
pub async fn introspect(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Form(f): Form<IntrospectForm>,
) -> Result<Response, OAuthError> {
    let req = IntrospectRequest {
        credential: bearer(&headers),
        token: f.token.as_deref(),
        tool: f.tool.as_deref(),
        resource: f.resource.as_deref(),
    };
    let Some(a) = introspect::introspect(&st, &ctx, req).await? else {
        return Ok(token_response(json!({"active": false})));
    };
    let mut body = json!({
        "active": true,
        "client_id": a.client_id,
        "scope": a.scope,
        "sub": a.sub,
        "aud": a.aud,
        "exp": a.exp,
        "iat": a.iat,
        "token_type": "Bearer",
        "iss": a.iss,
    });
    if let Some(t) = a.tool {
        body["tool"] =
            json!({"name": t.name, "allowed": t.allowed, "required_scope": t.required_scope});
    }
    Ok(token_response(body))
}
