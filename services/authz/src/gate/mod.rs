//! The registration policy gate. Pure: it runs before anything is stored,
//! on the raw request bytes, and answers either the metadata to store or
//! the exact RFC 7591 error with the rule that fired.
//!
//! Order: size → UTF-8/JSON shape → field count and depth → types and
//! lengths of known fields (unknown ones dropped and named, RFC 7591 §2) →
//! software statement → grant/response/auth-method consistency → redirect
//! URIs → other URIs → names → scopes → initial access token → flagged
//! source escalation.

pub mod redirect;

use regwatch_schemas::ClientMetadata;
use serde_json::{Map, Value};

use crate::config::{InitialAccessTokenMode, Limits, PolicyConfig};
use crate::error::ErrorCode;
use crate::text::{is_scope_token, truncate_for_display};

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub error: ErrorCode,
    /// Stable rule id, recorded in the rejection event (`redirect.fragment`).
    pub rule: &'static str,
    pub description: String,
    /// HTTP status (400 unless the rule says otherwise).
    pub status: u16,
}

impl Rejection {
    pub fn new(error: ErrorCode, rule: &'static str, description: impl Into<String>) -> Self {
        Rejection {
            error,
            rule,
            description: description.into(),
            status: 400,
        }
    }

    fn status(mut self, s: u16) -> Self {
        self.status = s;
        self
    }
}

fn meta(rule: &'static str, d: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::InvalidClientMetadata, rule, d)
}

/// Metadata fields this server understands. Anything else is dropped.
pub const KNOWN_FIELDS: &[&str] = &[
    "redirect_uris",
    "token_endpoint_auth_method",
    "grant_types",
    "response_types",
    "client_name",
    "client_uri",
    "logo_uri",
    "scope",
    "contacts",
    "tos_uri",
    "policy_uri",
    "jwks_uri",
    "jwks",
    "software_id",
    "software_version",
    "software_statement",
    "application_type",
];

/// Fields a client may send on RFC 7592 PUT besides metadata.
const PUT_ONLY: &[&str] = &["client_id", "client_secret"];
/// Fields a client must never send (RFC 7592 §2.2).
const SERVER_ONLY: &[&str] = &[
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

/// A parsed request body, before policy.
#[derive(Debug, Clone, Default)]
pub struct RawRequest {
    pub fields: Map<String, Value>,
    /// Unknown field names, truncated and capped (an audit signal).
    pub dropped: Vec<String>,
}

/// Registration (POST) or update (RFC 7592 PUT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Register,
    Update,
}

/// Per-request facts the gate needs besides the body.
#[derive(Debug, Clone, Copy)]
pub struct GateContext {
    pub mode: Mode,
    /// How many times the source has been flagged (0 = clean).
    pub flag_level: u8,
    pub initial_access_token: IatStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IatStatus {
    Absent,
    Valid,
    Invalid,
}

/// What the gate admitted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub metadata: ClientMetadata,
    pub confidential: bool,
    pub dropped_fields: Vec<String>,
    pub risk_signals: Vec<String>,
    pub scopes: Vec<String>,
}

