//! Test harness: an authorization server on a real SQLite file, or on the
//! real PostgreSQL named by `REGWATCH_TEST_PG_URL` (a fresh database per
//! test). Every case runs on both: `on_both_backends!` declares its
//! `::sqlite` and `::postgres` tests. Without `REGWATCH_TEST_PG_URL` the
//! PostgreSQL half is skipped locally and fails the run in CI (`CI` set).

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

/// The two databases the store runs on. Every test that touches the store
/// is written once as `async fn case(backend: Backend)` and declared for
/// both with [`on_both_backends!`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// An empty database on `backend`. Its `dir` (SQLite) must outlive the store.
pub struct FreshDb {
    pub url: String,
    pub dir: Option<tempfile::TempDir>,
}

/// Whether PostgreSQL tests can run: `false` (with the reason printed) when
/// `REGWATCH_TEST_PG_URL` is unset outside CI; under `CI` its absence fails
/// the run, so a green CI always includes PostgreSQL.
pub fn postgres_configured() -> bool {
    if std::env::var_os("REGWATCH_TEST_PG_URL").is_some() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("REGWATCH_TEST_PG_URL is not set in CI: .ci/run must start PostgreSQL");
    }
    eprintln!("skipping PostgreSQL: set REGWATCH_TEST_PG_URL (scripts/pg-up.sh prints it)");
    false
}

/// A fresh database: a file in a temporary directory for SQLite, a new
/// database on the `REGWATCH_TEST_PG_URL` server for PostgreSQL.
pub async fn fresh_db(backend: Backend) -> FreshDb {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}", dir.path().join("authz.db").display());
            FreshDb {
                url,
                dir: Some(dir),
            }
        }
        Backend::Postgres => {
            let base = std::env::var("REGWATCH_TEST_PG_URL")
                .expect("PostgreSQL tests are gated by postgres_configured()");
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
            FreshDb {
                url: format!("{prefix}/{db}"),
                dir: None,
            }
        }
    }
}

/// A server on a fresh database of `backend`.
pub async fn open(backend: Backend, mut cfg: AuthzConfig) -> Harness {
    let db = fresh_db(backend).await;
    cfg.database_url = db.url;
    // SQLite has one writer; PostgreSQL gets a small pool like production.
    let pool = match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    };
    let store = Store::connect(&cfg.database_url, pool).await.unwrap();
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    harness(name, cfg, store, db.dir)
}

/// For each `async fn NAME(backend: Backend)` listed, declares the tests
/// `NAME::sqlite` and `NAME::postgres`: a failure names its database, and
/// `cargo test -- ::postgres` runs only the PostgreSQL half.
macro_rules! on_both_backends {
    ($($case:ident),+ $(,)?) => {$(
        mod $case {
            #[tokio::test]
            async fn sqlite() {
                super::$case($crate::common::Backend::Sqlite).await
            }

            #[tokio::test]
            async fn postgres() {
                if $crate::common::postgres_configured() {
                    super::$case($crate::common::Backend::Postgres).await
                }
            }
        }
    )+};
}
pub(crate) use on_both_backends;

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
