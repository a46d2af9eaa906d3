//! Bytes of correlation state per tracked client, measured with a counting
//! global allocator (`stats_alloc`) around a detector fed realistic
//! registrations and consents. Not timed.
//!
//! ```text
//! cargo bench -p regwatch-detect --bench memory
//! ```

// The corpus generator's own SplitMix64 (the same file, so the inputs stay
// those of earlier runs); included by path because a dev-dependency on
// `regwatch-detect-corpus`, which depends on this crate, would be a cycle.
#[path = "../corpus/src/rng.rs"]
#[allow(dead_code)]
mod rng;

use std::alloc::System;
use std::net::{IpAddr, Ipv4Addr};

use chrono::{Duration, TimeZone, Utc};
use regwatch_detect::{
    ActivityKind, ActivityObservation, ClientObservation, DetectConfig, Detector, Observation,
    RegistrationMethod,
};
use rng::Rng;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn word(rng: &mut Rng) -> String {
    (0..9)
        .map(|_| (b'a' + rng.below(26) as u8) as char)
        .collect()
}

fn run(clients: usize, config: DetectConfig, label: &str) {
    let start = Utc
        .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let mut rng = Rng::new(7);
    // Pre-build inputs outside the measured region.
    let vendors: Vec<(String, String)> = (0..2000)
        .map(|_| {
            let w = word(&mut rng);
            (
                format!("{w} Assistant"),
                format!("https://app.{w}.example/oauth/cb"),
            )
        })
        .collect();
    let region = Region::new(GLOBAL);
    let mut det = match Detector::new(config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    let before_inputs = region.change();
    let mut input_bytes: i64 = 0;
    for i in 0..clients {
        let (name, redirect) = &vendors[rng.below(vendors.len() as u64) as usize];
        let at = start + Duration::milliseconds((i as i64) * 600);
        let ip = IpAddr::V4(Ipv4Addr::new(
            (1 + rng.below(222)) as u8,
            rng.below(256) as u8,
            rng.below(256) as u8,
            rng.below(256) as u8,
        ));
        let r0 = region.change();
        let c = ClientObservation {
            client_id: rng.uuid().to_string(),
            client_name: Some(name.clone()),
            redirect_uris: vec![redirect.clone()],
            scopes: vec!["mcp:read".into(), "mcp:tools".into()],
            software_id: None,
            token_endpoint_auth_method: None,
            source_ip: Some(ip),
            at,
            event_id: rng.uuid7(at),
            registration_method: RegistrationMethod::Dcr,
            previous_redirect_uris: None,
            previous_scopes: None,
        };
        let consent = Observation::Activity(ActivityObservation {
            client_id: c.client_id.clone(),
            kind: ActivityKind::ConsentGranted {
                scopes: c.scopes.clone(),
            },
            source_ip: Some(ip),
            at: at + Duration::seconds(30),
            event_id: rng.uuid7(at),
        });
        let r1 = region.change();
        input_bytes += (r1.bytes_allocated as i64 - r1.bytes_deallocated as i64)
            - (r0.bytes_allocated as i64 - r0.bytes_deallocated as i64);
        drop(det.observe(&Observation::Registered(c)));
        drop(det.observe(&consent));
    }
    let after = region.change();
    // Inputs are dropped every iteration, so what is live is state.
    let _ = input_bytes;
    let live = (after.bytes_allocated as i64 - after.bytes_deallocated as i64)
        - (before_inputs.bytes_allocated as i64 - before_inputs.bytes_deallocated as i64);
    let s = det.stats();
    println!(
        "{label:<28} {clients:>9} clients: {:>8.1} MiB live state, {:>6.1} bytes/client  (clients {}, rate keys {}, fingerprints {}, hosts {}, names {})",
        live as f64 / (1024.0 * 1024.0),
        live as f64 / clients as f64,
        s.clients,
        s.rate_keys,
        s.fingerprints,
        s.hosts,
        s.established_names
    );
    drop(det);
}

fn main() {
    println!("default limits: max_clients 1,000,000, max_keys 500,000, max_fingerprints 500,000, max_names/hosts 200,000");
    for n in [100_000, 1_000_000] {
        run(n, DetectConfig::default(), "all state, default limits");
    }
    // The per-client part alone: auxiliary tables capped tiny.
    let mut small = DetectConfig::default();
    small.limits.max_keys = 1000;
    small.limits.max_fingerprints = 1000;
    small.limits.max_hosts = 1000;
    run(1_000_000, small, "client table only");
}
