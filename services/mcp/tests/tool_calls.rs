//! Tool calls end to end: the real rmcp client over streamable HTTP, the
//! MCP server on a real socket, and the fake authorization server deciding.

mod common;

use common::*;
use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};

async fn connect(mcp: &Mcp, token: &str) -> RunningService<RoleClient, ()> {
    let cfg = StreamableHttpClientTransportConfig::with_uri(mcp.url.as_str()).auth_header(token);
    ().serve(StreamableHttpClientTransport::from_config(cfg))
        .await
        .expect("mcp handshake")
}

fn call(tool: &'static str, args: Value) -> CallToolRequestParams {
    let args: JsonObject = serde_json::from_value(args).expect("object arguments");
    CallToolRequestParams::new(tool).with_arguments(args)
}

#[tokio::test]
async fn an_allowed_tool_call_works_end_to_end_through_rmcp() {
    let fake = FakeAs::start().await;
    let mcp = start_mcp(&fake.url).await;
    fake.grant("tok-rw", "c1", &["mcp:read", "mcp:write"], &mcp.url);
    let client = connect(&mcp, "tok-rw").await;

    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["delete_item", "get_item", "list_items", "update_item"]
    );

    let got = client
        .call_tool(call("get_item", json!({"id": "a"})))
        .await
        .unwrap();
    assert_eq!(
        got.structured_content,
        Some(json!({"id": "a", "text": "first note"}))
    );

    let changed = client
        .call_tool(call("update_item", json!({"id": "c", "text": "third"})))
        .await
        .unwrap();
    assert_eq!(
        changed.structured_content,
        Some(json!({"id": "c", "outcome": "created", "by_client": "c1"}))
    );
    assert_eq!(mcp.state.store.get("c").as_deref(), Some("third"));

    // Each call was put to the authorization server with its tool name,
    // with the shared credential, for this resource, with the client's token.
    assert_eq!(fake.tools_asked(), ["get_item", "update_item"]);
    let seen = fake.seen();
    assert!(
        seen.len() > 2,
        "the handshake and listing were introspected too: {seen:?}"
    );
    assert!(seen.iter().all(|s| s.credential_ok
        && s.token == "tok-rw"
        && s.resource.as_deref() == Some(mcp.url.as_str())));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_tool_outside_the_grant_gets_403_insufficient_scope() {
    let fake = FakeAs::start().await;
    let mcp = start_mcp(&fake.url).await;
    fake.grant("tok-rw", "c1", &["mcp:read", "mcp:write"], &mcp.url);

    // Refused before rmcp: no MCP session is needed to be told.
    let resp = post_mcp(
        &mcp,
        Some("tok-rw"),
        call_body(7, "delete_item", json!({"id": "a"})),
    )
    .await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        www_authenticate(&resp),
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp:delete\", resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", \
             error_description=\"tool delete_item needs mcp:delete\"",
            mcp.base()
        )
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": "insufficient_scope", "error_description": "tool delete_item needs mcp:delete"})
    );
    assert_eq!(fake.tools_asked(), ["delete_item"]);

    // A batch is refused if any call in it is: every call is asked about.
    let batch = format!(
        "[{},{}]",
        call_body(8, "list_items", json!({})),
        call_body(9, "delete_item", json!({"id": "b"}))
    );
    let resp = post_mcp(&mcp, Some("tok-rw"), batch).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        fake.tools_asked(),
        ["delete_item", "list_items", "delete_item"]
    );

    // The real client is refused the same way, and nothing was deleted.
    let client = connect(&mcp, "tok-rw").await;
    let err = client
        .call_tool(call("delete_item", json!({"id": "a"})))
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").to_lowercase().contains("insufficient"),
        "{err:?}"
    );
    assert_eq!(mcp.state.store.ids(), ["a", "b"]);
    // The grant still works for what it covers.
    assert!(client
        .call_tool(call("list_items", json!({})))
        .await
        .is_ok());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_token_revoked_between_two_calls_is_refused_on_the_next() {
    let fake = FakeAs::start().await;
    let mcp = start_mcp(&fake.url).await;
    fake.grant(
        "tok-rwd",
        "c1",
        &["mcp:read", "mcp:write", "mcp:delete"],
        &mcp.url,
    );
    let client = connect(&mcp, "tok-rwd").await;
    let listed = client
        .call_tool(call("list_items", json!({})))
        .await
        .unwrap();
    assert_eq!(listed.structured_content, Some(json!({"ids": ["a", "b"]})));

    fake.revoke("tok-rwd");

    // Same session, same token: the next call is refused, nothing changes.
    assert!(client
        .call_tool(call("delete_item", json!({"id": "a"})))
        .await
        .is_err());
    assert_eq!(mcp.state.store.ids(), ["a", "b"]);
    let resp = post_mcp(&mcp, Some("tok-rwd"), call_body(5, "list_items", json!({}))).await;
    assert_eq!(resp.status(), 401);
    assert!(www_authenticate(&resp).starts_with("Bearer error=\"invalid_token\""));
    let _ = client.cancel().await;
}

#[tokio::test]
async fn a_session_is_usable_only_by_the_client_that_opened_it() {
    let fake = FakeAs::start().await;
    let mcp = start_mcp(&fake.url).await;
    fake.grant("tok-c1", "c1", &["mcp:read"], &mcp.url);
    fake.grant(
        "tok-c2",
        "c2",
        &["mcp:read", "mcp:write", "mcp:delete"],
        &mcp.url,
    );
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let resp = post_mcp(&mcp, Some("tok-c1"), init.into()).await;
    assert_eq!(resp.status(), 200);
    let sid = resp
        .headers()
        .get("mcp-session-id")
        .expect("a legacy session")
        .to_str()
        .unwrap()
        .to_owned();
    drop(resp);

    let send = |token: &'static str, sid: String| {
        let url = mcp.url.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/json")
                .header("accept", ACCEPT)
                .header("mcp-session-id", sid)
                .header("mcp-protocol-version", "2025-06-18")
                .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        send("tok-c2", sid.clone()).await,
        404,
        "another client's valid token"
    );
    assert_eq!(send("tok-c1", "no-such-session".into()).await, 404);
    assert_eq!(send("tok-c1", sid.clone()).await, 202, "the opener");
}
