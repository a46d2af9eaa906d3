//! # regwatch-detect-corpus
//!
//! A deterministic, labeled scenario corpus for the detectors of
//! `regwatch-detect`, and the evaluation that runs them over it (the
//! figures in `DETECTION.md`). Dev-only (`publish = false`): the shipped
//! detection library does not contain it.
//!
//! Labels are per client: benign, or an attack of one kind, optionally
//! part of a campaign (bursts, duplicates, shared redirect hosts, dormant
//! clusters are detected as campaigns, not client by client).
//!
//! ## Layout
//!
//! - [`rng`]: [`Rng`], the SplitMix64 stream everything random comes from.
//! - `generate`: [`generate`] and [`to_jsonl`]; the benign traffic and the
//!   attack scenarios in a module each.
//! - [`evaluate`](mod@evaluate): [`evaluate()`], precision and recall per
//!   kind and the false-positive rate, as an [`EvalReport`].
//! - `src/bin/detect-eval.rs`: prints the report, or writes the corpus.
//! - `scenarios.jsonl`: the committed corpus for [`DEFAULT_SEED`] (checked
//!   fresh by `tests/corpus.rs`).

pub mod evaluate;
mod generate;
pub mod rng;

use regwatch_detect::Observation;
use regwatch_schemas::alert::AlertKind;
use serde::{Deserialize, Serialize};

pub use evaluate::{evaluate, EvalReport, KindScore};
pub use generate::{generate, to_jsonl};
pub use rng::Rng;

/// The seed of the committed corpus.
pub const DEFAULT_SEED: u64 = 0x7265_6777_6174_6368; // "regwatch"

/// Ground truth for one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// `None`: benign. Otherwise the attack kind the client embodies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<AlertKind>,
    /// The campaign it belongs to, when detection is judged per campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// A short description of the scenario.
    pub scenario: String,
}

/// One line of the corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabeledEvent {
    /// The observation.
    pub obs: Observation,
    /// Ground truth of its client.
    pub label: Label,
}
