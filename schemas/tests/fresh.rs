//! The committed JSON Schema files must equal what the Rust types generate.
//! Regenerate with `REGWATCH_BLESS=1 cargo test -p regwatch-schemas`.

use std::path::PathBuf;

#[test]
fn json_schema_files_are_fresh() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("json");
    let bless = std::env::var_os("REGWATCH_BLESS").is_some();
    // Blessing rewrites the files and passes: under CI that would turn a
    // stale committed schema into a green run.
    assert!(
        !(bless && std::env::var_os("CI").is_some()),
        "REGWATCH_BLESS is refused under CI: regenerate the JSON Schema files locally and commit them"
    );
    let mut stale = Vec::new();
    for (name, text) in regwatch_schemas::json_schema::all() {
        let path = dir.join(name);
        if bless {
            std::fs::write(&path, &text).expect("write schema");
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        if on_disk != text {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "stale JSON Schema files {stale:?}: run `REGWATCH_BLESS=1 cargo test -p regwatch-schemas`"
    );
}
