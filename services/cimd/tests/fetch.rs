//! End-to-end tests of `CimdFetcher` against real sockets on 127.0.0.1.
//!
//! Two kinds of local server: an axum app for ordinary HTTP behaviour, and
//! a raw TCP server for what a well-behaved HTTP stack will not send (a
//! lying `Content-Length`, a close-delimited body, a trickled body). Both
//! count what reaches them, so "refused before any connection" is checked
//! by a count of zero. Every test binds its own port 0.
//!
//! Plain http to loopback needs the development flag; production is https
//! only (see the crate docs).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use regwatch_cimd::{AddrResolver, CimdConfig, CimdError, CimdFetcher, ResolveFuture};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ---------------------------------------------------------------- helpers

fn dev_config() -> CimdConfig {
    CimdConfig {
        allow_loopback_dev: true,
        timeout: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(1),
        ..CimdConfig::default()
    }
}

fn dev_fetcher() -> CimdFetcher {
    CimdFetcher::new(dev_config()).expect("valid config")
}

fn doc_json(client_id: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "client_id": client_id,
        "client_name": "Test Client",
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "token_endpoint_auth_method": "none",
        "contacts": ["ops@example.com"],
        "x_vendor_hint": 1,
    }))
    .expect("serialisable")
}

/// A valid document padded with trailing whitespace to exactly `len` bytes.
fn doc_of_len(client_id: &str, len: usize) -> Vec<u8> {
    let mut body = doc_json(client_id);
    assert!(body.len() <= len, "base document already larger than {len}");
    body.resize(len, b' ');
    body
}

#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    delay: Duration,
}

impl Reply {
    fn json(body: Vec<u8>) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body,
            delay: Duration::ZERO,
        }
    }

    fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }

    fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct Scripted {
    replies: Mutex<HashMap<String, Reply>>,
    hits: Mutex<HashMap<String, usize>>,
}

/// An axum server on 127.0.0.1:0 answering each path with a scripted
/// reply and counting requests per path.
struct HttpServer {
    addr: SocketAddr,
    state: Arc<Scripted>,
}

impl HttpServer {
    async fn start() -> Self {
        let state = Arc::new(Scripted::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn reply(&self, path: &str, reply: Reply) {
        self.state
            .replies
            .lock()
            .expect("lock")
            .insert(path.to_owned(), reply);
    }

    fn hits(&self, path: &str) -> usize {
        self.state
            .hits
            .lock()
            .expect("lock")
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    fn total_hits(&self) -> usize {
        self.state.hits.lock().expect("lock").values().sum()
    }
}

async fn handle(State(state): State<Arc<Scripted>>, uri: Uri) -> Response {
    let path = uri.path().to_owned();
    *state
        .hits
        .lock()
        .expect("lock")
        .entry(path.clone())
        .or_default() += 1;
    let reply = state.replies.lock().expect("lock").get(&path).cloned();
    let Some(reply) = reply else {
        return StatusCode::NOT_FOUND.into_response();
    };
    tokio::time::sleep(reply.delay).await;
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() = StatusCode::from_u16(reply.status).expect("valid status");
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).expect("valid header value"),
        );
    }
    response
}

enum Piece {
    Bytes(Vec<u8>),
    Sleep(Duration),
}

/// A raw TCP server on 127.0.0.1:0: counts connections, reads one request
/// head, writes the scripted pieces verbatim, then closes.
struct RawServer {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl RawServer {
    async fn start(script: Vec<Piece>) -> Self {
        Self::start_with(|_| script).await
    }

