//! Detector configuration: one documented struct, unknown keys rejected,
//! checked by [`DetectConfig::validate`] with an error naming the bad key.

use std::collections::BTreeMap;

use regwatch_schemas::alert::{AlertKind, Severity};
use serde::{Deserialize, Serialize};

/// A bad configuration value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `key` (dotted path) holds a value outside its allowed range.
    #[error("invalid config value for `{key}`: {reason}")]
    Invalid {
        /// Dotted path of the key, e.g. `burst.window_secs`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Everything the detectors can be tuned with. Every section has defaults,
/// so `{}` is a valid configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Sizes of the in-memory correlation state.
    pub limits: Limits,
    /// `registration_burst`.
    pub burst: BurstConfig,
    /// `name_impersonation`.
    pub impersonation: ImpersonationConfig,
    /// `redirect_drift`.
    pub drift: DriftConfig,
    /// `scope_escalation`.
    pub scope: ScopeConfig,
    /// `dormant_client`.
    pub dormant: DormantConfig,
    /// `duplicate_registration`.
    pub duplicate: DuplicateConfig,
    /// Clients and domains no detector alerts on (except
    /// `revoked_client_activity`, which is a fact, not a judgement).
    pub allowlist: Allowlist,
    /// Base severity per kind; the score moves it one step (see `alerts`).
    pub severities: BTreeMap<AlertKind, Severity>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        let severities = BTreeMap::from([
            (AlertKind::RegistrationBurst, Severity::Medium),
            (AlertKind::NameImpersonation, Severity::High),
            (AlertKind::RedirectDrift, Severity::High),
            (AlertKind::ScopeEscalation, Severity::Medium),
            (AlertKind::DormantClient, Severity::Low),
            (AlertKind::DuplicateRegistration, Severity::Low),
            (AlertKind::RevokedClientActivity, Severity::High),
        ]);
        DetectConfig {
            limits: Limits::default(),
            burst: BurstConfig::default(),
            impersonation: ImpersonationConfig::default(),
            drift: DriftConfig::default(),
            scope: ScopeConfig::default(),
            dormant: DormantConfig::default(),
            duplicate: DuplicateConfig::default(),
            allowlist: Allowlist::default(),
            severities,
        }
    }
}

/// Caps of the bounded state; past a cap the least recently used entry goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Clients tracked at once.
    pub max_clients: usize,
    /// Rate keys (IP, prefix, skeleton, host, software_id) tracked at once.
    pub max_keys: usize,
    /// Distinct established client names indexed for lookalike checks.
    pub max_names: usize,
    /// Redirect hosts tracked for the shared-host check.
    pub max_hosts: usize,
    /// Metadata fingerprints tracked for duplicate collapsing.
    pub max_fingerprints: usize,
    /// Revoked or deleted client ids remembered (kept apart from clients so
    /// eviction never forgets a revocation first).
    pub max_revoked: usize,
    /// Client ids listed in a burst alert.
    pub burst_clients_listed: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: 1_000_000,
            max_keys: 500_000,
            max_names: 200_000,
            max_hosts: 200_000,
            max_fingerprints: 500_000,
            max_revoked: 1_000_000,
            burst_clients_listed: 25,
        }
    }
}

/// Static floors (events per window) per key type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyFloors {
    /// One source address.
    pub ip: u32,
    /// Its /24 (IPv4) or /64 (IPv6).
    pub ip_prefix: u32,
    /// One name skeleton.
    pub name_skeleton: u32,
    /// One redirect host (loopback is never a key).
    pub redirect_host: u32,
    /// One `software_id`.
    pub software_id: u32,
    /// All registrations.
    pub global: u32,
}

impl Default for KeyFloors {
    fn default() -> Self {
        KeyFloors {
            ip: 8,
            ip_prefix: 12,
            name_skeleton: 10,
            redirect_host: 10,
            software_id: 15,
            global: 60,
        }
    }
}

/// `registration_burst` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BurstConfig {
    /// Length of the rate window, seconds (sliding, two-bucket estimate).
    pub window_secs: u32,
    /// A key fires only at or above its floor...
    pub floors: KeyFloors,
    /// ...and only when P(X >= count | baseline) is below this.
    pub max_p_value: f64,
    /// EWMA weight of the newest window in the learned baseline.
    pub ewma_alpha: f64,
    /// Baseline used before any history and as a lower bound (per window).
    pub min_baseline: f64,
}

