//! Admitting a client by its Client ID Metadata Document: fetched safely
//! (the `regwatch-cimd` crate), put through the same gate as an RFC 7591
//! registration, and registered the first time it is seen
//! (`client.registered`, method cimd) or updated when the document
//! changed (`client.updated`). Refusals are recorded like DCR refusals.

use chrono::Utc;
use regwatch_cimd::{CimdDocument, CimdFetcher};
use regwatch_schemas::{Actor, ClientRegistrationRejected, EventPayload, RegistrationMethod};

use super::build;
use crate::events::{self, RequestCtx};
use crate::gate::{self, GateContext, IatStatus, Mode, RegistrationRequest};
use crate::store::{ClientRow, ClientStatus, StoreError};
use crate::text::truncate_for_display;
use crate::AppState;

/// Why a metadata document client was not admitted.
#[derive(Debug)]
pub enum AdmitError {
    /// The document could not be fetched or was refused (recorded).
    Refused {
        rule: String,
        description: String,
    },
    /// Another request registered it at the same moment, and it is not
    /// active any more.
    Gone,
    Store(StoreError),
}

/// Fetch `client_id`'s document and admit it; `existing` is the client
/// as stored when it was seen before.
pub async fn admit(
    st: &AppState,
    ctx: &RequestCtx,
    fetcher: &CimdFetcher,
    client_id: &str,
    existing: Option<ClientRow>,
) -> Result<ClientRow, AdmitError> {
    match fetcher.fetch(client_id).await {
        Ok(doc) => admit_document(st, ctx, client_id, &doc, existing).await,
        Err(e) => {
            let rule = format!("cimd.{}", e.reason_code());
            let description = format!("client metadata document refused: {e}");
            Err(refuse(st, ctx, client_id, rule, description, existing.is_some()).await)
        }
    }
}

/// Record a refused document and give the error.
async fn refuse(
    st: &AppState,
    ctx: &RequestCtx,
    client_id: &str,
    rule: String,
    description: String,
    known: bool,
) -> AdmitError {
    tracing::info!(rule, source = ?ctx.ip, "client metadata document refused");
    let payload = EventPayload::ClientRegistrationRejected(ClientRegistrationRejected {
        error: "invalid_client".into(),
        error_description: description.clone(),
        rule: rule.clone(),
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
    let cid = truncate_for_display(client_id, 512);
    let mut ev = events::event(
        &st.issuer,
        Some(&cid),
        Actor::client(&cid),
        payload,
        ctx,
        Utc::now(),
    );
    ev.policy = events::deny(&rule, vec![]);
    if let Err(e) = st.store.record_event(&ev).await {
        tracing::error!(error = %e, "could not record a rejection event");
    }
    AdmitError::Refused { rule, description }
}

/// The document through the same gate as a registration.
async fn admit_document(
    st: &AppState,
    ctx: &RequestCtx,
    client_id: &str,
    doc: &CimdDocument,
    existing: Option<ClientRow>,
) -> Result<ClientRow, AdmitError> {
    // The typed document, straight into the gate's typed request.
    let req = RegistrationRequest::from_cimd(doc);
    // An initial access token applies to RFC 7591 registration only.
    let flag_level = ctx
        .ip
        .map(|ip| st.admission.flag_level(ip, std::time::Instant::now()))
        .unwrap_or(0);
    let gctx = GateContext {
        mode: Mode::Register,
        flag_level,
        initial_access_token: IatStatus::Valid,
    };
    let known = existing.is_some();
    let accepted = match gate::evaluate(&req, gctx, &st.cfg.policy, &st.cfg.limits) {
        Ok(a) => a,
        Err(rej) => {
            let rule = format!("cimd.{}", rej.rule);
            return Err(refuse(st, ctx, client_id, rule, rej.description, known).await);
        }
    };
    if accepted.confidential {
        let d = "a metadata document client cannot use a shared secret".to_string();
        return Err(refuse(st, ctx, client_id, "cimd.shared_secret".into(), d, known).await);
    }
    let now = Utc::now();
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
            let new = build::NewClient {
                client_id,
                method: RegistrationMethod::Cimd,
                secret_hash: None,
                rat_hash: None,
                initial_access_token: false,
            };
            let (row, ev) = build::registered(st, ctx, now, new, accepted, signals);
            match st.store.insert_client(&row, &ev).await {
                Ok(()) => {
                    tracing::info!(client_id = %client_id, "metadata document client registered");
                    Ok(row)
                }
                // Two first sights at once: the other one registered it.
                Err(_) => match st.store.get_client(client_id).await {
                    Ok(Some(c)) if c.status == ClientStatus::Active => Ok(c),
                    Ok(_) => Err(AdmitError::Gone),
                    Err(e) => Err(AdmitError::Store(e)),
                },
            }
        }
        Some(current) if current.metadata == accepted.metadata => Ok(current),
        Some(current) => {
            // The document changed: record old → new like an RFC 7592 update.
            let (row, ev) = build::updated(st, ctx, now, current, accepted, None, signals);
            st.store
                .update_client(&row, &ev)
                .await
                .map_err(AdmitError::Store)?;
            Ok(row)
        }
    }
}
