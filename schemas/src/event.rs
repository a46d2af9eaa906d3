//! The event envelope and every event type the authorization server emits.
//!
//! Wire shape (one JSON object per event):
//! `{event_id, schema_version, event_type, occurred_at, issuer, client_id,
//!   actor, source, request_id, correlation_id, policy, data}` where the
//! shape of `data` is fixed by `event_type`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Current envelope version. See `schemas/VERSIONING.md`.
pub const SCHEMA_VERSION: u32 = 1;
/// Every `schema_version` a consumer of this crate can read.
pub const SUPPORTED_SCHEMA_VERSIONS: &[u32] = &[1];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Envelope {
    /// UUIDv7: the idempotency key, and millisecond order.
    pub event_id: Uuid,
    pub schema_version: u32,
    #[serde(with = "crate::time::millis")]
    #[schemars(with = "String")]
    pub occurred_at: DateTime<Utc>,
    /// The authorization server's issuer URL.
    pub issuer: String,
    /// The client the event is about. `None` only for a rejected
    /// registration, which never got an id.
    #[serde(default)]
    pub client_id: Option<String>,
    pub actor: Actor,
    #[serde(default)]
    pub source: Option<Source>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub correlation_id: Option<String>,
    #[serde(default)]
    pub policy: Option<PolicyDecision>,
    #[serde(flatten)]
    pub payload: EventPayload,
}

impl Envelope {
    /// A new envelope with a fresh UUIDv7 and `occurred_at` truncated to
    /// milliseconds.
    pub fn new(
        issuer: impl Into<String>,
        actor: Actor,
        payload: EventPayload,
        now: DateTime<Utc>,
    ) -> Self {
        let now = crate::time::to_millis(now);
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            now.timestamp() as u64,
            now.timestamp_subsec_nanos(),
        );
        Envelope {
            event_id: Uuid::new_v7(ts),
            schema_version: SCHEMA_VERSION,
            occurred_at: now,
            issuer: issuer.into(),
            client_id: None,
            actor,
            source: None,
            request_id: None,
            correlation_id: None,
            policy: None,
            payload,
        }
    }

    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Actor {
    pub kind: ActorKind,
    #[serde(default)]
    pub id: Option<String>,
}

