//! Harness for end-to-end tests: a real `regwatch up` on loopback ports, a
//! real client nobody here wrote (the MCP TypeScript SDK, driven by
//! `tests/interop/mcp-oauth-flow.mjs`), and the outbox read back from the
//! stack's SQLite file.
//!
//! # Layout
//!
//! - [`Stack`]: finds the binary, starts `regwatch up` in a temporary data
//!   directory with a random password, waits for the AS metadata, and kills
//!   the process when dropped (also when a test panics).
//! - [`run_flow`] / [`FlowRun`]: runs the Node script and parses its
//!   one-JSON-object-per-line report.
//! - [`read_outbox`] / [`wait_for_sequence`] / [`Expect`]: the outbox rows,
//!   decoded through the wire contract (`regwatch_schemas::Envelope`), and
//!   an "in this order, gaps allowed" check over them.
//!
//! # Prerequisites
//!
//! - The binary: `cargo build -p regwatch` (or set `REGWATCH_BIN`). It is not
//!   built from here: a test that runs `cargo` inside `cargo test` fights
//!   the build lock and hides a stale binary.
//! - Node 20+ on `PATH` (or `NODE`). The npm packages are installed with
//!   `npm ci` from the committed lock file the first time a test needs them
//!   (`tests/interop/node_modules` missing); CI may run the same command
//!   ahead of time. Nothing is skipped: a missing prerequisite fails the test
//!   with the command that fixes it.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use regwatch_schemas::Envelope;
use serde_json::Value;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Row};

/// The user the stack signs in (`REGWATCH_USER`).
pub const USER: &str = "alice";
/// Path of the MCP endpoint on `--mcp-listen`.
pub const MCP_PATH: &str = "/mcp";
/// How long the Node script may run before it is killed.
const FLOW_TIMEOUT: Duration = Duration::from_secs(90);
/// How long `regwatch up` may take to answer its AS metadata.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (this package lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `tests/interop`: the Node package with the SDK pinned.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// `REGWATCH_BIN`, else `<workspace>/target/debug/regwatch`.
pub fn regwatch_bin() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("REGWATCH_BIN") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("REGWATCH_BIN={} is not a file", p.display());
        }
        return Ok(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let p = target.join("debug").join("regwatch");
    if !p.is_file() {
        bail!(
            "{} is missing: run `cargo build -p regwatch` first (or set REGWATCH_BIN)",
            p.display()
        );
    }
    Ok(p)
}

/// A free loopback port: bind port 0, read it, drop the listener. Another
/// process could take it before the server binds; the start check then fails
/// loudly instead of testing the wrong thing.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A running `regwatch up`, killed on drop.
pub struct Stack {
    child: Child,
    /// Data directory (SQLite files, the server log); removed on drop.
    pub data_dir: tempfile::TempDir,
    /// `http://127.0.0.1:<a>`
    pub authz_url: String,
    /// `http://127.0.0.1:<m>/mcp`
    pub mcp_url: String,
    /// The user's random password; never printed.
    password: String,
}

