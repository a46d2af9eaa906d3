//! `registration_burst`: per-key registration rates against a static floor
//! and a learned baseline. The rate is a sliding-window estimate from two
//! buckets (current window plus the overlapping part of the previous one);
//! the baseline is an EWMA of past per-window counts (windows that fired
//! are left out, so a burst does not teach itself); the tail probability
//! P(X >= count) under Poisson(baseline) comes from `statrs`. The check
//! runs on every event, so the alert fires on the event that crosses.
//!
//! `BurstDetector` keeps one [`RateState`] per key in a bounded map and
//! turns reports into alerts. Refused registrations count under keys of
//! their own.

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use regwatch_schemas::alert::{Alert, AlertKind};
use serde::Serialize;
use serde_json::json;
use statrs::distribution::{DiscreteCDF, Poisson};
use uuid::Uuid;

use super::ClientEvent;
use crate::alerts::{combine, Draft};
use crate::bounded::BoundedMap;
use crate::config::{BurstConfig, DetectConfig, KeyFloors};
use crate::host::{ip_prefix, RedirectClass, RedirectInfo};
use crate::input::RejectedObservation;
use crate::state_time::state_secs;
use crate::text::name_key;

/// What a rate key counts registrations by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    /// Source address.
    Ip,
    /// Source /24 or /64.
    IpPrefix,
    /// Folded name skeleton.
    NameSkeleton,
    /// Redirect host (never loopback).
    RedirectHost,
    /// `software_id`.
    SoftwareId,
    /// Everything.
    Global,
}

impl KeyType {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Ip => "ip",
            KeyType::IpPrefix => "ip_prefix",
            KeyType::NameSkeleton => "name_skeleton",
            KeyType::RedirectHost => "redirect_host",
            KeyType::SoftwareId => "software_id",
            KeyType::Global => "global",
        }
    }

    /// The configured floor for this key type.
    pub fn floor(self, f: &KeyFloors) -> u32 {
        match self {
            KeyType::Ip => f.ip,
            KeyType::IpPrefix => f.ip_prefix,
            KeyType::NameSkeleton => f.name_skeleton,
            KeyType::RedirectHost => f.redirect_host,
            KeyType::SoftwareId => f.software_id,
            KeyType::Global => f.global,
        }
    }
}

/// P(X >= k) for X ~ Poisson(lambda).
pub fn poisson_tail(k: u32, lambda: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    match Poisson::new(lambda) {
        Ok(p) => p.sf(u64::from(k - 1)),
        Err(_) => 1.0,
    }
}

/// A client counted in the current burst.
#[derive(Debug, Clone)]
pub struct BurstMember {
    /// Client id.
    pub client_id: Box<str>,
    /// Its registration event.
    pub event_id: Uuid,
    /// When (seconds on the state clock).
    pub at: u32,
    /// What else the alert should tally about it (for a rejected attempt:
    /// the rule that refused it).
    pub detail: Option<Box<str>>,
}

/// An ongoing burst.
#[derive(Debug, Clone)]
pub struct Episode {
    /// When it crossed.
    pub started: DateTime<Utc>,
    /// The event that crossed (salts the alert id).
    pub first_event: Uuid,
    /// Count at the last alert; the next update comes at twice this.
    pub reported_at: u32,
    /// Registrations counted since it started.
    pub total: u32,
}

/// Rate state of one key. 40 bytes while idle.
#[derive(Debug, Clone, Default)]
pub struct RateState {
    window_start: u32,
    cur: u32,
    prev: u32,
    ewma: f32,
    windows: u32,
    hot: bool,
    episode: Option<Box<Episode>>,
    /// The first registration of the window, kept without a list so a key
    /// that sees one event (most source addresses) costs one small box.
    first: Option<Box<BurstMember>>,
    // Boxed on purpose: an idle key then pays 8 bytes, not 32.
    #[allow(clippy::box_collection)]
    members: Option<Box<VecDeque<BurstMember>>>,
}

