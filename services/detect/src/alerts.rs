//! Building [`Alert`]s: deterministic ids, severities from config and
//! score, scores combined from independent findings.

use chrono::{DateTime, Utc};
use regwatch_schemas::alert::{Alert, AlertKind, AlertStatus, Severity};
use uuid::{Builder, Uuid};

use crate::config::DetectConfig;
use crate::hash::Fnv;

/// Combines independent finding weights: `1 - Π(1 - w)`, in [0, 1].
pub fn combine(weights: impl IntoIterator<Item = f64>) -> f64 {
    let miss: f64 = weights
        .into_iter()
        .map(|w| 1.0 - w.clamp(0.0, 1.0))
        .product();
    (1.0 - miss).clamp(0.0, 1.0)
}

/// A UUIDv7 whose time is `at` and whose other bits hash `dedup_key` and
/// `salt`: the same input gives the same id, so a replay re-emits the same
/// alert instead of a new one.
pub fn alert_id(at: DateTime<Utc>, dedup_key: &str, salt: &str) -> Uuid {
    let h1 = Fnv::default().field(dedup_key).field(salt).finish();
    let h2 = Fnv::default().field(salt).field(dedup_key).finish();
    let mut bytes = [0u8; 10];
    bytes[..8].copy_from_slice(&h1.to_be_bytes());
    bytes[8..].copy_from_slice(&h2.to_be_bytes()[..2]);
    let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
}

fn step(s: Severity, up: bool) -> Severity {
    const ORDER: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
    let i = ORDER.iter().position(|x| *x == s).unwrap_or(2);
    let j = if up {
        (i + 1).min(ORDER.len() - 1)
    } else {
        i.saturating_sub(1)
    };
    ORDER[j]
}

/// The configured base severity of `kind`, one step up at score >= 0.85,
/// one step down below 0.4.
pub fn severity_for(config: &DetectConfig, kind: AlertKind, score: f64) -> Severity {
    let base = config
        .severities
        .get(&kind)
        .copied()
        .unwrap_or(Severity::Medium);
    if score >= 0.85 {
        step(base, true)
    } else if score < 0.4 {
        step(base, false)
    } else {
        base
    }
}

/// Everything that varies between alerts.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Kind.
    pub kind: AlertKind,
    /// Score in [0, 1].
    pub score: f64,
    /// Main client.
    pub client_id: String,
    /// Other clients involved.
    pub related: Vec<String>,
    /// Events behind it, oldest first.
    pub event_ids: Vec<Uuid>,
    /// Evidence.
    pub evidence: serde_json::Value,
    /// One line.
    pub summary: String,
    /// Dedup key.
    pub dedup_key: String,
    /// When the condition started (the first alert of it).
    pub created_at: DateTime<Utc>,
    /// Salt for the id (e.g. the event that opened the condition).
    pub id_salt: String,
}

impl Draft {
    /// The finished alert, stamped with `now`.
    pub fn build(self, config: &DetectConfig, now: DateTime<Utc>) -> Alert {
        let score = if self.score.is_finite() {
            self.score.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Alert {
            alert_id: alert_id(self.created_at, &self.dedup_key, &self.id_salt),
            kind: self.kind,
            severity: severity_for(config, self.kind, score),
            score: (score * 1000.0).round() / 1000.0,
            client_id: self.client_id,
            related_client_ids: self.related,
            event_ids: self.event_ids,
            evidence: self.evidence,
            summary: self.summary,
            dedup_key: self.dedup_key,
            created_at: self.created_at,
            updated_at: now,
            status: AlertStatus::Open,
        }
    }
}