    async fn start_with(script: impl FnOnce(SocketAddr) -> Vec<Piece>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let script = script(addr);
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let script = Arc::new(script);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let script = Arc::clone(&script);
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    for piece in script.iter() {
                        match piece {
                            Piece::Bytes(bytes) => {
                                if socket.write_all(bytes).await.is_err() {
                                    return;
                                }
                            }
                            Piece::Sleep(d) => tokio::time::sleep(*d).await,
                        }
                    }
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { addr, connections }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn head(lines: &[&str]) -> Piece {
    let mut text = String::from("HTTP/1.1 200 OK\r\n");
    for line in lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text.push_str("\r\n");
    Piece::Bytes(text.into_bytes())
}

fn chunked(body: &[u8]) -> Piece {
    let mut out = Vec::new();
    for chunk in body.chunks(1000) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    Piece::Bytes(out)
}

/// Maps names to fixed addresses and counts lookups.
struct FakeResolver {
    names: HashMap<String, Vec<IpAddr>>,
    lookups: AtomicUsize,
}

impl FakeResolver {
    fn new(name: &str, addrs: &[IpAddr]) -> Arc<Self> {
        Arc::new(Self {
            names: HashMap::from([(name.to_owned(), addrs.to_vec())]),
            lookups: AtomicUsize::new(0),
        })
    }

    fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

impl AddrResolver for FakeResolver {
    fn lookup(&self, host: &str) -> ResolveFuture {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let answer = self.names.get(host).cloned();
        let host = host.to_owned();
        Box::pin(async move {
            answer.ok_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, format!("no such host {host}"))
            })
        })
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("valid address")
}

// ------------------------------------------------------------- happy path

#[tokio::test]
async fn valid_document_is_fetched_then_served_from_cache() {
    let server = HttpServer::start().await;
    let id = server.url("/client.json");
    server.reply("/client.json", Reply::json(doc_json(&id)));
    let fetcher = dev_fetcher();

    let first = fetcher.fetch(&id).await.expect("valid document");
    assert_eq!(first.client_id, id);
    assert_eq!(first.client_name, "Test Client");
    assert_eq!(first.redirect_uris, vec!["http://127.0.0.1:33418/callback"]);
    assert_eq!(first.token_endpoint_auth_method.as_deref(), Some("none"));
    assert_eq!(first.contacts, Some(vec!["ops@example.com".to_string()]));
    assert_eq!(first.ignored_fields, vec!["x_vendor_hint"]);

    let second = fetcher.fetch(&id).await.expect("cached document");
    assert!(
        Arc::ptr_eq(&first, &second),
        "second fetch is the cached copy"
    );
    assert_eq!(
        server.hits("/client.json"),
        1,
        "second fetch made no request"
    );
}

#[tokio::test]
async fn json_suffix_content_type_is_accepted() {
    let server = HttpServer::start().await;
    let id = server.url("/client");
    server.reply(
        "/client",
        Reply::json(doc_json(&id)).header(
            "content-type",
            "application/vnd.example+json; charset=utf-8",
        ),
    );
    dev_fetcher().fetch(&id).await.expect("+json is json");
}

#[tokio::test]
async fn host_names_go_through_the_injected_resolver() {
    let server = HttpServer::start().await;
    let id = format!("http://localhost:{}/client.json", server.addr.port());
    server.reply("/client.json", Reply::json(doc_json(&id)));
    let resolver = FakeResolver::new("localhost", &[ip("127.0.0.1")]);
    let fetcher = CimdFetcher::with_resolver(dev_config(), resolver.clone()).expect("valid config");

    let doc = fetcher.fetch(&id).await.expect("valid document");
    assert_eq!(doc.client_id, id);
    assert_eq!(resolver.lookups(), 1);
    assert_eq!(server.hits("/client.json"), 1);
}

// ------------------------------------------------------------------ cache

#[tokio::test]
async fn errors_and_invalid_documents_are_not_cached() {
    let server = HttpServer::start().await;
    let id = server.url("/client.json");
    let fetcher = dev_fetcher();

    server.reply("/client.json", Reply::json(doc_json(&id)).status(500));
    for _ in 0..2 {
        let err = fetcher.fetch(&id).await.expect_err("500 is refused");
        assert!(
            matches!(err, CimdError::HttpStatus { status: 500 }),
            "{err:?}"
        );
    }
    assert_eq!(server.hits("/client.json"), 2, "the 500 was not cached");

    let mut with_secret: serde_json::Value = serde_json::from_slice(&doc_json(&id)).expect("json");
    with_secret["client_secret"] = json!("hunter2");
    server.reply(
        "/client.json",
        Reply::json(serde_json::to_vec(&with_secret).expect("json")),
    );
    for _ in 0..2 {
        let err = fetcher.fetch(&id).await.expect_err("secret is refused");
        assert_eq!(err.reason_code(), "shared_secret");
    }
    assert_eq!(
        server.hits("/client.json"),
        4,
        "the invalid document was not cached"
    );

    // Once the server is fixed, the next fetch succeeds straight away.
    server.reply("/client.json", Reply::json(doc_json(&id)));
    fetcher.fetch(&id).await.expect("fixed document");
    assert_eq!(server.hits("/client.json"), 5);
}

#[tokio::test]
async fn cache_control_forbidding_storage_is_honoured() {
    for header in ["no-store", "max-age=0", "no-cache"] {
        let server = HttpServer::start().await;
        let id = server.url("/client.json");
        server.reply(
            "/client.json",
            Reply::json(doc_json(&id)).header("cache-control", header),
        );
        let fetcher = dev_fetcher();
        fetcher.fetch(&id).await.expect("valid document");
        fetcher.fetch(&id).await.expect("valid document");
        assert_eq!(server.hits("/client.json"), 2, "{header}: not cached");
    }
}

#[tokio::test]
async fn cached_documents_expire_after_their_ttl() {
    let server = HttpServer::start().await;
    let id = server.url("/client.json");
    // The server asks for an hour; max_ttl bounds it to 300 ms.
    server.reply(
        "/client.json",
        Reply::json(doc_json(&id)).header("cache-control", "max-age=3600"),
    );
    let fetcher = CimdFetcher::new(CimdConfig {
        default_ttl: Duration::from_millis(100),
        max_ttl: Duration::from_millis(300),
        ..dev_config()
    })
    .expect("valid config");

    fetcher.fetch(&id).await.expect("valid document");
    fetcher.fetch(&id).await.expect("cached");
    assert_eq!(server.hits("/client.json"), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    fetcher.fetch(&id).await.expect("re-fetched");
    assert_eq!(
        server.hits("/client.json"),
        2,
        "expired entry was re-fetched"
    );
}

#[tokio::test]
async fn zero_capacity_disables_the_cache() {
    let server = HttpServer::start().await;
    let id = server.url("/client.json");
    server.reply("/client.json", Reply::json(doc_json(&id)));
    let fetcher = CimdFetcher::new(CimdConfig {
        cache_capacity: 0,
        ..dev_config()
    })
    .expect("valid config");
    fetcher.fetch(&id).await.expect("valid document");
    fetcher.fetch(&id).await.expect("valid document");
    assert_eq!(server.hits("/client.json"), 2);
}

// ------------------------------------------------------------------- size

#[tokio::test]
async fn body_at_the_cap_passes_and_one_byte_over_is_refused() {
    let server = HttpServer::start().await;
    let at_cap = server.url("/at-cap");
    let over = server.url("/over");
    server.reply("/at-cap", Reply::json(doc_of_len(&at_cap, 5120)));
    server.reply("/over", Reply::json(doc_of_len(&over, 5121)));
    let fetcher = dev_fetcher();

    fetcher
        .fetch(&at_cap)
        .await
        .expect("exactly 5120 bytes is allowed");
    let err = fetcher
        .fetch(&over)
        .await
        .expect_err("5121 bytes is too large");
    assert!(
        matches!(err, CimdError::TooLarge { limit: 5120 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn oversized_body_with_honest_content_length_is_refused() {
    let server = HttpServer::start().await;
    let id = server.url("/big");
    server.reply("/big", Reply::json(doc_of_len(&id, 6 * 1024)));
    let err = dev_fetcher()
        .fetch(&id)
        .await
        .expect_err("6 KB is too large");
    assert!(
        matches!(err, CimdError::TooLarge { limit: 5120 }),
        "{err:?}"
    );
    assert_eq!(err.reason_code(), "too_large");
}

#[tokio::test]
async fn oversized_chunked_body_without_content_length_is_refused() {
    // Placeholder URL: the document's client_id does not matter, the cap
    // trips first.
    let body = doc_of_len("http://127.0.0.1/x", 6 * 1024);
    let server = RawServer::start(vec![
        head(&[
            "Content-Type: application/json",
            "Transfer-Encoding: chunked",
        ]),
        chunked(&body),
    ])
    .await;
    let err = dev_fetcher()
        .fetch(&server.url("/client.json"))
        .await
        .expect_err("6 KB chunked is too large");
    assert!(matches!(err, CimdError::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn chunked_body_at_the_cap_passes() {
    // The document must name its own URL, so the script is built once the
    // port is known.
    let server = RawServer::start_with(|addr| {
        let id = format!("http://{addr}/client.json");
        vec![
            head(&[
                "Content-Type: application/json",
                "Transfer-Encoding: chunked",
            ]),
            chunked(&doc_of_len(&id, 5120)),
        ]
    })
    .await;
    let doc = dev_fetcher()
        .fetch(&server.url("/client.json"))
        .await
        .expect("5120 bytes in chunks is allowed");
    assert_eq!(doc.client_id, server.url("/client.json"));
}

#[tokio::test]
async fn oversized_close_delimited_body_is_refused() {
    let body = doc_of_len("http://127.0.0.1/x", 6 * 1024);
    let server = RawServer::start(vec![
        head(&["Content-Type: application/json", "Connection: close"]),
        Piece::Bytes(body),
    ])
    .await;
    let err = dev_fetcher()
        .fetch(&server.url("/client.json"))
        .await
        .expect_err("6 KB without length is too large");
    assert!(matches!(err, CimdError::TooLarge { .. }), "{err:?}");
}

#[tokio::test]
async fn lying_content_length_does_not_let_a_large_body_through() {
    // Declares 100 bytes, sends 6 KB. Only the declared bytes are read
    // (never more than the cap), and the truncated document is refused.
    let body = doc_of_len("http://127.0.0.1/x", 6 * 1024);
    let server = RawServer::start(vec![
        head(&["Content-Type: application/json", "Content-Length: 100"]),
        Piece::Bytes(body),
    ])
    .await;
    let err = dev_fetcher()
        .fetch(&server.url("/client.json"))
        .await
        .expect_err("lying length is refused");
    assert_eq!(err.reason_code(), "invalid_json", "{err:?}");
}

// -------------------------------------------------------- status and type

#[tokio::test]
async fn redirect_to_internal_host_is_not_followed() {
    let server = HttpServer::start().await;
    let id = server.url("/client.json");
    let internal = server.url("/internal");
    server.reply("/internal", Reply::json(doc_json(&id)));
    for (status, location) in [
        (302, internal.as_str()),
        (301, internal.as_str()),
        (307, internal.as_str()),
        (308, internal.as_str()),
        (302, "http://169.254.169.254/latest/meta-data/"),
    ] {
        server.reply(
            "/client.json",
            Reply::json(doc_json(&id))
                .status(status)
                .header("location", location),
        );
        let err = dev_fetcher()
            .fetch(&id)
            .await
            .expect_err("redirect refused");
        assert!(
            matches!(err, CimdError::Redirect { status: s } if s == status),
            "{status}: {err:?}"
        );
        assert_eq!(err.reason_code(), "redirect_refused");
    }
    assert_eq!(
        server.hits("/internal"),
        0,
        "redirect target never requested"
    );
}

#[tokio::test]
async fn only_200_counts() {
    let server = HttpServer::start().await;
    let id = server.url("/client.json");
    for status in [201, 203, 204, 304, 404, 500] {
        server.reply("/client.json", Reply::json(doc_json(&id)).status(status));
        let err = dev_fetcher().fetch(&id).await.expect_err("not 200");
        let reason = if (300..400).contains(&status) {
            "redirect_refused"
        } else {
            "http_status"
        };
        assert_eq!(err.reason_code(), reason, "{status}: {err:?}");
    }
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_refused() {
    let server = HttpServer::start().await;
    let id = server.url("/client.json");
    for content_type in ["text/html", "text/plain", "application/octet-stream"] {
        server.reply(
            "/client.json",
            Reply::json(doc_json(&id)).header("content-type", content_type),
        );
        let err = dev_fetcher().fetch(&id).await.expect_err("not json");
        assert!(
            matches!(err, CimdError::NotJson { .. }),
            "{content_type}: {err:?}"
        );
    }

    let raw = RawServer::start(vec![
        head(&["Content-Length: 2"]),
        Piece::Bytes(b"{}".to_vec()),
    ])
    .await;
    let err = dev_fetcher()
        .fetch(&raw.url("/client.json"))
        .await
        .expect_err("missing content type");
    assert!(
        matches!(err, CimdError::NotJson { content_type: None }),
        "{err:?}"
    );
}

// --------------------------------------------------------------- document

#[tokio::test]
async fn client_id_mismatch_is_refused() {
    let server = HttpServer::start().await;
    let id = server.url("/client.json");
    server.reply(
        "/client.json",
        Reply::json(doc_json("https://victim.example.com/client.json")),
    );
    let err = dev_fetcher().fetch(&id).await.expect_err("mismatch");
    assert!(matches!(err, CimdError::ClientIdMismatch { .. }), "{err:?}");
    assert_eq!(err.oauth_error(), "invalid_client");
}

#[tokio::test]
async fn client_secret_in_document_is_refused() {
    let server = HttpServer::start().await;
    let id = server.url("/client.json");
    let mut doc: serde_json::Value = serde_json::from_slice(&doc_json(&id)).expect("json");
    doc["client_secret"] = json!("hunter2");
    doc["token_endpoint_auth_method"] = json!("client_secret_basic");
    server.reply(
        "/client.json",
        Reply::json(serde_json::to_vec(&doc).expect("json")),
    );
    let err = dev_fetcher().fetch(&id).await.expect_err("secret");
    assert!(
        matches!(&err, CimdError::SharedSecret { field } if field == "client_secret"),
        "{err:?}"
    );
}

// ---------------------------------------------------------------- timeout

#[tokio::test]
async fn slow_server_times_out() {
    let server = HttpServer::start().await;
    let id = server.url("/client.json");
    server.reply(
        "/client.json",
        Reply::json(doc_json(&id)).delay(Duration::from_secs(5)),
    );
    let fetcher = CimdFetcher::new(CimdConfig {
        timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        ..dev_config()
    })
    .expect("valid config");
    let started = Instant::now();
    let err = fetcher.fetch(&id).await.expect_err("too slow");
    assert!(matches!(err, CimdError::Timeout), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn trickled_body_hits_the_total_timeout() {
    // Headers arrive at once, then one byte every 100 ms: each read makes
    // progress, so only a deadline on the whole fetch stops it.
    let mut script = vec![head(&[
        "Content-Type: application/json",
        "Content-Length: 1000",
    ])];
    for _ in 0..50 {
        script.push(Piece::Bytes(b" ".to_vec()));
        script.push(Piece::Sleep(Duration::from_millis(100)));
    }
    let server = RawServer::start(script).await;
    let fetcher = CimdFetcher::new(CimdConfig {
        timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        ..dev_config()
    })
    .expect("valid config");
    let started = Instant::now();
    let err = fetcher
        .fetch(&server.url("/client.json"))
        .await
        .expect_err("trickle");
    assert!(matches!(err, CimdError::Timeout), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

// ------------------------------------------------------------ SSRF guard

#[tokio::test]
async fn loopback_is_refused_without_the_dev_flag_before_any_connection() {
    let server = HttpServer::start().await;
    let id = server.url("/client.json");
    server.reply("/client.json", Reply::json(doc_json(&id)));
    let fetcher = CimdFetcher::new(CimdConfig::default()).expect("default config");

    let err = fetcher.fetch(&id).await.expect_err("loopback refused");
    assert!(
        matches!(err, CimdError::ForbiddenAddress { addr } if addr == ip("127.0.0.1")),
        "{err:?}"
    );
    assert_eq!(err.reason_code(), "forbidden_address");
    assert_eq!(err.oauth_error(), "invalid_client");

    // The same server by name, over https, through the system resolver:
    // refused when `localhost` resolves, before connecting.
    let by_name = format!("https://localhost:{}/client.json", server.addr.port());
    let err = fetcher
        .fetch(&by_name)
        .await
        .expect_err("localhost refused");
    assert_eq!(err.reason_code(), "forbidden_address", "{err:?}");

    assert_eq!(server.total_hits(), 0, "no request reached the server");
}

#[tokio::test]
async fn rebinding_name_to_internal_addresses_is_refused_at_connect_time() {
    let server = RawServer::start(vec![head(&["Content-Length: 0"])]).await;
    let port = server.addr.port();
    let id = format!("https://evil.example:{port}/client.json");
    for (addr, dev_flag) in [
        ("127.0.0.1", false),
        ("::ffff:127.0.0.1", false),
        ("::1", false),
        ("10.0.0.1", false),
        ("169.254.169.254", false),
        ("10.0.0.1", true),
        ("169.254.169.254", true),
        ("100.64.0.1", true),
        ("fd00::1", true),
        ("64:ff9b::7f00:1", true),
    ] {
        let resolver = FakeResolver::new("evil.example", &[ip(addr)]);
        let config = CimdConfig {
            allow_loopback_dev: dev_flag,
            ..dev_config()
        };
        let fetcher = CimdFetcher::with_resolver(config, resolver.clone()).expect("valid config");
        let err = fetcher
            .fetch(&id)
            .await
            .expect_err("internal address refused");
        assert!(
            matches!(err, CimdError::ForbiddenAddress { addr: a } if a == ip(addr)),
            "{addr} (dev flag {dev_flag}): {err:?}"
        );
        assert_eq!(resolver.lookups(), 1, "{addr}: refused in the resolver");
    }
    // (A public address mixed with an internal one is refused as a whole;
    // that is unit-tested in `resolve`, so no test here can ever send a
    // packet to a public address.)

    assert_eq!(server.connections(), 0, "no connection was ever made");

    // Control: the same name with the dev flag on and a loopback answer is
    // connected to (and then fails TLS against the plain-text server),
    // which shows the resolver's answer is what reqwest connects to.
    let resolver = FakeResolver::new("evil.example", &[ip("127.0.0.1")]);
    let fetcher = CimdFetcher::with_resolver(dev_config(), resolver).expect("valid config");
    let err = fetcher
        .fetch(&id)
        .await
        .expect_err("tls to a plain server fails");
    assert_ne!(err.reason_code(), "forbidden_address", "{err:?}");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn unknown_names_are_dns_errors() {
    let resolver = FakeResolver::new("known.example", &[ip("127.0.0.1")]);
    let fetcher =
        CimdFetcher::with_resolver(CimdConfig::default(), resolver).expect("valid config");
    let err = fetcher
        .fetch("https://unknown.example/client.json")
        .await
        .expect_err("nxdomain");
    assert!(matches!(err, CimdError::Dns { .. }), "{err:?}");
    assert_eq!(err.reason_code(), "dns_failure");
}

#[tokio::test]
async fn invalid_urls_are_refused_before_any_connection() {
    let server = HttpServer::start().await;
    let fetcher = dev_fetcher();
    for id in [
        server.url("/client.json?x=1"),
        server.url("/client.json#frag"),
        server.url("/"),
        server.url("/a/../client.json"),
        format!("http://user@{}/client.json", server.addr),
    ] {
        let err = fetcher.fetch(&id).await.expect_err("invalid url");
        assert_eq!(err.reason_code(), "invalid_url", "{id}: {err:?}");
    }
    assert_eq!(server.total_hits(), 0);
}
