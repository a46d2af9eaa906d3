//! `name_impersonation`: a client name that renders like a protected name
//! or an established client's name, judged together with whether the
//! redirect targets belong to the owner of that name (the [`NameCatalog`]).
//!
//! A name becomes established (a target others are compared with) only
//! once its client has been consented to often enough and was never
//! flagged itself; until then it waits here, bounded.

mod catalog;

use regwatch_schemas::alert::{Alert, AlertKind};

pub use catalog::{
    EstablishedName, ImpersonationFinding, MatchType, NameCatalog, Ownership, Target,
};

use super::ClientEvent;
use crate::alerts::Draft;
use crate::bounded::BoundedMap;
use crate::clients::record::flags;
use crate::clients::ClientRecord;
use crate::config::{DetectConfig, ImpersonationConfig};
use crate::host::RedirectInfo;

/// A name waiting for its client's consent before it becomes established.
#[derive(Debug, Clone)]
struct PendingName {
    name: Box<str>,
    redirects: Vec<RedirectInfo>,
}

/// `name_impersonation`: the catalog of protected and established names
/// and the names waiting to be established.
#[derive(Debug)]
pub(crate) struct ImpersonationDetector {
    names: NameCatalog,
    pending: BoundedMap<PendingName>,
}

impl ImpersonationDetector {
    /// The protected names from `cfg`; room for `max_names` established
    /// and as many pending names.
    pub(crate) fn new(cfg: &ImpersonationConfig, max_names: usize) -> Self {
        ImpersonationDetector {
            names: NameCatalog::new(cfg, max_names),
            pending: BoundedMap::new(max_names),
        }
    }

    /// Established names indexed.
    pub(crate) fn established_len(&self) -> usize {
        self.names.established_len()
    }

    /// Judges the name of a registration or update, when it is new or
    /// changed.
    pub(crate) fn observe(&self, ev: &ClientEvent<'_>, config: &DetectConfig) -> Option<Alert> {
        let c = ev.obs;
        let name_changed = ev
            .existing
            .as_ref()
            .is_none_or(|r| r.name_key != ev.name_hash());
        let name = c.client_name.as_ref().filter(|_| name_changed)?;
        let f = self.names.assess(
            name,
            &ev.redirects,
            &config.impersonation,
            Some(&c.client_id),
        )?;
        let target = f.target.as_ref().map(|t| t.name().to_owned());
        let summary = match &target {
            Some(tn) => format!(
                "client \"{}\" impersonates \"{}\": {}",
                name.escape_debug(),
                tn,
                f.reasons.join("; ")
            ),
            None => format!(
                "client name \"{}\" hides characters: {}",
                name.escape_debug(),
                f.reasons.join("; ")
            ),
        };
        let related = match &f.target {
            Some(Target::Established { client_id, .. }) => vec![client_id.clone()],
            _ => Vec::new(),
        };
        Some(
            Draft {
                kind: AlertKind::NameImpersonation,
                score: f.score,
                client_id: c.client_id.clone(),
                related,
                event_ids: vec![c.event_id],
                evidence: f.evidence(name),
                summary,
                dedup_key: format!("name_impersonation:{}", c.client_id),
                created_at: ev.now,
                id_salt: c.event_id.to_string(),
            }
            .build(config, ev.now),
        )
    }

    /// After the client's record took the event in: an unflagged name is
    /// established at once when its client already is, else it waits for
    /// consent (replacing what the client waited with before).
    pub(crate) fn remember(&mut self, ev: &ClientEvent<'_>, flagged: bool, established: bool) {
        let Some(name) = &ev.obs.client_name else {
            return;
        };
        if flagged || ev.name_key.is_empty() {
            return;
        }
        let client_id = ev.obs.client_id.as_str();
        if established {
            self.names.establish(name, client_id, &ev.redirects);
            return;
        }
        let p = PendingName {
            name: name.as_str().into(),
            redirects: ev.redirects.clone(),
        };
        let (s, _) = self.pending.get_or_insert_with(client_id, || p.clone());
        if let Some(v) = self.pending.at_slot_mut(s) {
            *v = p;
        }
    }

    /// After a consent was folded into `rec`: enough consents and never
    /// flagged, the client's waiting name becomes established.
    pub(crate) fn observe_consent(
        &mut self,
        client_id: &str,
        rec: &mut ClientRecord,
        config: &DetectConfig,
    ) {
        let threshold = config.impersonation.established_after_consents;
        if u32::from(rec.consents) < threshold
            || rec.flags & (flags::IMPERSONATION | flags::ESTABLISHED) != 0
        {
            return;
        }
        rec.flags |= flags::ESTABLISHED;
        if let Some(p) = self.pending.remove(client_id) {
            self.names.establish(&p.name, client_id, &p.redirects);
        }
    }

    /// A revoked or deleted client's name never becomes established.
    pub(crate) fn forget(&mut self, client_id: &str) {
        self.pending.remove(client_id);
    }
}
