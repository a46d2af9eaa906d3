//! The one place a client row and its event are built: a new client
//! (`client.registered`) and a changed one (`client.updated`), for DCR and
//! CIMD alike. The caller writes the pair in one transaction.

use chrono::{DateTime, Utc};
use regwatch_schemas::{
    Actor, ClientRegistered, ClientUpdated, Envelope, EventPayload, RegistrationMethod,
};

use crate::events::{self, RequestCtx};
use crate::gate::Accepted;
use crate::store::{ClientRow, ClientStatus};
use crate::AppState;

/// A new client's identity and (hashed) credentials.
pub(crate) struct NewClient<'a> {
    pub client_id: &'a str,
    pub method: RegistrationMethod,
    /// SHA-256 of the client secret (confidential DCR clients only).
    pub secret_hash: Option<String>,
    /// SHA-256 of the registration access token (DCR clients only).
    pub rat_hash: Option<String>,
    /// Whether a valid initial access token came with the request.
    pub initial_access_token: bool,
}

/// A new active client and its `client.registered` event.
pub(crate) fn registered(
    st: &AppState,
    ctx: &RequestCtx,
    now: DateTime<Utc>,
    new: NewClient<'_>,
    accepted: Accepted,
    signals: Vec<String>,
) -> (ClientRow, Envelope) {
    let now_ms = now.timestamp_millis();
    let row = ClientRow {
        client_id: new.client_id.to_string(),
        registration_method: new.method,
        metadata: accepted.metadata.clone(),
        secret_hash: new.secret_hash,
        rat_hash: new.rat_hash,
        status: ClientStatus::Active,
        created_at: now_ms,
        updated_at: now_ms,
        last_seen_at: now_ms,
        consented_at: None,
        source_ip: ctx.ip.map(|i| i.to_string()),
        version: 1,
    };
    let payload = EventPayload::ClientRegistered(ClientRegistered {
        registration_method: new.method,
        metadata: accepted.metadata,
        confidential: accepted.confidential,
        dropped_fields: accepted.dropped_fields,
        initial_access_token: new.initial_access_token,
    });
    let mut ev = events::event(
        &st.issuer,
        Some(new.client_id),
        Actor::client(new.client_id),
        payload,
        ctx,
        now,
    );
    ev.policy = events::allow(signals);
    (row, ev)
}

/// `current` with the newly accepted metadata (and, for RFC 7592, a new
/// registration access token), and its `client.updated` event: old → new
/// for every field that changed.
pub(crate) fn updated(
    st: &AppState,
    ctx: &RequestCtx,
    now: DateTime<Utc>,
    current: ClientRow,
    accepted: Accepted,
    new_rat_hash: Option<String>,
    mut signals: Vec<String>,
) -> (ClientRow, Envelope) {
    let now_ms = now.timestamp_millis();
    let changes = events::metadata_changes(&current.metadata, &accepted.metadata);
    if changes.iter().any(|c| c.field == "redirect_uris") {
        signals.push("redirect_uris_changed".into());
    }
    let rotated = new_rat_hash.is_some();
    let row = ClientRow {
        metadata: accepted.metadata.clone(),
        rat_hash: new_rat_hash.or(current.rat_hash.clone()),
        updated_at: now_ms,
        last_seen_at: now_ms,
        version: current.version + 1,
        ..current
    };
    let payload = EventPayload::ClientUpdated(ClientUpdated {
        changes,
        metadata: accepted.metadata,
        registration_token_rotated: rotated,
        dropped_fields: accepted.dropped_fields,
    });
    let mut ev = events::event(
        &st.issuer,
        Some(&row.client_id),
        Actor::client(&row.client_id),
        payload,
        ctx,
        now,
    );
    ev.policy = events::allow(signals);
    (row, ev)
}