impl Stack {
    /// Starts `regwatch up` with `extra_args` after the listen flags and waits
    /// until `GET /.well-known/oauth-authorization-server` answers 200.
    pub async fn start(extra_args: &[&str]) -> Result<Stack> {
        let bin = regwatch_bin()?;
        let data_dir = tempfile::Builder::new().prefix("regwatch-e2e-").tempdir()?;
        let (a, m) = (free_port()?, free_port()?);
        let password = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let log = File::create(data_dir.path().join("regwatch.log"))?;
        let child = Command::new(&bin)
            .arg("up")
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(["--authz-listen", &format!("127.0.0.1:{a}")])
            .args(["--mcp-listen", &format!("127.0.0.1:{m}")])
            .args(extra_args)
            .env("REGWATCH_USER", USER)
            .env("REGWATCH_PASSWORD", &password)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {}", bin.display()))?;
        let mut stack = Stack {
            child,
            data_dir,
            authz_url: format!("http://127.0.0.1:{a}"),
            mcp_url: format!("http://127.0.0.1:{m}{MCP_PATH}"),
            password,
        };
        stack.wait_ready().await?;
        Ok(stack)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let url = format!("{}/.well-known/oauth-authorization-server", self.authz_url);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "regwatch up exited early ({status}); log:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{url} did not answer 200 within {START_TIMEOUT:?}; log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `<data-dir>/authz.db`
    pub fn authz_db(&self) -> PathBuf {
        self.data_dir.path().join("authz.db")
    }

    /// The last 60 lines of the server's output, for failure messages.
    pub fn log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.data_dir.path().join("regwatch.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// True when `text` contains the password (the tests assert it never does).
    pub fn leaks_password(&self, text: &str) -> bool {
        text.contains(&self.password)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `npm ci` in `tests/interop` when the SDK is not installed yet; once per
/// test process.
pub fn ensure_node_modules() -> Result<()> {
    static ONCE: Mutex<bool> = Mutex::new(false);
    let mut done = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return Ok(());
    }
    let dir = interop_dir();
    if !dir
        .join("node_modules/@modelcontextprotocol/sdk/package.json")
        .is_file()
    {
        let out = Command::new(npm())
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .with_context(|| {
                format!(
                    "run `{} ci` in {} (is Node/npm installed?)",
                    npm(),
                    dir.display()
                )
            })?;
        if !out.status.success() {
            bail!(
                "`npm ci` in {} failed ({}):\n{}{}",
                dir.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    *done = true;
    Ok(())
}

fn node() -> String {
    std::env::var("NODE").unwrap_or_else(|_| "node".into())
}

fn npm() -> String {
    std::env::var("NPM").unwrap_or_else(|_| "npm".into())
}

/// What the Node script did.
#[derive(Debug)]
pub struct FlowRun {
    pub status: ExitStatus,
    /// One JSON object per stdout line.
    pub steps: Vec<Value>,
    pub stdout: String,
    pub stderr: String,
}

impl FlowRun {
    /// Every step named `name`.
    pub fn steps_named(&self, name: &str) -> Vec<&Value> {
        self.steps.iter().filter(|s| s["step"] == name).collect()
    }

    /// The first step named `name` whose fields include every pair in `fields`.
    pub fn find(&self, name: &str, fields: &[(&str, Value)]) -> Option<&Value> {
        self.steps_named(name)
            .into_iter()
            .find(|s| fields.iter().all(|(k, v)| &s[*k] == v))
    }

    /// Everything the script printed, for failure messages.
    pub fn transcript(&self) -> String {
        format!(
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `node tests/interop/mcp-oauth-flow.mjs <args>` against `stack`.
pub async fn run_flow(stack: &Stack, args: &[&str]) -> Result<FlowRun> {
    ensure_node_modules()?;
    let dir = interop_dir();
    let out_path = stack
        .data_dir
        .path()
        .join(format!("flow-{}.out", uuid::Uuid::new_v4().simple()));
    let err_path = out_path.with_extension("err");
    let mut child = Command::new(node())
        .arg("mcp-oauth-flow.mjs")
        .args(args)
        .current_dir(&dir)
        .env("MCP_URL", &stack.mcp_url)
        .env("RW_USER", USER)
        .env("RW_PASSWORD", &stack.password)
        .stdin(Stdio::null())
        .stdout(File::create(&out_path)?)
        .stderr(File::create(&err_path)?)
        .spawn()
        .with_context(|| format!("spawn `{}` (is Node 20+ installed?)", node()))?;
    let deadline = Instant::now() + FLOW_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the Node script ran longer than {FLOW_TIMEOUT:?}; stdout so far:\n{}",
                std::fs::read_to_string(&out_path)?
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let stdout = std::fs::read_to_string(&out_path)?;
    let stderr = std::fs::read_to_string(&err_path)?;
    let steps = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| anyhow!("stdout line is not JSON ({e}): {l}")))
        .collect::<Result<Vec<Value>>>()?;
    Ok(FlowRun {
        status,
        steps,
        stdout,
        stderr,
    })
}

/// One outbox row, its payload decoded through the wire contract.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub seq: i64,
    pub event_type: String,
    pub client_id: Option<String>,
    /// The payload as JSON (`event_type`, `client_id`, `data`, …).
    pub payload: Value,
}

/// All outbox rows of the SQLite file at `db`, in `seq` order. Every payload
/// must decode as a `regwatch_schemas::Envelope` whose `event_type` and
/// `client_id` agree with the row's columns.
pub async fn read_outbox(db: &Path) -> Result<Vec<OutboxEvent>> {
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .read_only(true)
        .connect()
        .await
        .with_context(|| format!("open {}", db.display()))?;
    let rows = sqlx::query("SELECT seq, event_type, client_id, payload FROM outbox ORDER BY seq")
        .fetch_all(&mut conn)
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let seq: i64 = r.try_get("seq")?;
        let event_type: String = r.try_get("event_type")?;
        let client_id: Option<String> = r.try_get("client_id")?;
        let raw: String = r.try_get("payload")?;
        let payload: Value = serde_json::from_str(&raw)
            .with_context(|| format!("outbox seq {seq}: payload is not JSON"))?;
        let env: Envelope = serde_json::from_value(payload.clone()).with_context(|| {
            format!("outbox seq {seq}: payload does not match the event contract: {raw}")
        })?;
        if env.event_type().as_str() != event_type {
            bail!(
                "outbox seq {seq}: column event_type {event_type} but payload says {}",
                env.event_type()
            );
        }
        if env.client_id != client_id {
            bail!(
                "outbox seq {seq}: column client_id {client_id:?} but payload says {:?}",
                env.client_id
            );
        }
        out.push(OutboxEvent {
            seq,
            event_type,
            client_id,
            payload,
        });
    }
    Ok(out)
}

/// One expected event: its type and checks on its `data`.
pub struct Expect {
    pub event_type: &'static str,
    /// `(JSON pointer into data, expected value)`
    pub data: Vec<(&'static str, Value)>,
}

impl Expect {
    pub fn new(event_type: &'static str) -> Self {
        Expect {
            event_type,
            data: Vec::new(),
        }
    }
    pub fn with(mut self, pointer: &'static str, value: impl Into<Value>) -> Self {
        self.data.push((pointer, value.into()));
        self
    }
    fn matches(&self, e: &OutboxEvent) -> bool {
        e.event_type == self.event_type
            && self
                .data
                .iter()
                .all(|(p, v)| e.payload["data"].pointer(p) == Some(v))
    }
    fn describe(&self) -> String {
        let d: Vec<String> = self
            .data
            .iter()
            .map(|(p, v)| format!("data{p}={v}"))
            .collect();
        format!("{} {}", self.event_type, d.join(" "))
    }
}

/// Checks that `events` contain `expected` in order (other events may sit
/// in between); the error names the first expectation not met and lists
/// what was there.
pub fn check_sequence(events: &[OutboxEvent], expected: &[Expect]) -> Result<()> {
    let mut it = events.iter();
    for (i, x) in expected.iter().enumerate() {
        if !it.by_ref().any(|e| x.matches(e)) {
            let seen: Vec<String> = events
                .iter()
                .map(|e| format!("  {} {} data={}", e.seq, e.event_type, e.payload["data"]))
                .collect();
            bail!(
                "expected event #{i} `{}` not found in order; events:\n{}",
                x.describe(),
                seen.join("\n")
            );
        }
    }
    Ok(())
}

/// Polls the outbox (events can land a moment after the HTTP answer) until
/// the events of `client_id` satisfy `expected`, or `timeout` passes.
pub async fn wait_for_sequence(
    db: &Path,
    client_id: &str,
    expected: &[Expect],
    timeout: Duration,
) -> Result<Vec<OutboxEvent>> {
    let deadline = Instant::now() + timeout;
    loop {
        let events: Vec<OutboxEvent> = read_outbox(db)
            .await?
            .into_iter()
            .filter(|e| e.client_id.as_deref() == Some(client_id))
            .collect();
        match check_sequence(&events, expected) {
            Ok(()) => return Ok(events),
            Err(e) if Instant::now() > deadline => {
                return Err(e.context(format!("outbox of client {client_id}")))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(seq: i64, event_type: &str, data: Value) -> OutboxEvent {
        OutboxEvent {
            seq,
            event_type: event_type.into(),
            client_id: Some("c".into()),
            payload: json!({ "event_type": event_type, "data": data }),
        }
    }

    #[test]
    fn sequence_is_ordered_with_gaps_allowed() {
        let events = [
            ev(
                1,
                "client.registered",
                json!({"registration_method": "dcr"}),
            ),
            ev(2, "consent.granted", json!({})),
            ev(3, "token.issued", json!({})),
            ev(
                4,
                "tool.called",
                json!({"decision": "allowed", "tool": "update_item"}),
            ),
            ev(5, "token.refreshed", json!({})),
            ev(
                6,
                "tool.called",
                json!({"decision": "denied", "tool": "delete_item"}),
            ),
        ];
        let ok = |x: &[Expect]| check_sequence(&events, x).is_ok();
        assert!(ok(&[
            Expect::new("client.registered").with("/registration_method", "dcr"),
            Expect::new("tool.called").with("/decision", "allowed"),
            Expect::new("tool.called").with("/decision", "denied"),
        ]));
        // Wrong data, wrong order, one event used twice: all refused.
        assert!(!ok(&[
            Expect::new("client.registered").with("/registration_method", "cimd")
        ]));
        assert!(!ok(&[
            Expect::new("token.issued"),
            Expect::new("consent.granted")
        ]));
        assert!(!ok(&[
            Expect::new("consent.granted"),
            Expect::new("consent.granted")
        ]));
        assert!(ok(&[]));
    }
}
