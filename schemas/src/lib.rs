//! The regwatch wire contract.
//!
//! Everything that crosses a process boundary is defined here and nowhere
//! else: the event envelope ([`event`]), alerts ([`alert`]), Kafka topic
//! names, and the JSON Schema generated from these types into
//! `schemas/json/` (checked fresh by a test). This crate does no IO.
//!
//! Layout:
//! - [`event`]: `Envelope` and the typed `data` of every event type.
//! - [`wire`]: [`WireEvent`], an envelope with the JSON it was read from,
//!   so each hop parses an event once.
//! - [`routing`]: the Kafka record key ([`partition_key`]) and the lenient
//!   [`EventHead`] a relay reads it from.
//! - [`alert`]: what detectors publish.
//! - [`metadata`]: the one list of client metadata fields (RFC 7591 §2).
//! - [`time`]: the millisecond RFC 3339 timestamp format.
//! - [`json_schema`]: schema generation, used by the freshness test and
//!   `regwatch schema`.

pub mod alert;
pub mod event;
pub mod metadata;
pub mod routing;
pub mod time;
pub mod wire;

pub use alert::{Alert, AlertKind, AlertStatus, Severity};
pub use event::*;
pub use metadata::CLIENT_METADATA_FIELDS;
pub use routing::{partition_key, EventHead};
pub use wire::{NotAnEnvelope, WireEvent};

/// Events, keyed by [`partition_key`] (per-client order).
pub const EVENTS_TOPIC: &str = "regwatch.events.v1";
/// Records the pipeline could not accept, with the reason and position.
pub const DLQ_TOPIC: &str = "regwatch.dlq.v1";
/// Alerts, keyed by client_id.
pub const ALERTS_TOPIC: &str = "regwatch.alerts.v1";

pub mod json_schema {
    //! JSON Schema for the contract types. The files under `schemas/json/`
    //! are generated from here; `tests/fresh.rs` fails when they are stale.

    /// `(file name, pretty JSON)` for every published schema.
    pub fn all() -> Vec<(&'static str, String)> {
        let env = schemars::schema_for!(crate::event::Envelope);
        let alert = schemars::schema_for!(crate::alert::Alert);
        vec![
            ("event.v1.schema.json", pretty(&env)),
            ("alert.v1.schema.json", pretty(&alert)),
        ]
    }

    fn pretty(s: &schemars::Schema) -> String {
        let mut out = serde_json::to_string_pretty(s).unwrap_or_default();
        out.push('\n');
        out
    }
}
