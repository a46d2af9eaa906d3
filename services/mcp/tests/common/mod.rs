//! Test harness: a fake RFC 7662 introspection server on 127.0.0.1:0 that
//! follows the authorization server's contract, and the MCP server started
//! in-process on its own port.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use regwatch_mcp::{ItemStore, McpConfig, McpState};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The shared credential the MCP server presents to introspection.
pub const INTROSPECTION_TOKEN: &str = "introspection-credential-0123456789";

/// The authorization server's tool→scope map.
pub fn required_scope(tool: &str) -> &'static str {
    match tool {
        "update_item" => "mcp:write",
        "delete_item" => "mcp:delete",
        _ => "mcp:read",
    }
}

/// One token as the fake authorization server knows it.
#[derive(Clone, Debug)]
pub struct Grant {
    pub active: bool,
    pub client_id: String,
    pub scopes: Vec<&'static str>,
    pub aud: String,
}

/// One request the fake received (the client's token is recorded so tests
/// can check it was forwarded; the fake is the only place that sees it).
#[derive(Clone, Debug)]
pub struct Seen {
    pub credential_ok: bool,
    pub token: String,
    pub tool: Option<String>,
    pub resource: Option<String>,
}

#[derive(Default)]
pub struct FakeAsState {
    pub grants: HashMap<String, Grant>,
    pub seen: Vec<Seen>,
    /// When set, answer every request with this status and no JSON.
    pub fail_with: Option<StatusCode>,
}

#[derive(Clone)]
pub struct FakeAs {
    pub url: String,
    pub state: Arc<Mutex<FakeAsState>>,
    _stop: Arc<oneshot::Sender<()>>,
}

impl FakeAs {
    pub async fn start() -> FakeAs {
        let state = Arc::new(Mutex::new(FakeAsState::default()));
        let app = Router::new()
            .route("/introspect", post(introspect))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake AS");
        let addr = listener.local_addr().expect("fake AS address");
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        FakeAs {
            url: format!("http://{addr}/introspect"),
            state,
            _stop: Arc::new(tx),
        }
    }

    pub fn grant(&self, token: &str, client_id: &str, scopes: &[&'static str], aud: &str) {
        self.state.lock().unwrap().grants.insert(
            token.into(),
            Grant {
                active: true,
                client_id: client_id.into(),
                scopes: scopes.to_vec(),
                aud: aud.into(),
            },
        );
    }

    /// Revoke a token (or, equally for the MCP server, its client).
    pub fn revoke(&self, token: &str) {
        if let Some(g) = self.state.lock().unwrap().grants.get_mut(token) {
            g.active = false;
        }
    }

    pub fn fail_with(&self, status: StatusCode) {
        self.state.lock().unwrap().fail_with = Some(status);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The tools asked about, in order.
    pub fn tools_asked(&self) -> Vec<String> {
        self.seen().into_iter().filter_map(|s| s.tool).collect()
    }
}

async fn introspect(
    State(state): State<Arc<Mutex<FakeAsState>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let credential_ok = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {INTROSPECTION_TOKEN}")[..]);
    let mut st = state.lock().unwrap();
    let token = form.get("token").cloned().unwrap_or_default();
    let tool = form.get("tool").cloned();
    st.seen.push(Seen {
        credential_ok,
        token: token.clone(),
        tool: tool.clone(),
        resource: form.get("resource").cloned(),
    });
    if let Some(status) = st.fail_with {
        return (status, "down").into_response();
    }
    if !credential_ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let Some(g) = st.grants.get(&token).filter(|g| g.active) else {
        return Json(json!({"active": false})).into_response();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut answer = json!({
        "active": true,
        "client_id": g.client_id,
        "scope": g.scopes.join(" "),
        "sub": "alice",
        "aud": g.aud,
        "exp": now + 600,
        "iat": now,
        "token_type": "Bearer",
    });
    if let Some(name) = tool {
        let scope = required_scope(&name);
        answer["tool"] =
            json!({"name": name, "allowed": g.scopes.contains(&scope), "required_scope": scope});
    }
    Json(answer).into_response()
}

/// The MCP server, running on its own port.
pub struct Mcp {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT/mcp`: the resource, and where clients connect.
    pub url: String,
    pub state: McpState,
    _stop: oneshot::Sender<()>,
}

impl Mcp {
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub fn config(resource: &str, introspection_endpoint: &str) -> McpConfig {
    McpConfig {
        resource: resource.into(),
        issuer: "http://127.0.0.1:8400".into(),
        introspection_endpoint: introspection_endpoint.into(),
        introspection_token: INTROSPECTION_TOKEN.into(),
        introspection_timeout_ms: 3_000,
        ..McpConfig::default()
    }
}

/// Start the MCP server against `introspection_endpoint`, with notes `a` and `b`.
pub async fn start_mcp(introspection_endpoint: &str) -> Mcp {
    start_mcp_with(introspection_endpoint, |_| {}).await
}

pub async fn start_mcp_with(
    introspection_endpoint: &str,
    tweak: impl FnOnce(&mut McpConfig),
) -> Mcp {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind mcp");
    let addr = listener.local_addr().expect("mcp address");
    let url = format!("http://{addr}/mcp");
    let mut cfg = config(&url, introspection_endpoint);
    tweak(&mut cfg);
    let store = ItemStore::with_items([
        ("a".to_string(), "first note".to_string()),
        ("b".into(), "second note".into()),
    ]);
    let state = McpState::new(cfg, store).expect("valid config");
    let (tx, rx) = oneshot::channel::<()>();
    let serving = state.clone();
    tokio::spawn(async move {
        let _ = regwatch_mcp::serve(serving, listener, async move {
            let _ = rx.await;
        })
        .await;
    });
    Mcp {
        addr,
        url,
        state,
        _stop: tx,
    }
}

/// An address where nothing listens: bound, then released.
pub async fn closed_port_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    drop(l);
    format!("http://{addr}/introspect")
}

pub const ACCEPT: &str = "application/json, text/event-stream";

pub fn call_body(id: u64, tool: &str, args: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}}).to_string()
}

/// POST a JSON-RPC body to `/mcp` with `token` (raw HTTP, no MCP client).
pub async fn post_mcp(mcp: &Mcp, token: Option<&str>, body: String) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(&mcp.url)
        .header("content-type", "application/json")
        .header("accept", ACCEPT)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("mcp reachable")
}

pub fn www_authenticate(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}