impl Default for BurstConfig {
    fn default() -> Self {
        BurstConfig {
            window_secs: 300,
            floors: KeyFloors::default(),
            max_p_value: 1e-4,
            ewma_alpha: 0.1,
            min_baseline: 0.5,
        }
    }
}

/// A name that only its owner may use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectedName {
    /// The name as the owner writes it, e.g. `ChatGPT`.
    pub name: String,
    /// Registrable domains (eTLD+1) the owner redirects to.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Private-use schemes the owner's native apps use (e.g. `cursor`).
    #[serde(default)]
    pub schemes: Vec<String>,
    /// The owner ships a native or local tool that redirects to loopback.
    #[serde(default)]
    pub loopback_allowed: bool,
    /// Also flag names that contain it as a word ("ChatGPT Helper").
    #[serde(default)]
    pub match_as_word: bool,
}

/// `name_impersonation` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImpersonationConfig {
    /// Include the built-in list of well-known MCP clients.
    pub builtin_protected: bool,
    /// Extra protected names.
    pub protected: Vec<ProtectedName>,
    /// Largest edit distance (after folding) to a protected name: 0..=2.
    pub max_distance_protected: u8,
    /// Largest edit distance to an established client's name: 0..=1.
    pub max_distance_established: u8,
    /// Keys shorter than this never match by edit distance 1.
    pub min_len_distance_1: usize,
    /// Keys shorter than this never match by edit distance 2.
    pub min_len_distance_2: usize,
    /// Consents before a client's name is "established" and protected.
    pub established_after_consents: u32,
    /// Alerts below this score are not raised.
    pub min_score: f64,
}

impl Default for ImpersonationConfig {
    fn default() -> Self {
        ImpersonationConfig {
            builtin_protected: true,
            protected: Vec::new(),
            max_distance_protected: 2,
            max_distance_established: 1,
            min_len_distance_1: 5,
            min_len_distance_2: 8,
            established_after_consents: 1,
            min_score: 0.35,
        }
    }
}

/// `redirect_drift` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftConfig {
    /// Differently named clients on one redirect host before it is "shared".
    pub shared_host_min_names: u32,
    /// Alerts below this score are not raised.
    pub min_score: f64,
}

impl Default for DriftConfig {
    fn default() -> Self {
        DriftConfig {
            shared_host_min_names: 5,
            min_score: 0.3,
        }
    }
}

/// `scope_escalation` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScopeConfig {
    /// Scopes that matter. A trailing `*` matches a prefix (`admin:*`).
    pub sensitive: Vec<String>,
    /// Non-sensitive scopes added at once before that alone alerts.
    pub min_added_non_sensitive: usize,
    /// Alerts below this score are not raised.
    pub min_score: f64,
}

impl Default for ScopeConfig {
    fn default() -> Self {
        ScopeConfig {
            sensitive: [
                "admin",
                "admin:*",
                "*",
                "tools:write",
                "tools:admin",
                "files:write",
                "mcp:admin",
                "repo",
                "delete",
                "write:*",
            ]
            .map(String::from)
            .to_vec(),
            min_added_non_sensitive: 3,
            min_score: 0.3,
        }
    }
}

/// `dormant_client` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DormantConfig {
    /// Seconds after registration without consent before a client is dormant.
    pub after_secs: u32,
    /// Dormant clients from one /24 or /64 before the score is raised.
    pub cluster_min: u32,
}

impl Default for DormantConfig {
    fn default() -> Self {
        DormantConfig {
            after_secs: 24 * 3600,
            cluster_min: 3,
        }
    }
}

/// `duplicate_registration` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DuplicateConfig {
    /// Identical registrations from one source network within the window
    /// before an alert. Fewer collapse silently into one identity.
    pub threshold: u32,
    /// Window, seconds.
    pub window_secs: u32,
}

impl Default for DuplicateConfig {
    fn default() -> Self {
        DuplicateConfig {
            threshold: 5,
            window_secs: 3600,
        }
    }
}

