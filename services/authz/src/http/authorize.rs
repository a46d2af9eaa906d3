//! The browser side of the authorization endpoint: extract the query,
//! forms and session cookie, call [`crate::oauth::authorize`], and render
//! pages or redirect back to the client.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

use super::pages::{self, ConsentView};
use super::Ctx;
use crate::oauth::authorize::{self, AuthorizeError, AuthorizeQuery, BackToClient};
use crate::oauth::consent::{self, SignIn};
use crate::AppState;

const SESSION_COOKIE: &str = "rw_session";

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

/// The signed-in user of this browser, if any.
fn session_user(st: &AppState, headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE).and_then(|c| st.flows.user(&c))
}

/// Redirect back to the client with the answer's parameters, plus
/// `state` and `iss`.
fn back_to_client(st: &AppState, b: &BackToClient) -> Response {
    let Ok(mut u) = url::Url::parse(&b.redirect_uri) else {
        return pages::error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "bad redirect URI",
        );
    };
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in &b.params {
            q.append_pair(k, v);
        }
        if let Some(s) = &b.state {
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

/// The one mapping of a browser refusal: a page, a redirect, or a 500.
fn refused(st: &AppState, e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page {
            status,
            error,
            description,
            retry_after,
        } => {
            let mut r = pages::error_page(status, error, &description);
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(s));
            }
            r
        }
        AuthorizeError::Back(b) => back_to_client(st, &b),
        AuthorizeError::Internal(e) => e.into_response(),
    }
}

/// `GET /authorize`.
pub async fn authorize(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let parked = match authorize::start(&st, &ctx, AuthorizeQuery(&q)).await {
        Ok(p) => p,
        Err(e) => return refused(&st, e),
    };
    match session_user(&st, &headers) {
        Some(user) => consent_page(&st, &parked.pending_id, &user).await,
        None => pages::sign_in(
            &parked.pending_id,
            &parked.csrf,
            parked
                .client
                .metadata
                .client_name
                .as_deref()
                .unwrap_or(&parked.client.client_id),
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

/// `POST /authorize/login`.
pub async fn login(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Form(f): Form<LoginForm>,
) -> Response {
    let session =
        match consent::sign_in(&st, &ctx, &f.pending, &f.csrf, &f.username, &f.password).await {
            Ok(SignIn::Session(s)) => s,
            Ok(SignIn::Failed { csrf, client_id }) => {
                return pages::sign_in(&f.pending, &csrf, &client_id, true)
            }
            Err(e) => return refused(&st, e),
        };
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
    let Some(user) = session_user(&st, &headers) else {
        return pages::error_page(
            StatusCode::UNAUTHORIZED,
            "login_required",
            "sign in first; start again from the application",
        );
    };
    consent_page(&st, &q.pending, &user).await
}

async fn consent_page(st: &AppState, pending_id: &str, user: &str) -> Response {
    let info = match consent::consent_info(st, pending_id).await {
        Ok(i) => i,
        Err(e) => return refused(st, e),
    };
    pages::consent(
        pending_id,
        &info.csrf,
        &ConsentView {
            client_name: info
                .client
                .metadata
                .client_name
                .as_deref()
                .unwrap_or("(unnamed client)"),
            client_id: &info.client.client_id,
            method: info.method,
            redirect_host: &info.redirect_host,
            scopes: &info.scopes,
            resource: &info.resource,
            warnings: &info.warnings,
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
    let Some(user) = session_user(&st, &headers) else {
        return pages::error_page(StatusCode::UNAUTHORIZED, "login_required", "sign in first");
    };
    let approve = f.decision == "approve";
    match consent::decide(&st, &ctx, &user, &f.pending, &f.csrf, approve).await {
        Ok(b) => back_to_client(&st, &b),
        Err(e) => refused(&st, e),
    }
}
