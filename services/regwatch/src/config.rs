//! The one configuration: every table of the file, each the service's own
//! config type, and the secrets the environment supplies.
//!
//! [`RegwatchConfig::load`] runs once, in `main`, before any subcommand:
//!
//! 1. the TOML file (`--config` or `REGWATCH_CONFIG`; a path that does not
//!    exist is an error, not an empty file);
//! 2. environment overrides `REGWATCH_<TABLE>__<KEY>[__<KEY>…]`: `__`
//!    separates levels, names are lowercased, values are read as TOML
//!    (`REGWATCH_AUTHZ__RATE_LIMIT__PER_MINUTE=60`). Variables without
//!    `__` (`REGWATCH_LOG`, `REGWATCH_CONFIG`, the tests' `REGWATCH_TEST_…`)
//!    are not configuration and are left alone;
//! 3. the secrets, taken verbatim (never parsed as TOML, so a numeric
//!    password stays a string): `REGWATCH_API_TOKEN` → `api.token`,
//!    `REGWATCH_USER` → `sign_in.user`, `REGWATCH_PASSWORD` →
//!    `sign_in.password`.
//!
//! Every struct of every table refuses unknown keys
//! (`#[serde(deny_unknown_fields)]`; none uses `#[serde(flatten)]`, which
//! would silently turn that off), so a typo fails the start with the key's
//! whole path (`unknown key `mcp.listn``) instead of keeping a default; a value of the wrong type or out of range
//! names its key too (`invalid value for `authz.limits.max_redirect_uris``).
//! The values of each table are checked by the owning crate's `validate`:
//! here at load for the tables that are complete in the file, and by the
//! subcommand for `[authz]` and `[mcp]`, whose addresses it fills in from
//! the listeners it binds ([`ConfigError::table`] names their keys the
//! same way).

use std::fmt;
use std::path::Path;

use figment::error::Kind;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::Deserialize;

/// Every table of the configuration file. A table left out takes its
/// defaults; the `Option` ones are "not configured" when absent.
///
/// Room to grow: `[respond]` and `[siem]` will be fields of their crates'
/// own config types, added here and to [`TABLES`].
///
/// `Debug` shows every table with its secrets as `***` (see the impl).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegwatchConfig {
    /// `[authz]`: the authorization server (`services/authz/src/config.rs`).
    pub authz: regwatch_authz::AuthzConfig,
    /// `[mcp]`: the reference MCP server (`services/mcp/src/config.rs`).
    /// `regwatch up` fills in `resource`, `issuer`, `introspection_endpoint`
    /// and `introspection_token` when they are empty.
    pub mcp: regwatch_mcp::McpConfig,
    /// `[relay]`: publish the outbox to Kafka (`regwatch authz`); absent:
    /// the events stay in the outbox.
    pub relay: Option<regwatch_relay::RelayConfig>,
    /// `[pipeline]`: the Kafka consumer (`regwatch pipeline`, required there).
    pub pipeline: Option<regwatch_pipeline::PipelineConfig>,
    /// `[store]`: ClickHouse (`regwatch pipeline`, `regwatch api`, `migrate`).
    pub store: Option<regwatch_store::StoreConfig>,
    /// `[detect]`: detector thresholds, protected names, allowlists.
    pub detect: regwatch_detect::DetectConfig,
    /// `[retention]`: how long events are kept, and the archive.
    pub retention: regwatch_store::retention::RetentionConfig,
    /// `[api]`: the read API.
    pub api: ApiConfig,
    /// `[sign_in]`: the local user `regwatch up` creates.
    pub sign_in: SignInConfig,
}

// By hand: the service crates keep their tokens as plain strings (hashed
// at start), so their derived `Debug` would print them; a copy with the
// secrets masked is printed instead. `[mcp]` masks its own credential.
impl fmt::Debug for RegwatchConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MASK: &str = "***";
        let mask = |v: &mut String| {
            if !v.is_empty() {
                *v = MASK.into();
            }
        };
        let mut authz = self.authz.clone();
        mask(&mut authz.admin_token);
        authz.policy.initial_access_tokens.iter_mut().for_each(mask);
        authz.oauth.introspection_tokens.iter_mut().for_each(mask);
        // librdkafka properties may carry SASL or TLS key passwords.
        let mask_kafka = |props: &mut std::collections::BTreeMap<String, String>| {
            for (k, v) in props.iter_mut() {
                if k.contains("password") || k.contains("secret") {
                    *v = MASK.into();
                }
            }
        };
        let mut relay = self.relay.clone();
        if let Some(r) = &mut relay {
            mask_kafka(&mut r.librdkafka);
        }
        let mut pipeline = self.pipeline.clone();
        if let Some(p) = &mut pipeline {
            mask_kafka(&mut p.librdkafka);
        }
        f.debug_struct("RegwatchConfig")
            .field("authz", &authz)
            .field("mcp", &self.mcp)
            .field("relay", &relay)
            .field("pipeline", &pipeline)
            .field("store", &self.store)
            .field("detect", &self.detect)
            .field("retention", &self.retention)
            .field("api", &self.api)
            .field("sign_in", &self.sign_in)
            .finish()
    }
}

