//! Validation of the fetched JSON into a typed [`CimdDocument`].

use serde_json::{Map, Value};
use url::Url;

use crate::error::{truncate, CimdError};

// These caps bound this parser on its own (the crate is usable alone). The
// authorization server then puts the typed document through its
// registration gate, where the same `[authz.limits]` as for an RFC 7591
// registration decide.

/// Longest `client_name`, in characters.
pub const MAX_CLIENT_NAME_CHARS: usize = 200;
/// Most entries in `redirect_uris`.
pub const MAX_REDIRECT_URIS: usize = 20;
/// Longest URI in any URI-valued member, in bytes.
pub const MAX_URI_LEN: usize = 2048;
/// Most entries in `grant_types` / `response_types`.
const MAX_LIST_ITEMS: usize = 20;
/// Longest short string (`software_id`, a grant type, ...), in characters.
const MAX_SHORT_CHARS: usize = 200;
/// Longest `scope`, in characters.
const MAX_SCOPE_CHARS: usize = 2048;

/// `token_endpoint_auth_method` values a CIMD client may use: it has no
/// shared secret, so it is either public or signs a JWT with its own key.
pub const ALLOWED_AUTH_METHODS: &[&str] = &["none", "private_key_jwt"];

/// Whether we read member `k`: the document's `client_id` and the client
/// metadata fields (the one list, in `regwatch-schemas`). Any other member
/// is ignored and reported in [`CimdDocument::ignored_fields`].
fn is_known_field(k: &str) -> bool {
    k == "client_id" || regwatch_schemas::CLIENT_METADATA_FIELDS.contains(&k)
}

/// Members that carry a shared secret and must not appear at all.
const SECRET_FIELDS: &[&str] = &["client_secret", "client_secret_expires_at"];

/// JWK members that hold private or symmetric key material (RFC 7518 §6).
const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A validated Client ID Metadata Document.
///
/// Optional members are `None` when absent (or JSON `null`); no defaults are
/// filled in. When `token_endpoint_auth_method` is absent, treat the client
/// as public (`none`): the RFC 7591 default `client_secret_basic` cannot
/// apply to a client that has no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CimdDocument {
    /// Equal, by simple string comparison, to the URL it was fetched from.
    pub client_id: String,
    /// Human-readable name, 1..=200 characters, no control characters.
    pub client_name: String,
    /// 1..=20 absolute URIs without fragment. The AS compares the request's
    /// `redirect_uri` against these by exact string match.
    pub redirect_uris: Vec<String>,
    /// `grant_types`, if present.
    pub grant_types: Option<Vec<String>>,
    /// `response_types`, if present.
    pub response_types: Option<Vec<String>>,
    /// `none` or `private_key_jwt`, if present.
    pub token_endpoint_auth_method: Option<String>,
    /// Space-separated scope string, if present.
    pub scope: Option<String>,
    /// `http(s)` URI of the client's home page.
    pub client_uri: Option<String>,
    /// `http(s)` URI of the client's logo.
    pub logo_uri: Option<String>,
    /// `http(s)` URI of the terms of service.
    pub tos_uri: Option<String>,
    /// `http(s)` URI of the privacy policy.
    pub policy_uri: Option<String>,
    /// `https` URI of the client's JWK Set.
    pub jwks_uri: Option<String>,
    /// Inline JWK Set (public keys only), if present.
    pub jwks: Option<Value>,
    /// `contacts`, if present.
    pub contacts: Option<Vec<String>>,
    /// `software_id`, if present.
    pub software_id: Option<String>,
    /// `software_version`, if present.
    pub software_version: Option<String>,
    /// `web` or `native`, if present.
    pub application_type: Option<String>,
    /// Names of members we did not recognise and ignored, sorted
    /// (e.g. `client_name#ja-Jpan-JP`).
    pub ignored_fields: Vec<String>,
}

/// Parse and validate a document fetched for `expected_client_id`.
///
/// `expected_client_id` is the `client_id` exactly as presented; the
/// document's `client_id` must equal it byte for byte.
pub fn parse_document(body: &[u8], expected_client_id: &str) -> Result<CimdDocument, CimdError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| CimdError::InvalidJson {
        reason: e.to_string(),
    })?;
    let Value::Object(map) = value else {
        return Err(CimdError::InvalidJson {
            reason: "top-level value is not an object".into(),
        });
    };
    validate_document(&map, expected_client_id)
}

