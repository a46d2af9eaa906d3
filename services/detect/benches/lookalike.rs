//! Lookalike lookup against 1,000,000 established names, in microseconds
//! per lookup and as a ratio to a plain `HashMap<String, _>` exact lookup
//! over the same names, measured in the same run.
//!
//! ```text
//! cargo bench -p regwatch-detect --bench lookalike
//! ```

// The corpus generator's own SplitMix64 (the same file, so the inputs stay
// those of earlier runs); included by path because a dev-dependency on
// `regwatch-detect-corpus`, which depends on this crate, would be a cycle.
#[path = "../corpus/src/rng.rs"]
#[allow(dead_code)]
mod rng;

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use regwatch_detect::detectors::impersonation::NameCatalog;
use regwatch_detect::host::analyze_redirect;
use regwatch_detect::text::analyze_name;
use regwatch_detect::DetectConfig;
use rng::Rng;

const NAMES: usize = 1_000_000;
const QUERIES: usize = 20_000;

const SYL: &[&str] = &[
    "ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "bre", "cor", "dan", "fel", "gar", "hul",
    "jen", "kos", "lum", "mar", "nor", "pel", "quin", "ros", "sal", "tor", "ulm", "ver", "wex",
    "yan",
];
const NOUN: &[&str] = &[
    "Notes",
    "Assistant",
    "Docs",
    "Sync",
    "Agent",
    "Connector",
    "Search",
    "Mail",
    "Studio",
    "Deploy",
];

fn name(rng: &mut Rng) -> String {
    let n = 2 + rng.below(3) as usize;
    let mut s = String::new();
    for _ in 0..n {
        let syl: &&str = rng.pick(SYL);
        s.push_str(syl);
    }
    let mut c = s.chars();
    let first = c.next().map(|f| f.to_ascii_uppercase()).unwrap_or('X');
    format!("{first}{} {}", c.as_str(), rng.pick(NOUN))
}

fn main() {
    let cfg = DetectConfig::default();
    let mut rng = Rng::new(42);
    let mut catalog = NameCatalog::new(&cfg.impersonation, NAMES + 10);
    let mut exact: HashMap<String, u32> = HashMap::new();
    let mut names: Vec<String> = Vec::with_capacity(NAMES);
    let build = Instant::now();
    while names.len() < NAMES {
        let n = format!("{} {}", name(&mut rng), rng.below(1000));
        if exact.contains_key(&n) {
            continue;
        }
        let r = analyze_redirect(&format!("https://app{}.example.com/cb", names.len()));
        catalog.establish(&n, &format!("c{}", names.len()), &[r]);
        exact.insert(n.clone(), names.len() as u32);
        names.push(n);
    }
    let build_s = build.elapsed().as_secs_f64();
    println!(
        "indexed {} names in {build_s:.1}s (established index: {})",
        names.len(),
        catalog.established_len()
    );

    // Queries: a third existing names, a third one edit away, a third new.
    let mut queries: Vec<String> = Vec::with_capacity(QUERIES);
    for i in 0..QUERIES {
        let base = &names[rng.below(NAMES as u64) as usize];
        let q = match i % 3 {
            0 => base.clone(),
            1 => {
                let mut chars: Vec<char> = base.chars().collect();
                let at = 1 + rng.below(chars.len() as u64 - 2) as usize;
                chars[at] = 'q';
                chars.into_iter().collect()
            }
            _ => format!("{} {}", name(&mut rng), 1000 + rng.below(1000)),
        };
        queries.push(q);
    }
    let redirect = [analyze_redirect("https://lookalike.example/cb")];

    // Warm up both paths.
    for q in queries.iter().take(1000) {
        black_box(catalog.assess(q, &redirect, &cfg.impersonation, None));
        black_box(exact.get(q.as_str()));
    }
    let rounds = 5;
    let mut best_exact = f64::MAX;
    let mut best_norm = f64::MAX;
    let mut best_full = f64::MAX;
    let mut alerts = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        for q in &queries {
            black_box(exact.get(black_box(q.as_str())));
        }
        best_exact = best_exact.min(t.elapsed().as_secs_f64() / QUERIES as f64);

        let t = Instant::now();
        for q in &queries {
            black_box(analyze_name(black_box(q)));
        }
        best_norm = best_norm.min(t.elapsed().as_secs_f64() / QUERIES as f64);

        let t = Instant::now();
        alerts = 0;
        for q in &queries {
            if black_box(catalog.assess(black_box(q), &redirect, &cfg.impersonation, None))
                .is_some()
            {
                alerts += 1;
            }
        }
        best_full = best_full.min(t.elapsed().as_secs_f64() / QUERIES as f64);
    }
    let us = |s: f64| s * 1e6;
    println!("queries: {QUERIES} (1/3 exact, 1/3 one edit, 1/3 new), best of {rounds} rounds");
    println!(
        "baseline HashMap<String,_> exact get : {:>8.3} µs/lookup",
        us(best_exact)
    );
    println!(
        "name analysis only (NFKC+skeleton)   : {:>8.3} µs/lookup",
        us(best_norm)
    );
    println!(
        "full lookalike check (assess)        : {:>8.3} µs/lookup",
        us(best_full)
    );
    println!(
        "ratio full / baseline                : {:>8.0}x",
        best_full / best_exact
    );
    println!(
        "ratio (full - analysis) / baseline   : {:>8.0}x  (index probes only)",
        (best_full - best_norm).max(0.0) / best_exact
    );
    println!("lookalike alerts on queries          : {alerts} of {QUERIES} (expected about 2/3: exact names on a foreign domain and one-edit variants)");
}
