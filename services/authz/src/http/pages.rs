//! Server-rendered pages: sign-in, consent, errors. Every value is
//! HTML-escaped; pages forbid framing and caching.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <style>body{{font-family:system-ui,sans-serif;max-width:34em;margin:3em auto;padding:0 1em;color:#1d2230}}\
         .warn{{background:#fff4e5;border-left:4px solid #e8890c;padding:.5em 1em;margin:1em 0}}\
         .err{{background:#fdecea;border-left:4px solid #d93025;padding:.5em 1em}}\
         code{{background:#f1f3f4;padding:0 .2em}} li{{margin:.3em 0}} button{{padding:.5em 1.2em;margin-right:.5em}}</style>\
         </head><body><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    r
}

pub fn error_page(status: StatusCode, error: &str, description: &str) -> Response {
    page(
        status,
        "Authorization request refused",
        &format!("<p class=\"err\"><b>{}</b>: {}</p><p>The application that sent you here cannot be trusted with this request. You can close this page.</p>", esc(error), esc(description)),
    )
}

pub fn sign_in(pending: &str, csrf: &str, client_name: &str, failed: bool) -> Response {
    let msg = if failed {
        "<p class=\"err\">Wrong username or password.</p>"
    } else {
        ""
    };
    page(
        if failed { StatusCode::UNAUTHORIZED } else { StatusCode::OK },
        "Sign in",
        &format!(
            "<p>Sign in to continue to <b>{}</b>.</p>{msg}\
             <form method=\"post\" action=\"/authorize/login\">\
             <input type=\"hidden\" name=\"pending\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <p><label>Username <input name=\"username\" autocomplete=\"username\" required></label></p>\
             <p><label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
             <button type=\"submit\">Sign in</button></form>",
            esc(client_name),
            esc(pending),
            esc(csrf)
        ),
    )
}

/// What the consent page shows about the client.
pub struct ConsentView<'a> {
    pub client_name: &'a str,
    pub client_id: &'a str,
    pub method: &'a str,
    pub redirect_host: &'a str,
    pub scopes: &'a [(String, String)],
    pub resource: &'a str,
    pub warnings: &'a [String],
    pub user: &'a str,
}

pub fn consent(pending: &str, csrf: &str, v: &ConsentView<'_>) -> Response {
    let warnings: String = v
        .warnings
        .iter()
        .map(|w| format!("<p class=\"warn\">⚠ {}</p>", esc(w)))
        .collect();
    let scopes: String = v
        .scopes
        .iter()
        .map(|(s, d)| format!("<li><code>{}</code> {}</li>", esc(s), esc(d)))
        .collect();
    page(
        StatusCode::OK,
        "Allow access?",
        &format!(
            "<p>Signed in as <b>{user}</b>.</p>\
             <p><b>{name}</b> wants access to <code>{resource}</code>.</p>{warnings}\
             <ul><li>Registered by: {method}</li><li>Client id: <code>{cid}</code></li>\
             <li>You will be sent back to: <b>{host}</b></li></ul>\
             <p>It asks to:</p><ul>{scopes}</ul>\
             <form method=\"post\" action=\"/authorize/consent\">\
             <input type=\"hidden\" name=\"pending\" value=\"{p}\"><input type=\"hidden\" name=\"csrf\" value=\"{c}\">\
             <button name=\"decision\" value=\"approve\" type=\"submit\">Allow</button>\
             <button name=\"decision\" value=\"deny\" type=\"submit\">Deny</button></form>",
            user = esc(v.user),
            name = esc(v.client_name),
            resource = esc(v.resource),
            method = esc(v.method),
            cid = esc(v.client_id),
            host = esc(v.redirect_host),
            p = esc(pending),
            c = esc(csrf),
        ),
    )
}
