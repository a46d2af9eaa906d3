//! Who is asking, and how much they may ask.
//!
//! The source of a request is the TCP peer, or the right-most untrusted
//! address of `X-Forwarded-For` when the peer is a configured trusted
//! proxy. IPv6 sources are keyed by their /64 (one subscriber), IPv4 by
//! the address.
//!
//! Escalation for a source that keeps hitting the limit: each time it is
//! refused, at most once per minute, its flag level rises. Level 1: its
//! rate is divided by `flagged_divisor`. Level 2: sensitive scopes are
//! refused (enforced by the policy gate). Level 3: blocked. Flags lapse
//! `flag_ttl_secs` after they were last raised.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use crate::config::RateLimitConfig;

/// The highest flag level: blocked.
pub const BLOCK_LEVEL: u8 = 3;
const RAISE_EVERY: Duration = Duration::from_secs(60);

/// The request's source address.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.iter().any(|n| n.contains(&peer)) {
        return Some(peer);
    }
    let mut hops: Vec<IpAddr> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        let Ok(s) = v.to_str() else { return Some(peer) };
        for part in s.split(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => hops.push(ip),
                // A garbled header from a trusted proxy: trust nothing in it.
                Err(_) => return Some(peer),
            }
        }
    }
    Some(
        hops.into_iter()
            .rev()
            .find(|ip| !trusted.iter().any(|n| n.contains(ip)))
            .unwrap_or(peer),
    )
}

/// The rate-limit key of an address.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed {
        flag_level: u8,
    },
    /// Refused (429); `record` is true for the first refusal of a minute: that one
    /// goes to the outbox, the rest are not written, so a flood of
    /// refusals cannot become a flood of writes.
    Limited {
        retry_after_secs: u64,
        flag_level: u8,
        record: bool,
    },
    Blocked {
        flag_level: u8,
        record: bool,
    },
}

#[derive(Debug, Clone, Copy)]
struct Flag {
    level: u8,
    raised_at: Instant,
    recorded_at: Option<Instant>,
}

pub struct SourceGuard {
    cfg: RateLimitConfig,
    normal: Option<DefaultKeyedRateLimiter<IpAddr>>,
    strict: Option<DefaultKeyedRateLimiter<IpAddr>>,
    flags: Mutex<HashMap<IpAddr, Flag>>,
}