/// The tables [`RegwatchConfig`] reads, as they are spelled in the file.
pub const TABLES: &[&str] = &[
    "authz",
    "mcp",
    "relay",
    "pipeline",
    "store",
    "detect",
    "retention",
    "api",
    "sign_in",
];

/// `[api]`: the read API (`regwatch api`, `regwatch up --api-listen`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// The bearer token every request must carry, at least 16 characters.
    /// Usually `REGWATCH_API_TOKEN`.
    pub token: Option<Secret>,
}

/// `[sign_in]`: who `regwatch up` lets sign in. Both or neither; neither:
/// a user `admin` with a generated password, printed once. Usually
/// `REGWATCH_USER` and `REGWATCH_PASSWORD`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignInConfig {
    pub user: Option<String>,
    pub password: Option<Secret>,
}

impl SignInConfig {
    /// `(user, password)` when both are set and non-empty, `None` when
    /// neither is set.
    pub fn given(&self) -> Result<Option<(&str, &str)>, ConfigError> {
        match (&self.user, &self.password) {
            (Some(u), Some(p)) if !u.is_empty() && !p.expose().is_empty() => {
                Ok(Some((u, p.expose())))
            }
            (None, None) => Ok(None),
            _ => Err(ConfigError::InvalidValue {
                key: "sign_in".into(),
                reason: "set both REGWATCH_USER and REGWATCH_PASSWORD, or neither".into(),
                origin: String::new(),
            }),
        }
    }
}

/// A secret value: read like a string, shown as `***` by `Debug`, so a
/// configuration printed for diagnosis never carries it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A configuration that cannot be used. The key is the whole dotted path
/// (`authz.limits.max_redirect_uris`); `origin` says which file or
/// environment variable held it, when known.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown key `{key}`{origin}")]
    UnknownKey { key: String, origin: String },
    #[error("invalid value for `{key}`: {reason}{origin}")]
    InvalidValue {
        key: String,
        reason: String,
        origin: String,
    },
    /// A command needs a table the configuration does not have.
    #[error("this command needs the `[{table}]` table ({keys})")]
    MissingTable {
        table: &'static str,
        keys: &'static str,
    },
    /// The file is missing or is not TOML.
    #[error("configuration file {path}: {reason}")]
    File { path: String, reason: String },
}

impl ConfigError {
    /// A `validate` error of `table`'s own crate, whose key is relative to
    /// the table (authz, mcp, detect) or already starts with it (relay,
    /// pipeline, retention).
    pub fn table(table: &str, key: &str, reason: impl fmt::Display) -> Self {
        let key = if key == table || key.starts_with(&format!("{table}.")) {
            key.to_string()
        } else {
            format!("{table}.{key}")
        };
        ConfigError::InvalidValue {
            key,
            reason: reason.to_string(),
            origin: String::new(),
        }
    }

    fn from_figment(e: figment::Error) -> Self {
        let origin = match &e.metadata {
            Some(m) => match &m.source {
                Some(figment::Source::File(f)) => format!(" (in {})", f.display()),
                _ if m.name.contains("environment") => format!(
                    " (from REGWATCH_{})",
                    e.path.join("__").to_ascii_uppercase()
                ),
                _ => String::new(),
            },
            None => String::new(),
        };
        // figment's path ends with the field for an unknown key; make sure.
        let mut key = e.path.clone();
        let mut with = |field: &str| {
            if key.last().map(String::as_str) != Some(field) {
                key.push(field.to_string());
            }
            key.join(".")
        };
        match &e.kind {
            Kind::UnknownField(field, _) => ConfigError::UnknownKey {
                key: with(field),
                origin,
            },
            Kind::MissingField(field) => ConfigError::InvalidValue {
                key: with(field),
                reason: "missing".into(),
                origin,
            },
            kind => ConfigError::InvalidValue {
                key: e.path.join("."),
                reason: kind.to_string(),
                origin,
            },
        }
    }
}