impl Actor {
    pub fn client(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::Client,
            id: Some(id.into()),
        }
    }
    pub fn anonymous_client() -> Self {
        Actor {
            kind: ActorKind::Client,
            id: None,
        }
    }
    pub fn system(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::System,
            id: Some(id.into()),
        }
    }
    pub fn admin(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::Admin,
            id: Some(id.into()),
        }
    }
    pub fn user(id: impl Into<String>) -> Self {
        Actor {
            kind: ActorKind::User,
            id: Some(id.into()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Client,
    User,
    Admin,
    System,
    Detector,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Source {
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// What the policy gate decided, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyDecision {
    pub decision: Decision,
    /// Rules that fired, e.g. `redirect.plain_http`, `rate_limit.source`.
    #[serde(default)]
    pub matched_rules: Vec<String>,
    /// Signals worth correlating even when allowed, e.g. `unknown_fields`,
    /// `loopback_redirect`, `private_use_scheme`, `source_flagged`.
    #[serde(default)]
    pub risk_signals: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
}

/// The closed set of event types, by wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum EventType {
    #[serde(rename = "client.registered")]
    ClientRegistered,
    #[serde(rename = "client.registration_rejected")]
    ClientRegistrationRejected,
    #[serde(rename = "client.updated")]
    ClientUpdated,
    #[serde(rename = "client.deleted")]
    ClientDeleted,
    #[serde(rename = "client.expired")]
    ClientExpired,
    #[serde(rename = "client.revoked")]
    ClientRevoked,
    #[serde(rename = "client.disabled")]
    ClientDisabled,
    #[serde(rename = "client.access_denied")]
    ClientAccessDenied,
    #[serde(rename = "consent.granted")]
    ConsentGranted,
    #[serde(rename = "consent.denied")]
    ConsentDenied,
    #[serde(rename = "token.issued")]
    TokenIssued,
    #[serde(rename = "token.refreshed")]
    TokenRefreshed,
    #[serde(rename = "token.revoked")]
    TokenRevoked,
    #[serde(rename = "tool.called")]
    ToolCalled,
}

impl EventType {
    pub const ALL: [EventType; 14] = [
        EventType::ClientRegistered,
        EventType::ClientRegistrationRejected,
        EventType::ClientUpdated,
        EventType::ClientDeleted,
        EventType::ClientExpired,
        EventType::ClientRevoked,
        EventType::ClientDisabled,
        EventType::ClientAccessDenied,
        EventType::ConsentGranted,
        EventType::ConsentDenied,
        EventType::TokenIssued,
        EventType::TokenRefreshed,
        EventType::TokenRevoked,
        EventType::ToolCalled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ClientRegistered => "client.registered",
            EventType::ClientRegistrationRejected => "client.registration_rejected",
            EventType::ClientUpdated => "client.updated",
            EventType::ClientDeleted => "client.deleted",
            EventType::ClientExpired => "client.expired",
            EventType::ClientRevoked => "client.revoked",
            EventType::ClientDisabled => "client.disabled",
            EventType::ClientAccessDenied => "client.access_denied",
            EventType::ConsentGranted => "consent.granted",
            EventType::ConsentDenied => "consent.denied",
            EventType::TokenIssued => "token.issued",
            EventType::TokenRefreshed => "token.refreshed",
            EventType::TokenRevoked => "token.revoked",
            EventType::ToolCalled => "tool.called",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `event_type` + `data`, adjacently tagged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event_type", content = "data")]
pub enum EventPayload {
    #[serde(rename = "client.registered")]
    ClientRegistered(ClientRegistered),
    #[serde(rename = "client.registration_rejected")]
    ClientRegistrationRejected(ClientRegistrationRejected),
    #[serde(rename = "client.updated")]
    ClientUpdated(ClientUpdated),
    #[serde(rename = "client.deleted")]
    ClientDeleted(ClientDeleted),
    #[serde(rename = "client.expired")]
    ClientExpired(ClientExpired),
    #[serde(rename = "client.revoked")]
    ClientRevoked(ClientRevoked),
    #[serde(rename = "client.disabled")]
    ClientDisabled(ClientDisabled),
    #[serde(rename = "client.access_denied")]
    ClientAccessDenied(ClientAccessDenied),
    #[serde(rename = "consent.granted")]
    ConsentGranted(ConsentGranted),
    #[serde(rename = "consent.denied")]
    ConsentDenied(ConsentDenied),
    #[serde(rename = "token.issued")]
    TokenIssued(TokenIssued),
    #[serde(rename = "token.refreshed")]
    TokenRefreshed(TokenRefreshed),
    #[serde(rename = "token.revoked")]
    TokenRevoked(TokenRevoked),
    #[serde(rename = "tool.called")]
    ToolCalled(ToolCalled),
}

impl EventPayload {
    pub fn event_type(&self) -> EventType {
        match self {
            EventPayload::ClientRegistered(_) => EventType::ClientRegistered,
            EventPayload::ClientRegistrationRejected(_) => EventType::ClientRegistrationRejected,
            EventPayload::ClientUpdated(_) => EventType::ClientUpdated,
            EventPayload::ClientDeleted(_) => EventType::ClientDeleted,
            EventPayload::ClientExpired(_) => EventType::ClientExpired,
            EventPayload::ClientRevoked(_) => EventType::ClientRevoked,
            EventPayload::ClientDisabled(_) => EventType::ClientDisabled,
            EventPayload::ClientAccessDenied(_) => EventType::ClientAccessDenied,
            EventPayload::ConsentGranted(_) => EventType::ConsentGranted,
            EventPayload::ConsentDenied(_) => EventType::ConsentDenied,
            EventPayload::TokenIssued(_) => EventType::TokenIssued,
            EventPayload::TokenRefreshed(_) => EventType::TokenRefreshed,
            EventPayload::TokenRevoked(_) => EventType::TokenRevoked,
            EventPayload::ToolCalled(_) => EventType::ToolCalled,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMethod {
    /// RFC 7591 dynamic client registration.
    Dcr,
    /// Client ID Metadata Document: the client_id is an https URL.
    Cimd,
}

/// The registered metadata of a client, as stored (never a secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientMetadata {
    #[serde(default)]
    pub client_name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub response_types: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub application_type: Option<String>,
    /// Space-separated, as in RFC 7591.
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub client_uri: Option<String>,
    #[serde(default)]
    pub logo_uri: Option<String>,
    #[serde(default)]
    pub tos_uri: Option<String>,
    #[serde(default)]
    pub policy_uri: Option<String>,
    #[serde(default)]
    pub contacts: Vec<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub software_id: Option<String>,
    #[serde(default)]
    pub software_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientRegistered {
    pub registration_method: RegistrationMethod,
    pub metadata: ClientMetadata,
    /// True when the client got a secret (confidential client).
    pub confidential: bool,
    /// Request fields the server does not know and dropped (RFC 7591 §2).
    /// An audit signal: probing or a client built for another server.
    #[serde(default)]
    pub dropped_fields: Vec<String>,
    /// Whether an initial access token was presented and accepted.
    #[serde(default)]
    pub initial_access_token: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientRegistrationRejected {
    /// The RFC error code sent back (`invalid_redirect_uri`, …).
    pub error: String,
    pub error_description: String,
    /// The policy rule that fired, e.g. `redirect.fragment`.
    pub rule: String,
    pub http_status: u16,
    pub registration_method: RegistrationMethod,
    /// `register` (RFC 7591 POST) or `update` (RFC 7592 PUT).
    #[serde(default = "default_operation")]
    pub operation: String,
    /// What could be read of the request, truncated to the server limits.
    #[serde(default)]
    pub attempted: Option<ClientMetadata>,
    #[serde(default)]
    pub dropped_fields: Vec<String>,
}

fn default_operation() -> String {
    "register".into()
}

/// A known client that is not active (disabled, revoked, deleted,
/// expired) tried to use an endpoint: the raw signal behind
/// `revoked_client_activity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientAccessDenied {
    /// `registration_management`, `token`, `authorize`, `introspect`, …
    pub endpoint: String,
    pub client_status: String,
    pub reason: String,
}

/// One changed metadata field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldChange {
    pub field: String,
    pub old: serde_json::Value,
    pub new: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientUpdated {
    /// old → new for every field that changed.
    pub changes: Vec<FieldChange>,
    /// The whole metadata after the update.
    pub metadata: ClientMetadata,
    /// RFC 7592 PUT rotates the registration access token.
    pub registration_token_rotated: bool,
    #[serde(default)]
    pub dropped_fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientDeleted {
    /// `rfc7592_delete` or `admin`.
    pub reason: String,
    /// Tokens and grants invalidated with the client.
    pub tokens_revoked: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientExpired {
    /// `idle` or `never_consented`.
    pub reason: String,
    /// The TTL that ran out, in seconds.
    pub ttl_seconds: u64,
    #[serde(with = "crate::time::millis")]
    #[schemars(with = "String")]
    pub last_seen_at: DateTime<Utc>,
    pub tokens_revoked: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientRevoked {
    /// Free text from the admin or the detector that asked.
    pub reason: String,
    /// `admin_api`, `detector`, …
    pub requested_by: String,
    pub tokens_revoked: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClientDisabled {
    pub reason: String,
    pub requested_by: String,
    /// False when the client was re-enabled.
    pub disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConsentGranted {
    pub user_id: String,
    pub scopes: Vec<String>,
    pub resource: String,
    pub redirect_uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ConsentDenied {
    #[serde(default)]
    pub user_id: Option<String>,
    pub scopes: Vec<String>,
    #[serde(default)]
    pub resource: Option<String>,
    /// `user_denied`, or the check that refused (`unverified_client`, …).
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    AccessToken,
    RefreshToken,
    AuthorizationCode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenIssued {
    pub grant_type: String,
    pub scopes: Vec<String>,
    pub resource: String,
    /// Opaque id of the token (a prefix of its hash), never the token.
    pub token_id: String,
    /// Refresh-token family, for rotation and reuse detection.
    #[serde(default)]
    pub family_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    pub refresh_token_issued: bool,
    pub expires_in: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenRefreshed {
    pub family_id: String,
    pub token_id: String,
    pub scopes: Vec<String>,
    pub resource: String,
    pub expires_in: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenRevoked {
    pub token_kind: TokenKind,
    /// `rfc7009`, `refresh_reuse`, `client_deleted`, `client_revoked`, …
    pub reason: String,
    #[serde(default)]
    pub family_id: Option<String>,
    #[serde(default)]
    pub token_id: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ToolDecision {
    Allowed,
    Denied,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ToolCalled {
    pub tool: String,
    pub decision: ToolDecision,
    /// The scope that allowed it, or that was missing.
    #[serde(default)]
    pub deciding_scope: Option<String>,
    pub resource: String,
    #[serde(default)]
    pub user_id: Option<String>,
    /// Why a call was denied (`insufficient_scope`, `inactive_token`, …).
    #[serde(default)]
    pub reason: Option<String>,
}
