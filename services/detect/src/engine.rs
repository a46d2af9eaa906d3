//! [`Detector`]: the engine. Feed it observations in event order with
//! [`Detector::observe`] and call [`Detector::sweep`] periodically for
//! time-driven detectors; both take time from their input, never from a
//! clock.
//!
//! It owns no alert logic: it keeps the client table the detectors share,
//! sends each observation to the detectors that judge it (in a fixed
//! order, so the alerts come out in the same order every time), folds the
//! observation into the client's record, and applies the two rules that
//! span detectors:
//!
//! - a revoked or deleted client is judged by `revoked_client_activity`
//!   alone;
//! - a name flagged by `name_impersonation` never becomes an established
//!   name, whatever the client does next.
//!
//! Allowlisted clients are judged by no detector except
//! `revoked_client_activity`.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use regwatch_schemas::alert::{Alert, AlertKind};
use serde::Serialize;

use crate::clients::record::flags;
use crate::clients::{ClientRecord, ClientStatus, ClientTable, ScopeInterner};
use crate::config::{ConfigError, DetectConfig};
use crate::detectors::burst::BurstDetector;
use crate::detectors::drift::DriftDetector;
use crate::detectors::duplicate::DuplicateDetector;
use crate::detectors::impersonation::ImpersonationDetector;
use crate::detectors::revoked::{attempt_of, RevokedDetector};
use crate::detectors::{dormant, scope, ClientEvent};
use crate::input::{
    ActivityKind, ActivityObservation, ClientObservation, Observation, RejectedObservation,
};
use crate::state_time::state_secs;

/// Sizes of the correlation state, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StateStats {
    /// Clients tracked.
    pub clients: usize,
    /// Clients evicted so far.
    pub client_evictions: u64,
    /// Rate keys tracked.
    pub rate_keys: usize,
    /// Established names indexed.
    pub established_names: usize,
    /// Redirect hosts tracked.
    pub hosts: usize,
    /// Fingerprints tracked (per source network).
    pub fingerprints: usize,
    /// Revoked clients remembered.
    pub revoked: usize,
    /// Dormancy checks pending.
    pub dormant_pending: usize,
}

/// The stateful detector. Not thread-safe by design: the pipeline keys
/// events by `client_id` and owns one `Detector` per consumer.
#[derive(Debug)]
pub struct Detector {
    config: DetectConfig,
    allow_ids: HashSet<String>,
    /// Shared by every detector: one record per client.
    clients: ClientTable,
    /// The scope bits of the client records.
    scopes: ScopeInterner,
    burst: BurstDetector,
    impersonation: ImpersonationDetector,
    drift: DriftDetector,
    duplicate: DuplicateDetector,
    revoked: RevokedDetector,
}

