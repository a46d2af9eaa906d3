//! Input types: what the detectors see of an event, decoupled from the
//! event envelope in `regwatch-schemas`. The pipeline maps each envelope to
//! one [`Observation`]; nothing here knows about topics, offsets or stores.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How the client came to exist at the authorization server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMethod {
    /// RFC 7591 dynamic client registration.
    Dcr,
    /// A Client ID Metadata Document fetched from the `client_id` URL.
    Cimd,
    /// Registered out of band by an administrator.
    Preregistered,
}

/// The client metadata carried by a registration, a re-registration or an
/// update (RFC 7591 §2, CIMD document). Only the fields detectors use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientObservation {
    /// The `client_id` issued (DCR) or the document URL (CIMD).
    pub client_id: String,
    /// `client_name` as sent, untouched (no trimming, no normalization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// `redirect_uris` as sent.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Requested scopes (the `scope` metadata, split on spaces).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// `software_id`, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// `token_endpoint_auth_method`, when sent (part of the fingerprint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    /// Address the registration came from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    /// When it happened (the envelope's `occurred_at`).
    pub at: DateTime<Utc>,
    /// The envelope's `event_id`, quoted in alerts.
    pub event_id: Uuid,
    /// DCR, CIMD or pre-registered.
    pub registration_method: RegistrationMethod,
    /// For an update: the redirect URIs before it, from the `client.updated`
    /// diff. When absent the detectors fall back to their own (hashed)
    /// history of the client, and evidence shows only the new side in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_redirect_uris: Option<Vec<String>>,
    /// For an update: the scopes before it, from the diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_scopes: Option<Vec<String>>,
}

/// Something a client did after registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ActivityKind {
    /// A user granted consent for these scopes.
    ConsentGranted {
        /// Granted scopes.
        scopes: Vec<String>,
    },
    /// A user denied consent.
    ConsentDenied,
    /// A token was issued (authorization code or client credentials grant).
    TokenIssued,
    /// A refresh token was used.
    TokenRefreshed,
    /// An MCP tool was called with a token of this client.
    ToolCalled {
        /// The tool name.
        tool: String,
    },
    /// An RFC 7592 management call (`GET`, `PUT`, `DELETE`) on the client.
    ManagementCall {
        /// The HTTP method.
        method: String,
    },
    /// The client was revoked by an operator or by policy.
    Revoked,
    /// The client was deleted (RFC 7592 `DELETE`) or expired.
    Deleted,
}

/// One post-registration step of a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActivityObservation {
    /// The client the step belongs to.
    pub client_id: String,
    /// What happened.
    pub kind: ActivityKind,
    /// Address, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The envelope's `event_id`.
    pub event_id: Uuid,
}

/// A registration (RFC 7591 POST, RFC 7592 PUT, or CIMD fetch) the
/// authorization server refused: `client.registration_rejected`. It has
/// no client behind it (unless it was an update or a CIMD URL), so the
/// detectors keep no per-client state for it; it only counts in the
/// `registration_burst` rates of its source, name and software id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RejectedObservation {
    /// The client id the attempt named (an update, a CIMD URL), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `client_name` as far as it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// `software_id` as far as it could be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    /// Address the attempt came from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    /// The policy rule that refused it (e.g. `redirect.fragment`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The RFC error code sent back (e.g. `invalid_redirect_uri`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `register` or `update`.
    pub operation: String,
    /// DCR or CIMD.
    pub registration_method: RegistrationMethod,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The envelope's `event_id`.
    pub event_id: Uuid,
}

/// One input to the detector, in event order (per client).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Observation {
    /// `client.registered` (DCR) or a first CIMD fetch. A registration whose
    /// `client_id` is already known is a re-registration and is checked for
    /// redirect drift like an update.
    Registered(ClientObservation),
    /// `client.updated` (RFC 7592 `PUT`, or a changed CIMD document).
    Updated(ClientObservation),
    /// Consent, token, tool, management or lifecycle step.
    Activity(ActivityObservation),
    /// `client.registration_rejected`: a refused registration or update.
    Rejected(RejectedObservation),
}

impl Observation {
    /// When the observation happened.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Observation::Registered(c) | Observation::Updated(c) => c.at,
            Observation::Activity(a) => a.at,
            Observation::Rejected(r) => r.at,
        }
    }

    /// The client the observation is about (empty for a rejected
    /// registration that named none).
    pub fn client_id(&self) -> &str {
        match self {
            Observation::Registered(c) | Observation::Updated(c) => &c.client_id,
            Observation::Activity(a) => &a.client_id,
            Observation::Rejected(r) => r.client_id.as_deref().unwrap_or(""),
        }
    }
}