/// Parse a body into fields. Limits: size, UTF-8, JSON object, depth,
/// field count. Unknown fields are dropped here and named.
pub fn parse(body: &[u8], limits: &Limits, mode: Mode) -> Result<RawRequest, Rejection> {
    if body.len() > limits.max_body_bytes {
        return Err(meta(
            "request.too_large",
            format!("request body exceeds {} bytes", limits.max_body_bytes),
        )
        .status(413));
    }
    if std::str::from_utf8(body).is_err() {
        return Err(meta(
            "request.invalid_utf8",
            "request body is not valid UTF-8",
        ));
    }
    if regwatch_checks::json::exceeds_depth(body, limits.max_depth).is_some() {
        return Err(meta(
            "request.too_deep",
            format!("JSON nesting deeper than {}", limits.max_depth),
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        meta(
            "request.invalid_json",
            format!("request body is not JSON: {e}"),
        )
    })?;
    let Value::Object(all) = value else {
        return Err(meta(
            "request.not_object",
            "request body must be a JSON object",
        ));
    };
    if all.len() > limits.max_fields {
        return Err(meta(
            "request.too_many_fields",
            format!("more than {} fields", limits.max_fields),
        ));
    }
    let mut out = RawRequest::default();
    for (k, v) in all {
        if SERVER_ONLY.contains(&k.as_str()) {
            if mode == Mode::Update {
                return Err(meta(
                    "update.server_field",
                    format!("{k} must not be sent in an update (RFC 7592 §2.2)"),
                ));
            }
            out.push_dropped(&k);
        } else if KNOWN_FIELDS.contains(&k.as_str())
            || (mode == Mode::Update && PUT_ONLY.contains(&k.as_str()))
        {
            out.fields.insert(k, v);
        } else {
            out.push_dropped(&k);
        }
    }
    Ok(out)
}

impl RawRequest {
    fn push_dropped(&mut self, name: &str) {
        if self.dropped.len() < 20 {
            self.dropped.push(truncate_for_display(name, 64));
        }
    }

    /// Whatever metadata can be read, for a rejection event; every value
    /// that is not the expected type is left out, every string truncated.
    pub fn attempted(&self, limits: &Limits) -> ClientMetadata {
        let s = |k: &str| {
            self.fields
                .get(k)
                .and_then(Value::as_str)
                .map(|v| truncate_for_display(v, 256))
        };
        let list = |k: &str, n: usize| -> Vec<String> {
            self.fields
                .get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .take(n)
                        .map(|v| truncate_for_display(v, 256))
                        .collect()
                })
                .unwrap_or_default()
        };
        ClientMetadata {
            client_name: s("client_name"),
            redirect_uris: list("redirect_uris", limits.max_redirect_uris),
            grant_types: list("grant_types", 8),
            response_types: list("response_types", 8),
            token_endpoint_auth_method: s("token_endpoint_auth_method"),
            application_type: s("application_type"),
            scope: s("scope"),
            client_uri: s("client_uri"),
            logo_uri: s("logo_uri"),
            tos_uri: s("tos_uri"),
            policy_uri: s("policy_uri"),
            contacts: list("contacts", limits.max_contacts),
            jwks_uri: s("jwks_uri"),
            software_id: s("software_id"),
            software_version: s("software_version"),
        }
    }
}

fn opt_string(f: &Map<String, Value>, k: &str, max: usize) -> Result<Option<String>, Rejection> {
    match f.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() > max => Err(meta(
            "field.too_long",
            format!("{k} is longer than {max} bytes"),
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(meta("field.wrong_type", format!("{k} must be a string"))),
    }
}

fn string_list(
    f: &Map<String, Value>,
    k: &str,
    max_items: usize,
    max_len: usize,
) -> Result<Option<Vec<String>>, Rejection> {
    let code = if k == "redirect_uris" {
        ErrorCode::InvalidRedirectUri
    } else {
        ErrorCode::InvalidClientMetadata
    };
    match f.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => {
            if a.len() > max_items {
                return Err(Rejection::new(
                    code,
                    "field.too_many_items",
                    format!("{k} has more than {max_items} entries"),
                ));
            }
            let mut out = Vec::with_capacity(a.len());
            for v in a {
                match v {
                    Value::String(s) if s.len() <= max_len => out.push(s.clone()),
                    Value::String(_) => {
                        return Err(Rejection::new(
                            code,
                            "field.too_long",
                            format!("an entry of {k} is longer than {max_len} bytes"),
                        ))
                    }
                    _ => {
                        return Err(Rejection::new(
                            code,
                            "field.wrong_type",
                            format!("{k} must be an array of strings"),
                        ))
                    }
                }
            }
            Ok(Some(out))
        }
        Some(_) => Err(Rejection::new(
            code,
            "field.wrong_type",
            format!("{k} must be an array of strings"),
        )),
    }
}

