//! The official MCP TypeScript SDK registers itself (DCR), signs in through
//! the browser-playing script, calls an allowed tool and is refused one that
//! needs a scope it was not granted; the outbox records each step.
//!
//! Needs `cargo build -p regwatch` and Node 20+ (see the crate docs).

use std::time::Duration;

use regwatch_e2e::{check_sequence, run_flow, wait_for_sequence, Expect, Stack};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_registers_signs_in_and_is_scoped() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let run = run_flow(&stack, &[]).await?;
    let why = || {
        format!(
            "{}\n--- regwatch log\n{}",
            run.transcript(),
            stack.log_tail()
        )
    };

    assert!(
        !stack.leaks_password(&run.stdout) && !stack.leaks_password(&run.stderr),
        "the script printed the password"
    );
    assert!(run.status.success(), "the SDK flow failed:\n{}", why());
    assert_eq!(
        run.steps.last().map(|s| s["step"].clone()),
        Some(json!("done")),
        "{}",
        why()
    );
    assert_eq!(run.steps.last().unwrap()["ok"], json!(true), "{}", why());

    let registered = run
        .find("registered", &[("method", json!("dcr"))])
        .unwrap_or_else(|| panic!("no registered step:\n{}", why()));
    let client_id = registered["client_id"]
        .as_str()
        .expect("client_id is a string")
        .to_owned();
    assert!(
        run.find(
            "callback",
            &[
                ("has_code", json!(true)),
                ("iss_matches", json!(true)),
                ("state_matches", json!(true))
            ]
        )
        .is_some(),
        "{}",
        why()
    );
    assert!(
        run.find(
            "tool",
            &[("name", json!("update_item")), ("ok", json!(true))]
        )
        .is_some(),
        "{}",
        why()
    );
    assert!(
        run.find(
            "tool",
            &[
                ("name", json!("delete_item")),
                ("ok", json!(false)),
                ("status", json!(403)),
                ("error", json!("insufficient_scope")),
                ("scope", json!("mcp:delete"))
            ]
        )
        .is_some(),
        "{}",
        why()
    );

    let expected = [
        Expect::new("client.registered").with("/registration_method", "dcr"),
        Expect::new("consent.granted"),
        Expect::new("token.issued"),
        Expect::new("tool.called")
            .with("/decision", "allowed")
            .with("/tool", "update_item"),
        Expect::new("tool.called")
            .with("/decision", "denied")
            .with("/tool", "delete_item")
            .with("/deciding_scope", "mcp:delete"),
    ];
    let events = wait_for_sequence(
        &stack.authz_db(),
        &client_id,
        &expected,
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e:#}\n{}", why()))?;
    // The check itself must be able to fail: the same events out of order do not pass.
    let mut reversed = events.clone();
    reversed.reverse();
    assert!(check_sequence(&reversed, &expected).is_err());
    Ok(())
}
