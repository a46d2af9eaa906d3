//! The client registry: every change to a client's registration, as
//! operations the HTTP shell calls. Each one admits the source, validates
//! through the registration gate once, builds the client row and its event
//! in one place ([`build`]) and writes them in one transaction; a refusal
//! is recorded as `client.registration_rejected` (or
//! `client.access_denied`) before it is answered.
//!
//! - this file: RFC 7591 registration and RFC 7592 read, update, delete.
//! - [`cimd`]: admitting a client by its metadata document.
//! - [`admin`]: disable, enable, revoke; the admin views.
//! - `build`: the client row and its event.
//!
//! Errors are [`OAuthError`]s, which the shell maps to HTTP in one place.

pub mod admin;
mod build;
pub mod cimd;

use std::future::Future;
use std::time::Instant;

use chrono::Utc;
use regwatch_schemas::{
    Actor, ClientAccessDenied, ClientDeleted, ClientRegistrationRejected, EventPayload,
    RegistrationMethod,
};
use serde_json::Value;

use crate::admission::Admission;
use crate::error::{ErrorCode, OAuthError};
use crate::events::{self, RequestCtx};
use crate::gate::{self, GateContext, IatStatus, Mode, RegistrationRequest, Rejection};
use crate::secrets;
use crate::store::{ClientRow, ClientStatus};
use crate::text::truncate_for_display;
use crate::AppState;

/// The realm of the bearer challenges of registration and management.
const REALM: &str = "regwatch";

/// The `Authorization` header of a registration call, as the shell read it.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// No `Authorization` header.
    Absent,
    /// A header that does not hold a usable bearer token.
    Unreadable,
    Bearer(&'a str),
}

impl<'a> Credential<'a> {
    fn bearer(self) -> Option<&'a str> {
        match self {
            Credential::Bearer(t) => Some(t),
            _ => None,
        }
    }
}

/// A registration or update body as the shell received it. The shell
/// hands it over as a future: the registry reads it only once the source
/// is admitted (and, for management, authenticated).
#[derive(Debug, Clone)]
pub enum Body<B> {
    /// `application/json`, within `limits.max_body_bytes`.
    Json(B),
    /// Another content type.
    NotJson,
    /// Larger than `limits.max_body_bytes` (whatever `Content-Length` said).
    TooLarge,
}

/// A client just registered, with its credentials in clear (shown once).
pub struct Registered {
    pub client: ClientRow,
    pub client_secret: Option<String>,
    pub registration_access_token: String,
}

/// A client just updated, with its new registration access token.
pub struct Updated {
    pub client: ClientRow,
    pub registration_access_token: String,
}

/// A refused registration call: what to record and answer.
struct Refusal<'a> {
    rejection: Rejection,
    raw: Option<&'a RegistrationRequest>,
    client_id: Option<&'a str>,
    operation: &'a str,
    signals: Vec<String>,
    /// False for a repeated rate-limit refusal: one event per source per minute.
    record: bool,
}

impl<'a> Refusal<'a> {
    fn new(
        rejection: Rejection,
        raw: Option<&'a RegistrationRequest>,
        client_id: Option<&'a str>,
        operation: &'a str,
    ) -> Self {
        Refusal {
            rejection,
            raw,
            client_id,
            operation,
            signals: Vec::new(),
            record: true,
        }
    }
}

/// The RFC 7591 answer to a rejection: its code and status, with a bearer
/// challenge when the status is 401.
pub fn rejection_error(r: &Rejection) -> OAuthError {
    let status =
        axum::http::StatusCode::from_u16(r.status).unwrap_or(axum::http::StatusCode::BAD_REQUEST);
    let e = OAuthError::new(r.error, r.description.clone()).with_status(status);
    if status == axum::http::StatusCode::UNAUTHORIZED {
        e.bearer_challenge(REALM, true)
    } else {
        e
    }
}

