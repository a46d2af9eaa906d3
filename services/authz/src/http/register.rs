//! RFC 7591 registration and RFC 7592 management (read, update, delete).

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use regwatch_schemas::{
    Actor, ClientAccessDenied, ClientDeleted, ClientMetadata, ClientRegistered,
    ClientRegistrationRejected, ClientUpdated, EventPayload, FieldChange, RegistrationMethod,
};
use serde_json::{Map, Value};

use super::{bearer, Ctx};
use crate::error::{ErrorCode, OAuthError};
use crate::events::{self, RequestCtx};
use crate::policy::{self, GateContext, IatStatus, Mode, RawRequest, Rejection};
use crate::secrets;
use crate::sources::Admission;
use crate::store::{ClientRow, ClientStatus};
use crate::AppState;

const REALM: &str = "regwatch";

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

fn rejection_response(r: &Rejection) -> OAuthError {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    let e = OAuthError::new(r.error, r.description.clone()).with_status(status);
    if status == StatusCode::UNAUTHORIZED {
        e.bearer_challenge(REALM, true)
    } else {
        e
    }
}

/// Record a refused registration or update (the rejection event) and
/// answer with its error. A failure to record is logged and does not
/// change the answer: the request was refused either way.
#[allow(clippy::too_many_arguments)]
async fn reject(
    st: &AppState,
    ctx: &RequestCtx,
    rej: Rejection,
    raw: Option<&RawRequest>,
    client_id: Option<&str>,
    operation: &str,
    mut signals: Vec<String>,
    record: bool,
) -> Response {
    tracing::info!(rule = rej.rule, error = rej.error.as_str(), source = ?ctx.ip, "registration refused");
    if record {
        if raw.is_some_and(|r| !r.dropped.is_empty()) {
            signals.push("unknown_fields".into());
        }
        let payload = EventPayload::ClientRegistrationRejected(ClientRegistrationRejected {
            error: rej.error.as_str().to_string(),
            error_description: rej.description.clone(),
            rule: rej.rule.to_string(),
            http_status: rej.status,
            registration_method: RegistrationMethod::Dcr,
            operation: operation.to_string(),
            attempted: raw.map(|r| r.attempted(&st.cfg.limits)),
            dropped_fields: raw.map(|r| r.dropped.clone()).unwrap_or_default(),
        });
        let actor = client_id
            .map(Actor::client)
            .unwrap_or_else(Actor::anonymous_client);
        let mut ev = events::event(&st.issuer, client_id, actor, payload, ctx, Utc::now());
        ev.policy = events::deny(rej.rule, signals);
        if let Err(e) = st.store.record_event(&ev).await {
            tracing::error!(error = %e, "could not record a rejection event");
        }
    }
    rejection_response(&rej).into_response()
}

