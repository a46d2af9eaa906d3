//! [`Detector`]: the correlation state and the detectors over it. Feed it
//! observations in event order with [`Detector::observe`] and call
//! [`Detector::sweep`] periodically for time-driven detectors; both take
//! time from their input, never from a clock.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::IpAddr;

use chrono::{DateTime, TimeZone, Utc};
use regwatch_schemas::alert::{Alert, AlertKind};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::alerts::{combine, Draft};
use crate::bounded::BoundedMap;
use crate::clients::ClientTable;
use crate::config::{ConfigError, DetectConfig};
use crate::detectors::burst::{KeyType, RateState};
use crate::detectors::drift::{assess_drift, class_flag, DriftSignal, RedirectHistory};
use crate::detectors::impersonation::NameCatalog;
use crate::detectors::scope::assess_scopes;
use crate::hash::{hash32, hash_str, Fnv};
use crate::host::{analyze_redirect, ip_prefix, RedirectClass, RedirectInfo};
use crate::input::{
    ActivityKind, ActivityObservation, ClientObservation, Observation, RejectedObservation,
};
use crate::text::name_key;

/// Seconds on the state clock are counted from 2020-01-01T00:00:00Z so
/// they fit a `u32` until 2156.
const EPOCH: i64 = 1_577_836_800;

/// `at` on the state clock (saturating at both ends).
pub fn state_secs(at: DateTime<Utc>) -> u32 {
    u32::try_from((at.timestamp() - EPOCH).max(0)).unwrap_or(u32::MAX)
}

fn from_state_secs(t: u32) -> DateTime<Utc> {
    Utc.timestamp_opt(EPOCH + i64::from(t), 0)
        .single()
        .unwrap_or_default()
}

/// Lifecycle of a tracked client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    /// Registered and usable.
    Active,
    /// Revoked by an operator or policy.
    Revoked,
    /// Deleted or expired.
    Deleted,
}

const FLAG_DORMANT_REPORTED: u8 = 1;
const FLAG_IMPERSONATION: u8 = 2;
const FLAG_ESTABLISHED: u8 = 4;

/// What the detector keeps per client: 64 bytes, no heap (see
/// [`ClientTable`] for the rest of the per-client cost).
#[derive(Debug, Clone)]
pub struct ClientRecord {
    name_key: u64,
    requested: u64,
    consented: u64,
    pub(crate) first_seen: u32,
    last_seen: u32,
    hosts: [u32; 3],
    domains: [u32; 2],
    src_prefix: u32,
    consents: u16,
    tokens: u16,
    classes: u8,
    status: ClientStatus,
    flags: u8,
    /// The client table's bookkeeping bits (the struct's one spare byte).
    pub(crate) meta: u8,
}

impl ClientRecord {
    pub(crate) fn new(t: u32) -> Self {
        ClientRecord {
            name_key: 0,
            requested: 0,
            consented: 0,
            first_seen: t,
            last_seen: t,
            hosts: [0; 3],
            domains: [0; 2],
            src_prefix: 0,
            consents: 0,
            tokens: 0,
            classes: 0,
            status: ClientStatus::Active,
            flags: 0,
            meta: 0,
        }
    }

    fn remember<const N: usize>(set: &mut [u32; N], h: u32) {
        if h == 0 || set.contains(&h) {
            return;
        }
        // Oldest out: shift left, append.
        set.rotate_left(1);
        set[N - 1] = h;
    }

    fn history(&self) -> RedirectHistory {
        let hosts: Vec<u32> = self.hosts.iter().copied().filter(|h| *h != 0).collect();
        RedirectHistory {
            old: Vec::new(),
            schemes: hosts.clone(),
            hosts,
            domains: self.domains.iter().copied().filter(|h| *h != 0).collect(),
            classes: self.classes,
        }
    }

    /// Lifecycle status.
    pub fn status(&self) -> ClientStatus {
        self.status
    }

    /// Consents granted so far.
    pub fn consents(&self) -> u16 {
        self.consents
    }

    /// Tokens issued or refreshed so far (saturating).
    pub fn tokens(&self) -> u16 {
        self.tokens
    }

    /// First and last time seen.
    pub fn seen(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            from_state_secs(self.first_seen),
            from_state_secs(self.last_seen),
        )
    }
}

/// A name waiting for its client's consent before it becomes established.
#[derive(Debug, Clone)]
struct PendingName {
    name: Box<str>,
    redirects: Vec<RedirectInfo>,
}