impl SourceGuard {
    pub fn new(cfg: RateLimitConfig) -> Self {
        let quota = |per_min: u32, burst: u32| {
            NonZeroU32::new(per_min).map(|r| {
                Quota::per_minute(r)
                    .allow_burst(NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN))
            })
        };
        let normal = quota(cfg.per_minute, cfg.burst).map(RateLimiter::keyed);
        let div = cfg.flagged_divisor.max(1);
        let strict = quota((cfg.per_minute / div).max(1), (cfg.burst / div).max(1))
            .filter(|_| cfg.per_minute > 0)
            .map(RateLimiter::keyed);
        SourceGuard {
            cfg,
            normal,
            strict,
            flags: Mutex::new(HashMap::new()),
        }
    }

    fn level_now(&self, flags: &mut HashMap<IpAddr, Flag>, key: IpAddr, now: Instant) -> u8 {
        match flags.get(&key) {
            Some(f)
                if now.duration_since(f.raised_at)
                    < Duration::from_secs(self.cfg.flag_ttl_secs) =>
            {
                f.level
            }
            Some(_) => {
                flags.remove(&key);
                0
            }
            None => 0,
        }
    }

    /// Decide whether one more request from `ip` may go on.
    pub fn admit(&self, ip: Option<IpAddr>, now: Instant) -> Admission {
        let Some(ip) = ip else {
            return Admission::Allowed { flag_level: 0 };
        };
        let key = source_key(ip);
        let mut flags = self.flags.lock().unwrap_or_else(|p| p.into_inner());
        let level = self.level_now(&mut flags, key, now);
        if level >= BLOCK_LEVEL {
            let record = Self::should_record(&mut flags, key, now);
            return Admission::Blocked {
                flag_level: level,
                record,
            };
        }
        // A flagged source must pass both the normal and the strict bucket.
        let mut verdict = Ok(());
        for l in [Some(&self.normal), (level >= 1).then_some(&self.strict)]
            .into_iter()
            .flatten()
            .flatten()
        {
            verdict = verdict.and_then(|_| l.check_key(&key));
        }
        match verdict {
            Ok(()) => Admission::Allowed { flag_level: level },
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                let new_level = self.raise_locked(&mut flags, key, now, false);
                let record = Self::should_record(&mut flags, key, now);
                Admission::Limited {
                    retry_after_secs: wait.as_secs().max(1),
                    flag_level: new_level,
                    record,
                }
            }
        }
    }

    fn should_record(flags: &mut HashMap<IpAddr, Flag>, key: IpAddr, now: Instant) -> bool {
        match flags.get_mut(&key) {
            Some(f)
                if f.recorded_at
                    .is_some_and(|r| now.duration_since(r) < RAISE_EVERY) =>
            {
                false
            }
            Some(f) => {
                f.recorded_at = Some(now);
                true
            }
            None => true,
        }
    }

    fn raise_locked(
        &self,
        flags: &mut HashMap<IpAddr, Flag>,
        key: IpAddr,
        now: Instant,
        force: bool,
    ) -> u8 {
        if flags.len() >= self.cfg.max_tracked_sources && !flags.contains_key(&key) {
            self.evict(flags, now);
        }
        let f = flags.entry(key).or_insert(Flag {
            level: 0,
            raised_at: now,
            recorded_at: None,
        });
        if force || f.level == 0 || now.duration_since(f.raised_at) >= RAISE_EVERY {
            f.level = (f.level + 1).min(BLOCK_LEVEL);
            f.raised_at = now;
        }
        f.level
    }

    /// Drop lapsed flags; if still full, the oldest half.
    fn evict(&self, flags: &mut HashMap<IpAddr, Flag>, now: Instant) {
        let ttl = Duration::from_secs(self.cfg.flag_ttl_secs);
        flags.retain(|_, f| now.duration_since(f.raised_at) < ttl);
        if flags.len() >= self.cfg.max_tracked_sources {
            let mut ages: Vec<Instant> = flags.values().map(|f| f.raised_at).collect();
            ages.sort();
            let cut = ages[ages.len() / 2];
            flags.retain(|_, f| f.raised_at > cut);
        }
    }

    /// Raise a source's flag by one level (admin or detector). Returns the new level.
    pub fn flag(&self, ip: IpAddr, now: Instant) -> u8 {
        let mut flags = self.flags.lock().unwrap_or_else(|p| p.into_inner());
        self.raise_locked(&mut flags, source_key(ip), now, true)
    }

    pub fn unflag(&self, ip: IpAddr) {
        self.flags
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&source_key(ip));
    }

    pub fn flag_level(&self, ip: IpAddr, now: Instant) -> u8 {
        let mut flags = self.flags.lock().unwrap_or_else(|p| p.into_inner());
        self.level_now(&mut flags, source_key(ip), now)
    }

    /// Forget rate-limit state of idle sources (bounded memory); call periodically.
    pub fn housekeeping(&self, now: Instant) {
        for l in [&self.normal, &self.strict].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
        let mut flags = self.flags.lock().unwrap_or_else(|p| p.into_inner());
        let ttl = Duration::from_secs(self.cfg.flag_ttl_secs);
        flags.retain(|_, f| now.duration_since(f.raised_at) < ttl);
    }

    pub fn tracked_flags(&self) -> usize {
        self.flags.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("198.51.100.9, 203.0.113.7, 10.1.1.1"),
        );
        let peer_proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let peer_public: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(
            client_ip(Some(peer_proxy), &h, &trusted),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            client_ip(Some(peer_public), &h, &trusted),
            Some(peer_public)
        );
        h.insert("x-forwarded-for", HeaderValue::from_static("garbage"));
        assert_eq!(client_ip(Some(peer_proxy), &h, &trusted), Some(peer_proxy));
    }

    #[test]
    fn ipv6_is_keyed_by_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        let m: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(source_key(m), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn escalation_rate_limits_then_blocks() {
        let g = SourceGuard::new(RateLimitConfig {
            per_minute: 2,
            burst: 2,
            ..Default::default()
        });
        let addr: IpAddr = "203.0.113.7".parse().unwrap();
        let ip = Some(addr);
        let t0 = Instant::now();
        assert_eq!(g.admit(ip, t0), Admission::Allowed { flag_level: 0 });
        assert_eq!(g.admit(ip, t0), Admission::Allowed { flag_level: 0 });
        match g.admit(ip, t0) {
            Admission::Limited {
                flag_level: 1,
                record: true,
                retry_after_secs,
            } => assert!(retry_after_secs >= 1),
            other => panic!("{other:?}"),
        }
        // The second refusal in the same minute is not recorded again.
        assert!(matches!(
            g.admit(ip, t0),
            Admission::Limited {
                record: false,
                flag_level: 1,
                ..
            }
        ));
        let other: Option<IpAddr> = Some("198.51.100.1".parse().unwrap());
        assert_eq!(g.admit(other, t0), Admission::Allowed { flag_level: 0 });
        // Admin flags twice more: blocked.
        g.flag(addr, t0);
        assert_eq!(g.flag(addr, t0), BLOCK_LEVEL);
        assert!(matches!(
            g.admit(ip, t0),
            Admission::Blocked { flag_level: 3, .. }
        ));
        g.unflag(addr);
        assert_eq!(g.flag_level(addr, t0), 0);
    }

    #[test]
    fn flags_lapse() {
        let g = SourceGuard::new(RateLimitConfig {
            flag_ttl_secs: 10,
            ..Default::default()
        });
        let ip: IpAddr = "203.0.113.8".parse().unwrap();
        let t0 = Instant::now();
        g.flag(ip, t0);
        assert_eq!(g.flag_level(ip, t0 + Duration::from_secs(5)), 1);
        assert_eq!(g.flag_level(ip, t0 + Duration::from_secs(11)), 0);
    }
}
