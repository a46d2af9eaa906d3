//! Events as OCSF records. Most event types give one record; a
//! registration (accepted or rejected) gives two: the client's lifecycle
//! step (Entity Management) and the HTTP call that asked for it (API
//! Activity). The first carries the event id as `metadata.uid`, the second
//! `<event id>/api`; both carry it as `metadata.original_event_uid`.

use regwatch_schemas::{
    ClientAccessDenied, ClientDeleted, ClientDisabled, ClientExpired, ClientMetadata,
    ClientRegistered, ClientRegistrationRejected, ClientRevoked, ClientUpdated, ConsentDenied,
    ConsentGranted, Envelope, EventPayload, RegistrationMethod, TokenIssued, TokenRefreshed,
    TokenRevoked, ToolCalled, ToolDecision,
};
use serde_json::{json, Map, Value};

use super::{
    actor, client_data, client_entity, event_metadata, required_src_endpoint, src_endpoint, status,
    unmapped, user_agent, Activity, Class, Record, AI_OPERATION_PROFILE,
};
use crate::mapping::{event_names, event_severity, event_succeeded};

const EM: Class = Class::EntityManagement;
const API: Class = Class::ApiActivity;
const UAM: Class = Class::UserAccessManagement;
const AUTH: Class = Class::Authentication;

pub const EM_CREATE: Activity = Activity::new(EM, 1, "Create");
pub const EM_UPDATE: Activity = Activity::new(EM, 3, "Update");
pub const EM_DELETE: Activity = Activity::new(EM, 4, "Delete");
pub const EM_ENABLE: Activity = Activity::new(EM, 8, "Enable");
pub const EM_DISABLE: Activity = Activity::new(EM, 9, "Disable");
pub const EM_DEACTIVATE: Activity = Activity::new(EM, 11, "Deactivate");
pub const API_CREATE: Activity = Activity::new(API, 1, "Create");
pub const API_UPDATE: Activity = Activity::new(API, 3, "Update");
/// Tool calls and refused endpoint calls: OCSF's Create/Read/Update/Delete
/// would claim to know what the tool or endpoint does; we do not.
pub const API_TOOL_CALL: Activity = Activity::new(API, 99, "Tool Call");
pub const API_ACCESS: Activity = Activity::new(API, 99, "Access");
pub const UAM_ASSIGN: Activity = Activity::new(UAM, 1, "Assign Privileges");
pub const AUTH_LOGON: Activity = Activity::new(AUTH, 1, "Logon");
pub const AUTH_LOGOFF: Activity = Activity::new(AUTH, 2, "Logoff");
/// A refresh renews an existing grant without a new sign-in.
pub const AUTH_RENEW: Activity = Activity::new(AUTH, 5, "Service Ticket Renew");

/// OCSF `auth_protocol_id` of OAuth 2.0.
const OAUTH2_PROTOCOL_ID: u8 = 6;

/// The OCSF records of one event, primary record first.
pub fn event(e: &Envelope) -> Vec<Value> {
    match &e.payload {
        EventPayload::ClientRegistered(d) => client_registered(e, d),
        EventPayload::ClientRegistrationRejected(d) => client_registration_rejected(e, d),
        EventPayload::ClientUpdated(d) => client_updated(e, d),
        EventPayload::ClientDeleted(d) => client_deleted(e, d),
        EventPayload::ClientExpired(d) => client_expired(e, d),
        EventPayload::ClientRevoked(d) => client_revoked(e, d),
        EventPayload::ClientDisabled(d) => client_disabled(e, d),
        EventPayload::ClientAccessDenied(d) => client_access_denied(e, d),
        EventPayload::ConsentGranted(d) => consent_granted(e, d),
        EventPayload::ConsentDenied(d) => consent_denied(e, d),
        EventPayload::TokenIssued(d) => token_issued(e, d),
        EventPayload::TokenRefreshed(d) => token_refreshed(e, d),
        EventPayload::TokenRevoked(d) => token_revoked(e, d),
        EventPayload::ToolCalled(d) => tool_called(e, d),
    }
}

