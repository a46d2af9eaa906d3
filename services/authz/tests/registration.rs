//! RFC 8414 discovery and RFC 7591 registration conformance, and the
//! table of bad inputs: each gets its exact RFC error, nothing is stored,
//! and a rejection event is recorded.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::*;
use regwatch_schemas::EventPayload;
use serde_json::{json, Value};

async fn discovery_metadata_matches_issuer_on_both_paths(backend: Backend) {
    let h = open(backend, config()).await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let r = h.call(Method::GET, path, None, None, "198.51.100.1").await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.body["issuer"], "http://127.0.0.1:8400");
        assert_eq!(
            r.body["registration_endpoint"],
            "http://127.0.0.1:8400/register"
        );
        assert_eq!(r.body["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(r.body["response_types_supported"], json!(["code"]));
        assert_eq!(
            r.body["authorization_response_iss_parameter_supported"],
            true
        );
    }

    // An issuer with a path: RFC 8414 inserts the well-known segment first.
    let mut cfg = config();
    cfg.issuer = "http://127.0.0.1:8400/tenant1".into();
    let h = open(backend, cfg).await;
    let r = h
        .call(
            Method::GET,
            "/.well-known/oauth-authorization-server/tenant1",
            None,
            None,
            "198.51.100.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["issuer"], "http://127.0.0.1:8400/tenant1");
    let r = h
        .call(
            Method::GET,
            "/tenant1/.well-known/openid-configuration",
            None,
            None,
            "198.51.100.1",
        )
        .await;
    assert_eq!(r.body["issuer"], "http://127.0.0.1:8400/tenant1");
    let r = h
        .call(
            Method::GET,
            "/.well-known/oauth-authorization-server",
            None,
            None,
            "198.51.100.1",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "the root document would carry the wrong issuer"
    );
}

async fn public_client_registration(backend: Backend) {
    let h = open(backend, config()).await;
    let mut body = public_client();
    body["x_vendor_extension"] = json!({"a": 1});
    let r = h.register(&body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}: {}", h.name, r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    let b = &r.body;
    let id = b["client_id"].as_str().unwrap();
    assert!(
        b.get("client_secret").is_none(),
        "a public client gets no secret"
    );
    assert!(b.get("client_secret_expires_at").is_none());
    assert!(b["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(
        b["registration_client_uri"],
        format!("http://127.0.0.1:8400/register/{id}")
    );
    let rat = b["registration_access_token"].as_str().unwrap();
    assert_eq!(
        b["redirect_uris"],
        json!(["http://127.0.0.1:33418/callback"])
    );
    assert_eq!(b["scope"], "mcp:read", "narrow default scope");
    assert!(
        b.get("x_vendor_extension").is_none(),
        "unknown fields are dropped"
    );

    let row = h.state.store.get_client(id).await.unwrap().unwrap();
    assert_ne!(
        row.rat_hash.as_deref(),
        Some(rat),
        "the token is stored hashed"
    );
    assert_eq!(row.rat_hash.as_deref().unwrap().len(), 64);
    assert_eq!(row.source_ip.as_deref(), Some("198.51.100.10"));

    let evs = h.events().await;
    assert_eq!(evs.len(), 1);
    let e = &evs[0];
    assert_eq!(e.client_id.as_deref(), Some(id));
    assert_eq!(
        e.source.as_ref().unwrap().ip.as_deref(),
        Some("198.51.100.10")
    );
    let p = e.policy.as_ref().unwrap();
    assert!(p.risk_signals.contains(&"unknown_fields".to_string()));
    assert!(p.risk_signals.contains(&"loopback_redirect".to_string()));
    match &e.payload {
        EventPayload::ClientRegistered(d) => {
            assert_eq!(d.dropped_fields, vec!["x_vendor_extension"]);
            assert!(!d.confidential);
            assert_eq!(d.metadata.client_name.as_deref(), Some("Acme Assistant"));
        }
        other => panic!("{other:?}"),
    }
    let payload = serde_json::to_string(&evs).unwrap();
    assert!(!payload.contains(rat), "no token in an event");
}

async fn confidential_client_gets_a_hashed_secret(backend: Backend) {
    let h = open(backend, config()).await;
    let r = h
        .register(&json!({"client_name":"Web App","redirect_uris":["https://app.example.com/cb"]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let secret = r.body["client_secret"].as_str().unwrap();
    assert_eq!(r.body["client_secret_expires_at"], 0);
    assert_eq!(r.body["token_endpoint_auth_method"], "client_secret_basic");
    let row = h
        .state
        .store
        .get_client(r.body["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        row.secret_hash.unwrap(),
        regwatch_authz::secrets::hash_token(secret).0
    );
    assert!(!serde_json::to_string(&h.events().await)
        .unwrap()
        .contains(secret));
}

/// `(case, body bytes, content type, status, error, rule)`.
type BadInput = (
    &'static str,
    Vec<u8>,
    &'static str,
    u16,
    &'static str,
    &'static str,
);

fn bad_inputs() -> Vec<BadInput> {
    let j = |v: Value| serde_json::to_vec(&v).unwrap();
    let with_redirect = |u: &str| {
        j(json!({"client_name":"X","redirect_uris":[u],"token_endpoint_auth_method":"none"}))
    };
    let mut deep = String::new();
    for _ in 0..64 {
        deep.push_str("{\"a\":");
    }
    deep.push('1');
    for _ in 0..64 {
        deep.push('}');
    }
    let thousands: Vec<String> = (0..5000)
        .map(|i| format!("https://a{i}.example.com/cb"))
        .collect();
    let many_fields: serde_json::Map<String, Value> =
        (0..100).map(|i| (format!("f{i}"), json!(1))).collect();
    let mut v = vec![
        (
            "huge body",
            j(
                json!({"client_name": "x".repeat(40_000), "redirect_uris":["https://a.example.com/cb"]}),
            ),
            "application/json",
            413,
            "invalid_client_metadata",
            "request.too_large",
        ),
        (
            "deep nesting",
            deep.into_bytes(),
            "application/json",
            400,
            "invalid_client_metadata",
            "request.too_deep",
        ),
        (
            "invalid utf-8",
            b"{\"client_name\":\"\xff\xfe\",\"redirect_uris\":[]}".to_vec(),
            "application/json",
            400,
            "invalid_client_metadata",
            "request.invalid_utf8",
        ),
        (
            "not json",
            b"{client_name:".to_vec(),
            "application/json",
            400,
            "invalid_client_metadata",
            "request.invalid_json",
        ),
        (
            "array body",
            j(json!([1, 2])),
            "application/json",
            400,
            "invalid_client_metadata",
            "request.not_object",
        ),
        (
            "form body",
            b"client_name=x".to_vec(),
            "application/x-www-form-urlencoded",
            400,
            "invalid_client_metadata",
            "request.content_type",
        ),
        (
            "too many fields",
            j(Value::Object(many_fields)),
            "application/json",
            400,
            "invalid_client_metadata",
            "request.too_many_fields",
        ),
        (
            "thousands of redirect uris",
            j(json!({"redirect_uris": thousands})),
            "application/json",
            413,
            "invalid_client_metadata",
            "request.too_large",
        ),
        (
            "eleven redirect uris",
            j(
                json!({"redirect_uris": (0..11).map(|i| format!("https://a.example.com/{i}")).collect::<Vec<_>>()}),
            ),
            "application/json",
            400,
            "invalid_redirect_uri",
            "field.too_many_items",
        ),
        (
            "missing redirect uris",
            j(json!({"client_name":"X"})),
            "application/json",
            400,
            "invalid_redirect_uri",
            "redirect.missing",
        ),
        (
            "redirect uris not an array",
            j(json!({"redirect_uris":"https://a.example.com/cb"})),
            "application/json",
            400,
            "invalid_redirect_uri",
            "field.wrong_type",
        ),
        (
            "redirect uri not a string",
            j(json!({"redirect_uris":[42]})),
            "application/json",
            400,
            "invalid_redirect_uri",
            "field.wrong_type",
        ),
        (
            "client_name a number",
            j(json!({"client_name":7,"redirect_uris":["https://a.example.com/cb"]})),
            "application/json",
            400,
            "invalid_client_metadata",
            "field.wrong_type",
        ),
        (
            "grant_types an object",
            j(json!({"grant_types":{"a":1},"redirect_uris":["https://a.example.com/cb"]})),
            "application/json",
            400,
            "invalid_client_metadata",
            "field.wrong_type",
        ),
        (
            "implicit grant",
            j(
                json!({"grant_types":["implicit"],"response_types":["token"],"redirect_uris":["https://a.example.com/cb"]}),
            ),
            "application/json",
            400,
            "invalid_client_metadata",
            "grant.forbidden",
        ),
        (
            "password grant",
            j(json!({"grant_types":["password"],"redirect_uris":["https://a.example.com/cb"]})),
            "application/json",
            400,
            "invalid_client_metadata",
            "grant.forbidden",
        ),
        (
            "token response type",
            j(json!({"response_types":["token"],"redirect_uris":["https://a.example.com/cb"]})),
            "application/json",
            400,
            "invalid_client_metadata",
            "response_type.unsupported",
        ),
        (
            "code without authorization_code",
            j(
                json!({"grant_types":["refresh_token"],"redirect_uris":["https://a.example.com/cb"]}),
            ),
            "application/json",
            400,
            "invalid_client_metadata",
            "grant.inconsistent",
        ),
        (
            "unknown auth method",
            j(
                json!({"token_endpoint_auth_method":"tls_client_auth","redirect_uris":["https://a.example.com/cb"]}),
            ),
            "application/json",
            400,
            "invalid_client_metadata",
            "auth_method.unsupported",
        ),
        (
            "jwks and jwks_uri",
            j(
                json!({"jwks":{"keys":[]},"jwks_uri":"https://a.example.com/jwks","redirect_uris":["https://a.example.com/cb"]}),
            ),
            "application/json",
            400,
            "invalid_client_metadata",
            "jwks.both",
        ),
        (
            "unknown scope",
            j(json!({"scope":"mcp:read admin","redirect_uris":["https://a.example.com/cb"]})),
            "application/json",
            400,
            "invalid_client_metadata",
            "scope.unknown",
        ),
        (
            "name too long",
            j(json!({"client_name":"n".repeat(201),"redirect_uris":["https://a.example.com/cb"]})),
            "application/json",
            400,
            "invalid_client_metadata",
            "name.too_long",
        ),
        (
            "name control chars",
            j(json!({"client_name":"bad\u{7}name","redirect_uris":["https://a.example.com/cb"]})),
            "application/json",
            400,
            "invalid_client_metadata",
            "name.control_chars",
        ),
        (
            "blank name",
            j(json!({"client_name":"   ","redirect_uris":["https://a.example.com/cb"]})),
            "application/json",
            400,
            "invalid_client_metadata",
            "name.empty",
        ),
        (
            "logo over http",
            j(
                json!({"logo_uri":"http://cdn.example.com/l.png","redirect_uris":["https://a.example.com/cb"]}),
            ),
            "application/json",
            400,
            "invalid_client_metadata",
            "uri.not_https",
        ),
        (
            "malformed software statement",
            j(json!({"software_statement":"nope","redirect_uris":["https://a.example.com/cb"]})),
            "application/json",
            400,
            "invalid_software_statement",
            "software_statement.malformed",
        ),
        (
            "unapproved software statement",
            j(
                json!({"software_statement":"eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln","redirect_uris":["https://a.example.com/cb"]}),
            ),
            "application/json",
            400,
            "unapproved_software_statement",
            "software_statement.unapproved",
        ),
        (
            "application_type unknown",
            j(json!({"application_type":"desktop","redirect_uris":["https://a.example.com/cb"]})),
            "application/json",
            400,
            "invalid_client_metadata",
            "application_type.unknown",
        ),
    ];
    let forbidden: &[(&str, &str)] = &[
        ("https://a.example.com/cb#frag", "redirect.fragment"),
        ("https://*.example.com/cb", "redirect.wildcard"),
        ("https://user:pw@a.example.com/cb", "redirect.userinfo"),
        (
            "javascript:alert(document.cookie)",
            "redirect.forbidden_scheme",
        ),
        (
            "data:text/html;base64,PHNjcmlwdD4=",
            "redirect.forbidden_scheme",
        ),
        ("file:///etc/passwd", "redirect.forbidden_scheme"),
        ("http://attacker.example/cb", "redirect.plain_http"),
        ("http://192.168.1.10/cb", "redirect.plain_http"),
        ("myapp:/callback", "redirect.private_scheme_not_reverse_dns"),
        ("/relative", "redirect.unparseable"),
    ];
    for (u, rule) in forbidden {
        v.push((
            "forbidden redirect",
            with_redirect(u),
            "application/json",
            400,
            "invalid_redirect_uri",
            rule,
        ));
    }
    v
}

async fn bad_input_gets_its_rfc_error_stores_nothing_and_is_recorded(backend: Backend) {
    let h = open(backend, config()).await;
    let cases = bad_inputs();
    for (i, (case, body, ctype, status, error, rule)) in cases.iter().enumerate() {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/register")
            .header("content-type", *ctype)
            .header("x-forwarded-for", "198.51.100.20")
            .body(Body::from(body.clone()))
            .unwrap();
        let r = h.raw(req).await;
        assert_eq!(r.status.as_u16(), *status, "{}: {case}: {}", h.name, r.body);
        assert_eq!(r.body["error"], *error, "{case}");
        assert!(
            r.body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{case}"
        );
        assert_eq!(h.clients().await, 0, "{case}: nothing stored");
        let evs = h.events().await;
        assert_eq!(evs.len(), i + 1, "{case}: one rejection event per refusal");
        match &evs[i].payload {
            EventPayload::ClientRegistrationRejected(d) => {
                assert_eq!(d.rule, *rule, "{case}");
                assert_eq!(d.error, *error, "{case}");
                assert_eq!(d.http_status, *status, "{case}");
            }
            other => panic!("{case}: {other:?}"),
        }
        assert!(evs[i].client_id.is_none());
    }
    // And a good registration still works afterwards: nothing was poisoned.
    assert_eq!(
        h.register(&public_client()).await.status,
        StatusCode::CREATED
    );
}

async fn rejection_event_keeps_what_could_be_read(backend: Backend) {
    let h = open(backend, config()).await;
    let r = h.register(&json!({"client_name":"ChatGPT","redirect_uris":["http://evil.example/cb"],"x_probe":1})).await;
    assert_eq!(r.body["error"], "invalid_redirect_uri");
    let e = h.events().await.remove(0);
    let EventPayload::ClientRegistrationRejected(d) = e.payload else {
        panic!()
    };
    let a = d.attempted.unwrap();
    assert_eq!(a.client_name.as_deref(), Some("ChatGPT"));
    assert_eq!(a.redirect_uris, vec!["http://evil.example/cb"]);
    assert_eq!(d.dropped_fields, vec!["x_probe"]);
    assert_eq!(e.policy.unwrap().matched_rules, vec!["redirect.plain_http"]);
}

async fn strict_mcp_mode_and_domain_lists(backend: Backend) {
    let mut cfg = config();
    cfg.policy.redirect_mode = regwatch_authz::config::RedirectMode::StrictMcp;
    cfg.policy.redirect_domain_denylist = vec!["evil.example".into()];
    cfg.policy.name_denylist = vec!["official".into()];
    let h = open(backend, cfg).await;
    let r = h.register(&json!({"redirect_uris":["com.example.app:/cb"],"application_type":"native","token_endpoint_auth_method":"none"})).await;
    assert_eq!(r.body["error"], "invalid_redirect_uri");
    let r = h
        .register(&json!({"redirect_uris":["https://login.evil.example/cb"]}))
        .await;
    assert_eq!(r.body["error"], "invalid_redirect_uri");
    let r = h
        .register(
            &json!({"client_name":"The OFFICIAL app","redirect_uris":["https://a.example.com/cb"]}),
        )
        .await;
    assert_eq!(r.body["error"], "invalid_client_metadata");
    assert_eq!(
        h.register(&public_client()).await.status,
        StatusCode::CREATED
    );
}

async fn initial_access_token_is_required_when_configured(backend: Backend) {
    let mut cfg = config();
    cfg.policy.initial_access_token = regwatch_authz::config::InitialAccessTokenMode::Always;
    cfg.policy.initial_access_tokens = vec!["iat-secret-0123456789".into()];
    let h = open(backend, cfg).await;
    let r = h.register(&public_client()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body["error"], "invalid_token");
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let r = h
        .call(
            Method::POST,
            "/register",
            Some("wrong-token-0123456789"),
            Some(&public_client()),
            "198.51.100.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .call(
            Method::POST,
            "/register",
            Some("iat-secret-0123456789"),
            Some(&public_client()),
            "198.51.100.1",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let evs = h.events().await;
    assert_eq!(evs.len(), 3);
    assert!(!serde_json::to_string(&evs).unwrap().contains("iat-secret"));
    let EventPayload::ClientRegistered(d) = &evs[2].payload else {
        panic!()
    };
    assert!(d.initial_access_token);
}

async fn rate_limit_429_with_retry_after_then_escalation(backend: Backend) {
    let mut cfg = config();
    cfg.rate_limit.per_minute = 3;
    cfg.rate_limit.burst = 3;
    let h = open(backend, cfg).await;
    let src = "203.0.113.50";
    for _ in 0..3 {
        let r = h
            .call(Method::POST, "/register", None, Some(&public_client()), src)
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = h
        .call(Method::POST, "/register", None, Some(&public_client()), src)
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(r.body["error"], "rate_limited");
    // Another source is unaffected.
    let r = h
        .call(
            Method::POST,
            "/register",
            None,
            Some(&public_client()),
            "203.0.113.51",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let types = h.event_types().await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "client.registration_rejected")
            .count(),
        1
    );

    // The 429 flagged the source once; an admin flag makes it level 2.
    let flag = h
        .call(
            Method::POST,
            &format!("/admin/sources/{src}/flag"),
            Some(ADMIN),
            None,
            "127.0.0.1",
        )
        .await;
    assert_eq!(flag.body["flag_level"], 2);

    // Escalation on a server whose rate limit is out of the way.
    let h = open(backend, config()).await;
    let other = "203.0.113.60";
    for _ in 0..2 {
        h.call(
            Method::POST,
            &format!("/admin/sources/{other}/flag"),
            Some(ADMIN),
            None,
            "127.0.0.1",
        )
        .await;
    }
    let mut sensitive = public_client();
    sensitive["scope"] = json!("mcp:read mcp:delete");
    let r = h
        .call(Method::POST, "/register", None, Some(&sensitive), other)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = h
        .call(
            Method::POST,
            "/register",
            None,
            Some(&public_client()),
            other,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "level 2 still admits narrow scopes"
    );
    // Level 3: blocked.
    h.call(
        Method::POST,
        &format!("/admin/sources/{other}/flag"),
        Some(ADMIN),
        None,
        "127.0.0.1",
    )
    .await;
    let r = h
        .call(
            Method::POST,
            "/register",
            None,
            Some(&public_client()),
            other,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.body["error"], "access_denied");
}

on_both_backends!(
    discovery_metadata_matches_issuer_on_both_paths,
    public_client_registration,
    confidential_client_gets_a_hashed_secret,
    bad_input_gets_its_rfc_error_stores_nothing_and_is_recorded,
    rejection_event_keeps_what_could_be_read,
    strict_mcp_mode_and_domain_lists,
    initial_access_token_is_required_when_configured,
    rate_limit_429_with_retry_after_then_escalation,
);
