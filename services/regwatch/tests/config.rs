//! The one configuration, through the loader (`RegwatchConfig::load`) and
//! through the real binary: an unknown key in any table, and a bad value,
//! stop `regwatch up` with the key's whole path; a `[mcp]` table (and an
//! environment override of it) is in effect on the MCP server `up` runs.
//!
//! Environment overrides of the loader itself are tested in
//! `config_env.rs`, a test binary of its own, since they set process
//! variables.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use regwatch::config::TABLES;
use regwatch::RegwatchConfig;

fn write(dir: &Path, text: &str) -> PathBuf {
    let f = dir.join("regwatch.toml");
    std::fs::write(&f, text).unwrap();
    f
}

fn load(text: &str) -> Result<RegwatchConfig, String> {
    let dir = tempfile::tempdir().unwrap();
    RegwatchConfig::load(Some(&write(dir.path(), text))).map_err(|e| e.to_string())
}

/// `regwatch up` on `file` (plus `args`, `env`), which must exit by
/// itself within 30 s; its exit success and stderr.
fn up_must_exit(file: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_regwatch"))
        .arg("--config")
        .arg(file)
        .arg("up")
        .arg("--data-dir")
        .arg(data.path())
        .args(["--authz-listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("REGWATCH_CONFIG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("regwatch up started with {file:?}; it should have refused");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unknown_key_in_any_table_fails_start_naming_it() {
    // One case per table (and a nested one for the tables with sub-tables),
    // plus a table that does not exist (yet).
    let cases: &[(&str, &str)] = &[
        (
            "[authz]\nissuer_url = \"https://as.example\"\n",
            "authz.issuer_url",
        ),
        (
            "[authz.limits]\nmax_redirects = 3\n",
            "authz.limits.max_redirects",
        ),
        (
            "[authz.cimd.fetch]\ntimeout_ms = 3\n",
            "authz.cimd.fetch.timeout_ms",
        ),
        ("[mcp]\nlistn = \"127.0.0.1:8500\"\n", "mcp.listn"),
        ("[relay]\nbroker = \"b:9092\"\n", "relay.broker"),
        ("[pipeline]\nbatch_size = 10\n", "pipeline.batch_size"),
        (
            "[store]\nclickhouse_url = \"http://127.0.0.1:8123\"\nclickhouse_db = \"d\"\n",
            "store.clickhouse_db",
        ),
        ("[detect]\nburst_window = 60\n", "detect.burst_window"),
        ("[detect.burst]\nwindow = 60\n", "detect.burst.window"),
        ("[retention]\nkeep = 7\n", "retention.keep"),
        ("[api]\ntoken_file = \"/run/token\"\n", "api.token_file"),
        ("[sign_in]\nusername = \"alice\"\n", "sign_in.username"),
        ("[respond]\ndry_run = true\n", "respond"),
    ];
    for table in TABLES {
        assert!(
            cases
                .iter()
                .any(|(_, key)| key.split('.').next() == Some(*table)),
            "no case for [{table}]"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in cases {
        let want = format!("unknown key `{key}`");
        let err = load(text).err().unwrap_or_else(|| panic!("{key}: loaded"));
        assert!(err.starts_with(&want), "{key}: {err}");
        assert!(err.contains("regwatch.toml"), "names the file: {err}");
        let (ok, stderr) = up_must_exit(&write(dir.path(), text), &[], &[]);
        assert!(!ok && stderr.contains(&want), "{key}: {stderr}");
    }
}

#[test]
fn a_bad_value_names_its_key() {
    // Refused by the loader: wrong type, or out of range for the table's
    // own `validate`.
    let at_load: &[(&str, &str)] = &[
        (
            "[authz.limits]\nmax_redirect_uris = \"ten\"\n",
            "authz.limits.max_redirect_uris",
        ),
        ("[mcp]\nmax_body_bytes = -1\n", "mcp.max_body_bytes"),
        ("[relay]\nbatch_size = 0\n", "relay.batch_size"),
        ("[pipeline]\nmax_depth = 1000\n", "pipeline.max_depth"),
        ("[store]\nclickhouse_url = \"\"\n", "store.clickhouse_url"),
        (
            "[detect.burst]\nmin_baseline = 0.0\n",
            "detect.burst.min_baseline",
        ),
        (
            "[retention]\ncheck_interval_minutes = 0\n",
            "retention.check_interval_minutes",
        ),
        ("[sign_in]\nuser = \"alice\"\n", "sign_in"),
    ];
    for (text, key) in at_load {
        let err = load(text).err().unwrap_or_else(|| panic!("{key}: loaded"));
        assert!(
            err.starts_with(&format!("invalid value for `{key}`")),
            "{key}: {err}"
        );
    }
    // Refused by `up` once it has filled in the addresses it derives.
    let dir = tempfile::tempdir().unwrap();
    for (text, args, key) in [
        (
            "[authz.limits]\nmax_redirect_uris = 0\n",
            &[][..],
            "authz.limits.max_redirect_uris",
        ),
        (
            "[mcp]\nmax_body_bytes = 0\n",
            &["--mcp-listen", "127.0.0.1:0"][..],
            "mcp.max_body_bytes",
        ),
    ] {
        let (ok, stderr) = up_must_exit(&write(dir.path(), text), args, &[]);
        let want = format!("invalid value for `{key}`");
        assert!(!ok && stderr.contains(&want), "{key}: {stderr}");
    }
}

#[test]
fn a_missing_or_broken_file_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let err = RegwatchConfig::load(Some(&missing))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope.toml") && err.contains("not found"),
        "{err}"
    );
    let err = load("[authz\n").unwrap_err();
    assert!(err.starts_with("configuration file "), "{err}");
}

#[test]
fn every_table_is_read_from_the_file() {
    let c = load(
        r#"
[authz]
issuer = "https://as.example.com"
[authz.rate_limit]
per_minute = 5
[mcp]
resource = "https://mcp.example.com/mcp"
max_body_bytes = 4096
[relay]
brokers = "k1:9092"
[pipeline]
group_id = "g"
[store]
clickhouse_url = "http://127.0.0.1:8123"
[detect.burst]
min_baseline = 2.0
[retention]
keep_days = 30
[api]
token = "api-token-0123456789"
[sign_in]
user = "alice"
password = "alice-password"
"#,
    )
    .unwrap();
    assert_eq!(c.authz.issuer, "https://as.example.com");
    assert_eq!(c.authz.rate_limit.per_minute, 5);
    assert_eq!(c.mcp.resource, "https://mcp.example.com/mcp");
    assert_eq!(c.mcp.max_body_bytes, 4096);
    assert_eq!(c.relay.unwrap().brokers, "k1:9092");
    assert_eq!(c.pipeline.unwrap().group_id, "g");
    assert_eq!(c.store.unwrap().clickhouse_database, "regwatch");
    assert_eq!(c.detect.burst.min_baseline, 2.0);
    assert_eq!(c.retention.keep_days, 30);
    assert_eq!(c.api.token.unwrap().expose(), "api-token-0123456789");
    assert_eq!(
        c.sign_in.given().unwrap(),
        Some(("alice", "alice-password"))
    );
    // Absent tables: defaults, and "not configured" for the optional ones.
    let c = load("").unwrap();
    assert!(c.relay.is_none() && c.pipeline.is_none() && c.store.is_none());
    assert_eq!(c.sign_in.given().unwrap(), None);
}

#[test]
fn secrets_are_not_in_debug_output() {
    let c = load(
        r#"
[authz]
admin_token = "admin-token-0123456789"
[authz.policy]
initial_access_tokens = ["initial-token-0123456789"]
[authz.oauth]
introspection_tokens = ["introspect-token-0123456789"]
[mcp]
introspection_token = "mcp-credential-0123456789"
[relay.librdkafka]
"sasl.password" = "kafka-password-relay"
[pipeline.librdkafka]
"ssl.key.password" = "kafka-password-pipeline"
[api]
token = "api-token-0123456789"
[sign_in]
user = "alice"
password = "alice-password"
"#,
    )
    .unwrap();
    let shown = format!("{c:?}");
    for secret in [
        "admin-token-0123456789",
        "initial-token-0123456789",
        "introspect-token-0123456789",
        "mcp-credential-0123456789",
        "kafka-password-relay",
        "kafka-password-pipeline",
        "api-token-0123456789",
        "alice-password",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("***") && shown.contains("alice"), "{shown}");
}

/// `regwatch up` honours `[mcp]`: the MCP server it runs publishes the
/// table's `scopes_supported` in its resource metadata and asks for the
/// `challenge_scope` in its 401, which the environment overrides.
#[tokio::test]
async fn up_honours_the_mcp_table_and_its_environment_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "[mcp]\nscopes_supported = [\"mcp:read\", \"notes:write\"]\nchallenge_scope = \"mcp:read\"\n",
    );
    let (authz, mcp) = (regwatch_testkit::free_port(), regwatch_testkit::free_port());
    let data = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_regwatch"))
        .arg("--config")
        .arg(&file)
        .arg("up")
        .arg("--data-dir")
        .arg(data.path())
        .args(["--authz-listen", &format!("127.0.0.1:{authz}")])
        .args(["--mcp-listen", &format!("127.0.0.1:{mcp}")])
        .env_remove("REGWATCH_CONFIG")
        .env("REGWATCH_MCP__CHALLENGE_SCOPE", "mcp:write")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Kill(child);
    let http = reqwest::Client::new();
    let meta_url = format!("http://127.0.0.1:{mcp}/.well-known/oauth-protected-resource/mcp");
    let mut meta = None;
    regwatch_testkit::wait_until("the MCP server", Duration::from_secs(30), async || {
        meta = match http.get(&meta_url).send().await {
            Ok(r) if r.status() == 200 => r.json::<serde_json::Value>().await.ok(),
            _ => None,
        };
        meta.is_some()
    })
    .await;
    let meta = meta.unwrap();
    assert_eq!(
        meta["scopes_supported"],
        serde_json::json!(["mcp:read", "notes:write"]),
        "{meta}"
    );
    assert_eq!(meta["resource"], format!("http://127.0.0.1:{mcp}/mcp"));
    let r = http
        .post(format!("http://127.0.0.1:{mcp}/mcp"))
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.contains("scope=\"mcp:write\""), "{challenge}");
}