/// A registration: the client created (Entity Management) and the call
/// that created it (API Activity).
fn client_registered(e: &Envelope, d: &ClientRegistered) -> Vec<Value> {
    let client_id = e.client_id.as_deref();
    let data = with_method(
        client_data(&d.metadata),
        d.registration_method,
        d.confidential,
    );
    let mut extra = Map::new();
    extra.insert("dropped_fields".into(), json!(d.dropped_fields));
    extra.insert("initial_access_token".into(), json!(d.initial_access_token));
    let name = d.metadata.client_name.as_deref();
    let mut em = start(e, EM_CREATE, None, &[], name);
    em.set(
        "entity",
        client_entity(client_id, Some(&d.metadata), data.clone()),
    );
    em.set("unmapped", unmapped(e, extra.clone()));

    let (op, method) = registration_call(d.registration_method, "register");
    let mut api = start(e, API_CREATE, Some("api"), &[], name);
    api.set("api", api_object(e, op))
        .set("src_endpoint", required_src_endpoint(e))
        .set("http_request", http_request(e, method))
        .set(
            "resources",
            json!([client_resource(client_id, Some(&d.metadata), data)]),
        )
        .set("unmapped", unmapped(e, extra));
    if d.registration_method == RegistrationMethod::Dcr {
        api.set("http_response", json!({"code": 201}));
    }
    vec![em.into_value(), api.into_value()]
}

/// A refused registration or update: the lifecycle step that failed and
/// the refused call.
fn client_registration_rejected(e: &Envelope, d: &ClientRegistrationRejected) -> Vec<Value> {
    let client_id = e.client_id.as_deref();
    let attempted = d.attempted.as_ref();
    let data = with_method(
        attempted.map(client_data).unwrap_or_else(|| json!({})),
        d.registration_method,
        false,
    );
    let mut extra = Map::new();
    extra.insert("rule".into(), json!(d.rule));
    extra.insert("operation".into(), json!(d.operation));
    extra.insert("dropped_fields".into(), json!(d.dropped_fields));
    let name = attempted.and_then(|m| m.client_name.as_deref());
    let is_update = d.operation == "update";
    let lifecycle = if is_update { EM_UPDATE } else { EM_CREATE };
    let mut em = start(e, lifecycle, None, &[], name);
    em.set("entity", client_entity(client_id, attempted, data.clone()))
        .set("status_code", json!(d.error))
        .set("status_detail", json!(d.error_description))
        .set("unmapped", unmapped(e, extra.clone()));

    let (op, method) = registration_call(d.registration_method, &d.operation);
    let call = if is_update { API_UPDATE } else { API_CREATE };
    let mut api = start(e, call, Some("api"), &[], name);
    api.set("api", api_object(e, op))
        .set("src_endpoint", required_src_endpoint(e))
        .set("http_request", http_request(e, method))
        .set(
            "http_response",
            json!({"code": d.http_status, "message": d.error}),
        )
        .set(
            "resources",
            json!([client_resource(client_id, attempted, data)]),
        )
        .set("status_code", json!(d.error))
        .set("status_detail", json!(d.error_description))
        .set("unmapped", unmapped(e, extra));
    vec![em.into_value(), api.into_value()]
}

/// An RFC 7592 update: the client before (`entity`) and after (`entity_result`).
fn client_updated(e: &Envelope, d: &ClientUpdated) -> Vec<Value> {
    let client_id = e.client_id.as_deref();
    let name = d.metadata.client_name.as_deref();
    let mut extra = Map::new();
    extra.insert("changes".into(), json!(d.changes));
    extra.insert(
        "registration_token_rotated".into(),
        json!(d.registration_token_rotated),
    );
    extra.insert("dropped_fields".into(), json!(d.dropped_fields));
    let mut r = start(e, EM_UPDATE, None, &[], name);
    r.set("entity", client_entity(client_id, None, Value::Null))
        .set(
            "entity_result",
            client_entity(client_id, Some(&d.metadata), client_data(&d.metadata)),
        )
        .set("unmapped", unmapped(e, extra));
    vec![r.into_value()]
}

fn client_deleted(e: &Envelope, d: &ClientDeleted) -> Vec<Value> {
    let extra = one("tokens_revoked", json!(d.tokens_revoked));
    vec![lifecycle(e, EM_DELETE, &d.reason, extra)]
}