/// Record a refused registration or update (the rejection event) and
/// give its error. A failure to record is logged and does not change the
/// answer: the request was refused either way.
async fn refuse(st: &AppState, ctx: &RequestCtx, r: Refusal<'_>) -> OAuthError {
    let rej = &r.rejection;
    tracing::info!(rule = rej.rule, error = rej.error.as_str(), source = ?ctx.ip, "registration refused");
    if r.record {
        let mut signals = r.signals;
        if r.raw.is_some_and(|raw| !raw.dropped.is_empty()) {
            signals.push("unknown_fields".into());
        }
        let payload = EventPayload::ClientRegistrationRejected(ClientRegistrationRejected {
            error: rej.error.as_str().to_string(),
            error_description: rej.description.clone(),
            rule: rej.rule.to_string(),
            http_status: rej.status,
            registration_method: RegistrationMethod::Dcr,
            operation: r.operation.to_string(),
            attempted: r.raw.map(|raw| raw.attempted(&st.cfg.limits)),
            dropped_fields: r.raw.map(|raw| raw.dropped.clone()).unwrap_or_default(),
        });
        let actor = r
            .client_id
            .map(Actor::client)
            .unwrap_or_else(Actor::anonymous_client);
        let mut ev = events::event(&st.issuer, r.client_id, actor, payload, ctx, Utc::now());
        ev.policy = events::deny(rej.rule, signals);
        if let Err(e) = st.store.record_event(&ev).await {
            tracing::error!(error = %e, "could not record a rejection event");
        }
    }
    rejection_error(rej)
}

/// Per-source admission, shared by every DCR endpoint: the source's flag
/// level, or the recorded refusal (429 with `Retry-After`, or 403).
async fn admit(
    st: &AppState,
    ctx: &RequestCtx,
    operation: &str,
    client_id: Option<&str>,
) -> Result<u8, OAuthError> {
    let (rejection, flag_level, record, retry_after) =
        match st.admission.admit(ctx.ip, Instant::now()) {
            Admission::Allowed { flag_level } => return Ok(flag_level),
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
                (rej, flag_level, record, Some(retry_after_secs))
            }
            Admission::Blocked { flag_level, record } => {
                let rej = Rejection::new(
                    ErrorCode::AccessDenied,
                    "source.blocked",
                    "this source is blocked",
                );
                (Rejection { status: 403, ..rej }, flag_level, record, None)
            }
        };
    let refusal = Refusal {
        signals: vec![format!("flag_level:{flag_level}")],
        record,
        ..Refusal::new(rejection, None, client_id, operation)
    };
    let mut e = refuse(st, ctx, refusal).await;
    e.retry_after = retry_after;
    Err(e)
}

/// The body of a registration or update, parsed by the gate; a refusal
/// (content type, size, JSON shape) is recorded here.
async fn read_request<B: AsRef<[u8]>>(
    st: &AppState,
    ctx: &RequestCtx,
    body: impl Future<Output = Result<Body<B>, OAuthError>>,
    mode: Mode,
    client_id: Option<&str>,
) -> Result<RegistrationRequest, OAuthError> {
    let op = if mode == Mode::Register {
        "register"
    } else {
        "update"
    };
    let limits = &st.cfg.limits;
    let refused = match body.await? {
        Body::NotJson => Rejection::new(
            ErrorCode::InvalidClientMetadata,
            "request.content_type",
            "Content-Type must be application/json",
        ),
        Body::TooLarge => Rejection {
            status: 413,
            ..Rejection::new(
                ErrorCode::InvalidClientMetadata,
                "request.too_large",
                format!("request body exceeds {} bytes", limits.max_body_bytes),
            )
        },
        Body::Json(bytes) => match gate::parse(bytes.as_ref(), limits, mode) {
            Ok(raw) => return Ok(raw),
            Err(rej) => rej,
        },
    };
    Err(refuse(st, ctx, Refusal::new(refused, None, client_id, op)).await)
}

