//! Alerts: what the detectors conclude about a client, with the evidence
//! behind it. Published to [`crate::ALERTS_TOPIC`] and stored.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The closed set of detector kinds. The wire names are the contract.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    RegistrationBurst,
    NameImpersonation,
    RedirectDrift,
    ScopeEscalation,
    DormantClient,
    DuplicateRegistration,
    RevokedClientActivity,
}

impl AlertKind {
    pub const ALL: [AlertKind; 7] = [
        AlertKind::RegistrationBurst,
        AlertKind::NameImpersonation,
        AlertKind::RedirectDrift,
        AlertKind::ScopeEscalation,
        AlertKind::DormantClient,
        AlertKind::DuplicateRegistration,
        AlertKind::RevokedClientActivity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::RegistrationBurst => "registration_burst",
            AlertKind::NameImpersonation => "name_impersonation",
            AlertKind::RedirectDrift => "redirect_drift",
            AlertKind::ScopeEscalation => "scope_escalation",
            AlertKind::DormantClient => "dormant_client",
            AlertKind::DuplicateRegistration => "duplicate_registration",
            AlertKind::RevokedClientActivity => "revoked_client_activity",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Resolved,
    Suppressed,
}

/// One alert. An ongoing condition updates the open alert with the same
/// `dedup_key` instead of opening a new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Alert {
    pub alert_id: Uuid,
    pub kind: AlertKind,
    pub severity: Severity,
    /// In [0, 1].
    pub score: f64,
    /// The client the alert is about (for a burst: the client whose event crossed).
    pub client_id: String,
    #[serde(default)]
    pub related_client_ids: Vec<String>,
    /// The events behind the alert, oldest first.
    #[serde(default)]
    pub event_ids: Vec<Uuid>,
    /// Structured, kind-specific evidence an analyst can read.
    pub evidence: serde_json::Value,
    /// One line, human readable.
    pub summary: String,
    /// Groups updates of one ongoing condition (e.g. `registration_burst:ip:203.0.113.7`).
    pub dedup_key: String,
    #[serde(with = "crate::time::millis")]
    #[schemars(with = "String")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::time::millis")]
    #[schemars(with = "String")]
    pub updated_at: DateTime<Utc>,
    pub status: AlertStatus,
}
