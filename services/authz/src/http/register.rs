//! RFC 7591 registration and RFC 7592 management (read, update, delete):
//! extract the request, call [`crate::registry`], answer with the client
//! information (RFC 7591 §3.2.1).

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::{bearer, Ctx};
use crate::error::{ErrorCode, OAuthError};
use crate::registry::{self, Credential};
use crate::store::ClientRow;
use crate::AppState;

/// The `Authorization` header as the registry sees it.
fn credential(headers: &HeaderMap) -> Credential<'_> {
    match bearer(headers) {
        Some(t) => Credential::Bearer(t),
        None if headers.contains_key(header::AUTHORIZATION) => Credential::Unreadable,
        None => Credential::Absent,
    }
}

/// Read a body up to the configured limit; `None` when it is larger
/// (whatever `Content-Length` claimed).
async fn read_body(body: Body, limit: usize) -> Result<Option<Bytes>, OAuthError> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(Some(c.to_bytes())),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Ok(None),
        Err(_) => Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "could not read the request body",
        )),
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// A registration or update body: not read at all when it is not JSON.
async fn json_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<registry::Body<Bytes>, OAuthError> {
    if !is_json(headers) {
        return Ok(registry::Body::NotJson);
    }
    Ok(match read_body(body, limit).await? {
        Some(bytes) => registry::Body::Json(bytes),
        None => registry::Body::TooLarge,
    })
}

/// The registration response: client information (RFC 7591 §3.2.1).
fn client_information(
    st: &AppState,
    c: &ClientRow,
    secret: Option<&str>,
    rat: Option<&str>,
) -> Value {
    let mut m: Map<String, Value> = match serde_json::to_value(&c.metadata) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    m.retain(|_, v| !(v.is_null() || v.as_array().is_some_and(Vec::is_empty)));
    m.insert("client_id".into(), c.client_id.clone().into());
    m.insert("client_id_issued_at".into(), (c.created_at / 1000).into());
    if let Some(s) = secret {
        m.insert("client_secret".into(), s.into());
    }
    if c.secret_hash.is_some() {
        m.insert("client_secret_expires_at".into(), 0.into());
    }
    if let Some(r) = rat {
        m.insert("registration_access_token".into(), r.into());
    }
    m.insert(
        "registration_client_uri".into(),
        st.url(&format!("/register/{}", c.client_id)).into(),
    );
    Value::Object(m)
}

fn no_store(status: StatusCode, body: Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// `POST /register`.
pub async fn register(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let body = json_body(&headers, body, st.cfg.limits.max_body_bytes);
    let r = registry::register(&st, &ctx, credential(&headers), body).await?;
    Ok(no_store(
        StatusCode::CREATED,
        client_information(
            &st,
            &r.client,
            r.client_secret.as_deref(),
            Some(&r.registration_access_token),
        ),
    ))
}

/// `GET /register/{client_id}`.
pub async fn read(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let c = registry::read(&st, &ctx, &client_id, credential(&headers)).await?;
    Ok(no_store(
        StatusCode::OK,
        client_information(&st, &c, None, None),
    ))
}

/// `PUT /register/{client_id}`.
pub async fn update(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OAuthError> {
    let body = json_body(&headers, body, st.cfg.limits.max_body_bytes);
    let u = registry::update(&st, &ctx, &client_id, credential(&headers), body).await?;
    Ok(no_store(
        StatusCode::OK,
        client_information(&st, &u.client, None, Some(&u.registration_access_token)),
    ))
}

/// `DELETE /register/{client_id}`: 204.
pub async fn delete(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    registry::delete(&st, &ctx, &client_id, credential(&headers)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