/// Never alert on these (except revoked-client activity).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Allowlist {
    /// Exact client ids.
    pub client_ids: Vec<String>,
    /// Registrable domains whose redirects are trusted (no drift, no
    /// shared-host finding).
    pub domains: Vec<String>,
}

fn check_prob(key: &str, v: f64, open_low: bool) -> Result<(), ConfigError> {
    let ok = v.is_finite() && v <= 1.0 && if open_low { v > 0.0 } else { v >= 0.0 };
    if ok {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("{v} is not in {}0, 1]", if open_low { "(" } else { "[" }),
        ))
    }
}

fn check_pos(key: &str, v: u64) -> Result<(), ConfigError> {
    if v == 0 {
        Err(invalid(key, "must be at least 1"))
    } else {
        Ok(())
    }
}

impl DetectConfig {
    /// Checks every value; the error names the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        for (k, v) in [
            ("limits.max_clients", l.max_clients),
            ("limits.max_keys", l.max_keys),
            ("limits.max_names", l.max_names),
            ("limits.max_hosts", l.max_hosts),
            ("limits.max_fingerprints", l.max_fingerprints),
            ("limits.max_revoked", l.max_revoked),
            ("limits.burst_clients_listed", l.burst_clients_listed),
        ] {
            check_pos(k, v as u64)?;
            if v > u32::MAX as usize / 2 {
                return Err(invalid(k, "too large (state slots are u32)"));
            }
        }
        let b = &self.burst;
        check_pos("burst.window_secs", u64::from(b.window_secs))?;
        let f = &b.floors;
        for (k, v) in [
            ("burst.floors.ip", f.ip),
            ("burst.floors.ip_prefix", f.ip_prefix),
            ("burst.floors.name_skeleton", f.name_skeleton),
            ("burst.floors.redirect_host", f.redirect_host),
            ("burst.floors.software_id", f.software_id),
            ("burst.floors.global", f.global),
        ] {
            check_pos(k, u64::from(v))?;
        }
        check_prob("burst.max_p_value", b.max_p_value, true)?;
        check_prob("burst.ewma_alpha", b.ewma_alpha, true)?;
        if !(b.min_baseline.is_finite() && b.min_baseline > 0.0) {
            return Err(invalid("burst.min_baseline", "must be a positive number"));
        }
        let i = &self.impersonation;
        if i.max_distance_protected > 2 {
            return Err(invalid(
                "impersonation.max_distance_protected",
                "must be 0, 1 or 2",
            ));
        }
        if i.max_distance_established > 1 {
            return Err(invalid(
                "impersonation.max_distance_established",
                "must be 0 or 1",
            ));
        }
        check_prob("impersonation.min_score", i.min_score, false)?;
        for (n, p) in i.protected.iter().enumerate() {
            if p.name.trim().is_empty() {
                return Err(invalid(
                    &format!("impersonation.protected[{n}].name"),
                    "must not be empty",
                ));
            }
            if let Some(d) = p
                .domains
                .iter()
                .find(|d| d.is_empty() || d.contains('/') || d.contains(':'))
            {
                return Err(invalid(
                    &format!("impersonation.protected[{n}].domains"),
                    format!("`{d}` is not a domain"),
                ));
            }
        }
        check_pos(
            "drift.shared_host_min_names",
            u64::from(self.drift.shared_host_min_names),
        )?;
        check_prob("drift.min_score", self.drift.min_score, false)?;
        check_prob("scope.min_score", self.scope.min_score, false)?;
        check_pos(
            "scope.min_added_non_sensitive",
            self.scope.min_added_non_sensitive as u64,
        )?;
        check_pos("dormant.after_secs", u64::from(self.dormant.after_secs))?;
        check_pos("dormant.cluster_min", u64::from(self.dormant.cluster_min))?;
        check_pos("duplicate.threshold", u64::from(self.duplicate.threshold))?;
        check_pos(
            "duplicate.window_secs",
            u64::from(self.duplicate.window_secs),
        )?;
        if let Some(d) = self
            .allowlist
            .domains
            .iter()
            .find(|d| d.is_empty() || d.contains('/'))
        {
            return Err(invalid(
                "allowlist.domains",
                format!("`{d}` is not a domain"),
            ));
        }
        Ok(())
    }
}
