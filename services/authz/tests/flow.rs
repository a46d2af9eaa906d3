//! The authorization flow, played as a browser would: sign-in, consent,
//! code, tokens, introspection with the per-tool question; and every
//! negative the MCP profile cares about, each refused and recorded.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use regwatch_schemas::{EventPayload, ToolDecision};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const RESOURCE: &str = "http://127.0.0.1:8500/mcp";
const RS_TOKEN: &str = "resource-server-credential-01";
const PASSWORD: &str = "correct horse battery";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn challenge(v: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()))
}

fn flow_config() -> regwatch_authz::AuthzConfig {
    let mut c = config();
    c.oauth.resources = vec![RESOURCE.into()];
    c.oauth.introspection_tokens = vec![RS_TOKEN.into()];
    c.oauth.users = vec![regwatch_authz::config::UserEntry {
        username: "alice".into(),
        password_hash: regwatch_authz::users::hash_password(PASSWORD).unwrap(),
    }];
    c
}

/// The value of `<input name="NAME" value="…">` in a page.
fn input(html: &str, name: &str) -> String {
    let key = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&key)
        .unwrap_or_else(|| panic!("no input {name} in {html}"))
        + key.len();
    html[start..].split('"').next().unwrap().to_string()
}

fn form(pairs: &[(&str, &str)]) -> Body {
    Body::from(
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish(),
    )
}

async fn post_form(
    h: &Harness,
    path: &str,
    pairs: &[(&str, &str)],
    cookie: Option<&str>,
    auth: Option<&str>,
) -> Resp {
    let mut b = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-forwarded-for", "198.51.100.10");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    h.raw(b.body(form(pairs)).unwrap()).await
}

async fn get(h: &Harness, path: &str, cookie: Option<&str>) -> Resp {
    let mut b = Request::builder()
        .uri(path)
        .header("x-forwarded-for", "198.51.100.10");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    h.raw(b.body(Body::empty()).unwrap()).await
}