/// Per-source admission, shared by every DCR endpoint.
async fn admit(
    st: &AppState,
    ctx: &RequestCtx,
    operation: &str,
    client_id: Option<&str>,
) -> Result<u8, Response> {
    match st.sources.admit(ctx.ip, Instant::now()) {
        Admission::Allowed { flag_level } => Ok(flag_level),
        Admission::Limited {
            retry_after_secs,
            flag_level,
            record,
        } => {
            let rej = Rejection::new(
                ErrorCode::RateLimited,
                "rate_limit.source",
                format!("too many requests from this source; retry in {retry_after_secs} s"),
            );
            let rej = Rejection { status: 429, ..rej };
            let mut res = reject(
                st,
                ctx,
                rej,
                None,
                client_id,
                operation,
                vec![format!("flag_level:{flag_level}")],
                record,
            )
            .await;
            if let Ok(v) = header::HeaderValue::from_str(&retry_after_secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Err(res)
        }
        Admission::Blocked { flag_level, record } => {
            let rej = Rejection::new(
                ErrorCode::AccessDenied,
                "source.blocked",
                "this source is blocked",
            );
            let rej = Rejection { status: 403, ..rej };
            Err(reject(
                st,
                ctx,
                rej,
                None,
                client_id,
                operation,
                vec![format!("flag_level:{flag_level}")],
                record,
            )
            .await)
        }
    }
}

/// Content type, size and JSON shape of a registration or update body;
/// a refusal is recorded and answered here.
async fn read_request(
    st: &AppState,
    ctx: &RequestCtx,
    headers: &HeaderMap,
    body: Body,
    mode: Mode,
    client_id: Option<&str>,
) -> Result<RawRequest, Response> {
    let op = if mode == Mode::Register {
        "register"
    } else {
        "update"
    };
    let limits = &st.cfg.limits;
    let refused = if !is_json(headers) {
        Rejection::new(
            ErrorCode::InvalidClientMetadata,
            "request.content_type",
            "Content-Type must be application/json",
        )
    } else {
        match read_body(body, limits.max_body_bytes).await {
            Ok(Some(bytes)) => match policy::parse(&bytes, limits, mode) {
                Ok(raw) => return Ok(raw),
                Err(rej) => rej,
            },
            Ok(None) => Rejection {
                status: 413,
                ..Rejection::new(
                    ErrorCode::InvalidClientMetadata,
                    "request.too_large",
                    format!("request body exceeds {} bytes", limits.max_body_bytes),
                )
            },
            Err(e) => return Err(e.into_response()),
        }
    };
    Err(reject(st, ctx, refused, None, client_id, op, vec![], true).await)
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
) -> Response {
    let flag_level = match admit(&st, &ctx, "register", None).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let iat = match bearer(&headers) {
        None if headers.contains_key(header::AUTHORIZATION) => IatStatus::Invalid,
        None => IatStatus::Absent,
        Some(t) if secrets::matches_any(t, &st.iat_hashes) => IatStatus::Valid,
        Some(_) => IatStatus::Invalid,
    };
    let limits = &st.cfg.limits;
    let raw = match read_request(&st, &ctx, &headers, body, Mode::Register, None).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let gctx = GateContext {
        mode: Mode::Register,
        flag_level,
        initial_access_token: iat,
    };
    let accepted = match policy::evaluate(&raw, gctx, &st.cfg.policy, limits) {
        Ok(a) => a,
        Err(rej) => {
            return reject(&st, &ctx, rej, Some(&raw), None, "register", vec![], true).await
        }
    };

    let now = Utc::now();
    let now_ms = now.timestamp_millis();
    let client_id = secrets::new_client_id();
    let secret = accepted.confidential.then(|| secrets::new_token("rws_"));
    let rat = secrets::new_token("rwr_");
    let row = ClientRow {
        client_id: client_id.clone(),
        registration_method: RegistrationMethod::Dcr,
        metadata: accepted.metadata.clone(),
        secret_hash: secret.as_deref().map(|s| secrets::hash_token(s).0),
        rat_hash: Some(secrets::hash_token(&rat).0),
        status: ClientStatus::Active,
        created_at: now_ms,
        updated_at: now_ms,
        last_seen_at: now_ms,
        consented_at: None,
        source_ip: ctx.ip.map(|i| i.to_string()),
        version: 1,
    };
    let payload = EventPayload::ClientRegistered(ClientRegistered {
        registration_method: RegistrationMethod::Dcr,
        metadata: accepted.metadata,
        confidential: accepted.confidential,
        dropped_fields: accepted.dropped_fields,
        initial_access_token: iat == IatStatus::Valid,
    });
    let mut ev = events::event(
        &st.issuer,
        Some(&client_id),
        Actor::client(&client_id),
        payload,
        &ctx,
        now,
    );
    ev.policy = events::allow(accepted.risk_signals);
    if let Err(e) = st.writer.insert(row.clone(), ev).await {
        return OAuthError::from(e).into_response();
    }
    tracing::info!(client_id = %client_id, source = ?ctx.ip, "client registered");
    no_store(
        StatusCode::CREATED,
        client_information(&st, &row, secret.as_deref(), Some(&rat)),
    )
}

/// Authenticate an RFC 7592 call: the client exists, is active, and the
/// bearer token is its registration access token.
async fn authenticate(
    st: &AppState,
    ctx: &RequestCtx,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<ClientRow, Response> {
    let Some(token) = bearer(headers) else {
        return Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "a registration access token is required",
        )
        .bearer_challenge(REALM, false)
        .into_response());
    };
    let invalid = || {
        OAuthError::new(
            ErrorCode::InvalidToken,
            "the registration access token is invalid",
        )
        .bearer_challenge(REALM, true)
        .into_response()
    };
    let client = match st.store.get_client(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            tracing::info!(client_id = %crate::policy::truncate_for_display(client_id, 64), source = ?ctx.ip, "management call for an unknown client");
            return Err(invalid());
        }
        Err(e) => return Err(OAuthError::from(e).into_response()),
    };
    let presented = secrets::hash_token(token);
    let ok = client
        .rat_hash
        .as_ref()
        .is_some_and(|h| secrets::TokenHash(h.clone()).ct_eq(&presented));
    if client.status != ClientStatus::Active {
        // A client that is gone keeps calling: the revoked_client_activity signal.
        let payload = EventPayload::ClientAccessDenied(ClientAccessDenied {
            endpoint: "registration_management".into(),
            client_status: client.status.as_str().into(),
            reason: if ok {
                "client_inactive".into()
            } else {
                "client_inactive_bad_token".into()
            },
        });
        let ev = events::event(
            &st.issuer,
            Some(client_id),
            Actor::client(client_id),
            payload,
            ctx,
            Utc::now(),
        );
        if let Err(e) = st.store.record_event(&ev).await {
            tracing::error!(error = %e, "could not record an access-denied event");
        }
        return Err(if client.status == ClientStatus::Disabled {
            OAuthError::new(ErrorCode::AccessDenied, "this client is disabled").into_response()
        } else {
            invalid()
        });
    }
    if !ok {
        tracing::info!(client_id = %client_id, source = ?ctx.ip, "bad registration access token");
        return Err(invalid());
    }
    Ok(client)
}