impl RegwatchConfig {
    /// The file (if any), then the process environment; every table
    /// complete in the file validated. See the module docs for the rules.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut fig = Figment::new();
        if let Some(f) = file {
            if !f.is_file() {
                return Err(ConfigError::File {
                    path: f.display().to_string(),
                    reason: "not found".into(),
                });
            }
            // Read it here so a syntax error is reported as the file's, not
            // as a key's.
            let text = std::fs::read_to_string(f).map_err(|e| ConfigError::File {
                path: f.display().to_string(),
                reason: e.to_string(),
            })?;
            toml_syntax(f, &text)?;
            fig = fig.merge(Toml::file_exact(f));
        }
        fig = fig.merge(
            Env::prefixed("REGWATCH_")
                .filter(|k| k.as_str().contains("__"))
                .split("__"),
        );
        for (var, key) in [
            ("REGWATCH_API_TOKEN", "api.token"),
            ("REGWATCH_USER", "sign_in.user"),
            ("REGWATCH_PASSWORD", "sign_in.password"),
        ] {
            if let Ok(v) = std::env::var(var) {
                fig = fig.merge(Serialized::default(key, v));
            }
        }
        let cfg: RegwatchConfig = fig.extract().map_err(ConfigError::from_figment)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the tables whose values are all in the configuration.
    /// `[authz]` and `[mcp]` are checked by the subcommand, once it has
    /// filled in the addresses it derives.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(r) = &self.relay {
            r.validate().map_err(|e| match e {
                regwatch_relay::RelayError::Config { key, reason } => {
                    ConfigError::table("relay", &key, reason)
                }
                other => ConfigError::table("relay", "relay", other),
            })?;
        }
        if let Some(p) = &self.pipeline {
            p.validate().map_err(|e| match e {
                regwatch_pipeline::PipelineError::Config { key, reason } => {
                    ConfigError::table("pipeline", &key, reason)
                }
                other => ConfigError::table("pipeline", "pipeline", other),
            })?;
        }
        if let Some(s) = &self.store {
            if s.clickhouse_url.trim().is_empty() {
                return Err(ConfigError::table("store", "clickhouse_url", "must be set"));
            }
        }
        self.detect.validate().map_err(|e| match e {
            regwatch_detect::config::ConfigError::Invalid { key, reason } => {
                ConfigError::table("detect", &key, reason)
            }
        })?;
        self.retention
            .validate()
            .map_err(|e| ConfigError::table("retention", e.key, e.reason))?;
        self.sign_in.given()?;
        Ok(())
    }

    /// `[authz]` checked, its errors named under `authz.`.
    pub fn validate_authz(authz: &regwatch_authz::AuthzConfig) -> Result<(), ConfigError> {
        authz.validate().map_err(|e| match e {
            regwatch_authz::config::ConfigError::Invalid { key, reason } => {
                ConfigError::table("authz", key, reason)
            }
        })
    }

    /// `[mcp]` checked, its errors named under `mcp.`.
    pub fn validate_mcp(mcp: &regwatch_mcp::McpConfig) -> Result<(), ConfigError> {
        mcp.validate().map_err(|e| match e {
            regwatch_mcp::config::ConfigError::Invalid { key, reason } => {
                ConfigError::table("mcp", key, reason)
            }
        })
    }

    /// `[pipeline]`, for `regwatch pipeline`.
    pub fn require_pipeline(&self) -> Result<&regwatch_pipeline::PipelineConfig, ConfigError> {
        self.pipeline.as_ref().ok_or(ConfigError::MissingTable {
            table: "pipeline",
            keys: "brokers, group_id",
        })
    }

    /// `[store]`, for the commands that cannot run without it.
    pub fn require_store(&self) -> Result<&regwatch_store::StoreConfig, ConfigError> {
        self.store.as_ref().ok_or(ConfigError::MissingTable {
            table: "store",
            keys: "clickhouse_url",
        })
    }

    /// `[api] token`, for the commands that serve the API.
    pub fn require_api_token(&self) -> Result<&str, ConfigError> {
        self.api
            .token
            .as_ref()
            .map(Secret::expose)
            .ok_or_else(|| ConfigError::table("api", "token", "required: set REGWATCH_API_TOKEN"))
    }
}

/// A file that is not TOML fails as the file, with the parser's position.
fn toml_syntax(path: &Path, text: &str) -> Result<(), ConfigError> {
    Figment::from(Toml::string(text))
        .extract::<figment::value::Dict>()
        .map(|_| ())
        .map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            reason: e.kind.to_string(),
        })
}