impl Detector {
    /// A detector with empty state. Fails when the config does not validate.
    pub fn new(config: DetectConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let l = &config.limits;
        Ok(Detector {
            allow_ids: config.allowlist.client_ids.iter().cloned().collect(),
            clients: ClientTable::new(l.max_clients),
            scopes: ScopeInterner::default(),
            burst: BurstDetector::new(l.max_keys),
            impersonation: ImpersonationDetector::new(&config.impersonation, l.max_names),
            drift: DriftDetector::new(l.max_hosts),
            duplicate: DuplicateDetector::new(l.max_fingerprints),
            revoked: RevokedDetector::new(l.max_revoked),
            config,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &DetectConfig {
        &self.config
    }

    /// Sizes of the state.
    pub fn stats(&self) -> StateStats {
        StateStats {
            clients: self.clients.len(),
            client_evictions: self.clients.evictions(),
            rate_keys: self.burst.len(),
            established_names: self.impersonation.established_len(),
            hosts: self.drift.len(),
            fingerprints: self.duplicate.len(),
            revoked: self.revoked.len(),
            dormant_pending: self.clients.dormant_pending(),
        }
    }

    /// What is known about one client.
    pub fn client(&self, client_id: &str) -> Option<&ClientRecord> {
        self.clients.peek(client_id)
    }

    /// The identity a registration collapses into: the first client id
    /// registered with the same metadata fingerprint.
    pub fn identity_of(&self, c: &ClientObservation) -> Option<String> {
        self.duplicate.identity_of(c)
    }

    /// Processes one observation; returns the alerts it raises or updates.
    pub fn observe(&mut self, obs: &Observation) -> Vec<Alert> {
        match obs {
            Observation::Registered(c) => self.on_client(c, false),
            Observation::Updated(c) => self.on_client(c, true),
            Observation::Activity(a) => self.on_activity(a),
            Observation::Rejected(r) => self.on_rejected(r),
        }
    }

    /// Time-driven detectors (`dormant_client`): call periodically with the
    /// pipeline's notion of now (e.g. the latest event time).
    pub fn sweep(&mut self, now: DateTime<Utc>) -> Vec<Alert> {
        let allow = &self.allow_ids;
        dormant::sweep(
            &mut self.clients,
            |id| allow.contains(id),
            &self.config,
            now,
        )
    }

    fn allowlisted(&self, client_id: &str) -> bool {
        self.allow_ids.contains(client_id)
    }

    fn on_client(&mut self, c: &ClientObservation, update: bool) -> Vec<Alert> {
        if self.revoked.is_revoked(&c.client_id) {
            let what = if update {
                "metadata update"
            } else {
                "re-registration"
            };
            return self.revoked.observe_attempt(
                &c.client_id,
                what,
                c.event_id,
                c.at,
                &self.config,
            );
        }
        let ev = ClientEvent::new(c, update, self.clients.peek(&c.client_id).cloned());
        let config = &self.config;
        let mut alerts = Vec::new();
        if !self.allowlisted(&c.client_id) {
            if !update {
                alerts.extend(self.burst.observe_registration(&ev, config));
            }
            alerts.extend(self.impersonation.observe(&ev, config));
            alerts.extend(self.drift.observe(&ev, config));
            alerts.extend(scope::observe_update(&ev, &self.scopes, config));
            if !update {
                alerts.extend(self.duplicate.observe(&ev, config));
            }
        }

        // Fold the event into the client's record.
        let flagged = alerts
            .iter()
            .any(|a| a.kind == AlertKind::NameImpersonation);
        let requested = self.scopes.bits(&c.scopes);
        let (slot, created) = self
            .clients
            .get_or_insert_with(&c.client_id, || ClientRecord::new(ev.t));
        let mut established = false;
        if let Some(r) = self.clients.at_slot_mut(slot) {
            r.absorb_registration(ev.t, ev.name_hash(), requested, c.source_ip, &ev.redirects);
            if flagged {
                r.flags |= flags::IMPERSONATION;
            }
            established = r.flags & flags::ESTABLISHED != 0;
        }
        if created {
            // Due at first_seen + dormant.after_secs.
            self.clients.enqueue(slot);
        }
        self.impersonation.remember(&ev, flagged, established);
        alerts
    }

    fn on_activity(&mut self, a: &ActivityObservation) -> Vec<Alert> {
        if self.revoked.is_revoked(&a.client_id) {
            return match attempt_of(&a.kind) {
                Some(what) => {
                    self.revoked
                        .observe_attempt(&a.client_id, what, a.event_id, a.at, &self.config)
                }
                None => Vec::new(),
            };
        }
        let t = state_secs(a.at);
        let mut alerts = Vec::new();
        match &a.kind {
            ActivityKind::ConsentGranted { scopes } => {
                let granted = self.scopes.bits(scopes);
                if !self.allowlisted(&a.client_id) {
                    if let Some(r) = self.clients.peek(&a.client_id) {
                        alerts.extend(scope::observe_consent(
                            a,
                            scopes,
                            granted,
                            r,
                            &self.scopes,
                            &self.config,
                        ));
                    }
                }
                if let Some(r) = self.clients.get_mut(&a.client_id) {
                    r.absorb_consent(t, granted);
                    self.impersonation
                        .observe_consent(&a.client_id, r, &self.config);
                }
            }
            ActivityKind::TokenIssued | ActivityKind::TokenRefreshed => {
                if let Some(r) = self.clients.get_mut(&a.client_id) {
                    r.absorb_token(t);
                }
            }
            ActivityKind::Revoked | ActivityKind::Deleted => {
                let deleted = matches!(a.kind, ActivityKind::Deleted);
                if let Some(r) = self.clients.get_mut(&a.client_id) {
                    r.status = if deleted {
                        ClientStatus::Deleted
                    } else {
                        ClientStatus::Revoked
                    };
                }
                self.impersonation.forget(&a.client_id);
                self.revoked.record(&a.client_id, deleted, t);
            }
            ActivityKind::ConsentDenied
            | ActivityKind::ToolCalled { .. }
            | ActivityKind::ManagementCall { .. } => {
                if let Some(r) = self.clients.get_mut(&a.client_id) {
                    r.touch(t);
                }
            }
        }
        alerts
    }

    /// A refused registration: counted in the burst rates; no per-client
    /// state.
    fn on_rejected(&mut self, r: &RejectedObservation) -> Vec<Alert> {
        let client_id = r.client_id.as_deref().unwrap_or("");
        if !client_id.is_empty() && self.allowlisted(client_id) {
            return Vec::new();
        }
        self.burst.observe_rejected(r, &self.config)
    }
}
