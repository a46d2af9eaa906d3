//! `registration_burst`: per-key registration rates against a static floor
//! and a learned baseline. The rate is a sliding-window estimate from two
//! buckets (current window plus the overlapping part of the previous one);
//! the baseline is an EWMA of past per-window counts (windows that fired
//! are left out, so a burst does not teach itself); the tail probability
//! P(X >= count) under Poisson(baseline) comes from `statrs`. The check
//! runs on every event, so the alert fires on the event that crosses.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::Serialize;
use statrs::distribution::{DiscreteCDF, Poisson};
use uuid::Uuid;

use crate::config::{BurstConfig, KeyFloors};

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