fn client_expired(e: &Envelope, d: &ClientExpired) -> Vec<Value> {
    let mut extra = one("tokens_revoked", json!(d.tokens_revoked));
    extra.insert("ttl_seconds".into(), json!(d.ttl_seconds));
    extra.insert(
        "last_seen_at".into(),
        json!(d.last_seen_at.timestamp_millis()),
    );
    vec![lifecycle(
        e,
        EM_DEACTIVATE,
        &format!("expired: {}", d.reason),
        extra,
    )]
}

fn client_revoked(e: &Envelope, d: &ClientRevoked) -> Vec<Value> {
    let mut extra = one("tokens_revoked", json!(d.tokens_revoked));
    extra.insert("requested_by".into(), json!(d.requested_by));
    vec![lifecycle(
        e,
        EM_DEACTIVATE,
        &format!("revoked: {}", d.reason),
        extra,
    )]
}

/// A disable, or a re-enable (`disabled: false`).
fn client_disabled(e: &Envelope, d: &ClientDisabled) -> Vec<Value> {
    let activity = if d.disabled { EM_DISABLE } else { EM_ENABLE };
    let extra = one("requested_by", json!(d.requested_by));
    vec![lifecycle(e, activity, &d.reason, extra)]
}

/// An inactive client calling an endpoint: the refused call.
fn client_access_denied(e: &Envelope, d: &ClientAccessDenied) -> Vec<Value> {
    let client_id = e.client_id.as_deref();
    let mut r = start(e, API_ACCESS, None, &[], None);
    r.set("api", api_object(e, &d.endpoint))
        .set("src_endpoint", required_src_endpoint(e))
        .set(
            "resources",
            json!([client_resource(
                client_id,
                None,
                json!({"client_status": d.client_status})
            )]),
        )
        .set("status_detail", json!(d.reason))
        .set("unmapped", unmapped(e, Map::new()));
    vec![r.into_value()]
}

/// Consent: the user assigns the scopes (privileges) to the client for a resource.
fn consent_granted(e: &Envelope, d: &ConsentGranted) -> Vec<Value> {
    let client_id = e.client_id.as_deref();
    let extra = one("redirect_uri", json!(d.redirect_uri));
    let mut r = start(e, UAM_ASSIGN, None, &[], None);
    r.set("user", person(Some(&d.user_id)))
        .set("privileges", json!(d.scopes))
        .set("resource", resource_server(&d.resource))
        .set(
            "resources",
            json!([client_resource(client_id, None, Value::Null)]),
        )
        .set("unmapped", unmapped(e, extra));
    vec![r.into_value()]
}

/// Refused consent: the same assignment, failed; the user may be unknown.
fn consent_denied(e: &Envelope, d: &ConsentDenied) -> Vec<Value> {
    let client_id = e.client_id.as_deref();
    let mut r = start(e, UAM_ASSIGN, None, &[], None);
    r.set("user", person(d.user_id.as_deref()))
        .set("privileges", json!(d.scopes))
        .set_some("resource", d.resource.as_deref().map(resource_server))
        .set(
            "resources",
            json!([client_resource(client_id, None, Value::Null)]),
        )
        .set("status_detail", json!(d.reason))
        .set("unmapped", unmapped(e, Map::new()));
    vec![r.into_value()]
}

fn token_issued(e: &Envelope, d: &TokenIssued) -> Vec<Value> {
    let mut extra = one("grant_type", json!(d.grant_type));
    extra.insert("scopes".into(), json!(d.scopes));
    extra.insert("token_id".into(), json!(d.token_id));
    extra.insert("expires_in".into(), json!(d.expires_in));
    extra.insert("refresh_token_issued".into(), json!(d.refresh_token_issued));
    let session = session(e, d.family_id.as_deref(), Some(d.expires_in));
    let mut r = authentication(e, AUTH_LOGON, d.user_id.as_deref(), Some(&d.resource));
    r.set("is_new_logon", json!(true))
        .set_some("session", session)
        .set("unmapped", unmapped(e, extra));
    vec![r.into_value()]
}