fn query(location: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

async fn register(h: &Harness, scope: &str) -> String {
    let r = h
        .register(&json!({
            "client_name": "Acme Assistant",
            "redirect_uris": ["http://127.0.0.1:33418/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": scope,
        }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["client_id"].as_str().unwrap().to_string()
}

fn authorize_url(client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs: Vec<(&str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", client_id.into()),
        ("redirect_uri", "http://127.0.0.1:40001/callback".into()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".into()),
        ("state", "xyz".into()),
        ("resource", RESOURCE.into()),
    ];
    for (k, v) in extra {
        pairs.retain(|(n, _)| n != k);
        if !v.is_empty() {
            pairs.push((k, v.to_string()));
        }
    }
    format!(
        "/authorize?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    )
}

/// Sign in and approve; returns the redirect's query.
async fn approve(h: &Harness, url: &str) -> std::collections::HashMap<String, String> {
    let page = get(h, url, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let pending = input(&page.text, "pending");
    let csrf = input(&page.text, "csrf");
    let login = post_form(
        h,
        "/authorize/login",
        &[
            ("pending", &pending),
            ("csrf", &csrf),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
        None,
        None,
    )
    .await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.text);
    let cookie = login.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let consent = get(
        h,
        login.headers[header::LOCATION].to_str().unwrap(),
        Some(&cookie),
    )
    .await;
    assert_eq!(consent.status, StatusCode::OK);
    assert!(consent.text.contains("Acme Assistant"));
    assert!(
        consent.text.contains("registered itself"),
        "unverified warning shown"
    );
    assert!(consent.text.contains("127.0.0.1"), "redirect host shown");
    assert!(consent.text.contains("mcp:read"), "requested scopes shown");
    let csrf = input(&consent.text, "csrf");
    let done = post_form(
        h,
        "/authorize/consent",
        &[
            ("pending", &pending),
            ("csrf", &csrf),
            ("decision", "approve"),
        ],
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(done.status, StatusCode::FOUND, "{}", done.text);
    let loc = done.headers[header::LOCATION].to_str().unwrap();
    assert!(
        loc.starts_with("http://127.0.0.1:40001/callback?"),
        "loopback port exception: {loc}"
    );
    query(loc)
}

async fn exchange(
    h: &Harness,
    client_id: &str,
    code: &str,
    verifier: Option<&str>,
    resource: &str,
) -> Resp {
    let mut p = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", "http://127.0.0.1:40001/callback"),
        ("client_id", client_id),
        ("resource", resource),
    ];
    if let Some(v) = verifier {
        p.push(("code_verifier", v));
    }
    post_form(h, "/token", &p, None, None).await
}

async fn introspect(h: &Harness, token: &str, tool: Option<&str>) -> Value {
    let mut p = vec![("token", token), ("resource", RESOURCE)];
    if let Some(t) = tool {
        p.push(("tool", t));
    }
    let r = post_form(
        h,
        "/introspect",
        &p,
        None,
        Some(&format!("Bearer {RS_TOKEN}")),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

async fn full_flow_with_per_tool_authorization_and_events_in_order(backend: Backend) {
    let h = open(backend, flow_config()).await;
    let id = register(&h, "mcp:read mcp:write").await;
    let q = approve(&h, &authorize_url(&id, &[])).await;
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], "http://127.0.0.1:8400", "RFC 9207");
    let t = exchange(&h, &id, &q["code"], Some(VERIFIER), RESOURCE).await;
    assert_eq!(t.status, StatusCode::OK, "{}: {}", h.name, t.text);
    assert_eq!(t.headers["cache-control"], "no-store");
    let access = t.body["access_token"].as_str().unwrap();
    assert_eq!(t.body["token_type"], "Bearer");
    assert_eq!(t.body["scope"], "mcp:read mcp:write");
    assert!(
        t.body["refresh_token"].is_string(),
        "unverified clients get a shorter refresh token"
    );

    let i = introspect(&h, access, None).await;
    assert_eq!(
        (i["active"].as_bool(), i["aud"].as_str(), i["sub"].as_str()),
        (Some(true), Some(RESOURCE), Some("alice"))
    );
    let i = introspect(&h, access, Some("update_item")).await;
    assert_eq!(i["tool"]["allowed"], true);
    let i = introspect(&h, access, Some("delete_item")).await;
    assert_eq!(
        (
            i["tool"]["allowed"].as_bool(),
            i["tool"]["required_scope"].as_str()
        ),
        (Some(false), Some("mcp:delete"))
    );

    let evs = h.events().await;
    let types: Vec<&str> = evs.iter().map(|e| e.event_type().as_str()).collect();
    assert_eq!(
        types,
        [
            "client.registered",
            "consent.granted",
            "token.issued",
            "tool.called",
            "tool.called"
        ],
        "{}",
        h.name
    );
    let tools: Vec<(String, ToolDecision, Option<String>)> = evs
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::ToolCalled(t) => {
                Some((t.tool.clone(), t.decision, t.deciding_scope.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        tools[0],
        (
            "update_item".into(),
            ToolDecision::Allowed,
            Some("mcp:write".into())
        )
    );
    assert_eq!(
        tools[1],
        (
            "delete_item".into(),
            ToolDecision::Denied,
            Some("mcp:delete".into())
        )
    );
    let all = serde_json::to_string(&evs).unwrap();
    assert!(
        !all.contains(access) && !all.contains(&q["code"]),
        "no token or code in events"
    );
    let row = h.state.store.get_client(&id).await.unwrap().unwrap();
    assert!(row.consented_at.is_some());
}

async fn pkce_resource_and_redirect_negatives(backend: Backend) {
    let h = open(backend, flow_config()).await;
    let id = register(&h, "mcp:read").await;

    // Missing PKCE, plain PKCE, missing/unknown resource: back to the client with an error.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let cases: &[Case] = &[
        (&[("code_challenge", "")], "invalid_request", "pkce_missing"),
        (
            &[("code_challenge_method", "plain")],
            "invalid_request",
            "pkce_not_s256",
        ),
        (&[("resource", "")], "invalid_target", "resource_missing"),
        (
            &[("resource", "https://other.example.com/mcp")],
            "invalid_target",
            "resource_unknown",
        ),
        (
            &[("scope", "mcp:read mcp:delete")],
            "invalid_scope",
            "scope_not_registered",
        ),
    ];
    for (extra, error, reason) in cases {
        let r = get(&h, &authorize_url(&id, extra), None).await;
        assert_eq!(r.status, StatusCode::FOUND, "{reason}: {}", r.text);
        let q = query(r.headers[header::LOCATION].to_str().unwrap());
        assert_eq!(
            (q["error"].as_str(), q["state"].as_str()),
            (*error, "xyz"),
            "{reason}"
        );
        let last = h.events().await.pop().unwrap();
        let EventPayload::ConsentDenied(d) = last.payload else {
            panic!("{reason}")
        };
        assert_eq!(d.reason, *reason);
    }
    // A redirect mismatch never redirects.
    let r = get(
        &h,
        &authorize_url(&id, &[("redirect_uri", "https://evil.example/cb")]),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.headers.get(header::LOCATION).is_none());
    let EventPayload::ConsentDenied(d) = h.events().await.pop().unwrap().payload else {
        panic!()
    };
    assert_eq!(d.reason, "redirect_uri_mismatch");
    // Duplicate parameters.
    let r = get(
        &h,
        &format!("{}&state=again", authorize_url(&id, &[])),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // Token endpoint: missing verifier, wrong verifier, wrong resource.
    let q = approve(&h, &authorize_url(&id, &[("scope", "mcp:read")])).await;
    let r = exchange(&h, &id, &q["code"], None, RESOURCE).await;
    assert_eq!(r.body["error"], "invalid_request");
    let r = exchange(
        &h,
        &id,
        &q["code"],
        Some("wrong-verifier-wrong-verifier-wrong-verifier-x"),
        RESOURCE,
    )
    .await;
    assert_eq!(r.body["error"], "invalid_grant");
    let r = exchange(
        &h,
        &id,
        &q["code"],
        Some(VERIFIER),
        "https://other.example.com/mcp",
    )
    .await;
    assert_eq!(r.body["error"], "invalid_target");
    // The right one still works (failed attempts did not burn the code)…
    let ok = exchange(&h, &id, &q["code"], Some(VERIFIER), RESOURCE).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    let access = ok.body["access_token"].as_str().unwrap().to_string();
    // …and a replay is refused and revokes what the code bought.
    let r = exchange(&h, &id, &q["code"], Some(VERIFIER), RESOURCE).await;
    assert_eq!(r.body["error"], "invalid_grant");
    assert_eq!(introspect(&h, &access, None).await["active"], false);
    let EventPayload::TokenRevoked(d) = h.events().await.pop().unwrap().payload else {
        panic!()
    };
    assert_eq!((d.reason.as_str(), d.count), ("code_replay", 2));
}

async fn refresh_rotation_and_reuse_revokes_the_family(backend: Backend) {
    let h = open(backend, flow_config()).await;
    let id = register(&h, "mcp:read").await;
    let q = approve(&h, &authorize_url(&id, &[("scope", "mcp:read")])).await;
    let t = exchange(&h, &id, &q["code"], Some(VERIFIER), RESOURCE).await;
    let r1 = t.body["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String| {
        let h = &h;
        let id = id.clone();
        async move {
            post_form(
                h,
                "/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", &id),
                ],
                None,
                None,
            )
            .await
        }
    };
    let t2 = refresh(r1.clone()).await;
    assert_eq!(t2.status, StatusCode::OK, "{}", t2.text);
    let r2 = t2.body["refresh_token"].as_str().unwrap().to_string();
    let a2 = t2.body["access_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2, "rotated");
    assert_eq!(introspect(&h, &a2, None).await["active"], true);
    // Reusing r1: refused, and the whole family dies (a2 and r2 too).
    let reuse = refresh(r1).await;
    assert_eq!(reuse.body["error"], "invalid_grant");
    assert_eq!(
        introspect(&h, &a2, None).await["active"],
        false,
        "{}",
        h.name
    );
    assert_eq!(refresh(r2).await.body["error"], "invalid_grant");
    let types = h.event_types().await;
    assert_eq!(
        &types[types.len() - 2..],
        ["token.refreshed", "token.revoked"]
    );
    let EventPayload::TokenRevoked(d) = h.events().await.pop().unwrap().payload else {
        panic!()
    };
    assert_eq!(d.reason, "refresh_reuse");
}

async fn expired_and_revoked_tokens_and_clients_stop_working(backend: Backend) {
    let h = open(backend, flow_config()).await;
    let id = register(&h, "mcp:read").await;
    let q = approve(&h, &authorize_url(&id, &[("scope", "mcp:read")])).await;
    let t = exchange(&h, &id, &q["code"], Some(VERIFIER), RESOURCE).await;
    let access = t.body["access_token"].as_str().unwrap().to_string();

    // Expired.
    sqlx::query("UPDATE tokens SET expires_at = 0 WHERE kind = 'access_token'")
        .execute(h.state.store.pool())
        .await
        .unwrap();
    assert_eq!(introspect(&h, &access, None).await["active"], false);
    sqlx::query("UPDATE tokens SET expires_at = 9999999999999")
        .execute(h.state.store.pool())
        .await
        .unwrap();
    assert_eq!(introspect(&h, &access, None).await["active"], true);

    // RFC 7009: unknown token → 200; the access token → revoked.
    assert_eq!(
        post_form(
            &h,
            "/revoke",
            &[("token", "nope"), ("client_id", &id)],
            None,
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    let r = post_form(
        &h,
        "/revoke",
        &[
            ("token", &access),
            ("client_id", &id),
            ("token_type_hint", "access_token"),
        ],
        None,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(introspect(&h, &access, None).await["active"], false);
    let r = post_form(
        &h,
        "/revoke",
        &[
            ("token", &access),
            ("client_id", &id),
            ("token_type_hint", "id_token"),
        ],
        None,
        None,
    )
    .await;
    assert_eq!(r.body["error"], "unsupported_token_type");

    // A revoked client: its tokens stop on the next call, and it cannot get new ones.
    let rt = t.body["refresh_token"].as_str().unwrap().to_string();
    let t2 = post_form(
        &h,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", &id),
        ],
        None,
        None,
    )
    .await;
    let a2 = t2.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        introspect(&h, &a2, Some("get_item")).await["tool"]["allowed"],
        true
    );
    h.call(
        Method::POST,
        &format!("/admin/clients/{id}/revoke"),
        Some(ADMIN),
        None,
        "127.0.0.1",
    )
    .await;
    assert_eq!(introspect(&h, &a2, Some("get_item")).await["active"], false);
    let EventPayload::ToolCalled(d) = h.events().await.pop().unwrap().payload else {
        panic!()
    };
    assert_eq!(
        (d.decision, d.reason.as_deref()),
        (ToolDecision::Denied, Some("client_revoked"))
    );
    let r = post_form(
        &h,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", &id),
        ],
        None,
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let r = get(&h, &authorize_url(&id, &[]), None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        h.event_types().await.last().unwrap(),
        "client.access_denied"
    );

    // Introspection itself needs the resource server's credential.
    let r = post_form(
        &h,
        "/introspect",
        &[("token", &a2)],
        None,
        Some("Bearer wrong-credential-xxxxxxxx"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

async fn user_denial_and_bad_sign_in(backend: Backend) {
    let h = open(backend, flow_config()).await;
    let id = register(&h, "mcp:read").await;
    let page = get(&h, &authorize_url(&id, &[("scope", "mcp:read")]), None).await;
    let pending = input(&page.text, "pending");
    let csrf = input(&page.text, "csrf");
    let bad = post_form(
        &h,
        "/authorize/login",
        &[
            ("pending", &pending),
            ("csrf", &csrf),
            ("username", "alice"),
            ("password", "nope"),
        ],
        None,
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let forged = post_form(
        &h,
        "/authorize/login",
        &[
            ("pending", &pending),
            ("csrf", "forged"),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
        None,
        None,
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let login = post_form(
        &h,
        "/authorize/login",
        &[
            ("pending", &pending),
            ("csrf", &csrf),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
        None,
        None,
    )
    .await;
    let cookie = login.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(login.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("HttpOnly"));
    let r = post_form(
        &h,
        "/authorize/consent",
        &[("pending", &pending), ("csrf", &csrf), ("decision", "deny")],
        Some(&cookie),
        None,
    )
    .await;
    let q = query(r.headers[header::LOCATION].to_str().unwrap());
    assert_eq!(q["error"], "access_denied");
    let EventPayload::ConsentDenied(d) = h.events().await.pop().unwrap().payload else {
        panic!()
    };
    assert_eq!(
        (d.reason.as_str(), d.user_id.as_deref()),
        ("user_denied", Some("alice"))
    );
    // Answered once: the same form cannot approve afterwards.
    let r = post_form(
        &h,
        "/authorize/consent",
        &[
            ("pending", &pending),
            ("csrf", &csrf),
            ("decision", "approve"),
        ],
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

async fn no_refresh_token_for_unverified_clients_when_configured(backend: Backend) {
    let mut cfg = flow_config();
    cfg.oauth.unverified_refresh_token_ttl_secs = 0;
    let h = open(backend, cfg).await;
    let id = register(&h, "mcp:read").await;
    let q = approve(&h, &authorize_url(&id, &[("scope", "mcp:read")])).await;
    let t = exchange(&h, &id, &q["code"], Some(VERIFIER), RESOURCE).await;
    assert!(t.body.get("refresh_token").is_none(), "{}", t.text);
}

/// A resolver that answers every name with one address.
struct Fixed(std::net::IpAddr);

impl regwatch_cimd::AddrResolver for Fixed {
    fn lookup(&self, _host: &str) -> regwatch_cimd::ResolveFuture {
        let a = self.0;
        Box::pin(async move { Ok(vec![a]) })
    }
}

async fn cimd_harness(
    backend: Backend,
    allow_loopback: bool,
    resolver: Option<std::net::IpAddr>,
) -> Harness {
    let mut cfg = flow_config();
    cfg.cimd.fetch.allow_loopback_dev = allow_loopback;
    cfg.cimd.fetch.timeout = std::time::Duration::from_secs(2);
    let mut h = open(backend, cfg.clone()).await;
    if let Some(ip) = resolver {
        h.state.cimd = Some(Arc::new(
            regwatch_cimd::CimdFetcher::with_resolver(cfg.cimd.fetch.clone(), Arc::new(Fixed(ip)))
                .unwrap(),
        ));
        h.app = regwatch_authz::http::router(h.state.clone()).layer(
            axum::extract::connect_info::MockConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40000,
            ))),
        );
    }
    h
}

/// Serve `routes` on a loopback port; returns the base URL.
async fn serve(routes: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, routes).await.unwrap() });
    format!("http://{a}")
}

async fn cimd_client_registers_on_first_sight(backend: Backend) {
    let h = cimd_harness(backend, true, None).await;
    let doc_url = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let d = doc_url.clone();
    let base = serve(axum::Router::new().route(
        "/client.json",
        axum::routing::get(move || {
            let id = d.get().cloned().unwrap_or_default();
            async move {
                axum::Json(json!({
                    "client_id": id,
                    "client_name": "Acme Assistant",
                    "redirect_uris": ["http://127.0.0.1:33418/callback"],
                    "token_endpoint_auth_method": "none",
                    "grant_types": ["authorization_code"],
                    "scope": "mcp:read"
                }))
            }
        }),
    ))
    .await;
    let url = format!("{base}/client.json");
    doc_url.set(url.clone()).unwrap();
    let meta = h
        .call(
            Method::GET,
            "/.well-known/oauth-authorization-server",
            None,
            None,
            "198.51.100.1",
        )
        .await;
    assert_eq!(meta.body["client_id_metadata_document_supported"], true);
    let q = approve(&h, &authorize_url(&url, &[("scope", "mcp:read")])).await;
    let t = exchange(&h, &url, &q["code"], Some(VERIFIER), RESOURCE).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    let evs = h.events().await;
    let EventPayload::ClientRegistered(d) = &evs[0].payload else {
        panic!("{:?}", evs[0])
    };
    assert_eq!(
        d.registration_method,
        regwatch_schemas::RegistrationMethod::Cimd
    );
    assert_eq!(evs[0].client_id.as_deref(), Some(url.as_str()));
    assert!(evs[0]
        .policy
        .as_ref()
        .unwrap()
        .risk_signals
        .contains(&"loopback_only_redirects".to_string()));
    // Seen again: no second registration.
    approve(&h, &authorize_url(&url, &[("scope", "mcp:read")])).await;
    assert_eq!(
        h.event_types()
            .await
            .iter()
            .filter(|t| *t == "client.registered")
            .count(),
        1
    );
}

async fn cimd_ssrf_matrix_is_refused_and_recorded(backend: Backend) {
    // Served on loopback, for the cases that need a real answer.
    let base = serve(
        axum::Router::new()
            .route(
                "/redirect",
                axum::routing::get(|| async {
                    axum::response::Redirect::temporary("http://169.254.169.254/latest/meta-data/")
                }),
            )
            .route(
                "/big",
                axum::routing::get(|| async {
                    (
                        [(header::CONTENT_TYPE, "application/json")],
                        format!("{{\"client_name\":\"{}\"}}", "x".repeat(6000)),
                    )
                }),
            ),
    )
    .await;
    let port = base.rsplit(':').next().unwrap().to_string();
    let strict = cimd_harness(backend, false, None).await;
    let cases: Vec<(&Harness, String, &str)> = vec![
        (
            &strict,
            format!("http://127.0.0.1:{port}/client.json"),
            "cimd.forbidden_address",
        ),
        (
            &strict,
            "https://127.0.0.1/client.json".into(),
            "cimd.forbidden_address",
        ),
        (
            &strict,
            "https://10.0.0.1/client.json".into(),
            "cimd.forbidden_address",
        ),
        (
            &strict,
            "https://192.168.1.1/client.json".into(),
            "cimd.forbidden_address",
        ),
        (
            &strict,
            "https://169.254.169.254/latest/client.json".into(),
            "cimd.forbidden_address",
        ),
        (
            &strict,
            "https://[fe80::1]/client.json".into(),
            "cimd.forbidden_address",
        ),
        (
            &strict,
            "https://[::ffff:127.0.0.1]/client.json".into(),
            "cimd.forbidden_address",
        ),
        (
            &strict,
            "https://[::1]/client.json".into(),
            "cimd.forbidden_address",
        ),
    ];
    let rebinding = cimd_harness(backend, false, Some("10.1.2.3".parse().unwrap())).await;
    let metadata_name =
        cimd_harness(backend, false, Some("169.254.169.254".parse().unwrap())).await;
    let dev = cimd_harness(backend, true, None).await;
    let mut cases = cases;
    cases.push((
        &rebinding,
        "https://internal.evil.example/client.json".into(),
        "cimd.forbidden_address",
    ));
    cases.push((
        &metadata_name,
        "https://metadata.evil.example/client.json".into(),
        "cimd.forbidden_address",
    ));
    cases.push((&dev, format!("{base}/redirect"), "cimd.redirect_refused"));
    cases.push((&dev, format!("{base}/big"), "cimd.too_large"));
    for (h, url, rule) in cases {
        let before = h.events().await.len();
        let r = get(h, &authorize_url(&url, &[]), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}: {}", r.text);
        assert!(r.text.contains("invalid_client"), "{url}");
        assert!(
            r.headers.get(header::LOCATION).is_none(),
            "{url}: never redirect for an unverifiable client"
        );
        let evs = h.events().await;
        assert_eq!(evs.len(), before + 1, "{url}: recorded");
        let EventPayload::ClientRegistrationRejected(d) = &evs[before].payload else {
            panic!("{url}")
        };
        assert_eq!(
            (d.rule.as_str(), d.registration_method),
            (rule, regwatch_schemas::RegistrationMethod::Cimd),
            "{url}: {}",
            d.error_description
        );
        assert_eq!(h.clients().await, 0);
    }
}

/// A metadata document whose only redirect is loopback in a non-canonical
/// spelling (`0x7f000001`, what the browser reaches as 127.0.0.1): the
/// `loopback_only_redirects` signal is raised (it was decided by string
/// prefix, which missed it) and the redirect matches the canonical
/// loopback form on another port (RFC 8252 §7.3).
async fn cimd_loopback_in_any_spelling_is_loopback(backend: Backend) {
    let h = cimd_harness(backend, true, None).await;
    let doc_url = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let d = doc_url.clone();
    let base = serve(axum::Router::new().route(
        "/client.json",
        axum::routing::get(move || {
            let id = d.get().cloned().unwrap_or_default();
            async move {
                axum::Json(json!({
                    "client_id": id,
                    "client_name": "Acme Assistant",
                    "redirect_uris": ["http://0x7f000001:9999/callback"],
                    "token_endpoint_auth_method": "none",
                    "grant_types": ["authorization_code"],
                    "scope": "mcp:read"
                }))
            }
        }),
    ))
    .await;
    let url = format!("{base}/client.json");
    doc_url.set(url.clone()).unwrap();
    let q = approve(&h, &authorize_url(&url, &[("scope", "mcp:read")])).await;
    let t = exchange(&h, &url, &q["code"], Some(VERIFIER), RESOURCE).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    let evs = h.events().await;
    assert!(evs[0]
        .policy
        .as_ref()
        .unwrap()
        .risk_signals
        .contains(&"loopback_only_redirects".to_string()));
}

on_both_backends!(
    full_flow_with_per_tool_authorization_and_events_in_order,
    pkce_resource_and_redirect_negatives,
    refresh_rotation_and_reuse_revokes_the_family,
    expired_and_revoked_tokens_and_clients_stop_working,
    user_denial_and_bad_sign_in,
    no_refresh_token_for_unverified_clients_when_configured,
    cimd_client_registers_on_first_sight,
    cimd_ssrf_matrix_is_refused_and_recorded,
    cimd_loopback_in_any_spelling_is_loopback,
);