fn check_plain_uri(k: &str, u: &str) -> Result<(), Rejection> {
    let url = url::Url::parse(u)
        .map_err(|e| meta("uri.invalid", format!("{k} is not an absolute URI: {e}")))?;
    let loopback_http = url.scheme() == "http"
        && url
            .host()
            .is_some_and(|h| regwatch_checks::addr::is_loopback_host(&h));
    if url.scheme() != "https" && !loopback_http {
        return Err(meta("uri.not_https", format!("{k} must be an https URI")));
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(meta(
            "uri.invalid",
            format!("{k} must have no fragment or userinfo"),
        ));
    }
    Ok(())
}

/// The client name, validated: no control characters. Invisible and bidi
/// characters are admitted but flagged, so the detectors see them.
fn check_name(
    name: &str,
    limits: &Limits,
    cfg: &PolicyConfig,
    signals: &mut Vec<String>,
) -> Result<(), Rejection> {
    if name.trim().is_empty() {
        return Err(meta("name.empty", "client_name must not be blank"));
    }
    if name.chars().count() > limits.max_name_chars {
        return Err(meta(
            "name.too_long",
            format!(
                "client_name is longer than {} characters",
                limits.max_name_chars
            ),
        ));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(meta(
            "name.control_chars",
            "client_name has control characters",
        ));
    }
    if regwatch_checks::text::has_hidden(name) {
        signals.push("name_invisible_or_bidi_chars".into());
    }
    let folded = name.to_lowercase();
    if let Some(d) = cfg
        .name_denylist
        .iter()
        .find(|d| folded.contains(&d.to_lowercase()))
    {
        return Err(meta(
            "name.denied",
            format!("client_name contains the denied term {d:?}"),
        ));
    }
    if !cfg.name_allowlist.is_empty()
        && !cfg
            .name_allowlist
            .iter()
            .any(|a| a.to_lowercase() == folded)
    {
        return Err(meta(
            "name.not_allowed",
            "client_name is not on the allowed list",
        ));
    }
    Ok(())
}

