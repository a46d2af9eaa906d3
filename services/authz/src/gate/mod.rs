//! The registration gate. Pure: it runs before anything is stored and
//! answers either the metadata to store or the exact RFC 7591 error with
//! the rule that fired. DCR bodies and CIMD documents reach it as the
//! same typed [`RegistrationRequest`] and meet the same limits.
//!
//! Order: size → UTF-8/JSON shape → field count and depth (in [`parse`],
//! which drops unknown fields and names them, RFC 7591 §2) → software
//! statement → grant/response/auth-method consistency → keys → redirect
//! URIs → other URIs → names and contacts → scopes → initial access token
//! → flagged source escalation; each a step of [`evaluate`].

mod fields;
pub mod redirect;
mod request;

use fields::{check_name, check_plain_uri, opt_string, string_list};
pub use request::{parse, Entries, Field, RegistrationRequest, RequestedMetadata};

use regwatch_schemas::ClientMetadata;

use crate::config::{InitialAccessTokenMode, Limits, PolicyConfig};
use crate::error::ErrorCode;
use crate::text::{is_scope_token, scope_tokens, truncate_for_display};

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

/// Risk signals gathered along the way, each once.
#[derive(Debug, Default)]
struct Signals(Vec<String>);

impl Signals {
    fn push(&mut self, s: &str) {
        self.0.push(s.to_string());
    }

    fn push_once(&mut self, s: &str) {
        if !self.0.iter().any(|x| x == s) {
            self.push(s);
        }
    }
}

/// Run the whole gate on a request.
pub fn evaluate(
    req: &RegistrationRequest,
    ctx: GateContext,
    cfg: &PolicyConfig,
    limits: &Limits,
) -> Result<Accepted, Rejection> {
    let m = &req.metadata;
    let mut signals = Signals::default();
    if !req.dropped.is_empty() {
        signals.push("unknown_fields");
    }
    check_software_statement(req, limits)?;
    let grants = grant_shape(m)?;
    check_keys(m)?;
    let (redirect_uris, https_hosts) = redirect_uris(m, &grants, cfg, limits, &mut signals)?;
    let uris = informational_uris(m, limits, &https_hosts, &mut signals)?;
    let client_name = opt_string("client_name", &m.client_name, limits.max_name_chars * 4)?;
    if let Some(n) = &client_name {
        check_name(n, limits, cfg, &mut signals.0)?;
    } else {
        signals.push("no_client_name");
    }
    let contacts =
        string_list("contacts", &m.contacts, limits.max_contacts, 254)?.unwrap_or_default();
    let software_id = opt_string("software_id", &m.software_id, 200)?;
    let software_version = opt_string("software_version", &m.software_version, 64)?;
    let (scopes, sensitive) = scopes(m, cfg, limits, &mut signals)?;
    check_initial_access_token(ctx, cfg, sensitive)?;
    check_flagged_source(ctx, sensitive, &mut signals)?;

    let metadata = ClientMetadata {
        client_name,
        redirect_uris,
        grant_types: grants.grant_types,
        response_types: grants.response_types,
        token_endpoint_auth_method: Some(grants.auth_method),
        application_type: Some(grants.application_type.unwrap_or_else(|| "web".into())),
        scope: Some(scopes.join(" ")),
        client_uri: uris.client_uri,
        logo_uri: uris.logo_uri,
        tos_uri: uris.tos_uri,
        policy_uri: uris.policy_uri,
        contacts,
        jwks_uri: uris.jwks_uri,
        software_id,
        software_version,
    };
    Ok(Accepted {
        metadata,
        confidential: grants.confidential,
        dropped_fields: req.dropped.clone(),
        risk_signals: signals.0,
        scopes,
    })
}

/// Software statements (RFC 7591 §2.3): this server trusts no statement
/// issuer, so a well-formed one is unapproved and a malformed one invalid.
fn check_software_statement(req: &RegistrationRequest, limits: &Limits) -> Result<(), Rejection> {
    let Some(v) = &req.software_statement else {
        return Ok(());
    };
    let ok_shape = v
        .as_str()
        .is_some_and(|s| s.split('.').count() == 3 && s.len() <= limits.max_string_len * 8);
    Err(if ok_shape {
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
    })
}

/// Application type, grant and response types and the auth method, with
/// RFC 7591 defaults, each known and consistent with the others.
struct Grants {
    application_type: Option<String>,
    grant_types: Vec<String>,
    response_types: Vec<String>,
    auth_method: String,
    confidential: bool,
    has_code_grant: bool,
}

fn grant_shape(m: &RequestedMetadata) -> Result<Grants, Rejection> {
    let application_type = opt_string("application_type", &m.application_type, 16)?;
    if let Some(a) = &application_type {
        if a != "web" && a != "native" {
            return Err(meta(
                "application_type.unknown",
                "application_type must be \"web\" or \"native\"",
            ));
        }
    }
    let grant_types = string_list("grant_types", &m.grant_types, 8, 64)?
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    let response_types = string_list("response_types", &m.response_types, 8, 64)?
        .unwrap_or_else(|| vec!["code".into()]);
    let auth_method = opt_string(
        "token_endpoint_auth_method",
        &m.token_endpoint_auth_method,
        64,
    )?
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
    Ok(Grants {
        application_type,
        grant_types,
        response_types,
        auth_method,
        confidential,
        has_code_grant,
    })
}

