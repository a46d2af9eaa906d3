//! `dormant_client`: a client registered and never consented to within
//! `dormant.after_secs`, scored higher when many from one source network
//! go dormant together. No state of its own: it drains the client table's
//! dormancy queue ([`ClientTable::next_due`]) and marks each client it
//! reports in its record, so a client is reported once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use regwatch_schemas::alert::{Alert, AlertKind};
use serde_json::json;

use crate::alerts::Draft;
use crate::clients::record::flags;
use crate::clients::{ClientStatus, ClientTable};
use crate::config::DetectConfig;
use crate::state_time::{from_state_secs, state_secs};

/// The clients whose dormancy check is due at `now` and that never reached
/// consent, one alert each. `allowlisted` clients are checked off
/// without an alert.
pub(crate) fn sweep(
    clients: &mut ClientTable,
    allowlisted: impl Fn(&str) -> bool,
    config: &DetectConfig,
    now: DateTime<Utc>,
) -> Vec<Alert> {
    let t = state_secs(now);
    let after = config.dormant.after_secs;
    let mut due: Vec<(String, u32, u32)> = Vec::new();
    while let Some(slot) = clients.next_due(t, after) {
        let Some(r) = clients.at_slot(slot) else {
            continue;
        };
        if r.consents > 0
            || r.status != ClientStatus::Active
            || r.flags & flags::DORMANT_REPORTED != 0
        {
            continue;
        }
        let (prefix, first_seen) = (r.src_prefix, r.first_seen);
        let Some(id) = clients.id_at(slot) else {
            continue;
        };
        if allowlisted(&id) {
            continue;
        }
        due.push((id, prefix, first_seen));
        if let Some(r) = clients.at_slot_mut(slot) {
            r.flags |= flags::DORMANT_REPORTED;
        }
    }
    let mut per_prefix: BTreeMap<u32, u32> = BTreeMap::new();
    for (_, p, _) in &due {
        if *p != 0 {
            *per_prefix.entry(*p).or_default() += 1;
        }
    }
    let cluster_min = config.dormant.cluster_min;
    due.into_iter()
        .map(|(id, prefix, first_seen)| {
            let cluster = per_prefix.get(&prefix).copied().unwrap_or(1);
            let score = if cluster >= cluster_min { 0.65 } else { 0.4 };
            let tokens = clients.peek(&id).map(|r| r.tokens).unwrap_or(0);
            Draft {
                kind: AlertKind::DormantClient,
                score,
                client_id: id.clone(),
                related: Vec::new(),
                event_ids: Vec::new(),
                evidence: json!({
                    "registered_at": from_state_secs(first_seen),
                    "dormant_after_secs": after,
                    "consents": 0,
                    "tokens": tokens,
                    "dormant_clients_same_source_network": cluster,
                }),
                summary: format!(
                    "client {id} registered {} and never reached consent in {}h ({cluster} dormant from the same network)",
                    from_state_secs(first_seen).format("%Y-%m-%dT%H:%M:%SZ"),
                    after / 3600
                ),
                dedup_key: format!("dormant_client:{id}"),
                created_at: now,
                id_salt: id.clone(),
            }
            .build(config, now)
        })
        .collect()
}