fn token_refreshed(e: &Envelope, d: &TokenRefreshed) -> Vec<Value> {
    let mut extra = one("scopes", json!(d.scopes));
    extra.insert("token_id".into(), json!(d.token_id));
    extra.insert("expires_in".into(), json!(d.expires_in));
    let session = session(e, Some(&d.family_id), Some(d.expires_in));
    let mut r = authentication(e, AUTH_RENEW, None, Some(&d.resource));
    r.set("is_new_logon", json!(false))
        .set_some("session", session)
        .set("unmapped", unmapped(e, extra));
    vec![r.into_value()]
}

fn token_revoked(e: &Envelope, d: &TokenRevoked) -> Vec<Value> {
    let mut extra = one("token_kind", json!(d.token_kind));
    extra.insert("count".into(), json!(d.count));
    if let Some(t) = &d.token_id {
        extra.insert("token_id".into(), json!(t));
    }
    let session = session(e, d.family_id.as_deref(), None);
    let mut r = authentication(e, AUTH_LOGOFF, None, None);
    r.set_some("session", session)
        .set("status_detail", json!(d.reason))
        .set("unmapped", unmapped(e, extra));
    vec![r.into_value()]
}

/// An MCP tool call, with the `ai_operation` profile.
fn tool_called(e: &Envelope, d: &ToolCalled) -> Vec<Value> {
    let client_id = e.client_id.as_deref();
    let mut extra = Map::new();
    if let Some(s) = &d.deciding_scope {
        extra.insert("deciding_scope".into(), json!(s));
    }
    let mut api = api_object(e, "tools/call");
    api["service"] = json!({"name": d.resource, "uid": d.resource});
    let mut actor = actor(e, None);
    if let Some(u) = &d.user_id {
        actor["user"] = person(Some(u));
    }
    let mut r = start(e, API_TOOL_CALL, None, &[AI_OPERATION_PROFILE], None);
    r.set("api", api)
        .set("actor", actor)
        .set("src_endpoint", required_src_endpoint(e))
        .set(
            "message_context",
            json!({
                "name": "MCP tools/call",
                "service": {"name": d.resource},
                "ai_role_id": 3,
                "ai_role": "Tool",
            }),
        )
        .set(
            "resources",
            json!([
                {"type": "mcp_tool", "name": d.tool, "role_id": 1},
                client_resource(client_id, None, Value::Null),
            ]),
        )
        .set_some("status_detail", d.reason.as_ref().map(|r| json!(r)))
        .set("unmapped", unmapped(e, extra));
    if d.decision == ToolDecision::Denied && d.reason.is_none() {
        r.set("status_detail", json!("denied"));
    }
    vec![r.into_value()]
}
/// The attributes every event record starts with: base, status, message,
/// actor, source endpoint and user agent.
fn start(
    e: &Envelope,
    activity: Activity,
    uid_suffix: Option<&str>,
    profiles: &[&str],
    client_name: Option<&str>,
) -> Record {
    let uid = match uid_suffix {
        Some(s) => format!("{}/{s}", e.event_id),
        None => e.event_id.to_string(),
    };
    let metadata = event_metadata(e, uid, profiles);
    let mut r = Record::new(
        activity,
        e.occurred_at.timestamp_millis(),
        event_severity(e),
        metadata,
    );
    let (status_id, status_name) = status(event_succeeded(e));
    r.set("status_id", json!(status_id))
        .set("status", json!(status_name))
        .set("message", json!(event_names(e.event_type()).title))
        .set("actor", actor(e, client_name))
        .set_some("src_endpoint", src_endpoint(e))
        .set_some(
            "http_request",
            user_agent(e).map(|ua| json!({ "user_agent": ua })),
        );
    r
}

/// A lifecycle step on an existing client (delete, expire, revoke,
/// disable): the client entity and the reason.
fn lifecycle(e: &Envelope, activity: Activity, detail: &str, extra: Map<String, Value>) -> Value {
    let mut r = start(e, activity, None, &[], None);
    r.set(
        "entity",
        client_entity(e.client_id.as_deref(), None, Value::Null),
    )
    .set("status_detail", json!(detail))
    .set("unmapped", unmapped(e, extra));
    r.into_value()
}

