//! # regwatch-detect
//!
//! The pure detection logic of regwatch: correlation state over OAuth
//! client registrations (RFC 7591 DCR and Client ID Metadata Documents)
//! and the detectors that turn it into [`Alert`](regwatch_schemas::alert::Alert)s.
//! No IO, no clock, no async: time is always an argument, so every
//! detector is replayable and table-testable. The pipeline maps each
//! event envelope to an [`Observation`], calls [`Detector::observe`] in
//! event order and [`Detector::sweep`] on a timer, and stores what comes
//! back (alerts are upserted by `dedup_key`).
//!
//! Detectors: `registration_burst`, `name_impersonation`, `redirect_drift`,
//! `scope_escalation`, `dormant_client`, `duplicate_registration`,
//! `revoked_client_activity`. [`revocation::decide`] maps an alert to a
//! revocation decision (dry-run by default, never for allowlisted clients).
//!
//! ## Layout
//!
//! - [`input`]: the observation types the detectors consume;
//!   [`envelope`] maps an event envelope to one.
//! - [`config`]: [`DetectConfig`], validated, unknown keys rejected.
//! - [`engine`]: [`Detector`], which dispatches each observation to the
//!   detectors, collects their alerts and keeps the shared client table.
//! - [`detectors`]: one module per alert kind, each owning its state and
//!   its alert logic: [`detectors::burst`], [`detectors::impersonation`],
//!   [`detectors::drift`], [`detectors::scope`], [`detectors::duplicate`],
//!   [`detectors::dormant`], [`detectors::revoked`].
//! - [`clients`]: the shared client state: the client table (CLOCK
//!   eviction, dormancy queue, laid out for bytes per client), the
//!   per-client [`ClientRecord`] and the scope interner.
//! - [`text`]: client-name analysis (UTS #39 skeleton, mixed script,
//!   invisible and bidi characters, NFKC).
//! - [`host`]: redirect-URI analysis (PSL registrable domain incl. the
//!   PRIVATE section, IDN to A-labels, loopback and private addresses).
//! - [`names`]: the lookalike indexes (skeleton map and symmetric-deletion
//!   index for edit distance 1 and 2) and the built-in protected names.
//! - [`bounded`]: the bounded map with CLOCK eviction behind the detectors'
//!   own state (rate keys, hosts, fingerprints, names, revoked clients).
//! - [`alerts`]: alert construction (deterministic ids, severities, scores).
//! - [`state_time`]: time as the state stores it (`u32` seconds).
//! - [`hash`]: a stable hash for fingerprints and ids.
//! - [`revocation`]: the revocation policy (what to do about an alert) and
//!   [`revocation::decide`] (authz's registration gate is another thing).
//!
//! The labeled corpus and its evaluation (`DETECTION.md`) are the dev-only
//! crate `regwatch-detect-corpus` (`services/detect/corpus/`), not part of
//! this library.
//!
//! Imports go one way: `engine` → `detectors` → `clients` → the analysis
//! helpers (`text`, `host`, `names`, `hash`); no detector imports another.
//!
//! ## Invariants
//!
//! - Nothing here reads a clock, a file, the network or the environment.
//! - State is bounded by [`config::Limits`]; the least recently used
//!   entries go first (CLOCK approximation).
//! - The same observations in the same order give the same alerts,
//!   byte for byte (alert ids are derived, not random).

pub mod alerts;
pub mod bounded;
pub mod clients;
pub mod config;
pub mod detectors;
pub mod engine;
pub mod envelope;
pub mod hash;
pub mod host;
pub mod input;
pub mod names;
pub mod revocation;
pub mod state_time;
pub mod text;

pub use clients::{ClientRecord, ClientStatus};
pub use config::{ConfigError, DetectConfig};
pub use detectors::duplicate::fingerprint;
pub use engine::{Detector, StateStats};
pub use input::{
    ActivityKind, ActivityObservation, ClientObservation, Observation, RegistrationMethod,
    RejectedObservation,
};
pub use revocation::{
    decide, RevocationAction, RevocationDecision, RevocationPolicy, RevocationRule,
};
