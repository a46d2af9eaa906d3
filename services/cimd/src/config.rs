//! Fetcher configuration.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::error::CimdError;

/// The CIMD draft's read limit: "at most 5 KB". `max_bytes` may be lowered,
/// never raised above this.
pub const MAX_BYTES_CEILING: usize = 5 * 1024;

/// The longest a document may be cached (SEP-991 suggests 24 h at most).
pub const MAX_TTL_CEILING: Duration = Duration::from_secs(24 * 60 * 60);

/// How the fetcher behaves. Every field has a safe default; unknown keys are
/// rejected so a typo cannot silently keep a default.
///
/// Durations are written as an integer number of seconds or as a string
/// with a unit: `"300ms"`, `"5s"`, `"5m"`, `"24h"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CimdConfig {
    /// Development only: allow loopback targets (127.0.0.0/8, `::1`) and
    /// plain `http` for them, so tests can run against a local server
    /// without TLS. Every other internal address stays refused. Must be
    /// `false` in production, where fetches are `https` only.
    pub allow_loopback_dev: bool,
    /// Body cap in bytes, read incrementally; `Content-Length` is not
    /// trusted. 1..=5120 (the draft's 5 KB).
    pub max_bytes: usize,
    /// Deadline for the whole fetch: resolution, connection, TLS, headers
    /// and body. Bounds how long a slow or hostile server can hold us.
    #[serde(deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Deadline for establishing one connection; at most `timeout`.
    #[serde(deserialize_with = "de_duration")]
    pub connect_timeout: Duration,
    /// Most documents kept in the cache; `0` disables caching.
    pub cache_capacity: usize,
    /// TTL when the response has no `Cache-Control: max-age`.
    #[serde(deserialize_with = "de_duration")]
    pub default_ttl: Duration,
    /// Upper bound on any TTL, including a server's `max-age`; at most 24 h.
    #[serde(deserialize_with = "de_duration")]
    pub max_ttl: Duration,
}

impl Default for CimdConfig {
    fn default() -> Self {
        Self {
            allow_loopback_dev: false,
            max_bytes: MAX_BYTES_CEILING,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            cache_capacity: 1024,
            default_ttl: Duration::from_secs(5 * 60),
            max_ttl: MAX_TTL_CEILING,
        }
    }
}

impl CimdConfig {
    /// Check the bounds; the error names the offending key.
    pub fn validate(&self) -> Result<(), CimdError> {
        let bad = |reason: String| Err(CimdError::Config { reason });
        if self.max_bytes == 0 || self.max_bytes > MAX_BYTES_CEILING {
            return bad(format!(
                "max_bytes must be in 1..={MAX_BYTES_CEILING}, got {}",
                self.max_bytes
            ));
        }
        if self.timeout.is_zero() {
            return bad("timeout must be greater than zero".into());
        }
        if self.connect_timeout.is_zero() || self.connect_timeout > self.timeout {
            return bad("connect_timeout must be greater than zero and at most timeout".into());
        }
        if self.max_ttl > MAX_TTL_CEILING {
            return bad("max_ttl must be at most 24h".into());
        }
        if self.default_ttl > self.max_ttl {
            return bad("default_ttl must be at most max_ttl".into());
        }
        Ok(())
    }
}

fn de_duration<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }
    match Raw::deserialize(de)? {
        Raw::Secs(secs) => Ok(Duration::from_secs(secs)),
        Raw::Text(text) => parse_duration(&text).map_err(serde::de::Error::custom),
    }
}

/// Parse `"<integer><unit>"` with unit `ms`, `s`, `m` or `h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. \"5s\""))?;
    let millis_per_unit: u64 = match unit.trim() {
        "ms" => 1,
        "s" | "" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        other => {
            return Err(format!(
                "invalid duration unit {other:?} (use ms, s, m or h)"
            ))
        }
    };
    value
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("duration {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_production_safe() {
        let config = CimdConfig::default();
        assert!(config.validate().is_ok());
        assert!(!config.allow_loopback_dev);
        assert_eq!(config.max_bytes, 5120);
        assert_eq!(config.timeout, Duration::from_secs(5));
    }

    #[test]
    fn deserializes_with_units_and_rejects_unknown_keys() {
        let config: CimdConfig = serde_json::from_str(
            r#"{"allow_loopback_dev":true,"timeout":"300ms","connect_timeout":1,"max_ttl":"1h","default_ttl":"5m"}"#,
        )
        .expect("valid config");
        assert!(config.allow_loopback_dev);
        assert_eq!(config.timeout, Duration::from_millis(300));
        assert_eq!(config.connect_timeout, Duration::from_secs(1));
        assert_eq!(config.max_ttl, Duration::from_secs(3600));
        assert_eq!(config.default_ttl, Duration::from_secs(300));
        assert_eq!(config.max_bytes, 5120);

        assert!(serde_json::from_str::<CimdConfig>(r#"{"allow_loopback":true}"#).is_err());
        assert!(serde_json::from_str::<CimdConfig>(r#"{"timeout":"5 parsecs"}"#).is_err());
        assert!(serde_json::from_str::<CimdConfig>(r#"{"timeout":"-1s"}"#).is_err());
    }

    #[test]
    fn validate_names_the_bad_key() {
        let cases: Vec<(CimdConfig, &str)> = vec![
            (
                CimdConfig {
                    max_bytes: 6000,
                    ..CimdConfig::default()
                },
                "max_bytes",
            ),
            (
                CimdConfig {
                    max_bytes: 0,
                    ..CimdConfig::default()
                },
                "max_bytes",
            ),
            (
                CimdConfig {
                    timeout: Duration::ZERO,
                    ..CimdConfig::default()
                },
                "timeout",
            ),
            (
                CimdConfig {
                    connect_timeout: Duration::from_secs(10),
                    ..CimdConfig::default()
                },
                "connect_timeout",
            ),
            (
                CimdConfig {
                    max_ttl: Duration::from_secs(25 * 3600),
                    ..CimdConfig::default()
                },
                "max_ttl",
            ),
            (
                CimdConfig {
                    default_ttl: Duration::from_secs(3600),
                    max_ttl: Duration::from_secs(60),
                    ..CimdConfig::default()
                },
                "default_ttl",
            ),
        ];
        for (config, key) in cases {
            match config.validate() {
                Err(CimdError::Config { reason }) => assert!(reason.starts_with(key), "{reason}"),
                other => panic!("expected a config error naming {key}, got {other:?}"),
            }
        }
    }
}