/// The numbers behind one rate check that is to be reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BurstReport {
    /// Registrations in the sliding window, this one included.
    pub count: u32,
    /// Window length, seconds.
    pub window_secs: u32,
    /// Static floor for the key type.
    pub floor: u32,
    /// Learned baseline per window (EWMA, at least `min_baseline`).
    pub baseline: f64,
    /// P(X >= count) under Poisson(baseline).
    pub p_value: f64,
    /// True on the crossing event, false on a later update.
    pub crossed: bool,
    /// Registrations since the burst started.
    pub total_in_burst: u32,
    /// When the burst started.
    pub started: DateTime<Utc>,
    /// The crossing event.
    pub first_event: Uuid,
    /// The latest clients counted, oldest first, with their events.
    pub members: Vec<(String, Uuid)>,
    /// How often each member detail occurs among the listed members.
    pub details: BTreeMap<String, u32>,
}

impl RateState {
    fn roll(&mut self, t: u32, cfg: &BurstConfig) {
        let w = cfg.window_secs.max(1);
        if self.windows == 0 && self.cur == 0 && self.prev == 0 {
            self.window_start = t - t % w;
            self.ewma = cfg.min_baseline as f32;
            self.windows = 1;
            return;
        }
        if t < self.window_start.saturating_add(w) {
            return;
        }
        let n = (t - self.window_start) / w;
        let a = cfg.ewma_alpha as f32;
        if !self.hot {
            self.ewma = a * self.cur as f32 + (1.0 - a) * self.ewma;
        }
        if n > 1 {
            self.ewma *= (1.0 - a).powi((n - 1).min(10_000) as i32);
        }
        self.prev = if n == 1 { self.cur } else { 0 };
        self.cur = 0;
        self.hot = false;
        self.window_start = self.window_start.saturating_add(n.saturating_mul(w));
        self.windows = self.windows.saturating_add(n);
        if let Some(m) = self.members.as_mut() {
            let horizon = t.saturating_sub(2 * w);
            while m.front().is_some_and(|x| x.at < horizon) {
                m.pop_front();
            }
        }
        if self.members.as_ref().is_some_and(|m| m.is_empty()) {
            self.members = None;
        }
        if self
            .first
            .as_ref()
            .is_some_and(|f| f.at < t.saturating_sub(2 * w))
        {
            self.first = None;
        }
    }

