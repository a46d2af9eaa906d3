//! The detectors, one module each, each owning its state and its alert
//! logic; [`crate::engine::Detector`] dispatches observations to them and
//! keeps the client table they share ([`crate::clients`]).
//!
//! | module | alert kind | own state |
//! |---|---|---|
//! | [`burst`] | `registration_burst` | rate per key (source, network, name, redirect host, software id) |
//! | [`impersonation`] | `name_impersonation` | protected and established names, names waiting for consent |
//! | [`drift`] | `redirect_drift` | clients per redirect host |
//! | [`scope`] | `scope_escalation` | none (the client record's scope bits) |
//! | [`duplicate`] | `duplicate_registration` | fingerprints per source network, identities |
//! | [`dormant`] | `dormant_client` | none (the client table's dormancy queue) |
//! | [`revoked`] | `revoked_client_activity` | revoked and deleted clients |
//!
//! The pure parts (rate math, name scoring, drift signals, scope
//! comparison) are public and table-tested on their own.

pub mod burst;
pub mod dormant;
pub mod drift;
pub mod duplicate;
pub mod impersonation;
pub mod revoked;
pub mod scope;

use chrono::{DateTime, Utc};

use crate::clients::ClientRecord;
use crate::hash::hash_str;
use crate::host::{analyze_redirect, RedirectInfo};
use crate::input::ClientObservation;
use crate::state_time::state_secs;
use crate::text::name_key;

/// A registration or metadata update, analysed once for every detector.
#[derive(Debug)]
pub(crate) struct ClientEvent<'a> {
    /// The observation.
    pub obs: &'a ClientObservation,
    /// An RFC 7592 update, not a registration.
    pub update: bool,
    /// Its redirect URIs, analysed.
    pub redirects: Vec<RedirectInfo>,
    /// Its folded name (empty without a name).
    pub name_key: String,
    /// The client's record before this event (`None`: not tracked).
    pub existing: Option<ClientRecord>,
    /// When, as a timestamp and on the state's time scale.
    pub now: DateTime<Utc>,
    pub t: u32,
}

impl<'a> ClientEvent<'a> {
    pub(crate) fn new(
        obs: &'a ClientObservation,
        update: bool,
        existing: Option<ClientRecord>,
    ) -> Self {
        ClientEvent {
            obs,
            update,
            redirects: obs
                .redirect_uris
                .iter()
                .map(|u| analyze_redirect(u))
                .collect(),
            name_key: obs.client_name.as_deref().map(name_key).unwrap_or_default(),
            existing,
            now: obs.at,
            t: state_secs(obs.at),
        }
    }

    /// The client was known before: an update, or a registration of a
    /// client id already tracked.
    pub(crate) fn is_update(&self) -> bool {
        self.update || self.existing.is_some()
    }

    /// The hash of the folded name kept in the record (0 without a name).
    pub(crate) fn name_hash(&self) -> u64 {
        if self.name_key.is_empty() {
            0
        } else {
            hash_str(&self.name_key)
        }
    }
}