/// `GET /register/{client_id}`. The secret is stored hashed, so it cannot
/// be returned; the registration access token is not rotated on read.
pub async fn read(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(&st, &ctx, "read", Some(&client_id)).await {
        return r;
    }
    let c = match authenticate(&st, &ctx, &headers, &client_id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(e) = st
        .store
        .touch(&client_id, Utc::now().timestamp_millis())
        .await
    {
        tracing::warn!(error = %e, "could not slide the idle TTL");
    }
    no_store(StatusCode::OK, client_information(&st, &c, None, None))
}

/// old → new for every metadata field that differs.
pub fn diff(old: &ClientMetadata, new: &ClientMetadata) -> Vec<FieldChange> {
    let (Ok(Value::Object(o)), Ok(Value::Object(n))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, nv) in &n {
        let ov = o.get(k).cloned().unwrap_or(Value::Null);
        if &ov != nv {
            out.push(FieldChange {
                field: k.clone(),
                old: ov,
                new: nv.clone(),
            });
        }
    }
    out
}

/// `PUT /register/{client_id}`: replace the metadata through the same
/// policy gate, rotate the registration access token.
pub async fn update(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let flag_level = match admit(&st, &ctx, "update", Some(&client_id)).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let current = match authenticate(&st, &ctx, &headers, &client_id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let cid = Some(client_id.as_str());
    let limits = &st.cfg.limits;
    let raw = match read_request(&st, &ctx, &headers, body, Mode::Update, cid).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if raw.fields.get("client_id").and_then(Value::as_str) != Some(client_id.as_str()) {
        let rej = Rejection::new(
            ErrorCode::InvalidClientMetadata,
            "update.client_id_mismatch",
            "client_id must be present and match the client being updated (RFC 7592 §2.2)",
        );
        return reject(&st, &ctx, rej, Some(&raw), cid, "update", vec![], true).await;
    }
    if let Some(s) = raw.fields.get("client_secret") {
        let matches = match (s.as_str(), &current.secret_hash) {
            (Some(s), Some(h)) => secrets::hash_token(s).ct_eq(&secrets::TokenHash(h.clone())),
            _ => false,
        };
        if !matches {
            let rej = Rejection::new(
                ErrorCode::InvalidClientMetadata,
                "update.client_secret_mismatch",
                "client_secret does not match the current secret",
            );
            return reject(&st, &ctx, rej, Some(&raw), cid, "update", vec![], true).await;
        }
    }
    let gctx = GateContext {
        mode: Mode::Update,
        flag_level,
        initial_access_token: IatStatus::Absent,
    };
    let accepted = match policy::evaluate(&raw, gctx, &st.cfg.policy, limits) {
        Ok(a) => a,
        Err(rej) => return reject(&st, &ctx, rej, Some(&raw), cid, "update", vec![], true).await,
    };
    if accepted.confidential != current.secret_hash.is_some() {
        let rej = Rejection::new(
            ErrorCode::InvalidClientMetadata,
            "update.auth_method_class_change",
            "a client cannot switch between public and confidential; register a new client",
        );
        return reject(&st, &ctx, rej, Some(&raw), cid, "update", vec![], true).await;
    }
    let now = Utc::now();
    let now_ms = now.timestamp_millis();
    let rat = secrets::new_token("rwr_");
    let changes = diff(&current.metadata, &accepted.metadata);
    let row = ClientRow {
        metadata: accepted.metadata.clone(),
        rat_hash: Some(secrets::hash_token(&rat).0),
        updated_at: now_ms,
        last_seen_at: now_ms,
        version: current.version + 1,
        ..current
    };
    let mut signals = accepted.risk_signals;
    if changes.iter().any(|c| c.field == "redirect_uris") {
        signals.push("redirect_uris_changed".into());
    }
    let payload = EventPayload::ClientUpdated(ClientUpdated {
        changes,
        metadata: accepted.metadata,
        registration_token_rotated: true,
        dropped_fields: accepted.dropped_fields,
    });
    let mut ev = events::event(
        &st.issuer,
        cid,
        Actor::client(&client_id),
        payload,
        &ctx,
        now,
    );
    ev.policy = events::allow(signals);
    match st.store.update_client(&row, &ev).await {
        Ok(true) => no_store(
            StatusCode::OK,
            client_information(&st, &row, None, Some(&rat)),
        ),
        Ok(false) => OAuthError::new(
            ErrorCode::InvalidRequest,
            "the client changed during the update; retry",
        )
        .with_status(StatusCode::CONFLICT)
        .into_response(),
        Err(e) => OAuthError::from(e).into_response(),
    }
}

/// `DELETE /register/{client_id}`: 204; the client, its secret, its
/// registration token and every token issued to it stop working.
pub async fn delete(
    State(st): State<AppState>,
    Ctx(ctx): Ctx,
    Path(client_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = admit(&st, &ctx, "delete", Some(&client_id)).await {
        return r;
    }
    if let Err(r) = authenticate(&st, &ctx, &headers, &client_id).await {
        return r;
    }
    let now = Utc::now();
    let res = st
        .store
        .transition(
            &client_id,
            &[ClientStatus::Active],
            ClientStatus::Deleted,
            true,
            now.timestamp_millis(),
            |n| {
                let payload = EventPayload::ClientDeleted(ClientDeleted {
                    reason: "rfc7592_delete".into(),
                    tokens_revoked: n,
                });
                events::event(
                    &st.issuer,
                    Some(&client_id),
                    Actor::client(&client_id),
                    payload,
                    &ctx,
                    now,
                )
            },
        )
        .await;
    match res {
        Ok(Some(_)) => {
            tracing::info!(client_id = %client_id, "client deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(None) => OAuthError::new(
            ErrorCode::InvalidToken,
            "the registration access token is invalid",
        )
        .bearer_challenge(REALM, true)
        .into_response(),
        Err(e) => OAuthError::from(e).into_response(),
    }
}