fn validate_document(map: &Map<String, Value>, expected: &str) -> Result<CimdDocument, CimdError> {
    // Secrets first: a document carrying one is refused whatever else it has.
    for field in SECRET_FIELDS {
        if map.contains_key(*field) {
            return Err(CimdError::SharedSecret {
                field: (*field).to_owned(),
            });
        }
    }

    let client_id = required_string(map, "client_id")?;
    if client_id != expected {
        return Err(CimdError::ClientIdMismatch {
            expected: expected.to_owned(),
            found: truncate(&client_id, 256),
        });
    }

    let token_endpoint_auth_method =
        optional_string(map, "token_endpoint_auth_method", MAX_SHORT_CHARS)?;
    if let Some(method) = &token_endpoint_auth_method {
        if !ALLOWED_AUTH_METHODS.contains(&method.as_str()) {
            return Err(CimdError::ForbiddenAuthMethod {
                method: truncate(method, 64),
            });
        }
    }

    let jwks = match map.get("jwks") {
        None | Some(Value::Null) => None,
        Some(v) => Some(check_jwks(v)?),
    };
    let jwks_uri = optional_uri(map, "jwks_uri", &["https"])?;
    if jwks.is_some() && jwks_uri.is_some() {
        return Err(CimdError::invalid_document(
            "jwks and jwks_uri must not both be present",
        ));
    }
    if token_endpoint_auth_method.as_deref() == Some("private_key_jwt")
        && jwks.is_none()
        && jwks_uri.is_none()
    {
        return Err(CimdError::invalid_document(
            "private_key_jwt requires jwks or jwks_uri",
        ));
    }

    let client_name = required_string(map, "client_name")?;
    check_text("client_name", &client_name, MAX_CLIENT_NAME_CHARS)?;
    if client_name.trim().is_empty() {
        return Err(CimdError::invalid_document("client_name must not be blank"));
    }

    let redirect_uris = redirect_uris(map)?;

    let application_type = optional_string(map, "application_type", MAX_SHORT_CHARS)?;
    if let Some(kind) = &application_type {
        if kind != "web" && kind != "native" {
            return Err(CimdError::invalid_document(
                "application_type must be web or native",
            ));
        }
    }

    const DISPLAY_SCHEMES: &[&str] = &["https", "http"];
    let mut ignored_fields: Vec<String> = map
        .keys()
        .filter(|k| !is_known_field(k))
        .map(|k| truncate(k, 64))
        .collect();
    ignored_fields.sort();

    Ok(CimdDocument {
        client_id,
        client_name,
        redirect_uris,
        grant_types: optional_string_list(map, "grant_types")?,
        response_types: optional_string_list(map, "response_types")?,
        token_endpoint_auth_method,
        scope: optional_string(map, "scope", MAX_SCOPE_CHARS)?,
        client_uri: optional_uri(map, "client_uri", DISPLAY_SCHEMES)?,
        logo_uri: optional_uri(map, "logo_uri", DISPLAY_SCHEMES)?,
        tos_uri: optional_uri(map, "tos_uri", DISPLAY_SCHEMES)?,
        policy_uri: optional_uri(map, "policy_uri", DISPLAY_SCHEMES)?,
        jwks_uri,
        jwks,
        contacts: optional_string_list(map, "contacts")?,
        software_id: optional_string(map, "software_id", MAX_SHORT_CHARS)?,
        software_version: optional_string(map, "software_version", MAX_SHORT_CHARS)?,
        application_type,
        ignored_fields,
    })
}

fn required_string(map: &Map<String, Value>, field: &str) -> Result<String, CimdError> {
    match map.get(field) {
        None | Some(Value::Null) => {
            Err(CimdError::invalid_document(format!("{field} is required")))
        }
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(CimdError::invalid_document(format!(
            "{field} must be a string"
        ))),
    }
}

fn optional_string(
    map: &Map<String, Value>,
    field: &str,
    max_chars: usize,
) -> Result<Option<String>, CimdError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            check_text(field, s, max_chars)?;
            Ok(Some(s.clone()))
        }
        Some(_) => Err(CimdError::invalid_document(format!(
            "{field} must be a string"
        ))),
    }
}

