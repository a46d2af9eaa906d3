//! regwatch's read API.
//!
//! `GET /v1/events` and `GET /v1/alerts` page through the event store with
//! filters and an opaque cursor; `/healthz` says the process is up,
//! `/readyz` that the store answers. Everything under `/v1` needs the
//! bearer token (`REGWATCH_API_TOKEN`), compared as a hash in constant
//! time. The API reads; it never writes events.
//!
//! Layout: [`router`] builds the routes over an [`ApiState`]; [`run`]
//! serves them on a bound listener until shutdown. The response bodies
//! ([`EventsResponse`], [`AlertsResponse`]) are this crate's wire shapes,
//! built from the store's pages.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use regwatch_schemas::{Alert, AlertKind, AlertStatus, Envelope, EventType};
use regwatch_store::{AlertPage, AlertQuery, EventPage, EventQuery, EventStore, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The body of `GET /v1/events`: `{"events":[…],"next_cursor":…}`, each
/// event in the contract's envelope shape. `next_cursor` is `null` on the
/// last page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsResponse {
    pub events: Vec<Envelope>,
    pub next_cursor: Option<String>,
}

impl From<EventPage> for EventsResponse {
    fn from(page: EventPage) -> Self {
        EventsResponse {
            events: page.events,
            next_cursor: page.next_cursor,
        }
    }
}

/// The body of `GET /v1/alerts`: `{"alerts":[…],"next_cursor":…}`. A page
/// may hold fewer alerts than asked while `next_cursor` is set; only `null`
/// means the end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertsResponse {
    pub alerts: Vec<Alert>,
    pub next_cursor: Option<String>,
}

impl From<AlertPage> for AlertsResponse {
    fn from(page: AlertPage) -> Self {
        AlertsResponse {
            alerts: page.alerts,
            next_cursor: page.next_cursor,
        }
    }
}

/// Shared state: the store and the hash of the bearer token.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn EventStore>,
    token_hash: [u8; 32],
}

impl ApiState {
    /// `token` must have at least 16 characters and be a bearer token
    /// (`regwatch_checks::bearer::is_token`), or no client could present it.
    pub fn new(store: Arc<dyn EventStore>, token: &str) -> Result<Self, ApiError> {
        if token.len() < 16 {
            return Err(ApiError::Config(
                "REGWATCH_API_TOKEN needs at least 16 characters".into(),
            ));
        }
        if !regwatch_checks::bearer::is_token(token) {
            return Err(ApiError::Config(
                "REGWATCH_API_TOKEN must be a bearer token (RFC 6750: letters, digits, - . _ ~ + /, optional trailing =)".into(),
            ));
        }
        Ok(ApiState {
            store,
            token_hash: Sha256::digest(token.as_bytes()).into(),
        })
    }
}

/// Errors at the API boundary, one table to HTTP.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("the store is unavailable")]
    Unavailable(#[source] StoreError),
    #[error("internal error")]
    Internal(#[source] StoreError),
    #[error("configuration: {0}")]
    Config(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidQuery(m) => ApiError::BadRequest(m),
            e if e.is_retryable() => ApiError::Unavailable(e),
            e => ApiError::Internal(e),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "invalid_token"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) | ApiError::Config(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "server_error")
            }
        };
        if status.is_server_error() {
            tracing::error!(error = ?self, "api error");
        }
        let desc = if status.is_server_error() {
            code.to_string()
        } else {
            self.to_string()
        };
        let mut r = (
            status,
            Json(json!({"error": code, "error_description": desc})),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"regwatch-api\""),
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        r
    }
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/events", get(events))
        .route("/v1/alerts", get(alerts))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024))
        .with_state(state)
}

/// Serve until `shutdown` resolves.
pub async fn run(
    state: ApiState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

fn authorize(st: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| regwatch_checks::bearer::parse(v).ok())
        .ok_or(ApiError::Unauthorized)?;
    let h: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    if bool::from(h.ct_eq(&st.token_hash)) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized)
    }
}