/// Clients seen on one redirect host, by distinct name.
#[derive(Debug, Clone, Default)]
struct HostState {
    names: Vec<u32>,
    clients: VecDeque<Box<str>>,
}

/// Identical registrations from one source network.
#[derive(Debug, Clone)]
struct DupState {
    window_start: u32,
    count: u32,
    total: u32,
    reported_at: u32,
    started: u32,
    first_event: Uuid,
    members: VecDeque<(Box<str>, Uuid)>,
}

/// A revoked or deleted client.
#[derive(Debug, Clone)]
struct RevokedState {
    at: u32,
    deleted: bool,
    attempts: u32,
    reported_at: u32,
    first_attempt: u32,
    first_event: Option<Uuid>,
    events: VecDeque<Uuid>,
}

/// Interns scope strings to bits of a `u64` (63 named, bit 63 = any other).
#[derive(Debug, Clone, Default)]
struct ScopeInterner {
    names: Vec<Box<str>>,
}

impl ScopeInterner {
    fn bit(&mut self, s: &str) -> u64 {
        if let Some(i) = self.names.iter().position(|n| &**n == s) {
            return 1 << i;
        }
        if self.names.len() < 63 {
            self.names.push(s.into());
            return 1 << (self.names.len() - 1);
        }
        1 << 63
    }

    fn bits(&mut self, scopes: &[String]) -> u64 {
        scopes.iter().fold(0, |acc, s| acc | self.bit(s))
    }

    fn decode(&self, bits: u64) -> Vec<String> {
        let mut out: Vec<String> = self
            .names
            .iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(_, n)| n.to_string())
            .collect();
        if bits & (1 << 63) != 0 {
            out.push("(other)".to_owned());
        }
        out
    }
}

/// One registration attempt counted by `registration_burst`.
struct Attempt<'a> {
    /// Its client id (empty for a refused attempt that named none).
    client_id: &'a str,
    event_id: Uuid,
    /// Set when the attempt was refused.
    rejected: Option<&'a RejectedObservation>,
}

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
    clients: ClientTable,
    keys: BoundedMap<RateState>,
    names: NameCatalog,
    pending_names: BoundedMap<PendingName>,
    hosts: BoundedMap<HostState>,
    dups: BoundedMap<DupState>,
    identities: BoundedMap<Box<str>>,
    revoked: BoundedMap<RevokedState>,
    scopes: ScopeInterner,
}

/// The metadata fingerprint of a registration: folded name, redirects
/// (loopback ports ignored), software_id, auth method and scopes.
pub fn fingerprint(c: &ClientObservation) -> u64 {
    let mut redirects: Vec<String> = c
        .redirect_uris
        .iter()
        .map(|u| {
            let r = analyze_redirect(u);
            if r.class == RedirectClass::Loopback {
                "loopback".to_owned()
            } else {
                r.raw
            }
        })
        .collect();
    redirects.sort();
    redirects.dedup();
    let mut scopes = c.scopes.clone();
    scopes.sort();
    scopes.dedup();
    let mut h = Fnv::default().field(&name_key(c.client_name.as_deref().unwrap_or("")));
    for r in &redirects {
        h = h.field(r);
    }
    h = h
        .field("|")
        .field(c.software_id.as_deref().unwrap_or(""))
        .field(c.token_endpoint_auth_method.as_deref().unwrap_or(""));
    for s in &scopes {
        h = h.field(s);
    }
    h.finish()
}