/// An Authentication record: OAuth 2.0, the authenticated principal (the
/// user when known, else the client as a service account) and the service
/// the token is for (the resource, else the issuer).
fn authentication(
    e: &Envelope,
    activity: Activity,
    user_id: Option<&str>,
    resource: Option<&str>,
) -> Record {
    let user = match user_id {
        Some(u) => person(Some(u)),
        None => client_principal(e),
    };
    let service = resource.unwrap_or(&e.issuer);
    let mut r = start(e, activity, None, &[], None);
    r.set("user", user)
        .set("auth_protocol_id", json!(OAUTH2_PROTOCOL_ID))
        .set("auth_protocol", json!("OAUTH 2.0"))
        .set("service", json!({"name": service, "uid": service}));
    r
}

fn one(key: &str, value: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key.into(), value);
    m
}

fn with_method(mut data: Value, method: RegistrationMethod, confidential: bool) -> Value {
    if let Value::Object(m) = &mut data {
        m.insert("registration_method".into(), json!(method));
        m.insert("confidential".into(), json!(confidential));
    }
    data
}

/// The operation name and HTTP method of a registration call: RFC 7591
/// POST, RFC 7592 PUT, or a Client ID Metadata Document resolved by URL.
fn registration_call(method: RegistrationMethod, operation: &str) -> (&'static str, &'static str) {
    match (method, operation) {
        (RegistrationMethod::Cimd, _) => ("oauth2.client_id_metadata_document", "GET"),
        (RegistrationMethod::Dcr, "update") => ("oauth2.register.update", "PUT"),
        (RegistrationMethod::Dcr, _) => ("oauth2.register", "POST"),
    }
}

fn api_object(e: &Envelope, operation: &str) -> Value {
    let mut v = json!({"operation": operation, "service": {"name": e.issuer, "uid": e.issuer}});
    if let Some(r) = &e.request_id {
        v["request"] = json!({ "uid": r });
    }
    v
}

fn http_request(e: &Envelope, method: &str) -> Value {
    let mut v = json!({ "http_method": method });
    if let Some(ua) = user_agent(e) {
        v["user_agent"] = json!(ua);
    }
    v
}

/// The OAuth client as an API Activity / access resource.
fn client_resource(client_id: Option<&str>, m: Option<&ClientMetadata>, data: Value) -> Value {
    let mut v = json!({"type": "oauth_client", "role_id": 1});
    if let Some(id) = client_id {
        v["uid"] = json!(id);
    }
    match (m.and_then(|m| m.client_name.as_deref()), client_id) {
        (Some(n), _) => v["name"] = json!(n),
        (None, None) => v["name"] = json!("(unnamed client)"),
        (None, Some(_)) => {}
    }
    if !data.is_null() {
        v["data"] = data;
    }
    v
}

/// The protected resource (RFC 8707) a grant is for.
fn resource_server(uri: &str) -> Value {
    json!({"type": "oauth_resource", "uid": uri, "name": uri, "role_id": 1})
}

/// A signed-in person. Unknown when consent was refused before sign-in.
fn person(user_id: Option<&str>) -> Value {
    match user_id {
        Some(u) => json!({"uid": u, "name": u, "type_id": 1, "type": "User"}),
        None => json!({"name": "(not signed in)", "type_id": 0, "type": "Unknown"}),
    }
}

/// The client authenticating for itself (no user in the grant).
fn client_principal(e: &Envelope) -> Value {
    let id = e
        .client_id
        .as_deref()
        .or(e.actor.id.as_deref())
        .unwrap_or("unknown");
    json!({"uid": id, "name": id, "type_id": 4, "type": "Service"})
}

/// The grant as a session: the refresh-token family when there is one.
fn session(e: &Envelope, family_id: Option<&str>, expires_in: Option<u64>) -> Option<Value> {
    let mut v = json!({ "uid": family_id? });
    if let Some(secs) = expires_in {
        let ms = i64::try_from(secs).unwrap_or(i64::MAX / 2_000) * 1000;
        v["expiration_time"] = json!(e.occurred_at.timestamp_millis().saturating_add(ms));
    }
    Some(v)
}
