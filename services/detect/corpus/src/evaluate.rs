//! The evaluation: replays a corpus through a fresh [`Detector`] and scores
//! the alerts per kind against the labels (recall per attack unit,
//! precision per alerted client, false positives on benign units).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use regwatch_detect::{ConfigError, DetectConfig, Detector, Observation};
use regwatch_schemas::alert::{Alert, AlertKind};
use serde::Serialize;

use crate::{Label, LabeledEvent};

/// Precision and recall of one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindScore {
    /// Alert kind.
    pub kind: AlertKind,
    /// Attack units (clients, or campaigns) labeled with this kind.
    pub units: usize,
    /// Of them, detected by an alert of this kind.
    pub detected: usize,
    /// Clients alerted with this kind (as the main client; for an alert
    /// that names no client, the refused attempts it cites).
    pub alerted: usize,
    /// Of them, attack clients (of any kind).
    pub alerted_attack: usize,
    /// `detected / units`.
    pub recall: f64,
    /// `alerted_attack / alerted`.
    pub precision: f64,
}

/// The evaluation result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Events replayed.
    pub events: usize,
    /// Benign clients.
    pub benign_clients: usize,
    /// Attack clients.
    pub attack_clients: usize,
    /// Benign refused registrations that named no client (each its own unit).
    pub benign_attempts: usize,
    /// Attack refused registrations that named no client.
    pub attack_attempts: usize,
    /// Alerts emitted (including updates of one condition).
    pub alerts: usize,
    /// Per kind.
    pub kinds: Vec<KindScore>,
    /// Benign units (clients, client-less refused attempts) that are the
    /// subject of any alert.
    pub benign_alerted: usize,
    /// `benign_alerted / (benign_clients + benign_attempts)`.
    pub false_positive_rate: f64,
    /// The benign clients alerted, with the alert summaries (for tuning).
    pub false_positives: Vec<(String, String)>,
}

const REJECTED_UNIT: &str = "rejected:";

/// The unit of ground truth an observation belongs to: its client, or for a
/// refused registration that named none, the attempt itself.
fn unit_of(obs: &Observation) -> String {
    match obs {
        Observation::Rejected(r) if r.client_id.as_deref().unwrap_or("").is_empty() => {
            format!("{REJECTED_UNIT}{}", r.event_id)
        }
        o => o.client_id().to_owned(),
    }
}

/// What an alert is about: its client, or, when it names none (a burst of
/// client-less refused attempts), the attempts it cites.
fn subjects(a: &Alert) -> Vec<String> {
    if a.client_id.is_empty() {
        a.event_ids
            .iter()
            .map(|e| format!("{REJECTED_UNIT}{e}"))
            .collect()
    } else {
        vec![a.client_id.clone()]
    }
}

/// Replays `events` through a fresh detector and scores the alerts.
pub fn evaluate(events: &[LabeledEvent], config: DetectConfig) -> Result<EvalReport, ConfigError> {
    let mut det = Detector::new(config)?;
    let mut alerts: Vec<Alert> = Vec::new();
    let mut next_sweep: Option<DateTime<Utc>> = None;
    for e in events {
        let at = e.obs.at();
        let due = *next_sweep.get_or_insert(at + Duration::hours(1));
        if at >= due {
            alerts.extend(det.sweep(at));
            next_sweep = Some(at + Duration::hours(1));
        }
        alerts.extend(det.observe(&e.obs));
    }
    if let Some(last) = events.last() {
        alerts.extend(det.sweep(last.obs.at() + Duration::days(3)));
    }

    // Units of ground truth: clients by id; a refused attempt that named
    // no client is its own unit, `rejected:<event_id>`.
    let mut labels: BTreeMap<String, Label> = BTreeMap::new();
    for e in events {
        labels
            .entry(unit_of(&e.obs))
            .or_insert_with(|| e.label.clone());
    }
    let benign: BTreeSet<&str> = labels
        .iter()
        .filter(|(_, l)| l.attack.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    let attack: BTreeSet<&str> = labels
        .iter()
        .filter(|(_, l)| l.attack.is_some())
        .map(|(k, _)| k.as_str())
        .collect();
    let is_attempt = |u: &str| u.starts_with(REJECTED_UNIT);

    let mut kinds = Vec::new();
    for kind in AlertKind::ALL {
        let of_kind: Vec<&Alert> = alerts.iter().filter(|a| a.kind == kind).collect();
        let main: BTreeSet<String> = of_kind.iter().flat_map(|a| subjects(a)).collect();
        let touched: BTreeSet<String> = of_kind
            .iter()
            .flat_map(|a| subjects(a).into_iter().chain(a.related_client_ids.clone()))
            .collect();
        // Units: campaigns by name, single clients by id.
        let mut units: BTreeMap<String, bool> = BTreeMap::new();
        for (id, l) in &labels {
            if l.attack != Some(kind) {
                continue;
            }
            let unit = l.campaign.clone().unwrap_or_else(|| id.clone());
            let hit = touched.contains(id.as_str());
            let e = units.entry(unit).or_insert(false);
            *e |= hit;
        }
        let detected = units.values().filter(|v| **v).count();
        let alerted_attack = main.iter().filter(|c| attack.contains(c.as_str())).count();
        kinds.push(KindScore {
            kind,
            units: units.len(),
            detected,
            alerted: main.len(),
            alerted_attack,
            recall: if units.is_empty() {
                1.0
            } else {
                detected as f64 / units.len() as f64
            },
            precision: if main.is_empty() {
                1.0
            } else {
                alerted_attack as f64 / main.len() as f64
            },
        });
    }
    let mut false_positives: Vec<(String, String)> = alerts
        .iter()
        .flat_map(|a| subjects(a).into_iter().map(|s| (s, a.summary.clone())))
        .filter(|(s, _)| benign.contains(s.as_str()))
        .collect();
    false_positives.sort();
    false_positives.dedup();
    let benign_alerted: BTreeSet<&str> = false_positives.iter().map(|(c, _)| c.as_str()).collect();
    Ok(EvalReport {
        events: events.len(),
        benign_clients: benign.iter().filter(|u| !is_attempt(u)).count(),
        attack_clients: attack.iter().filter(|u| !is_attempt(u)).count(),
        benign_attempts: benign.iter().filter(|u| is_attempt(u)).count(),
        attack_attempts: attack.iter().filter(|u| is_attempt(u)).count(),
        alerts: alerts.len(),
        benign_alerted: benign_alerted.len(),
        false_positive_rate: if benign.is_empty() {
            0.0
        } else {
            benign_alerted.len() as f64 / benign.len() as f64
        },
        kinds,
        false_positives,
    })
}
