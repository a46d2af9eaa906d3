//! Resolve a `client_id` to an active client: a registered (DCR) client
//! from the store, or a Client ID Metadata Document fetched safely and
//! registered the first time it is seen (`client.registered`, method cimd).

use chrono::Utc;
use regwatch_schemas::{
    Actor, ClientAccessDenied, ClientRegistered, ClientRegistrationRejected, ClientUpdated,
    EventPayload, RegistrationMethod,
};
use serde_json::{Map, Value};

use crate::error::{ErrorCode, OAuthError};
use crate::events::{self, RequestCtx};
use crate::policy::{self, GateContext, IatStatus, Mode, RawRequest};
use crate::store::{ClientRow, ClientStatus};
use crate::AppState;

/// Whether a client id names a metadata document rather than a registration.
pub fn is_url_client_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Why a client cannot be used.
#[derive(Debug)]
pub enum ClientError {
    Unknown,
    Inactive(ClientStatus),
    /// The metadata document could not be fetched or was refused.
    Cimd {
        rule: String,
        description: String,
    },
    Store(OAuthError),
}

impl ClientError {
    pub fn to_oauth(&self) -> OAuthError {
        match self {
            ClientError::Unknown => OAuthError::new(ErrorCode::InvalidClient, "unknown client"),
            ClientError::Inactive(s) => OAuthError::new(
                ErrorCode::InvalidClient,
                format!("client is {}", s.as_str()),
            ),
            ClientError::Cimd { description, .. } => {
                OAuthError::new(ErrorCode::InvalidClient, description.clone())
            }
            ClientError::Store(e) => e.clone(),
        }
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

/// An active client for `client_id`, from `endpoint`.
pub async fn resolve(
    st: &AppState,
    ctx: &RequestCtx,
    client_id: &str,
    endpoint: &str,
) -> Result<ClientRow, ClientError> {
    if client_id.len() > 2048 {
        return Err(ClientError::Unknown);
    }
    let existing = st
        .store
        .get_client(client_id)
        .await
        .map_err(|e| ClientError::Store(e.into()))?;
    if let Some(c) = &existing {
        if c.status != ClientStatus::Active {
            record_denied(st, ctx, client_id, c.status, endpoint, "client_inactive").await;
            return Err(ClientError::Inactive(c.status));
        }
        if c.registration_method == RegistrationMethod::Dcr {
            return Ok(c.clone());
        }
    }
    if !is_url_client_id(client_id) {
        return Err(ClientError::Unknown);
    }
    let Some(fetcher) = &st.cimd else {
        return Err(ClientError::Unknown);
    };
    match fetcher.fetch(client_id).await {
        Ok(doc) => cimd_client(st, ctx, client_id, &doc, existing).await,
        Err(e) => {
            let rule = format!("cimd.{}", e.reason_code());
            let description = format!("client metadata document refused: {e}");
            reject_cimd(st, ctx, client_id, &rule, &description, existing.is_some()).await;
            Err(ClientError::Cimd { rule, description })
        }
    }
}

async fn reject_cimd(
    st: &AppState,
    ctx: &RequestCtx,
    client_id: &str,
    rule: &str,
    description: &str,
    known: bool,
) {
    tracing::info!(rule, source = ?ctx.ip, "client metadata document refused");
    let payload = EventPayload::ClientRegistrationRejected(ClientRegistrationRejected {
        error: "invalid_client".into(),
        error_description: description.to_string(),
        rule: rule.to_string(),
        http_status: 400,
        registration_method: RegistrationMethod::Cimd,
        operation: if known {
            "update".into()
        } else {
            "register".into()
        },
        attempted: None,
        dropped_fields: Vec::new(),
    });
    let cid = policy::truncate_for_display(client_id, 512);
    let mut ev = events::event(
        &st.issuer,
        Some(&cid),
        Actor::client(&cid),
        payload,
        ctx,
        Utc::now(),
    );
    ev.policy = events::deny(rule, vec![]);
    if let Err(e) = st.store.record_event(&ev).await {
        tracing::error!(error = %e, "could not record a rejection event");
    }
}

/// The document through the same policy gate as a registration.
async fn cimd_client(
    st: &AppState,
    ctx: &RequestCtx,
    client_id: &str,
    doc: &regwatch_cimd::CimdDocument,
    existing: Option<ClientRow>,
) -> Result<ClientRow, ClientError> {
    let mut fields = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            fields.insert(k.to_string(), v);
        }
    };
    put("client_name", Some(doc.client_name.clone().into()));
    put("redirect_uris", Some(doc.redirect_uris.clone().into()));
    put("grant_types", doc.grant_types.clone().map(Into::into));
    put("response_types", doc.response_types.clone().map(Into::into));
    put(
        "token_endpoint_auth_method",
        Some(
            doc.token_endpoint_auth_method
                .clone()
                .unwrap_or_else(|| "none".into())
                .into(),
        ),
    );
    put("scope", doc.scope.clone().map(Into::into));
    put("client_uri", doc.client_uri.clone().map(Into::into));
    put("logo_uri", doc.logo_uri.clone().map(Into::into));
    put("tos_uri", doc.tos_uri.clone().map(Into::into));
    put("policy_uri", doc.policy_uri.clone().map(Into::into));
    put("jwks_uri", doc.jwks_uri.clone().map(Into::into));
    put("software_id", doc.software_id.clone().map(Into::into));
    put(
        "software_version",
        doc.software_version.clone().map(Into::into),
    );
    put(
        "application_type",
        doc.application_type.clone().map(Into::into),
    );
    let raw = RawRequest {
        fields,
        dropped: doc.ignored_fields.iter().take(20).cloned().collect(),
    };
    // An initial access token applies to RFC 7591 registration only.
    let flag_level = ctx
        .ip
        .map(|ip| st.sources.flag_level(ip, std::time::Instant::now()))
        .unwrap_or(0);
    let gctx = GateContext {
        mode: Mode::Register,
        flag_level,
        initial_access_token: IatStatus::Valid,
    };
    let accepted = match policy::evaluate(&raw, gctx, &st.cfg.policy, &st.cfg.limits) {
        Ok(a) => a,
        Err(rej) => {
            let rule = format!("cimd.{}", rej.rule);
            reject_cimd(
                st,
                ctx,
                client_id,
                &rule,
                &rej.description,
                existing.is_some(),
            )
            .await;
            return Err(ClientError::Cimd {
                rule,
                description: rej.description,
            });
        }
    };
    if accepted.confidential {
        let d = "a metadata document client cannot use a shared secret".to_string();
        reject_cimd(
            st,
            ctx,
            client_id,
            "cimd.shared_secret",
            &d,
            existing.is_some(),
        )
        .await;
        return Err(ClientError::Cimd {
            rule: "cimd.shared_secret".into(),
            description: d,
        });
    }
    let now = Utc::now();
    let now_ms = now.timestamp_millis();
    let mut signals = accepted.risk_signals.clone();
    if accepted
        .metadata
        .redirect_uris
        .iter()
        .all(|u| regwatch_checks::addr::is_loopback_http(u))
    {
        signals.push("loopback_only_redirects".into());
    }
    match existing {
        None => {
            let row = ClientRow {
                client_id: client_id.to_string(),
                registration_method: RegistrationMethod::Cimd,
                metadata: accepted.metadata.clone(),
                secret_hash: None,
                rat_hash: None,
                status: ClientStatus::Active,
                created_at: now_ms,
                updated_at: now_ms,
                last_seen_at: now_ms,
                consented_at: None,
                source_ip: ctx.ip.map(|i| i.to_string()),
                version: 1,
            };
            let payload = EventPayload::ClientRegistered(ClientRegistered {
                registration_method: RegistrationMethod::Cimd,
                metadata: accepted.metadata,
                confidential: false,
                dropped_fields: accepted.dropped_fields,
                initial_access_token: false,
            });
            let mut ev = events::event(
                &st.issuer,
                Some(client_id),
                Actor::client(client_id),
                payload,
                ctx,
                now,
            );
            ev.policy = events::allow(signals);
            match st.store.insert_client(&row, &ev).await {
                Ok(()) => {
                    tracing::info!(client_id = %client_id, "metadata document client registered");
                    Ok(row)
                }
                // Two first sights at once: the other one registered it.
                Err(_) => match st.store.get_client(client_id).await {
                    Ok(Some(c)) if c.status == ClientStatus::Active => Ok(c),
                    Ok(_) => Err(ClientError::Unknown),
                    Err(e) => Err(ClientError::Store(e.into())),
                },
            }
        }
        Some(current) if current.metadata == accepted.metadata => Ok(current),
        Some(current) => {
            // The document changed: record old → new like an RFC 7592 update.
            let changes = crate::http::diff(&current.metadata, &accepted.metadata);
            if changes.iter().any(|c| c.field == "redirect_uris") {
                signals.push("redirect_uris_changed".into());
            }
            let row = ClientRow {
                metadata: accepted.metadata.clone(),
                updated_at: now_ms,
                last_seen_at: now_ms,
                version: current.version + 1,
                ..current
            };
            let payload = EventPayload::ClientUpdated(ClientUpdated {
                changes,
                metadata: accepted.metadata,
                registration_token_rotated: false,
                dropped_fields: accepted.dropped_fields,
            });
            let mut ev = events::event(
                &st.issuer,
                Some(client_id),
                Actor::client(client_id),
                payload,
                ctx,
                now,
            );
            ev.policy = events::allow(signals);
            st.store
                .update_client(&row, &ev)
                .await
                .map_err(|e| ClientError::Store(e.into()))?;
            Ok(row)
        }
    }
}
