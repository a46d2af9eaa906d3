//! A small bounded TTL cache of validated documents.
//!
//! Only successfully validated documents are ever inserted; errors and
//! invalid documents never are (CIMD: MUST NOT cache them). Time is passed
//! in, so the logic is tested without sleeping.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::document::CimdDocument;

struct Entry {
    document: Arc<CimdDocument>,
    expires_at: Instant,
}

/// Documents keyed by the exact `client_id` string.
pub(crate) struct DocumentCache {
    capacity: usize,
    entries: HashMap<String, Entry>,
}

impl DocumentCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: HashMap::new(),
        }
    }

    /// The cached document for `client_id` if it has not expired at `now`.
    pub(crate) fn get(&mut self, client_id: &str, now: Instant) -> Option<Arc<CimdDocument>> {
        match self.entries.get(client_id) {
            Some(entry) if entry.expires_at > now => Some(Arc::clone(&entry.document)),
            Some(_) => {
                self.entries.remove(client_id);
                None
            }
            None => None,
        }
    }

    /// Store `document` for `ttl`. A zero TTL or capacity stores nothing.
    /// When full, expired entries go first, then the one expiring soonest.
    pub(crate) fn insert(
        &mut self,
        client_id: &str,
        document: Arc<CimdDocument>,
        ttl: Duration,
        now: Instant,
    ) {
        if self.capacity == 0 || ttl.is_zero() {
            return;
        }
        let Some(expires_at) = now.checked_add(ttl) else {
            return;
        };
        if !self.entries.contains_key(client_id) && self.entries.len() >= self.capacity {
            self.entries.retain(|_, e| e.expires_at > now);
            if self.entries.len() >= self.capacity {
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires_at)
                    .map(|(k, _)| k.clone());
                if let Some(key) = soonest {
                    self.entries.remove(&key);
                }
            }
        }
        self.entries.insert(
            client_id.to_owned(),
            Entry {
                document,
                expires_at,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// How long a fetched document may be cached.
///
/// `cache_control` holds every `Cache-Control` header value; `age` the
/// `Age` header, if any. Rules:
/// - `no-store` or `no-cache` (we do not revalidate): not cached;
/// - `max-age=N`: `N - Age` seconds, at most `max_ttl`; a malformed or
///   repeated `max-age` counts as stale (RFC 9111 §4.2.1), so not cached;
/// - no `max-age`: `default_ttl`, at most `max_ttl`.
///
/// `Expires` and `s-maxage` are not consulted.
pub(crate) fn ttl_from_headers(
    cache_control: &[&str],
    age: Option<&str>,
    default_ttl: Duration,
    max_ttl: Duration,
) -> Duration {
    let mut max_age: Option<u64> = None;
    let mut max_age_seen = 0usize;
    for directive in cache_control.iter().flat_map(|v| v.split(',')) {
        let directive = directive.trim();
        let (name, value) = match directive.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (directive, None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Duration::ZERO;
        }
        if name.eq_ignore_ascii_case("max-age") {
            max_age_seen += 1;
            max_age = value.and_then(|v| v.parse::<u64>().ok());
        }
    }
    let ttl = match (max_age_seen, max_age) {
        (0, _) => default_ttl,
        (1, Some(secs)) => {
            let age = age.and_then(|a| a.trim().parse::<u64>().ok()).unwrap_or(0);
            Duration::from_secs(secs.saturating_sub(age))
        }
        _ => Duration::ZERO,
    };
    ttl.min(max_ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str) -> Arc<CimdDocument> {
        Arc::new(CimdDocument {
            client_id: id.to_owned(),
            client_name: "x".into(),
            redirect_uris: vec!["https://a.example/cb".into()],
            grant_types: None,
            response_types: None,
            token_endpoint_auth_method: None,
            scope: None,
            client_uri: None,
            logo_uri: None,
            tos_uri: None,
            policy_uri: None,
            jwks_uri: None,
            jwks: None,
            contacts: None,
            software_id: None,
            software_version: None,
            application_type: None,
            ignored_fields: vec![],
        })
    }

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn entries_expire() {
        let now = Instant::now();
        let mut cache = DocumentCache::new(4);
        cache.insert("a", doc("a"), MIN, now);
        assert!(cache.get("a", now).is_some());
        assert!(cache
            .get("a", now + MIN - Duration::from_millis(1))
            .is_some());
        assert!(cache.get("a", now + MIN).is_none());
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn zero_ttl_or_capacity_stores_nothing() {
        let now = Instant::now();
        let mut cache = DocumentCache::new(4);
        cache.insert("a", doc("a"), Duration::ZERO, now);
        assert!(cache.get("a", now).is_none());
        let mut disabled = DocumentCache::new(0);
        disabled.insert("a", doc("a"), MIN, now);
        assert!(disabled.get("a", now).is_none());
    }

    #[test]
    fn capacity_is_bounded_evicting_expired_then_soonest() {
        let now = Instant::now();
        let mut cache = DocumentCache::new(2);
        cache.insert("short", doc("short"), MIN, now);
        cache.insert("long", doc("long"), MIN * 10, now);
        cache.insert("new", doc("new"), MIN * 5, now);
        assert_eq!(cache.len(), 2);
        assert!(
            cache.get("short", now).is_none(),
            "soonest to expire is evicted"
        );
        assert!(cache.get("long", now).is_some());
        assert!(cache.get("new", now).is_some());

        // Later, once "new" has expired, it is the one dropped.
        let later = now + MIN * 6;
        cache.insert("newer", doc("newer"), MIN, later);
        assert_eq!(cache.len(), 2);
        assert!(cache.get("long", later).is_some());
        assert!(cache.get("newer", later).is_some());

        // Re-inserting an existing key does not evict anything.
        cache.insert("long", doc("long"), MIN, later);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn ttl_table() {
        let default = Duration::from_secs(300);
        let max = Duration::from_secs(3600);
        let cases: &[(&[&str], Option<&str>, u64)] = &[
            (&[], None, 300),
            (&["public"], None, 300),
            (&["max-age=60"], None, 60),
            (&["public, max-age=60"], None, 60),
            (&["MAX-AGE=\"120\""], None, 120),
            (&["max-age=60"], Some("20"), 40),
            (&["max-age=60"], Some("90"), 0),
            (&["max-age=60"], Some("junk"), 60),
            (&["max-age=999999999"], None, 3600),
            (&["max-age=0"], None, 0),
            (&["max-age=abc"], None, 0),
            (&["max-age"], None, 0),
            (&["max-age=10", "max-age=20"], None, 0),
            (&["no-store"], None, 0),
            (&["max-age=60, no-cache"], None, 0),
            (&["public", "No-Store"], None, 0),
        ];
        for &(headers, age, expected) in cases {
            assert_eq!(
                ttl_from_headers(headers, age, default, max),
                Duration::from_secs(expected),
                "{headers:?} age {age:?}"
            );
        }
        // The default is bounded by max_ttl too.
        assert_eq!(
            ttl_from_headers(&[], None, Duration::from_secs(7200), max),
            max
        );
    }
}