/// RFC 7591 registration: admit the source, check the initial access
/// token and the metadata through the gate, then store the client and
/// `client.registered` together (through the group-commit writer).
pub async fn register<B: AsRef<[u8]>>(
    st: &AppState,
    ctx: &RequestCtx,
    credential: Credential<'_>,
    body: impl Future<Output = Result<Body<B>, OAuthError>>,
) -> Result<Registered, OAuthError> {
    let flag_level = admit(st, ctx, "register", None).await?;
    let iat = match credential {
        Credential::Absent => IatStatus::Absent,
        Credential::Unreadable => IatStatus::Invalid,
        Credential::Bearer(t) if secrets::matches_any(t, &st.iat_hashes) => IatStatus::Valid,
        Credential::Bearer(_) => IatStatus::Invalid,
    };
    let raw = read_request(st, ctx, body, Mode::Register, None).await?;
    let gctx = GateContext {
        mode: Mode::Register,
        flag_level,
        initial_access_token: iat,
    };
    let accepted = match gate::evaluate(&raw, gctx, &st.cfg.policy, &st.cfg.limits) {
        Ok(a) => a,
        Err(rej) => {
            let r = Refusal::new(rej, Some(&raw), None, "register");
            return Err(refuse(st, ctx, r).await);
        }
    };
    let client_id = secrets::new_client_id();
    let secret = accepted.confidential.then(|| secrets::new_token("rws_"));
    let rat = secrets::new_token("rwr_");
    let signals = accepted.risk_signals.clone();
    let new = build::NewClient {
        client_id: &client_id,
        method: RegistrationMethod::Dcr,
        secret_hash: secret.as_deref().map(|s| secrets::hash_token(s).0),
        rat_hash: Some(secrets::hash_token(&rat).0),
        initial_access_token: iat == IatStatus::Valid,
    };
    let (row, ev) = build::registered(st, ctx, Utc::now(), new, accepted, signals);
    st.writer.insert(row.clone(), ev).await?;
    tracing::info!(client_id = %client_id, source = ?ctx.ip, "client registered");
    Ok(Registered {
        client: row,
        client_secret: secret,
        registration_access_token: rat,
    })
}

