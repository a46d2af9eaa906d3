//! The committed corpus is fresh, and the detectors meet their targets on it.

use regwatch_detect::DetectConfig;
use regwatch_detect_corpus::{evaluate, generate, to_jsonl, DEFAULT_SEED};
use regwatch_schemas::alert::AlertKind;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios.jsonl");

#[test]
fn committed_corpus_is_fresh() {
    let committed = std::fs::read_to_string(CORPUS).expect("corpus/scenarios.jsonl exists");
    let fresh = to_jsonl(&generate(DEFAULT_SEED));
    assert!(
        committed == fresh,
        "corpus/scenarios.jsonl is stale; regenerate with: \
         cargo run --release -p regwatch-detect-corpus --bin detect-eval -- --write services/detect/corpus/scenarios.jsonl"
    );
    assert!(committed.len() < 1_000_000, "keep the corpus under 1 MB");
}

#[test]
fn detectors_meet_targets_on_corpus() {
    let report = evaluate(&generate(DEFAULT_SEED), DetectConfig::default()).expect("config");
    assert!(report.benign_clients >= 300, "hundreds of benign clients");
    for k in &report.kinds {
        assert!(k.units > 0, "{:?} has attacks in the corpus", k.kind);
        let target = match k.kind {
            AlertKind::NameImpersonation | AlertKind::RedirectDrift => 0.95,
            _ => 0.9,
        };
        assert!(
            k.recall >= target,
            "{:?} recall {} < {target}",
            k.kind,
            k.recall
        );
    }
    assert!(
        report.false_positive_rate <= 0.01,
        "false positives: {:?}",
        report.false_positives
    );
}
