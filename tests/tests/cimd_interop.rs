//! CIMD with the official MCP TypeScript SDK: the client_id is the URL of a
//! metadata document the script serves on loopback. With
//! `--cimd-allow-loopback-dev` the AS fetches it and the flow completes;
//! without the flag the AS must refuse it without fetching it.
//!
//! Needs `cargo build -p regwatch` and Node 20+ (see the crate docs).

use std::time::Duration;

use regwatch_e2e::{free_port, read_outbox, run_flow, wait_for_sequence, Expect, Stack};
use serde_json::json;

fn document_url() -> anyhow::Result<String> {
    Ok(format!("http://127.0.0.1:{}/client.json", free_port()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cimd_loopback_document_is_used_with_dev_flag() -> anyhow::Result<()> {
    let stack = Stack::start(&["--cimd-allow-loopback-dev"]).await?;
    let url = document_url()?;
    let run = run_flow(&stack, &["--cimd", &url]).await?;
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
    assert!(run.status.success(), "the SDK CIMD flow failed:\n{}", why());
    assert_eq!(run.steps.last().unwrap()["ok"], json!(true), "{}", why());
    assert!(
        run.find(
            "registered",
            &[("method", json!("cimd")), ("client_id", json!(url))]
        )
        .is_some(),
        "{}",
        why()
    );
    assert!(
        run.find(
            "callback",
            &[("has_code", json!(true)), ("iss_matches", json!(true))]
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
                ("status", json!(403))
            ]
        )
        .is_some(),
        "{}",
        why()
    );

    let expected = [
        Expect::new("client.registered").with("/registration_method", "cimd"),
        Expect::new("consent.granted"),
        Expect::new("token.issued"),
        Expect::new("tool.called")
            .with("/decision", "allowed")
            .with("/tool", "update_item"),
    ];
    wait_for_sequence(&stack.authz_db(), &url, &expected, Duration::from_secs(10))
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}\n{}", why()))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cimd_loopback_document_is_refused_without_dev_flag() -> anyhow::Result<()> {
    let stack = Stack::start(&[]).await?;
    let url = document_url()?;
    let run = run_flow(&stack, &["--cimd", &url, "--expect-refusal"]).await?;
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
    // Exit 0 in this mode means: refused at the authorization endpoint, no
    // code, no token, and the document was never fetched (see the script).
    assert!(
        run.status.success(),
        "the refusal was not observed as specified:\n{}",
        why()
    );
    let refusal = run
        .find(
            "refusal",
            &[("observed", json!(true)), ("document_fetches", json!(0))],
        )
        .unwrap_or_else(|| panic!("{}", why()));
    // RFC 6749 §4.1.2.1: an invalid client is told to the user, never redirected.
    assert_eq!(refusal["detail"]["hop"], json!(0), "{refusal}\n{}", why());
    assert_eq!(
        refusal["detail"]["status"],
        json!(400),
        "{refusal}\n{}",
        why()
    );
    assert_eq!(
        refusal["detail"]["error"],
        json!("invalid_client"),
        "{refusal}\n{}",
        why()
    );
    assert!(run.steps_named("token").is_empty(), "{}", why());

    let events = read_outbox(&stack.authz_db()).await?;
    // The refusal is audited as a CIMD registration rejected by a `cimd.*` rule.
    let rejected = events.iter().find(|e| {
        e.event_type == "client.registration_rejected"
            && e.client_id.as_deref() == Some(url.as_str())
            && e.payload["data"]["registration_method"] == json!("cimd")
            && e.payload["data"]["error"] == json!("invalid_client")
            && e.payload["data"]["rule"]
                .as_str()
                .is_some_and(|r| r.starts_with("cimd."))
    });
    assert!(
        rejected.is_some(),
        "no client.registration_rejected (cimd) for {url}: {events:?}"
    );
    let registered: Vec<_> = events
        .into_iter()
        .filter(|e| {
            e.event_type == "client.registered"
                && (e.client_id.as_deref() == Some(url.as_str())
                    || e.payload["data"]["metadata"]["client_id"] == json!(url))
        })
        .collect();
    assert!(
        registered.is_empty(),
        "the refused document was registered: {registered:?}"
    );
    Ok(())
}