impl Detector {
    /// A detector with empty state. Fails when the config does not validate.
    pub fn new(config: DetectConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let l = config.limits.clone();
        Ok(Detector {
            allow_ids: config.allowlist.client_ids.iter().cloned().collect(),
            names: NameCatalog::new(&config.impersonation, l.max_names),
            clients: ClientTable::new(l.max_clients),
            keys: BoundedMap::new(l.max_keys),
            pending_names: BoundedMap::new(l.max_names),
            hosts: BoundedMap::new(l.max_hosts),
            dups: BoundedMap::new(l.max_fingerprints),
            identities: BoundedMap::new(l.max_fingerprints),
            revoked: BoundedMap::new(l.max_revoked),
            scopes: ScopeInterner::default(),
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
            rate_keys: self.keys.len(),
            established_names: self.names.established_len(),
            hosts: self.hosts.len(),
            fingerprints: self.dups.len(),
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
        self.identities
            .peek(&format!("{:016x}", fingerprint(c)))
            .map(|s| s.to_string())
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

    fn allowlisted(&self, client_id: &str) -> bool {
        self.allow_ids.contains(client_id)
    }

    fn on_client(&mut self, c: &ClientObservation, update: bool) -> Vec<Alert> {
        let now = c.at;
        let t = state_secs(now);
        let mut alerts = Vec::new();
        if self.revoked.peek(&c.client_id).is_some() {
            let what = if update {
                "metadata update"
            } else {
                "re-registration"
            };
            alerts.extend(self.revoked_attempt(&c.client_id, what, c.event_id, now));
            return alerts;
        }
        let redirects: Vec<RedirectInfo> = c
            .redirect_uris
            .iter()
            .map(|u| analyze_redirect(u))
            .collect();
        let key = c.client_name.as_deref().map(name_key).unwrap_or_default();
        let key_hash = if key.is_empty() { 0 } else { hash_str(&key) };
        let existing = self.clients.peek(&c.client_id).cloned();
        let is_update = update || existing.is_some();
        let allow = self.allowlisted(&c.client_id);

        if !allow {
            if !update {
                let keys =
                    Self::burst_keys(c.source_ip, &key, &redirects, c.software_id.as_deref());
                let attempt = Attempt {
                    client_id: &c.client_id,
                    event_id: c.event_id,
                    rejected: None,
                };
                alerts.extend(self.burst(keys, attempt, now, t));
            }
            let name_changed = existing.as_ref().is_none_or(|r| r.name_key != key_hash);
            if let (Some(name), true) = (&c.client_name, name_changed) {
                if let Some(f) = self.names.assess(
                    name,
                    &redirects,
                    &self.config.impersonation,
                    Some(&c.client_id),
                ) {
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
                    let dedup = format!("name_impersonation:{}", c.client_id);
                    alerts.push(
                        Draft {
                            kind: AlertKind::NameImpersonation,
                            score: f.score,
                            client_id: c.client_id.clone(),
                            related: match &f.target {
                                Some(crate::detectors::impersonation::Target::Established {
                                    client_id,
                                    ..
                                }) => {
                                    vec![client_id.clone()]
                                }
                                _ => Vec::new(),
                            },
                            event_ids: vec![c.event_id],
                            evidence: f.evidence(name),
                            summary,
                            dedup_key: dedup,
                            created_at: now,
                            id_salt: c.event_id.to_string(),
                        }
                        .build(&self.config, now),
                    );
                    if let Some(r) = self.clients.get_mut(&c.client_id) {
                        r.flags |= FLAG_IMPERSONATION;
                    }
                    // Remembered below for a new client too.
                }
            }
            alerts.extend(self.drift(c, &redirects, existing.as_ref(), is_update, &key, now));
            if is_update {
                let old = match &c.previous_scopes {
                    Some(p) => p.clone(),
                    None => existing
                        .as_ref()
                        .map(|r| self.scopes.decode(r.requested))
                        .unwrap_or_default(),
                };
                if let Some(e) = assess_scopes(&old, &c.scopes, &self.config.scope) {
                    let summary = format!(
                        "client {} widened its requested scopes by {} ({} sensitive: {})",
                        c.client_id,
                        e.added.len(),
                        e.sensitive_added.len(),
                        e.sensitive_added.join(" ")
                    );
                    alerts.push(
                        Draft {
                            kind: AlertKind::ScopeEscalation,
                            score: e.score,
                            client_id: c.client_id.clone(),
                            related: Vec::new(),
                            event_ids: vec![c.event_id],
                            evidence: json!({"trigger": "metadata_update", "old_scopes": old, "new_scopes": c.scopes, "added": e.added, "sensitive_added": e.sensitive_added}),
                            summary,
                            dedup_key: format!("scope_escalation:{}", c.client_id),
                            created_at: now,
                            id_salt: c.event_id.to_string(),
                        }
                        .build(&self.config, now),
                    );
                }
            }
            if !update {
                alerts.extend(self.duplicate(c, now, t));
            }
        }

        // Update the client's record.
        let flagged = alerts
            .iter()
            .any(|a| a.kind == AlertKind::NameImpersonation);
        let requested = self.scopes.bits(&c.scopes);
        let (slot, created) = self
            .clients
            .get_or_insert_with(&c.client_id, || ClientRecord::new(t));
        if let Some(r) = self.clients.at_slot_mut(slot) {
            r.last_seen = r.last_seen.max(t);
            r.name_key = key_hash;
            r.requested = requested;
            if flagged {
                r.flags |= FLAG_IMPERSONATION;
            }
            if let Some(ip) = c.source_ip {
                r.src_prefix = hash32(&ip_prefix(ip));
            }
            for info in &redirects {
                r.classes |= class_flag(info.class);
                if let Some(h) = info.identity_host() {
                    ClientRecord::remember(&mut r.hosts, hash32(h));
                }
                if let Some(d) = &info.registrable {
                    ClientRecord::remember(&mut r.domains, hash32(d));
                }
            }
        }
        if created {
            // Due at first_seen + dormant.after_secs.
            self.clients.enqueue(slot);
        }
        if let Some(name) = &c.client_name {
            if !flagged && !key.is_empty() {
                let established = self
                    .clients
                    .peek(&c.client_id)
                    .is_some_and(|r| r.flags & FLAG_ESTABLISHED != 0);
                if established {
                    self.names.establish(name, &c.client_id, &redirects);
                } else {
                    let p = PendingName {
                        name: name.as_str().into(),
                        redirects: redirects.clone(),
                    };
                    let (s, _) = self
                        .pending_names
                        .get_or_insert_with(&c.client_id, || p.clone());
                    if let Some(v) = self.pending_names.at_slot_mut(s) {
                        *v = p;
                    }
                }
            }
        }
        alerts
    }

    /// The rate keys of one attempt: everything, its address and /24 or
    /// /64, its name skeleton, its non-loopback redirect hosts (at most 8
    /// keys in all) and its software_id.
    fn burst_keys(
        source_ip: Option<IpAddr>,
        key: &str,
        redirects: &[RedirectInfo],
        software_id: Option<&str>,
    ) -> Vec<(KeyType, String)> {
        let mut keys: Vec<(KeyType, String)> = vec![(KeyType::Global, "all".to_owned())];
        if let Some(ip) = source_ip {
            keys.push((KeyType::Ip, ip.to_string()));
            keys.push((KeyType::IpPrefix, ip_prefix(ip)));
        }
        if !key.is_empty() {
            keys.push((KeyType::NameSkeleton, key.to_owned()));
        }
        for r in redirects {
            if matches!(
                r.class,
                RedirectClass::Https | RedirectClass::Http | RedirectClass::PrivateIp
            ) {
                if let Some(h) = &r.host {
                    if !keys
                        .iter()
                        .any(|(k, v)| *k == KeyType::RedirectHost && v == h)
                        && keys.len() < 8
                    {
                        keys.push((KeyType::RedirectHost, h.clone()));
                    }
                }
            }
        }
        if let Some(s) = software_id {
            keys.push((KeyType::SoftwareId, s.to_owned()));
        }
        keys
    }

    /// Counts one attempt under each of `keys` and reports the keys that
    /// burst. Refused attempts count under their own keys (`rejected:` in
    /// the table, `registration_burst:rejected:` in the dedup key): their
    /// own baseline, so they neither inflate nor are hidden by the rate of
    /// accepted registrations.
    fn burst(
        &mut self,
        keys: Vec<(KeyType, String)>,
        attempt: Attempt<'_>,
        now: DateTime<Utc>,
        t: u32,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        let listed = self.config.limits.burst_clients_listed;
        let rejected = attempt.rejected;
        let ns = if rejected.is_some() { "rejected:" } else { "" };
        for (kt, value) in keys {
            let map_key = format!("{ns}{}:{}", kt.as_str(), value);
            let floor = kt.floor(&self.config.burst.floors);
            let (slot, _) = self.keys.get_or_insert_with(&map_key, RateState::default);
            let Some(state) = self.keys.at_slot_mut(slot) else {
                continue;
            };
            let Some(rep) = state.observe(
                t,
                now,
                floor,
                &self.config.burst,
                listed,
                attempt.client_id,
                attempt.event_id,
                rejected.and_then(|r| r.rule.as_deref()),
            ) else {
                continue;
            };
            let score = combine([
                0.45,
                if rep.p_value < 1e-8 { 0.3 } else { 0.1 },
                ((f64::from(rep.count) / f64::from(floor)) - 1.0).clamp(0.0, 1.0) * 0.4,
            ]);
            // A refused attempt usually has no client id: list only real ones.
            let clients: Vec<String> = rep
                .members
                .iter()
                .map(|(id, _)| id.clone())
                .filter(|id| !id.is_empty())
                .collect();
            let related: Vec<String> = clients
                .iter()
                .filter(|id| **id != attempt.client_id)
                .cloned()
                .collect();
            let what = if rejected.is_some() {
                let rules: Vec<String> = rep
                    .details
                    .iter()
                    .map(|(r, n)| format!("{r} x{n}"))
                    .collect();
                if rules.is_empty() {
                    "rejected registrations".to_owned()
                } else {
                    format!("rejected registrations ({})", rules.join(", "))
                }
            } else {
                "registrations".to_owned()
            };
            let summary = format!(
                "{} {what} in {}s from {} {} (floor {}, baseline {:.2}, p = {:.2e})",
                rep.count,
                rep.window_secs,
                kt.as_str(),
                value,
                rep.floor,
                rep.baseline,
                rep.p_value
            );
            let mut evidence = json!({
                "key_type": kt.as_str(),
                "key_value": value,
                "outcome": if rejected.is_some() { "rejected" } else { "registered" },
                "count": rep.count,
                "window_secs": rep.window_secs,
                "rate_per_min": f64::from(rep.count) * 60.0 / f64::from(rep.window_secs),
                "floor": rep.floor,
                "baseline_per_window": rep.baseline,
                "p_value": rep.p_value,
                "crossed_on_this_event": rep.crossed,
                "total_in_burst": rep.total_in_burst,
                "clients": clients,
            });
            if let (Some(r), Some(map)) = (rejected, evidence.as_object_mut()) {
                map.insert("rule".into(), json!(r.rule));
                map.insert("error".into(), json!(r.error));
                map.insert("operation".into(), json!(r.operation));
                // Over the attempts listed in `event_ids` (the latest ones).
                map.insert("rules".into(), json!(rep.details));
            }
            out.push(
                Draft {
                    kind: AlertKind::RegistrationBurst,
                    score,
                    client_id: attempt.client_id.to_owned(),
                    related,
                    event_ids: rep.members.iter().map(|(_, e)| *e).collect(),
                    evidence,
                    summary,
                    dedup_key: format!("registration_burst:{ns}{}:{}", kt.as_str(), value),
                    created_at: rep.started,
                    id_salt: rep.first_event.to_string(),
                }
                .build(&self.config, now),
            );
        }
        out
    }

    /// A refused registration: counted in the burst rates of its source,
    /// name and software id; no per-client state.
    fn on_rejected(&mut self, r: &RejectedObservation) -> Vec<Alert> {
        let client_id = r.client_id.as_deref().unwrap_or("");
        if !client_id.is_empty() && self.allowlisted(client_id) {
            return Vec::new();
        }
        let key = r.client_name.as_deref().map(name_key).unwrap_or_default();
        // Redirect hosts are left out: they are often why it was refused.
        let keys = Self::burst_keys(r.source_ip, &key, &[], r.software_id.as_deref());
        let attempt = Attempt {
            client_id,
            event_id: r.event_id,
            rejected: Some(r),
        };
        self.burst(keys, attempt, r.at, state_secs(r.at))
    }

    fn drift(
        &mut self,
        c: &ClientObservation,
        redirects: &[RedirectInfo],
        existing: Option<&ClientRecord>,
        is_update: bool,
        key: &str,
        now: DateTime<Utc>,
    ) -> Vec<Alert> {
        let mut history = existing.map(ClientRecord::history).unwrap_or_default();
        if let Some(prev) = &c.previous_redirect_uris {
            history.old = prev.iter().map(|u| analyze_redirect(u)).collect();
            history.absorb_old();
        }
        let allow_domains = &self.config.allowlist.domains;
        let mut signals: Vec<DriftSignal> =
            assess_drift(&history, redirects, allow_domains, is_update);
        // One redirect host shared by many differently named clients.
        let min_names = self.config.drift.shared_host_min_names as usize;
        let name_h = hash32(key);
        let mut sharing: Vec<String> = Vec::new();
        for r in redirects {
            if !matches!(
                r.class,
                RedirectClass::Https | RedirectClass::Http | RedirectClass::PrivateIp
            ) {
                continue;
            }
            let (Some(host), Some(domain)) = (&r.host, r.registrable.as_ref().or(r.host.as_ref()))
            else {
                continue;
            };
            if allow_domains.iter().any(|d| d == domain) {
                continue;
            }
            let (slot, _) = self.hosts.get_or_insert_with(host, HostState::default);
            let Some(hs) = self.hosts.at_slot_mut(slot) else {
                continue;
            };
            let new_name = !key.is_empty() && !hs.names.contains(&name_h);
            if new_name && hs.names.len() <= min_names {
                hs.names.push(name_h);
            }
            if !hs.clients.iter().any(|x| **x == *c.client_id) {
                if hs.clients.len() >= 10 {
                    hs.clients.pop_front();
                }
                hs.clients.push_back(c.client_id.as_str().into());
            }
            if new_name && hs.names.len() >= min_names {
                signals.push(DriftSignal {
                    signal: "shared_redirect_host",
                    weight: 0.5,
                    uri: r.raw.clone(),
                    detail: format!(
                        "{host} is the redirect host of {}+ differently named clients",
                        hs.names.len()
                    ),
                });
                sharing.extend(
                    hs.clients
                        .iter()
                        .map(|x| x.to_string())
                        .filter(|x| *x != c.client_id),
                );
            }
        }
        if signals.is_empty() {
            return Vec::new();
        }
        let score = combine(signals.iter().map(|s| s.weight));
        if score < self.config.drift.min_score {
            return Vec::new();
        }
        let old_desc: Vec<String> = match &c.previous_redirect_uris {
            Some(p) => p.clone(),
            None => Vec::new(),
        };
        let mut names: Vec<&str> = signals.iter().map(|s| s.signal).collect();
        names.dedup();
        let summary = format!(
            "client {} redirects {} -> {}: {}",
            c.client_id,
            if old_desc.is_empty() {
                "(history)".to_owned()
            } else {
                old_desc.join(" ")
            },
            c.redirect_uris.join(" "),
            names.join(", ")
        );
        sharing.sort();
        sharing.dedup();
        vec![Draft {
            kind: AlertKind::RedirectDrift,
            score,
            client_id: c.client_id.clone(),
            related: sharing,
            event_ids: vec![c.event_id],
            evidence: json!({
                "trigger": if c.previous_redirect_uris.is_some() || existing.is_some() { "update" } else { "registration" },
                "old_redirect_uris": old_desc,
                "new_redirect_uris": c.redirect_uris,
                "known_hosts_before": history.hosts.len(),
                "known_registrable_domains_before": history.domains.len(),
                "new": redirects.iter().map(|r| json!({"uri": r.raw, "class": r.class, "host": r.host, "registrable_domain": r.registrable})).collect::<Vec<_>>(),
                "signals": signals,
            }),
            summary,
            dedup_key: format!("redirect_drift:{}", c.client_id),
            created_at: now,
            id_salt: c.event_id.to_string(),
        }
        .build(&self.config, now)]
    }

    fn duplicate(&mut self, c: &ClientObservation, now: DateTime<Utc>, t: u32) -> Vec<Alert> {
        let fp = fingerprint(c);
        let fp_hex = format!("{fp:016x}");
        self.identities
            .get_or_insert_with(&fp_hex, || c.client_id.as_str().into());
        let source = c
            .source_ip
            .map(ip_prefix)
            .unwrap_or_else(|| "unknown".to_owned());
        // Hashed: the table key is 16 characters, not fingerprint + network.
        let key = format!(
            "{:016x}",
            Fnv::default().field(&fp_hex).field(&source).finish()
        );
        let cfg = self.config.duplicate.clone();
        let (slot, _) = self.dups.get_or_insert_with(&key, || DupState {
            window_start: t,
            count: 0,
            total: 0,
            reported_at: 0,
            started: t,
            first_event: c.event_id,
            members: VecDeque::new(),
        });
        let Some(d) = self.dups.at_slot_mut(slot) else {
            return Vec::new();
        };
        if t >= d.window_start.saturating_add(cfg.window_secs) {
            d.window_start = t;
            d.count = 0;
            d.reported_at = 0;
        }
        d.count += 1;
        d.total += 1;
        // Keep the member list only once there is a duplicate: a unique
        // registration costs no heap here.
        if d.count >= 2 || d.reported_at > 0 {
            if d.members.len() >= 10 {
                d.members.pop_front();
            }
            d.members
                .push_back((c.client_id.as_str().into(), c.event_id));
        }
        let report = d.count >= cfg.threshold
            && (d.reported_at == 0 || d.count >= d.reported_at.saturating_mul(2));
        if !report {
            return Vec::new();
        }
        if d.reported_at == 0 {
            d.started = t;
            d.first_event = c.event_id;
        }
        d.reported_at = d.count;
        let identity = self
            .identities
            .peek(&fp_hex)
            .map(|s| s.to_string())
            .unwrap_or_else(|| c.client_id.clone());
        let score =
            (0.4 + 0.1 * (f64::from(d.count) / f64::from(cfg.threshold)).log2()).clamp(0.0, 0.9);
        let members: Vec<String> = d.members.iter().map(|(id, _)| id.to_string()).collect();
        vec![Draft {
            kind: AlertKind::DuplicateRegistration,
            score,
            client_id: c.client_id.clone(),
            related: members
                .iter()
                .filter(|m| **m != c.client_id)
                .cloned()
                .collect(),
            event_ids: d.members.iter().map(|(_, e)| *e).collect(),
            evidence: json!({
                "fingerprint": fp_hex,
                "identity": identity,
                "source_network": source,
                "count_in_window": d.count,
                "window_secs": cfg.window_secs,
                "threshold": cfg.threshold,
                "total": d.total,
                "client_name": c.client_name,
                "redirect_uris": c.redirect_uris,
                "recent_clients": members,
            }),
            summary: format!(
                "{} identical registrations of {:?} from {} within {}s (one identity: {})",
                d.count,
                c.client_name.as_deref().unwrap_or(""),
                source,
                cfg.window_secs,
                identity
            ),
            dedup_key: format!("duplicate_registration:{fp_hex}:{source}"),
            created_at: from_state_secs(d.started),
            id_salt: d.first_event.to_string(),
        }
        .build(&self.config, now)]
    }

    fn revoked_attempt(
        &mut self,
        client_id: &str,
        what: &str,
        event_id: Uuid,
        now: DateTime<Utc>,
    ) -> Vec<Alert> {
        let t = state_secs(now);
        let Some(r) = self.revoked.get_mut(client_id) else {
            return Vec::new();
        };
        r.attempts += 1;
        if r.first_event.is_none() {
            r.first_event = Some(event_id);
            r.first_attempt = t;
        }
        if r.events.len() >= 10 {
            r.events.pop_front();
        }
        r.events.push_back(event_id);
        let report = r.reported_at == 0 || r.attempts >= r.reported_at.saturating_mul(2);
        if !report {
            return Vec::new();
        }
        r.reported_at = r.attempts;
        let base = if what == "tool call" { 0.8 } else { 0.65 };
        let score = combine([base, (0.05 * f64::from(r.attempts)).min(0.5)]);
        let state = if r.deleted { "deleted" } else { "revoked" };
        let alert = Draft {
            kind: AlertKind::RevokedClientActivity,
            score,
            client_id: client_id.to_owned(),
            related: Vec::new(),
            event_ids: r.events.iter().copied().collect(),
            evidence: json!({
                "client_state": state,
                "revoked_at": from_state_secs(r.at),
                "attempt": what,
                "attempts": r.attempts,
                "seconds_since_revocation": t.saturating_sub(r.at),
            }),
            summary: format!(
                "{state} client {client_id} attempted a {what} ({} attempt(s) since {state})",
                r.attempts
            ),
            dedup_key: format!("revoked_client_activity:{client_id}"),
            created_at: from_state_secs(r.first_attempt),
            id_salt: r.first_event.map(|e| e.to_string()).unwrap_or_default(),
        }
        .build(&self.config, now);
        vec![alert]
    }

    fn on_activity(&mut self, a: &ActivityObservation) -> Vec<Alert> {
        let now = a.at;
        let t = state_secs(now);
        if self.revoked.peek(&a.client_id).is_some() {
            let what = match &a.kind {
                ActivityKind::TokenIssued => "token request",
                ActivityKind::TokenRefreshed => "token refresh",
                ActivityKind::ToolCalled { .. } => "tool call",
                ActivityKind::ManagementCall { .. } => "management call",
                ActivityKind::ConsentGranted { .. } => "consent",
                ActivityKind::ConsentDenied | ActivityKind::Revoked | ActivityKind::Deleted => {
                    return Vec::new()
                }
            };
            return self.revoked_attempt(&a.client_id, what, a.event_id, now);
        }
        let mut alerts = Vec::new();
        let allow = self.allowlisted(&a.client_id);
        match &a.kind {
            ActivityKind::ConsentGranted { scopes } => {
                let granted = self.scopes.bits(scopes);
                let rec = self.clients.peek(&a.client_id).cloned();
                if let (Some(r), false) = (&rec, allow) {
                    let before = if r.consents > 0 {
                        r.requested | r.consented
                    } else {
                        r.requested
                    };
                    let beyond = granted & !before;
                    // First consent within the registered scopes is normal.
                    if beyond != 0 {
                        let old = self.scopes.decode(before);
                        if let Some(e) = assess_scopes(&old, scopes, &self.config.scope) {
                            alerts.push(
                                Draft {
                                    kind: AlertKind::ScopeEscalation,
                                    score: e.score,
                                    client_id: a.client_id.clone(),
                                    related: Vec::new(),
                                    event_ids: vec![a.event_id],
                                    evidence: json!({"trigger": "consent", "previous_scopes": old, "granted_scopes": scopes, "added": e.added, "sensitive_added": e.sensitive_added, "prior_consents": r.consents}),
                                    summary: format!(
                                        "consent for client {} went beyond its earlier scopes: {}",
                                        a.client_id,
                                        e.added.join(" ")
                                    ),
                                    dedup_key: format!("scope_escalation:{}", a.client_id),
                                    created_at: now,
                                    id_salt: a.event_id.to_string(),
                                }
                                .build(&self.config, now),
                            );
                        }
                    }
                }
                let threshold = self.config.impersonation.established_after_consents;
                let mut establish = false;
                if let Some(r) = self.clients.get_mut(&a.client_id) {
                    r.consented |= granted;
                    r.consents = r.consents.saturating_add(1);
                    r.last_seen = r.last_seen.max(t);
                    if u32::from(r.consents) >= threshold
                        && r.flags & (FLAG_IMPERSONATION | FLAG_ESTABLISHED) == 0
                    {
                        r.flags |= FLAG_ESTABLISHED;
                        establish = true;
                    }
                }
                if establish {
                    if let Some(p) = self.pending_names.remove(&a.client_id) {
                        self.names.establish(&p.name, &a.client_id, &p.redirects);
                    }
                }
            }
            ActivityKind::TokenIssued | ActivityKind::TokenRefreshed => {
                if let Some(r) = self.clients.get_mut(&a.client_id) {
                    r.tokens = r.tokens.saturating_add(1);
                    r.last_seen = r.last_seen.max(t);
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
                self.pending_names.remove(&a.client_id);
                self.revoked
                    .get_or_insert_with(&a.client_id, || RevokedState {
                        at: t,
                        deleted,
                        attempts: 0,
                        reported_at: 0,
                        first_attempt: t,
                        first_event: None,
                        events: VecDeque::new(),
                    });
            }
            ActivityKind::ConsentDenied
            | ActivityKind::ToolCalled { .. }
            | ActivityKind::ManagementCall { .. } => {
                if let Some(r) = self.clients.get_mut(&a.client_id) {
                    r.last_seen = r.last_seen.max(t);
                }
            }
        }
        alerts
    }

    /// Time-driven detectors (`dormant_client`): call periodically with the
    /// pipeline's notion of now (e.g. the latest event time).
    pub fn sweep(&mut self, now: DateTime<Utc>) -> Vec<Alert> {
        let t = state_secs(now);
        let after = self.config.dormant.after_secs;
        let mut due: Vec<(String, u32, u32)> = Vec::new();
        while let Some(slot) = self.clients.next_due(t, after) {
            let Some(r) = self.clients.at_slot(slot) else {
                continue;
            };
            if r.consents > 0
                || r.status != ClientStatus::Active
                || r.flags & FLAG_DORMANT_REPORTED != 0
            {
                continue;
            }
            let (prefix, first_seen) = (r.src_prefix, r.first_seen);
            let Some(id) = self.clients.id_at(slot) else {
                continue;
            };
            if self.allowlisted(&id) {
                continue;
            }
            due.push((id, prefix, first_seen));
            if let Some(r) = self.clients.at_slot_mut(slot) {
                r.flags |= FLAG_DORMANT_REPORTED;
            }
        }
        let mut per_prefix: BTreeMap<u32, u32> = BTreeMap::new();
        for (_, p, _) in &due {
            if *p != 0 {
                *per_prefix.entry(*p).or_default() += 1;
            }
        }
        let cluster_min = self.config.dormant.cluster_min;
        due.into_iter()
            .map(|(id, prefix, first_seen)| {
                let cluster = per_prefix.get(&prefix).copied().unwrap_or(1);
                let score = if cluster >= cluster_min { 0.65 } else { 0.4 };
                let tokens = self.clients.peek(&id).map(|r| r.tokens).unwrap_or(0);
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
                .build(&self.config, now)
            })
            .collect()
    }
}