/// Keys: `jwks_uri` only (RFC 7591 §2 forbids both).
fn check_keys(m: &RequestedMetadata) -> Result<(), Rejection> {
    if m.jwks && m.jwks_uri.is_sent() {
        return Err(meta(
            "jwks.both",
            "jwks and jwks_uri must not both be present (RFC 7591 §2)",
        ));
    }
    if m.jwks {
        return Err(meta(
            "jwks.unsupported",
            "inline jwks is not supported; use jwks_uri",
        ));
    }
    Ok(())
}

/// The redirect URIs, each admitted by [`redirect::check`]; also the
/// https hosts among them (other URIs should share them).
fn redirect_uris(
    m: &RequestedMetadata,
    grants: &Grants,
    cfg: &PolicyConfig,
    limits: &Limits,
    signals: &mut Signals,
) -> Result<(Vec<String>, Vec<String>), Rejection> {
    let redirect_uris = string_list(
        "redirect_uris",
        &m.redirect_uris,
        limits.max_redirect_uris,
        limits.max_uri_len,
    )?
    .unwrap_or_default();
    if grants.has_code_grant && redirect_uris.is_empty() {
        return Err(Rejection::new(
            ErrorCode::InvalidRedirectUri,
            "redirect.missing",
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    let rules = redirect::RedirectRules {
        mode: cfg.redirect_mode,
        allow_non_reverse_dns_schemes: cfg.allow_non_reverse_dns_schemes,
        application_type: grants.application_type.as_deref(),
        max_len: limits.max_uri_len,
        domain_denylist: &cfg.redirect_domain_denylist,
        domain_allowlist: &cfg.redirect_domain_allowlist,
    };
    let mut https_hosts = Vec::new();
    for u in &redirect_uris {
        let class = redirect::check(u, &rules)?;
        if let Some(s) = class.risk_signal() {
            signals.push_once(s);
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
    Ok((redirect_uris, https_hosts))
}

/// The informational URIs (RFC 7591 §2).
struct Uris {
    client_uri: Option<String>,
    logo_uri: Option<String>,
    tos_uri: Option<String>,
    policy_uri: Option<String>,
    jwks_uri: Option<String>,
}

fn informational_uris(
    m: &RequestedMetadata,
    limits: &Limits,
    https_hosts: &[String],
    signals: &mut Signals,
) -> Result<Uris, Rejection> {
    let mut uri = |k: &str, f: &Field<String>| -> Result<Option<String>, Rejection> {
        let v = opt_string(k, f, limits.max_uri_len)?;
        if let Some(u) = &v {
            check_plain_uri(k, u)?;
            // RFC 7591 §5: informational URIs should share the redirect host.
            let host = url::Url::parse(u)
                .ok()
                .and_then(|x| x.host_str().map(str::to_ascii_lowercase));
            if !https_hosts.is_empty() && host.is_some_and(|h| !https_hosts.contains(&h)) {
                signals.push_once("uri_host_mismatch");
            }
        }
        Ok(v)
    };
    Ok(Uris {
        client_uri: uri("client_uri", &m.client_uri)?,
        logo_uri: uri("logo_uri", &m.logo_uri)?,
        tos_uri: uri("tos_uri", &m.tos_uri)?,
        policy_uri: uri("policy_uri", &m.policy_uri)?,
        jwks_uri: uri("jwks_uri", &m.jwks_uri)?,
    })
}

/// Scopes: a subset of what is configured, narrow defaults; and whether
/// any is sensitive.
fn scopes(
    m: &RequestedMetadata,
    cfg: &PolicyConfig,
    limits: &Limits,
    signals: &mut Signals,
) -> Result<(Vec<String>, bool), Rejection> {
    let scope_str = opt_string("scope", &m.scope, limits.max_string_len)?;
    let asked: Vec<String> = scope_str
        .as_deref()
        .map(|s| scope_tokens(s).map(String::from).collect())
        .unwrap_or_default();
    let scopes = if asked.is_empty() {
        cfg.default_scopes.clone()
    } else {
        asked
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
        signals.push("sensitive_scopes");
    }
    Ok((scopes, sensitive))
}

/// Initial access token (RFC 7591 §3): 401 like any bearer-protected
/// resource. Registration only.
fn check_initial_access_token(
    ctx: GateContext,
    cfg: &PolicyConfig,
    sensitive: bool,
) -> Result<(), Rejection> {
    if ctx.mode != Mode::Register {
        return Ok(());
    }
    let need_iat = match cfg.initial_access_token {
        InitialAccessTokenMode::Off => false,
        InitialAccessTokenMode::Always => true,
        InitialAccessTokenMode::Sensitive => sensitive,
    };
    match (need_iat, ctx.initial_access_token) {
        (_, IatStatus::Invalid) => Err(Rejection::new(
            ErrorCode::InvalidToken,
            "iat.invalid",
            "the initial access token is invalid",
        )
        .status(401)),
        (true, IatStatus::Absent) => {
            let why = if sensitive && cfg.initial_access_token == InitialAccessTokenMode::Sensitive
            {
                "an initial access token is required for the requested scopes"
            } else {
                "an initial access token is required to register"
            };
            Err(Rejection::new(ErrorCode::InvalidToken, "iat.missing", why).status(401))
        }
        _ => Ok(()),
    }
}

/// Escalation for a flagged source: the second flag loses sensitive scopes.
fn check_flagged_source(
    ctx: GateContext,
    sensitive: bool,
    signals: &mut Signals,
) -> Result<(), Rejection> {
    if ctx.flag_level >= 2 && sensitive {
        return Err(meta(
            "source.flagged_sensitive_scope",
            "sensitive scopes are not available to this source",
        )
        .status(403));
    }
    if ctx.flag_level > 0 {
        signals.push("source_flagged");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