/// Authenticate an RFC 7592 call: the client exists, is active, and the
/// bearer token is its registration access token. An inactive client
/// that keeps calling is recorded (`client.access_denied`).
async fn authenticate(
    st: &AppState,
    ctx: &RequestCtx,
    credential: Credential<'_>,
    client_id: &str,
) -> Result<ClientRow, OAuthError> {
    let Some(token) = credential.bearer() else {
        return Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "a registration access token is required",
        )
        .bearer_challenge(REALM, false));
    };
    let invalid = || {
        OAuthError::new(
            ErrorCode::InvalidToken,
            "the registration access token is invalid",
        )
        .bearer_challenge(REALM, true)
    };
    let Some(client) = st.store.get_client(client_id).await? else {
        tracing::info!(client_id = %truncate_for_display(client_id, 64), source = ?ctx.ip, "management call for an unknown client");
        return Err(invalid());
    };
    let presented = secrets::hash_token(token);
    let ok = client
        .rat_hash
        .as_ref()
        .is_some_and(|h| secrets::TokenHash(h.clone()).ct_eq(&presented));
    if client.status != ClientStatus::Active {
        // A client that is gone keeps calling: the revoked_client_activity signal.
        let reason = if ok {
            "client_inactive"
        } else {
            "client_inactive_bad_token"
        };
        record_denied(
            st,
            ctx,
            client_id,
            client.status,
            "registration_management",
            reason,
        )
        .await;
        return Err(if client.status == ClientStatus::Disabled {
            OAuthError::new(ErrorCode::AccessDenied, "this client is disabled")
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

/// RFC 7592 read. The secret is stored hashed, so it cannot be returned;
/// the registration access token is not rotated on read. Slides the TTL.
pub async fn read(
    st: &AppState,
    ctx: &RequestCtx,
    client_id: &str,
    credential: Credential<'_>,
) -> Result<ClientRow, OAuthError> {
    admit(st, ctx, "read", Some(client_id)).await?;
    let c = authenticate(st, ctx, credential, client_id).await?;
    if let Err(e) = st
        .store
        .touch(client_id, Utc::now().timestamp_millis())
        .await
    {
        tracing::warn!(error = %e, "could not slide the idle TTL");
    }
    Ok(c)
}

/// RFC 7592 update: replace the metadata through the same gate, rotate
/// the registration access token.
pub async fn update<B: AsRef<[u8]>>(
    st: &AppState,
    ctx: &RequestCtx,
    client_id: &str,
    credential: Credential<'_>,
    body: impl Future<Output = Result<Body<B>, OAuthError>>,
) -> Result<Updated, OAuthError> {
    let flag_level = admit(st, ctx, "update", Some(client_id)).await?;
    let current = authenticate(st, ctx, credential, client_id).await?;
    let cid = Some(client_id);
    let raw = read_request(st, ctx, body, Mode::Update, cid).await?;
    let refused = |rej| Refusal::new(rej, Some(&raw), cid, "update");
    if raw.client_id.as_ref().and_then(Value::as_str) != Some(client_id) {
        let rej = Rejection::new(
            ErrorCode::InvalidClientMetadata,
            "update.client_id_mismatch",
            "client_id must be present and match the client being updated (RFC 7592 §2.2)",
        );
        return Err(refuse(st, ctx, refused(rej)).await);
    }
    if let Some(s) = &raw.client_secret {
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
            return Err(refuse(st, ctx, refused(rej)).await);
        }
    }
    let gctx = GateContext {
        mode: Mode::Update,
        flag_level,
        initial_access_token: IatStatus::Absent,
    };
    let accepted = match gate::evaluate(&raw, gctx, &st.cfg.policy, &st.cfg.limits) {
        Ok(a) => a,
        Err(rej) => return Err(refuse(st, ctx, refused(rej)).await),
    };
    if accepted.confidential != current.secret_hash.is_some() {
        let rej = Rejection::new(
            ErrorCode::InvalidClientMetadata,
            "update.auth_method_class_change",
            "a client cannot switch between public and confidential; register a new client",
        );
        return Err(refuse(st, ctx, refused(rej)).await);
    }
    let rat = secrets::new_token("rwr_");
    let signals = accepted.risk_signals.clone();
    let rat_hash = Some(secrets::hash_token(&rat).0);
    let (row, ev) = build::updated(st, ctx, Utc::now(), current, accepted, rat_hash, signals);
    if !st.store.update_client(&row, &ev).await? {
        return Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "the client changed during the update; retry",
        )
        .with_status(axum::http::StatusCode::CONFLICT));
    }
    Ok(Updated {
        client: row,
        registration_access_token: rat,
    })
}

/// RFC 7592 delete: the client, its secret, its registration token and
/// every token issued to it stop working.
pub async fn delete(
    st: &AppState,
    ctx: &RequestCtx,
    client_id: &str,
    credential: Credential<'_>,
) -> Result<(), OAuthError> {
    admit(st, ctx, "delete", Some(client_id)).await?;
    authenticate(st, ctx, credential, client_id).await?;
    let now = Utc::now();
    let res = st
        .store
        .transition(
            client_id,
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
                    Some(client_id),
                    Actor::client(client_id),
                    payload,
                    ctx,
                    now,
                )
            },
        )
        .await?;
    match res {
        Some(_) => {
            tracing::info!(client_id = %client_id, "client deleted");
            Ok(())
        }
        None => Err(OAuthError::new(
            ErrorCode::InvalidToken,
            "the registration access token is invalid",
        )
        .bearer_challenge(REALM, true)),
    }
}

/// Record that an inactive client tried an endpoint.
pub async fn record_denied(
    st: &AppState,
    ctx: &RequestCtx,
    client_id: &str,
    status: ClientStatus,
    endpoint: &str,
    reason: &str,
) {
    let payload = EventPayload::ClientAccessDenied(ClientAccessDenied {
        endpoint: endpoint.into(),
        client_status: status.as_str().into(),
        reason: reason.into(),
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
}