    /// Counts one registration at `t` (seconds on a monotone state clock,
    /// `at` the same instant as a timestamp) and returns a report when it
    /// crosses the threshold or a running burst doubles.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        t: u32,
        at: DateTime<Utc>,
        floor: u32,
        cfg: &BurstConfig,
        listed: usize,
        client_id: &str,
        event_id: Uuid,
        detail: Option<&str>,
    ) -> Option<BurstReport> {
        // Out-of-order events count in the current window.
        let t = t.max(self.window_start);
        self.roll(t, cfg);
        self.cur = self.cur.saturating_add(1);
        let w = cfg.window_secs.max(1);
        let frac = f64::from(t - self.window_start) / f64::from(w);
        let carried = (f64::from(self.prev) * (1.0 - frac).max(0.0)).round() as u32;
        let count = self.cur.saturating_add(carried);
        let member = BurstMember {
            client_id: client_id.into(),
            event_id,
            at: t,
            detail: detail.map(Into::into),
        };
        if self.members.is_none() && self.first.is_none() {
            self.first = Some(Box::new(member));
        } else {
            let first = self.first.take();
            let m = self
                .members
                .get_or_insert_with(|| Box::new(VecDeque::new()));
            if let Some(f) = first {
                m.push_back(*f);
            }
            while m.len() >= listed.max(1) {
                m.pop_front();
            }
            m.push_back(member);
        }
        let baseline = f64::from(self.ewma).max(cfg.min_baseline);
        let firing = count >= floor && {
            let p = poisson_tail(count, baseline);
            p <= cfg.max_p_value
        };
        if firing {
            self.hot = true;
        }
        let report = match (&mut self.episode, firing) {
            (None, true) => {
                self.episode = Some(Box::new(Episode {
                    started: at,
                    first_event: event_id,
                    reported_at: count,
                    total: count,
                }));
                true
            }
            (Some(e), _) => {
                e.total = e.total.saturating_add(1);
                if firing && count >= e.reported_at.saturating_mul(2) {
                    e.reported_at = count;
                    true
                } else {
                    if count < floor / 2 {
                        self.episode = None;
                    }
                    false
                }
            }
            (None, false) => false,
        };
        if !report {
            return None;
        }
        let e = self.episode.as_ref()?;
        let listed = || {
            self.first
                .iter()
                .map(|x| &**x)
                .chain(self.members.iter().flat_map(|m| m.iter()))
        };
        let mut details: BTreeMap<String, u32> = BTreeMap::new();
        for d in listed().filter_map(|x| x.detail.as_deref()) {
            *details.entry(d.to_owned()).or_default() += 1;
        }
        Some(BurstReport {
            count,
            window_secs: w,
            floor,
            baseline,
            p_value: poisson_tail(count, baseline),
            crossed: e.total == count && e.reported_at == count && e.first_event == event_id,
            total_in_burst: e.total,
            started: e.started,
            first_event: e.first_event,
            members: listed()
                .map(|x| (x.client_id.to_string(), x.event_id))
                .collect(),
            details,
        })
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

/// `registration_burst`: the rate state of every key, bounded.
#[derive(Debug)]
pub(crate) struct BurstDetector {
    keys: BoundedMap<RateState>,
}

impl BurstDetector {
    /// Empty, holding at most `max_keys` rate keys.
    pub(crate) fn new(max_keys: usize) -> Self {
        BurstDetector {
            keys: BoundedMap::new(max_keys),
        }
    }

    /// Rate keys tracked.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Counts a registration (not an update) under its keys.
    pub(crate) fn observe_registration(
        &mut self,
        ev: &ClientEvent<'_>,
        config: &DetectConfig,
    ) -> Vec<Alert> {
        let c = ev.obs;
        let keys = burst_keys(
            c.source_ip,
            &ev.name_key,
            &ev.redirects,
            c.software_id.as_deref(),
        );
        let attempt = Attempt {
            client_id: &c.client_id,
            event_id: c.event_id,
            rejected: None,
        };
        self.count(keys, attempt, ev.now, ev.t, config)
    }

    /// A refused registration: counted in the rates of its source, name
    /// and software id; no per-client state.
    pub(crate) fn observe_rejected(
        &mut self,
        r: &RejectedObservation,
        config: &DetectConfig,
    ) -> Vec<Alert> {
        let client_id = r.client_id.as_deref().unwrap_or("");
        let key = r.client_name.as_deref().map(name_key).unwrap_or_default();
        // Redirect hosts are left out: they are often why it was refused.
        let keys = burst_keys(r.source_ip, &key, &[], r.software_id.as_deref());
        let attempt = Attempt {
            client_id,
            event_id: r.event_id,
            rejected: Some(r),
        };
        self.count(keys, attempt, r.at, state_secs(r.at), config)
    }

    /// Counts one attempt under each of `keys` and reports the keys that
    /// burst. Refused attempts count under their own keys (`rejected:` in
    /// the table, `registration_burst:rejected:` in the dedup key): their
    /// own baseline, so they neither inflate nor are hidden by the rate of
    /// accepted registrations.
    fn count(
        &mut self,
        keys: Vec<(KeyType, String)>,
        attempt: Attempt<'_>,
        now: DateTime<Utc>,
        t: u32,
        config: &DetectConfig,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        let listed = config.limits.burst_clients_listed;
        let rejected = attempt.rejected;
        let ns = if rejected.is_some() { "rejected:" } else { "" };
        for (kt, value) in keys {
            let map_key = format!("{ns}{}:{}", kt.as_str(), value);
            let floor = kt.floor(&config.burst.floors);
            let (slot, _) = self.keys.get_or_insert_with(&map_key, RateState::default);
            let Some(state) = self.keys.at_slot_mut(slot) else {
                continue;
            };
            let Some(rep) = state.observe(
                t,
                now,
                floor,
                &config.burst,
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
                .build(config, now),
            );
        }
        out
    }
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
