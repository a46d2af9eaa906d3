//! Environment overrides of the one configuration, as `RegwatchConfig::load`
//! reads them from the process. A test binary of its own with one test:
//! it sets process variables, which every test of a binary would see.

use regwatch::RegwatchConfig;

#[test]
fn environment_overrides_the_file_and_supplies_the_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("regwatch.toml");
    std::fs::write(
        &file,
        "[authz.rate_limit]\nper_minute = 5\nburst = 3\n[mcp]\nchallenge_scope = \"mcp:read\"\n",
    )
    .unwrap();
    let set = |pairs: &[(&str, &str)]| {
        for (k, v) in pairs {
            std::env::set_var(k, v);
        }
    };
    set(&[
        // `REGWATCH_<TABLE>__<KEY>`, `__` between levels.
        ("REGWATCH_AUTHZ__RATE_LIMIT__PER_MINUTE", "60"),
        ("REGWATCH_AUTHZ__ADMIN_TOKEN", "admin-token-0123456789"),
        ("REGWATCH_MCP__CHALLENGE_SCOPE", "mcp:write"),
        ("REGWATCH_RETENTION__KEEP_DAYS", "30"),
        ("REGWATCH_RELAY__BROKERS", "k1:9092,k2:9092"),
        // The secrets, verbatim: a numeric password stays a string.
        ("REGWATCH_API_TOKEN", "api-token-0123456789"),
        ("REGWATCH_USER", "alice"),
        ("REGWATCH_PASSWORD", "12345678901234567890"),
        // Not configuration: no `__`.
        ("REGWATCH_LOG", "debug"),
        ("REGWATCH_TEST_SOMETHING", "1"),
    ]);
    let c = RegwatchConfig::load(Some(&file)).unwrap();
    assert_eq!(c.authz.rate_limit.per_minute, 60, "env over file");
    assert_eq!(c.authz.rate_limit.burst, 3, "file kept where env is silent");
    assert_eq!(c.authz.admin_token, "admin-token-0123456789");
    assert_eq!(c.mcp.challenge_scope, "mcp:write");
    assert_eq!(c.retention.keep_days, 30);
    assert_eq!(c.relay.as_ref().unwrap().brokers, "k1:9092,k2:9092");
    assert_eq!(
        c.api.token.as_ref().unwrap().expose(),
        "api-token-0123456789"
    );
    assert_eq!(
        c.sign_in.given().unwrap(),
        Some(("alice", "12345678901234567890"))
    );
    let shown = format!("{:?}", (&c.api, &c.sign_in));
    assert!(
        !shown.contains("api-token-0123456789") && !shown.contains("12345678901234567890"),
        "{shown}"
    );

    // Without the file: the environment alone.
    let c = RegwatchConfig::load(None).unwrap();
    assert_eq!(c.authz.rate_limit.per_minute, 60);

    // A typo in a variable fails like one in the file, naming the variable.
    set(&[("REGWATCH_MCP__LISTN", "127.0.0.1:8500")]);
    let err = RegwatchConfig::load(Some(&file)).unwrap_err().to_string();
    assert!(err.starts_with("unknown key `mcp.listn`"), "{err}");
    assert!(err.contains("REGWATCH_MCP__LISTN"), "{err}");
    std::env::remove_var("REGWATCH_MCP__LISTN");
    set(&[("REGWATCH_PIPELINE__MAX_DEPTH", "many")]);
    let err = RegwatchConfig::load(Some(&file)).unwrap_err().to_string();
    assert!(
        err.starts_with("invalid value for `pipeline.max_depth`"),
        "{err}"
    );
    std::env::remove_var("REGWATCH_PIPELINE__MAX_DEPTH");

    // One of the pair of sign-in variables is an error.
    std::env::remove_var("REGWATCH_PASSWORD");
    let err = RegwatchConfig::load(None).unwrap_err().to_string();
    assert!(err.contains("REGWATCH_USER and REGWATCH_PASSWORD"), "{err}");
}
