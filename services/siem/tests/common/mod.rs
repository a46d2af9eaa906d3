//! Shared by the integration tests: one realistic sample of every event
//! type and alert kind (plus the variants that change a mapping), and the
//! gate for the Python validators.

#![allow(dead_code)] // each test binary uses part of this module

pub mod samples;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `python3` can import `modules`. Under `CI` a missing module
/// fails the test; locally the test is skipped with the pip command.
pub fn python_or_skip(modules: &[&str], pip: &str) -> bool {
    let probe = Command::new("python3")
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .output();
    match probe {
        Ok(o) if o.status.success() => true,
        other => {
            let why = match other {
                Ok(o) => String::from_utf8_lossy(&o.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            if std::env::var_os("CI").is_some() {
                panic!("python3 cannot import {modules:?} in CI ({pip}): {why}");
            }
            eprintln!("skipping: python3 cannot import {modules:?}; run `{pip}` ({why})");
            false
        }
    }
}

/// `services/siem/tests/<name>`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// Writes `lines` as NDJSON to a temp file and runs `python3 script
/// [args…] FILE`; returns (success, stdout + stderr).
pub fn run_validator(script_name: &str, args: &[&Path], lines: &[String]) -> (bool, String) {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    {
        use std::io::Write;
        for l in lines {
            writeln!(file, "{l}").expect("write sample");
        }
        file.flush().expect("flush");
    }
    let out = Command::new("python3")
        .arg(script(script_name))
        .args(args)
        .arg(file.path())
        .output()
        .expect("run python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// ECS's `ecs_flat-v9.4.0.yml`: `REGWATCH_ECS_FLAT`, else the first
/// `shared/reference/schemas/` above the crate (the project's reference
/// files sit beside the checkout). Gated like [`python_or_skip`].
pub fn ecs_flat_or_skip() -> Option<PathBuf> {
    const FILE: &str = "shared/reference/schemas/ecs_flat-v9.4.0.yml";
    let found = std::env::var_os("REGWATCH_ECS_FLAT")
        .map(PathBuf::from)
        .or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|d| d.join(FILE))
                .find(|p| p.is_file())
        });
    match found {
        Some(p) if p.is_file() => Some(p),
        _ if std::env::var_os("CI").is_some() => {
            panic!("ECS field definitions not found in CI: set REGWATCH_ECS_FLAT to ecs_flat-v9.4.0.yml")
        }
        _ => {
            eprintln!("skipping: set REGWATCH_ECS_FLAT to ECS's ecs_flat-v9.4.0.yml");
            None
        }
    }
}