/// Run the whole gate on a parsed request.
pub fn evaluate(
    req: &RawRequest,
    ctx: GateContext,
    cfg: &PolicyConfig,
    limits: &Limits,
) -> Result<Accepted, Rejection> {
    let f = &req.fields;
    let mut signals: Vec<String> = Vec::new();
    if !req.dropped.is_empty() {
        signals.push("unknown_fields".into());
    }

    // Software statements (RFC 7591 §2.3): this server trusts no statement
    // issuer, so a well-formed one is unapproved and a malformed one invalid.
    if let Some(v) = f.get("software_statement") {
        let ok_shape = v
            .as_str()
            .is_some_and(|s| s.split('.').count() == 3 && s.len() <= limits.max_string_len * 8);
        return Err(if ok_shape {
            Rejection::new(
                ErrorCode::UnapprovedSoftwareStatement,
                "software_statement.unapproved",
                "software statements from this issuer are not approved",
            )
        } else {
            Rejection::new(
                ErrorCode::InvalidSoftwareStatement,
                "software_statement.malformed",
                "software_statement must be a signed JWT",
            )
        });
    }

    let application_type = opt_string(f, "application_type", 16)?;
    if let Some(a) = &application_type {
        if a != "web" && a != "native" {
            return Err(meta(
                "application_type.unknown",
                "application_type must be \"web\" or \"native\"",
            ));
        }
    }
    let grant_types =
        string_list(f, "grant_types", 8, 64)?.unwrap_or_else(|| vec!["authorization_code".into()]);
    let response_types =
        string_list(f, "response_types", 8, 64)?.unwrap_or_else(|| vec!["code".into()]);
    let auth_method = opt_string(f, "token_endpoint_auth_method", 64)?
        .unwrap_or_else(|| "client_secret_basic".into());

    for g in &grant_types {
        match g.as_str() {
            "authorization_code" | "refresh_token" | "client_credentials" => {}
            "implicit" | "password" => {
                return Err(meta(
                    "grant.forbidden",
                    format!("grant type {g:?} is not allowed (RFC 9700 §2.1.2, §2.4)"),
                ))
            }
            _ => {
                return Err(meta(
                    "grant.unsupported",
                    format!(
                        "grant type {:?} is not supported",
                        truncate_for_display(g, 64)
                    ),
                ))
            }
        }
    }
    for r in &response_types {
        if r != "code" {
            return Err(meta(
                "response_type.unsupported",
                format!(
                    "response type {:?} is not supported; only \"code\"",
                    truncate_for_display(r, 64)
                ),
            ));
        }
    }
    let has_code_grant = grant_types.iter().any(|g| g == "authorization_code");
    if has_code_grant != response_types.iter().any(|r| r == "code") {
        return Err(meta(
            "grant.inconsistent",
            "grant_types authorization_code and response_types code go together (RFC 7591 §2.1)",
        ));
    }
    if grant_types.iter().any(|g| g == "refresh_token") && !has_code_grant {
        return Err(meta(
            "grant.inconsistent",
            "refresh_token needs the authorization_code grant",
        ));
    }
    let confidential = match auth_method.as_str() {
        "none" => false,
        "client_secret_basic" | "client_secret_post" => true,
        other => {
            return Err(meta(
                "auth_method.unsupported",
                format!(
                    "token_endpoint_auth_method {:?} is not supported",
                    truncate_for_display(other, 64)
                ),
            ))
        }
    };
    if grant_types.iter().any(|g| g == "client_credentials") && !confidential {
        return Err(meta(
            "grant.inconsistent",
            "client_credentials needs a confidential client",
        ));
    }
    if f.contains_key("jwks") && f.contains_key("jwks_uri") {
        return Err(meta(
            "jwks.both",
            "jwks and jwks_uri must not both be present (RFC 7591 §2)",
        ));
    }
    if f.contains_key("jwks") {
        return Err(meta(
            "jwks.unsupported",
            "inline jwks is not supported; use jwks_uri",
        ));
    }

    let redirect_uris = string_list(
        f,
        "redirect_uris",
        limits.max_redirect_uris,
        limits.max_uri_len,
    )?
    .unwrap_or_default();
    if has_code_grant && redirect_uris.is_empty() {
        return Err(Rejection::new(
            ErrorCode::InvalidRedirectUri,
            "redirect.missing",
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    let rules = redirect::RedirectRules {
        mode: cfg.redirect_mode,
        allow_non_reverse_dns_schemes: cfg.allow_non_reverse_dns_schemes,
        application_type: application_type.as_deref(),
        max_len: limits.max_uri_len,
        domain_denylist: &cfg.redirect_domain_denylist,
        domain_allowlist: &cfg.redirect_domain_allowlist,
    };
    let mut https_hosts = Vec::new();
    for u in &redirect_uris {
        let class = redirect::check(u, &rules)?;
        if let Some(s) = class.risk_signal() {
            if !signals.iter().any(|x| x == s) {
                signals.push(s.into());
            }
        }
        if class == redirect::RedirectClass::Https {
            if let Some(h) = url::Url::parse(u)
                .ok()
                .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            {
                https_hosts.push(h);
            }
        }
    }

    let mut uri = |k: &str| -> Result<Option<String>, Rejection> {
        let v = opt_string(f, k, limits.max_uri_len)?;
        if let Some(u) = &v {
            check_plain_uri(k, u)?;
            // RFC 7591 §5: informational URIs should share the redirect host.
            let host = url::Url::parse(u)
                .ok()
                .and_then(|x| x.host_str().map(str::to_ascii_lowercase));
            if !https_hosts.is_empty()
                && host.is_some_and(|h| !https_hosts.contains(&h))
                && !signals.iter().any(|s| s == "uri_host_mismatch")
            {
                signals.push("uri_host_mismatch".into());
            }
        }
        Ok(v)
    };
    let client_uri = uri("client_uri")?;
    let logo_uri = uri("logo_uri")?;
    let tos_uri = uri("tos_uri")?;
    let policy_uri = uri("policy_uri")?;
    let jwks_uri = uri("jwks_uri")?;

    let client_name = opt_string(f, "client_name", limits.max_name_chars * 4)?;
    if let Some(n) = &client_name {
        check_name(n, limits, cfg, &mut signals)?;
    } else {
        signals.push("no_client_name".into());
    }
    let contacts = string_list(f, "contacts", limits.max_contacts, 254)?.unwrap_or_default();
    let software_id = opt_string(f, "software_id", 200)?;
    let software_version = opt_string(f, "software_version", 64)?;

    // Scopes: a subset of what is configured; narrow defaults.
    let scope_str = opt_string(f, "scope", limits.max_string_len)?;
    let scopes: Vec<String> = match &scope_str {
        Some(s) => {
            let v: Vec<String> = s
                .split(' ')
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect();
            if v.is_empty() {
                cfg.default_scopes.clone()
            } else {
                v
            }
        }
        None => cfg.default_scopes.clone(),
    };
    if scopes.len() > limits.max_scopes {
        return Err(meta(
            "scope.too_many",
            format!("more than {} scopes", limits.max_scopes),
        ));
    }
    for s in &scopes {
        if !is_scope_token(s) || !cfg.scopes_supported.contains(s) {
            return Err(meta(
                "scope.unknown",
                format!(
                    "scope {:?} is not offered by this server",
                    truncate_for_display(s, 64)
                ),
            ));
        }
    }
    let sensitive = scopes.iter().any(|s| cfg.sensitive_scopes.contains(s));
    if sensitive {
        signals.push("sensitive_scopes".into());
    }

    // Initial access token (RFC 7591 §3): 401 like any bearer-protected resource.
    let need_iat = match cfg.initial_access_token {
        InitialAccessTokenMode::Off => false,
        InitialAccessTokenMode::Always => true,
        InitialAccessTokenMode::Sensitive => sensitive,
    };
    if ctx.mode == Mode::Register {
        match (need_iat, ctx.initial_access_token) {
            (_, IatStatus::Invalid) => {
                return Err(Rejection::new(
                    ErrorCode::InvalidToken,
                    "iat.invalid",
                    "the initial access token is invalid",
                )
                .status(401))
            }
            (true, IatStatus::Absent) => {
                let why =
                    if sensitive && cfg.initial_access_token == InitialAccessTokenMode::Sensitive {
                        "an initial access token is required for the requested scopes"
                    } else {
                        "an initial access token is required to register"
                    };
                return Err(Rejection::new(ErrorCode::InvalidToken, "iat.missing", why).status(401));
            }
            _ => {}
        }
    }

    // Escalation for a flagged source: 2nd flag loses sensitive scopes.
    if ctx.flag_level >= 2 && sensitive {
        return Err(meta(
            "source.flagged_sensitive_scope",
            "sensitive scopes are not available to this source",
        )
        .status(403));
    }
    if ctx.flag_level > 0 {
        signals.push("source_flagged".into());
    }

    let metadata = ClientMetadata {
        client_name,
        redirect_uris,
        grant_types,
        response_types,
        token_endpoint_auth_method: Some(auth_method),
        application_type: Some(application_type.unwrap_or_else(|| "web".into())),
        scope: Some(scopes.join(" ")),
        client_uri,
        logo_uri,
        tos_uri,
        policy_uri,
        contacts,
        jwks_uri,
        software_id,
        software_version,
    };
    Ok(Accepted {
        metadata,
        confidential,
        dropped_fields: req.dropped.clone(),
        risk_signals: signals,
        scopes,
    })
}

#[cfg(test)]
mod tests;
