//! RFC 9728 metadata and the bearer challenges of `/mcp`, over real sockets
//! (and `oneshot` on the bare router for the metadata).

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use regwatch_mcp::{ItemStore, McpState};
use serde_json::{json, Value};
use tower::ServiceExt;

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

#[tokio::test]
async fn metadata_has_the_rfc_9728_shape_at_both_paths() {
    let resource = "http://127.0.0.1:8500/mcp";
    let state = McpState::new(
        config(resource, "http://127.0.0.1:8400/introspect"),
        ItemStore::default(),
    )
    .unwrap();
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let resp = regwatch_mcp::router(state.clone())
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{path}");
        let body: Value =
            serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(
            body,
            json!({
                "resource": resource,
                "authorization_servers": ["http://127.0.0.1:8400"],
                "scopes_supported": ["mcp:read", "mcp:write", "mcp:delete"],
                "bearer_methods_supported": ["header"],
                "resource_name": "regwatch reference MCP server",
            }),
            "{path}"
        );
    }
}

#[tokio::test]
async fn no_token_gets_401_with_resource_metadata_and_no_introspection() {
    let fake = FakeAs::start().await;
    let mcp = start_mcp(&fake.url).await;
    let expected = format!(
        "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:read mcp:write\"",
        mcp.base()
    );
    let resp = post_mcp(&mcp, None, INIT.into()).await;
    assert_eq!(resp.status(), 401);
    assert_eq!(www_authenticate(&resp), expected);
    // The advertised metadata URL really serves the document.
    let meta: Value = reqwest::get(format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        mcp.base()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(meta["resource"], mcp.url.as_str());
    // GET (the SSE stream) and DELETE (end of session) are guarded the same way.
    let c = reqwest::Client::new();
    for req in [
        c.get(&mcp.url).header("accept", "text/event-stream"),
        c.delete(&mcp.url),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        assert_eq!(www_authenticate(&resp), expected);
    }
    // Another scheme is not a bearer token.
    let resp = c
        .post(&mcp.url)
        .basic_auth("u", Some("p"))
        .body(INIT)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(www_authenticate(&resp), expected);
    assert!(
        fake.seen().is_empty(),
        "nothing to introspect without a token"
    );
}

#[tokio::test]
async fn unknown_or_revoked_token_gets_401_invalid_token() {
    let fake = FakeAs::start().await;
    let mcp = start_mcp(&fake.url).await;
    fake.grant("tok-revoked", "c1", &["mcp:read"], &mcp.url);
    fake.revoke("tok-revoked");
    let expected = format!(
        "Bearer error=\"invalid_token\", resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", \
         scope=\"mcp:read mcp:write\", error_description=\"the access token is not active\"",
        mcp.base()
    );
    for token in ["tok-unknown", "tok-revoked"] {
        let resp = post_mcp(&mcp, Some(token), INIT.into()).await;
        assert_eq!(resp.status(), 401, "{token}");
        assert_eq!(www_authenticate(&resp), expected, "{token}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }
    // The introspection call carried the shared credential and this resource.
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.credential_ok
        && s.resource.as_deref() == Some(mcp.url.as_str())
        && s.tool.is_none()));
    assert_eq!(seen[0].token, "tok-unknown");
}

#[tokio::test]
async fn token_for_another_resource_is_refused() {
    let fake = FakeAs::start().await;
    let mcp = start_mcp(&fake.url).await;
    fake.grant(
        "tok-other",
        "c1",
        &["mcp:read", "mcp:write", "mcp:delete"],
        "https://other.example.com/mcp",
    );
    // Same origin, other path: still another resource.
    fake.grant("tok-slash", "c1", &["mcp:read"], &format!("{}/", mcp.url));
    for token in ["tok-other", "tok-slash"] {
        let resp = post_mcp(&mcp, Some(token), INIT.into()).await;
        assert_eq!(resp.status(), 401, "{token}");
        let challenge = www_authenticate(&resp);
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{challenge}"
        );
        assert!(challenge.contains("not for this resource"), "{challenge}");
        // Tool calls too, even those the scopes would allow.
        let resp = post_mcp(&mcp, Some(token), call_body(2, "list_items", json!({}))).await;
        assert_eq!(resp.status(), 401, "{token}");
    }
}

#[tokio::test]
async fn introspection_down_fails_closed_with_503() {
    let mcp = start_mcp(&closed_port_url().await).await;
    let resp = post_mcp(&mcp, Some("tok-any"), INIT.into()).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers().get("retry-after").unwrap(), "5");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"error": "temporarily_unavailable"}));

    // An authorization server that answers, but not with RFC 7662 JSON.
    let fake = FakeAs::start().await;
    let mcp = start_mcp(&fake.url).await;
    fake.grant("tok", "c1", &["mcp:read"], &mcp.url);
    for status in [StatusCode::INTERNAL_SERVER_ERROR, StatusCode::OK] {
        fake.fail_with(status);
        let resp = post_mcp(&mcp, Some("tok"), call_body(2, "list_items", json!({}))).await;
        assert_eq!(resp.status(), 503, "AS answered {status}");
        assert!(resp.headers().contains_key("retry-after"));
    }
}

#[tokio::test]
async fn wrong_introspection_credential_fails_closed() {
    let fake = FakeAs::start().await;
    let mcp = start_mcp_with(&fake.url, |c| {
        c.introspection_token = "not-the-shared-credential".into()
    })
    .await;
    fake.grant("tok", "c1", &["mcp:read"], &mcp.url);
    let resp = post_mcp(&mcp, Some("tok"), INIT.into()).await;
    assert_eq!(resp.status(), 503);
}

#[tokio::test]
async fn oversized_and_unreadable_bodies_are_refused_before_rmcp() {
    let fake = FakeAs::start().await;
    let mcp = start_mcp_with(&fake.url, |c| c.max_body_bytes = 1024).await;
    fake.grant(
        "tok",
        "c1",
        &["mcp:read", "mcp:write", "mcp:delete"],
        &mcp.url,
    );
    let big = call_body(
        2,
        "update_item",
        json!({"id": "a", "text": "x".repeat(2000)}),
    );
    let resp = post_mcp(&mcp, Some("tok"), big).await;
    assert_eq!(resp.status(), 413);

    // A chunked body (no Content-Length) is bounded too.
    assert_eq!(chunked_post_status(&mcp, "tok", 20, 100).await, 413);

    // Duplicate keys could name one tool here and another in rmcp.
    let dup = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_items","name":"delete_item"}}"#;
    let resp = post_mcp(&mcp, Some("tok"), dup.into()).await;
    assert_eq!(resp.status(), 400);
    assert!(fake.seen().is_empty(), "refused before introspection");
}

/// POST `chunks` chunks of `size` bytes with `Transfer-Encoding: chunked`
/// over a raw socket; the response's status code.
async fn chunked_post_status(mcp: &Mcp, token: &str, chunks: usize, size: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(mcp.addr).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n\
         Accept: {ACCEPT}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        mcp.addr
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..chunks {
        // The server may answer and close before every chunk is sent.
        if s.write_all(format!("{size:x}\r\n{}\r\n", "x".repeat(size)).as_bytes())
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut buf = vec![0u8; 64];
    let n = s.read(&mut buf).await.unwrap();
    let line = String::from_utf8_lossy(&buf[..n]).to_string();
    line.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}