/// Bounded length, no control characters (they hide text in consent
/// screens and logs).
fn check_text(field: &str, s: &str, max_chars: usize) -> Result<(), CimdError> {
    if s.chars().count() > max_chars {
        return Err(CimdError::invalid_document(format!(
            "{field} is longer than {max_chars} characters"
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(CimdError::invalid_document(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

fn optional_string_list(
    map: &Map<String, Value>,
    field: &str,
) -> Result<Option<Vec<String>>, CimdError> {
    let items = match map.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(CimdError::invalid_document(format!(
                "{field} must be an array of strings"
            )))
        }
    };
    if items.len() > MAX_LIST_ITEMS {
        return Err(CimdError::invalid_document(format!(
            "{field} has more than {MAX_LIST_ITEMS} entries"
        )));
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => {
                check_text(field, s, MAX_SHORT_CHARS)?;
                Ok(s.clone())
            }
            _ => Err(CimdError::invalid_document(format!(
                "{field} must be an array of strings"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn redirect_uris(map: &Map<String, Value>) -> Result<Vec<String>, CimdError> {
    let items = match map.get("redirect_uris") {
        None | Some(Value::Null) => {
            return Err(CimdError::invalid_document("redirect_uris is required"))
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(CimdError::invalid_document(
                "redirect_uris must be an array of strings",
            ))
        }
    };
    if items.is_empty() {
        return Err(CimdError::invalid_document(
            "redirect_uris must not be empty",
        ));
    }
    if items.len() > MAX_REDIRECT_URIS {
        return Err(CimdError::invalid_document(format!(
            "redirect_uris has more than {MAX_REDIRECT_URIS} entries"
        )));
    }
    items
        .iter()
        .map(|item| {
            let Value::String(uri) = item else {
                return Err(CimdError::invalid_document(
                    "redirect_uris must be an array of strings",
                ));
            };
            check_uri("redirect_uris", uri)?;
            Ok(uri.clone())
        })
        .collect()
}

/// Bounded, absolute, parseable, no fragment, no whitespace or controls.
fn check_uri(field: &str, uri: &str) -> Result<Url, CimdError> {
    if uri.len() > MAX_URI_LEN {
        return Err(CimdError::invalid_document(format!(
            "{field} entry is longer than {MAX_URI_LEN} bytes"
        )));
    }
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(CimdError::invalid_document(format!(
            "{field} entry contains whitespace or control characters"
        )));
    }
    let parsed = Url::parse(uri).map_err(|e| {
        CimdError::invalid_document(format!("{field} entry is not a valid uri: {e}"))
    })?;
    if parsed.fragment().is_some() {
        return Err(CimdError::invalid_document(format!(
            "{field} entry must not contain a fragment"
        )));
    }
    Ok(parsed)
}

fn optional_uri(
    map: &Map<String, Value>,
    field: &str,
    schemes: &[&str],
) -> Result<Option<String>, CimdError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(uri)) => {
            let parsed = check_uri(field, uri)?;
            if !schemes.contains(&parsed.scheme()) {
                return Err(CimdError::invalid_document(format!(
                    "{field} must use one of the schemes {schemes:?}"
                )));
            }
            Ok(Some(uri.clone()))
        }
        Some(_) => Err(CimdError::invalid_document(format!(
            "{field} must be a string"
        ))),
    }
}

/// `jwks` must be `{"keys": [ {..public JWK..}, .. ]}` with no private or
/// symmetric key material (CIMD -02: no private keys in the document).
fn check_jwks(value: &Value) -> Result<Value, CimdError> {
    let keys = value
        .as_object()
        .and_then(|o| o.get("keys"))
        .and_then(Value::as_array)
        .ok_or_else(|| CimdError::invalid_document("jwks must be an object with a keys array"))?;
    if keys.is_empty() || keys.len() > MAX_LIST_ITEMS {
        return Err(CimdError::invalid_document(format!(
            "jwks must hold 1..={MAX_LIST_ITEMS} keys"
        )));
    }
    for key in keys {
        let Some(key) = key.as_object() else {
            return Err(CimdError::invalid_document("jwks keys must be objects"));
        };
        if let Some(member) = PRIVATE_JWK_MEMBERS.iter().find(|m| key.contains_key(**m)) {
            return Err(CimdError::SharedSecret {
                field: format!("jwks.keys[].{member}"),
            });
        }
    }
    Ok(value.clone())
}

#[cfg(test)]
mod tests;
