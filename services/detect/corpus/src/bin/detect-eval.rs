//! Runs every detector over the labeled scenario corpus and prints
//! precision and recall per kind and the false-positive rate on benign
//! clients.
//!
//! ```text
//! cargo run --release -p regwatch-detect-corpus --bin detect-eval [-- --seed N] [--write PATH] [--json]
//! ```

use std::process::ExitCode;

use regwatch_detect::DetectConfig;
use regwatch_detect_corpus::{evaluate, generate, to_jsonl, DEFAULT_SEED};

fn main() -> ExitCode {
    let mut seed = DEFAULT_SEED;
    let mut write: Option<String> = None;
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seed" => match args.next().and_then(|s| s.parse().ok()) {
                Some(s) => seed = s,
                None => {
                    eprintln!("--seed needs an integer");
                    return ExitCode::from(2);
                }
            },
            "--write" => write = args.next(),
            "--json" => json = true,
            other => {
                eprintln!("unknown argument {other}; usage: detect-eval [--seed N] [--write PATH] [--json]");
                return ExitCode::from(2);
            }
        }
    }
    let events = generate(seed);
    if let Some(path) = write {
        if let Err(e) = std::fs::write(&path, to_jsonl(&events)) {
            eprintln!("cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {} events to {path}", events.len());
    }
    let report = match evaluate(&events, DetectConfig::default()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    println!(
        "seed {seed}: {} events, {} benign clients, {} attack clients, {} alerts",
        report.events, report.benign_clients, report.attack_clients, report.alerts
    );
    println!(
        "refused registrations without a client (each its own unit): {} benign, {} attack",
        report.benign_attempts, report.attack_attempts
    );
    println!("| kind | attack units | detected | recall | clients alerted | precision |");
    println!("|---|---:|---:|---:|---:|---:|");
    for k in &report.kinds {
        println!(
            "| {} | {} | {} | {:.3} | {} | {:.3} |",
            k.kind.as_str(),
            k.units,
            k.detected,
            k.recall,
            k.alerted,
            k.precision
        );
    }
    println!(
        "false positives: {} of {} benign clients and refused attempts alerted ({:.2}%)",
        report.benign_alerted,
        report.benign_clients + report.benign_attempts,
        report.false_positive_rate * 100.0
    );
    for (c, s) in &report.false_positives {
        println!("  FP {c}: {s}");
    }
    ExitCode::SUCCESS
}