fn time(name: &str, v: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    v.map(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| ApiError::BadRequest(format!("{name} must be an RFC 3339 time")))
    })
    .transpose()
}

fn limit(v: Option<u32>) -> Result<u32, ApiError> {
    match v {
        None => Ok(regwatch_store::DEFAULT_PAGE_LIMIT),
        Some(n) if (1..=regwatch_store::MAX_PAGE_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {}",
            regwatch_store::MAX_PAGE_LIMIT
        ))),
    }
}

fn short(v: Option<String>, name: &str) -> Result<Option<String>, ApiError> {
    match v {
        Some(s) if s.len() > 2048 => Err(ApiError::BadRequest(format!("{name} is too long"))),
        other => Ok(other),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsParams {
    #[serde(rename = "type")]
    event_type: Option<String>,
    client_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn events(
    State(st): State<ApiState>,
    headers: HeaderMap,
    q: Result<Query<EventsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let Query(p) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let event_type = match p.event_type.as_deref() {
        None => None,
        Some(t) => Some(
            EventType::parse(t)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown event type {t:?}")))?,
        ),
    };
    let query = EventQuery {
        event_type,
        client_id: short(p.client_id, "client_id")?,
        since: time("since", p.since.as_deref())?,
        until: time("until", p.until.as_deref())?,
        limit: limit(p.limit)?,
        cursor: short(p.cursor, "cursor")?,
    };
    let page = st.store.query_events(&query).await?;
    Ok(Json(EventsResponse::from(page)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsParams {
    kind: Option<String>,
    client_id: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

fn parse_enum<T: serde::de::DeserializeOwned>(
    name: &str,
    v: Option<&str>,
) -> Result<Option<T>, ApiError> {
    v.map(|s| {
        serde_json::from_value::<T>(json!(s))
            .map_err(|_| ApiError::BadRequest(format!("unknown {name} {s:?}")))
    })
    .transpose()
}

async fn alerts(
    State(st): State<ApiState>,
    headers: HeaderMap,
    q: Result<Query<AlertsParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    authorize(&st, &headers)?;
    let Query(p) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let query = AlertQuery {
        kind: parse_enum::<AlertKind>("kind", p.kind.as_deref())?,
        client_id: short(p.client_id, "client_id")?,
        status: parse_enum::<AlertStatus>("status", p.status.as_deref())?,
        since: time("since", p.since.as_deref())?,
        until: time("until", p.until.as_deref())?,
        limit: limit(p.limit)?,
        cursor: short(p.cursor, "cursor")?,
    };
    let page = st.store.query_alerts(&query).await?;
    Ok(Json(AlertsResponse::from(page)).into_response())
}

async fn ready(State(st): State<ApiState>) -> Response {
    match st.store.ping().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "store not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regwatch_schemas::{Actor, ClientDeleted, EventPayload};

    /// The response bodies' JSON, built from the store's pages (what the
    /// store's conformance suite used to check on the store's own types).
    #[test]
    fn page_bodies_are_the_documented_json() {
        let e = Envelope::new(
            "https://as.example.com",
            Actor::admin("ops"),
            EventPayload::ClientDeleted(ClientDeleted {
                reason: "admin".into(),
                tokens_revoked: 0,
            }),
            Utc::now(),
        );
        let body = EventsResponse::from(EventPage {
            events: vec![e.clone()],
            next_cursor: Some("c1".into()),
        });
        let json = serde_json::to_value(&body).expect("json");
        assert_eq!(json["events"].as_array().map(|a| a.len()), Some(1));
        assert_eq!(json["events"][0]["event_id"], e.event_id.to_string());
        assert_eq!(json["events"][0]["event_type"], "client.deleted");
        assert_eq!(json["next_cursor"], "c1");
        let last = serde_json::to_value(AlertsResponse::from(AlertPage {
            alerts: vec![],
            next_cursor: None,
        }))
        .expect("json");
        assert_eq!(last, json!({"alerts": [], "next_cursor": null}));
    }
}
