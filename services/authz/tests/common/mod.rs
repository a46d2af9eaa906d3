//! Test harness: an authorization server on a real SQLite file, or on the
//! real PostgreSQL named by `REGWATCH_TEST_PG_URL` (a fresh database per
//! test). In CI (`CI` set) a missing PostgreSQL fails the run.

#![allow(dead_code)]

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use regwatch_authz::{AppState, AuthzConfig, Store};
use regwatch_schemas::Envelope;
use serde_json::Value;
use tower::ServiceExt;

pub const ADMIN: &str = "admin-token-0123456789";

pub struct Harness {
    pub name: &'static str,
    pub state: AppState,
    pub app: Router,
    _dir: Option<tempfile::TempDir>,
}

/// A config for tests: requests come through a trusted proxy on loopback,
/// so each test picks its source with `X-Forwarded-For`.
pub fn config() -> AuthzConfig {
    let mut c = AuthzConfig {
        issuer: "http://127.0.0.1:8400".into(),
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        admin_token: ADMIN.into(),
        ..Default::default()
    };
    c.rate_limit.per_minute = 10_000;
    c.rate_limit.burst = 10_000;
    c
}

fn harness(
    name: &'static str,
    cfg: AuthzConfig,
    store: Store,
    dir: Option<tempfile::TempDir>,
) -> Harness {
    let state = AppState::new(cfg, store);
    let app = regwatch_authz::http::router(state.clone())
        .layer(MockConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    Harness {
        name,
        state,
        app,
        _dir: dir,
    }
}

pub async fn sqlite(mut cfg: AuthzConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    cfg.database_url = format!("sqlite://{}", dir.path().join("authz.db").display());
    let store = Store::connect(&cfg.database_url, 1).await.unwrap();
    harness("sqlite", cfg, store, Some(dir))
}

/// A fresh PostgreSQL database, or `None` (with the reason printed) when
/// none is configured outside CI.
pub async fn postgres(mut cfg: AuthzConfig) -> Option<Harness> {
    let Ok(base) = std::env::var("REGWATCH_TEST_PG_URL") else {
        if std::env::var_os("CI").is_some() {
            panic!("REGWATCH_TEST_PG_URL is not set in CI: .ci/run must start PostgreSQL");
        }
        eprintln!("skipping PostgreSQL: set REGWATCH_TEST_PG_URL (scripts/pg-up.sh prints it)");
        return None;
    };
    sqlx::any::install_default_drivers();
    let db = format!("t_{}", uuid::Uuid::now_v7().simple());
    let admin = sqlx::AnyPool::connect(&base)
        .await
        .expect("connect to REGWATCH_TEST_PG_URL");
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/').unwrap();
    cfg.database_url = format!("{prefix}/{db}");
    let store = Store::connect(&cfg.database_url, 4).await.unwrap();
    Some(harness("postgres", cfg, store, None))
}

/// SQLite, and PostgreSQL when available.
pub async fn backends(cfg: AuthzConfig) -> Vec<Harness> {
    let mut v = vec![sqlite(cfg.clone()).await];
    if let Some(p) = postgres(cfg).await {
        v.push(p);
    }
    v
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    /// The body as text (HTML pages).
    pub text: String,
}

impl Harness {
    pub async fn raw(&self, req: Request<Body>) -> Resp {
        let res = self.app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        source: &str,
    ) -> Resp {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("x-forwarded-for", source);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(v).unwrap())),
            None => b.body(Body::empty()),
        };
        self.raw(req.unwrap()).await
    }

    pub async fn register(&self, body: &Value) -> Resp {
        self.call(Method::POST, "/register", None, Some(body), "198.51.100.10")
            .await
    }

    pub async fn events(&self) -> Vec<Envelope> {
        self.state
            .store
            .outbox()
            .after(0, 100_000)
            .await
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str(&r.payload).unwrap())
            .collect()
    }

    pub async fn event_types(&self) -> Vec<String> {
        self.events()
            .await
            .iter()
            .map(|e| e.event_type().as_str().to_string())
            .collect()
    }

    pub async fn clients(&self) -> i64 {
        self.state.store.count_clients().await.unwrap()
    }
}

pub fn public_client() -> Value {
    serde_json::json!({
        "client_name": "Acme Assistant",
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "application_type": "native",
    })
}
