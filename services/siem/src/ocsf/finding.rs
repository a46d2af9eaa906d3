//! Alerts as OCSF Detection Finding (2004). The activity follows the
//! alert's life (Create when first raised, Update while it changes, Close
//! once resolved or suppressed); `finding_info.uid` is the alert id, so a
//! SIEM folds the updates of one alert into one finding.

use regwatch_schemas::{Alert, AlertKind, AlertStatus};
use serde_json::{json, Value};

use super::{product, Activity, Class, Record, OCSF_VERSION};
use crate::mapping::alert_names;

const DF: Class = Class::DetectionFinding;
pub const DF_CREATE: Activity = Activity::new(DF, 1, "Create");
pub const DF_UPDATE: Activity = Activity::new(DF, 2, "Update");
pub const DF_CLOSE: Activity = Activity::new(DF, 3, "Close");

/// The Detection Finding of one alert.
pub fn alert(a: &Alert) -> Value {
    let names = alert_names(a.kind);
    let activity = match a.status {
        AlertStatus::Resolved | AlertStatus::Suppressed => DF_CLOSE,
        AlertStatus::Open if a.updated_at == a.created_at => DF_CREATE,
        AlertStatus::Open | AlertStatus::Acknowledged => DF_UPDATE,
    };
    // Detection Finding's own status enum.
    let (status_id, status) = match a.status {
        AlertStatus::Open => (1, "New"),
        AlertStatus::Acknowledged => (2, "In Progress"),
        AlertStatus::Suppressed => (3, "Suppressed"),
        AlertStatus::Resolved => (4, "Resolved"),
    };
    let (analytic_type_id, analytic_type) = analytic_type(a.kind);
    let metadata = json!({
        "version": OCSF_VERSION,
        "uid": a.alert_id.to_string(),
        "event_code": names.signature_id,
        "log_name": "alerts",
        "product": product(),
    });
    let mut resources = vec![json!({"type": "oauth_client", "uid": a.client_id, "role_id": 1})];
    resources.extend(
        a.related_client_ids
            .iter()
            .map(|c| json!({"type": "oauth_client", "uid": c, "role_id": 4})),
    );
    let related_events: Vec<Value> = a
        .event_ids
        .iter()
        .map(|id| json!({ "uid": id.to_string() }))
        .collect();
    let created = a.created_at.timestamp_millis();
    let updated = a.updated_at.timestamp_millis();

    let mut r = Record::new(activity, updated, a.severity, metadata);
    r.set("status_id", json!(status_id))
        .set("status", json!(status))
        .set("is_alert", json!(true))
        .set("message", json!(a.summary))
        .set(
            "finding_info",
            json!({
                "uid": a.alert_id.to_string(),
                "uid_alt": a.dedup_key,
                "title": names.title,
                "desc": a.summary,
                "types": [a.kind.as_str()],
                "created_time": created,
                "modified_time": updated,
                "analytic": {
                    "uid": a.kind.as_str(),
                    "name": names.title,
                    "type_id": analytic_type_id,
                    "type": analytic_type,
                    "version": crate::PRODUCT_VERSION,
                },
                "related_events": related_events,
                "related_events_count": a.event_ids.len(),
                "product": product(),
            }),
        )
        .set(
            "evidences",
            json!([{ "name": a.kind.as_str(), "data": a.evidence }]),
        )
        .set("resources", Value::Array(resources))
        .set("risk_score", json!(score_percent(a.score)))
        .set("start_time", json!(created))
        .set("end_time", json!(updated));
    r.into_value()
}

/// The score in [0, 1] as the 0–100 integer OCSF's scores use.
pub(crate) fn score_percent(score: f64) -> i64 {
    (score.clamp(0.0, 1.0) * 100.0).round() as i64
}

/// OCSF `analytic.type_id`: how each detector decides.
fn analytic_type(kind: AlertKind) -> (u8, &'static str) {
    match kind {
        AlertKind::RegistrationBurst => (3, "Statistical"),
        AlertKind::NameImpersonation | AlertKind::DuplicateRegistration => (5, "Fingerprinting"),
        AlertKind::RedirectDrift | AlertKind::ScopeEscalation | AlertKind::DormantClient => {
            (2, "Behavioral")
        }
        AlertKind::RevokedClientActivity => (1, "Rule"),
    }
}
