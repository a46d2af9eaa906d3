//! What the gate judges: a registration request whose metadata is typed,
//! read from an RFC 7591 body ([`parse`]) or from a Client ID Metadata
//! Document already typed by the cimd crate
//! ([`RegistrationRequest::from_cimd`]). Both carry the same fields (the
//! one list, [`CLIENT_METADATA_FIELDS`]) and meet the same limits in
//! [`super::evaluate`].
//!
//! A value of the wrong JSON type is kept as [`Field::WrongType`] rather
//! than refused here, so the gate refuses fields in its own order.

use regwatch_cimd::CimdDocument;
use regwatch_schemas::{ClientMetadata, CLIENT_METADATA_FIELDS};
use serde_json::Value;

use super::{meta, Mode, Rejection};
use crate::config::Limits;
use crate::text::truncate_for_display;

/// A DCR body field that is not client metadata (RFC 7591 §2.3).
const SOFTWARE_STATEMENT: &str = "software_statement";
/// Fields a client may send on RFC 7592 PUT besides metadata.
const PUT_ONLY: &[&str] = &["client_id", "client_secret"];
/// Fields a client must never send (RFC 7592 §2.2).
const SERVER_ONLY: &[&str] = &[
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];
/// Most dropped field names kept (an audit signal, not a copy).
const MAX_DROPPED: usize = 20;

/// A metadata field as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Field<T> {
    #[default]
    Absent,
    /// JSON `null`: read as absent, but it was sent.
    Null,
    Value(T),
    /// Another JSON type than the field's.
    WrongType,
}

impl<T> Field<T> {
    fn from_option(v: Option<T>) -> Self {
        v.map_or(Field::Absent, Field::Value)
    }

    /// Whether the field was in the request at all (even as `null`).
    pub fn is_sent(&self) -> bool {
        !matches!(self, Field::Absent)
    }

    pub fn value(&self) -> Option<&T> {
        match self {
            Field::Value(v) => Some(v),
            _ => None,
        }
    }
}

/// The entries of a list field; `None` for an entry that is not a string.
pub type Entries = Vec<Option<String>>;

fn entries(v: Vec<String>) -> Entries {
    v.into_iter().map(Some).collect()
}

/// Client metadata as requested (RFC 7591 §2), typed.
#[derive(Debug, Clone, Default)]
pub struct RequestedMetadata {
    pub redirect_uris: Field<Entries>,
    pub token_endpoint_auth_method: Field<String>,
    pub grant_types: Field<Entries>,
    pub response_types: Field<Entries>,
    pub client_name: Field<String>,
    pub client_uri: Field<String>,
    pub logo_uri: Field<String>,
    pub scope: Field<String>,
    pub contacts: Field<Entries>,
    pub tos_uri: Field<String>,
    pub policy_uri: Field<String>,
    pub jwks_uri: Field<String>,
    /// Whether inline `jwks` was sent (refused: this server wants `jwks_uri`).
    pub jwks: bool,
    pub software_id: Field<String>,
    pub software_version: Field<String>,
    pub application_type: Field<String>,
}

impl RequestedMetadata {
    /// Set metadata field `k` from its JSON value; false when `k` is not
    /// client metadata.
    fn set(&mut self, k: &str, v: Value) -> bool {
        fn string(v: Value) -> Field<String> {
            match v {
                Value::Null => Field::Null,
                Value::String(s) => Field::Value(s),
                _ => Field::WrongType,
            }
        }
        fn list(v: Value) -> Field<Entries> {
            match v {
                Value::Null => Field::Null,
                Value::Array(a) => Field::Value(
                    a.into_iter()
                        .map(|e| match e {
                            Value::String(s) => Some(s),
                            _ => None,
                        })
                        .collect(),
                ),
                _ => Field::WrongType,
            }
        }
        match k {
            "redirect_uris" => self.redirect_uris = list(v),
            "token_endpoint_auth_method" => self.token_endpoint_auth_method = string(v),
            "grant_types" => self.grant_types = list(v),
            "response_types" => self.response_types = list(v),
            "client_name" => self.client_name = string(v),
            "client_uri" => self.client_uri = string(v),
            "logo_uri" => self.logo_uri = string(v),
            "scope" => self.scope = string(v),
            "contacts" => self.contacts = list(v),
            "tos_uri" => self.tos_uri = string(v),
            "policy_uri" => self.policy_uri = string(v),
            "jwks_uri" => self.jwks_uri = string(v),
            "jwks" => self.jwks = true,
            "software_id" => self.software_id = string(v),
            "software_version" => self.software_version = string(v),
            "application_type" => self.application_type = string(v),
            _ => return false,
        }
        debug_assert!(CLIENT_METADATA_FIELDS.contains(&k));
        true
    }
}

/// A registration or update request, before the gate.
#[derive(Debug, Clone, Default)]
pub struct RegistrationRequest {
    pub metadata: RequestedMetadata,
    /// `software_statement` as sent (RFC 7591 §2.3).
    pub software_statement: Option<Value>,
    /// RFC 7592 update only: `client_id` as sent.
    pub client_id: Option<Value>,
    /// RFC 7592 update only: `client_secret` as sent.
    pub client_secret: Option<Value>,
    /// Unknown field names, truncated and capped (an audit signal).
    pub dropped: Vec<String>,
}

/// Parse an RFC 7591 body. Limits: size, UTF-8, JSON object, depth,
/// field count. Unknown fields are dropped here and named.
pub fn parse(body: &[u8], limits: &Limits, mode: Mode) -> Result<RegistrationRequest, Rejection> {
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
    let mut out = RegistrationRequest::default();
    for (k, v) in all {
        if SERVER_ONLY.contains(&k.as_str()) {
            if mode == Mode::Update {
                return Err(meta(
                    "update.server_field",
                    format!("{k} must not be sent in an update (RFC 7592 §2.2)"),
                ));
            }
            out.push_dropped(&k);
        } else if k == SOFTWARE_STATEMENT {
            out.software_statement = Some(v);
        } else if mode == Mode::Update && PUT_ONLY.contains(&k.as_str()) {
            if k == "client_id" {
                out.client_id = Some(v);
            } else {
                out.client_secret = Some(v);
            }
        } else if !out.metadata.set(&k, v) {
            out.push_dropped(&k);
        }
    }
    Ok(out)
}

impl RegistrationRequest {
    /// A metadata document's fields, for the same gate as a registration.
    pub fn from_cimd(doc: &CimdDocument) -> Self {
        let list = |v: &Option<Vec<String>>| Field::from_option(v.clone().map(entries));
        let string = |v: &Option<String>| Field::from_option(v.clone());
        let metadata = RequestedMetadata {
            redirect_uris: Field::Value(entries(doc.redirect_uris.clone())),
            // A document client has no secret: without a method it is
            // public, not the RFC 7591 default `client_secret_basic`.
            token_endpoint_auth_method: Field::Value(
                doc.token_endpoint_auth_method
                    .clone()
                    .unwrap_or_else(|| "none".into()),
            ),
            grant_types: list(&doc.grant_types),
            response_types: list(&doc.response_types),
            client_name: Field::Value(doc.client_name.clone()),
            client_uri: string(&doc.client_uri),
            logo_uri: string(&doc.logo_uri),
            scope: string(&doc.scope),
            contacts: list(&doc.contacts),
            tos_uri: string(&doc.tos_uri),
            policy_uri: string(&doc.policy_uri),
            jwks_uri: string(&doc.jwks_uri),
            // Inline keys were checked by the cimd crate (public keys
            // only); this server uses none, so they are not judged here.
            jwks: false,
            software_id: string(&doc.software_id),
            software_version: string(&doc.software_version),
            application_type: string(&doc.application_type),
        };
        RegistrationRequest {
            metadata,
            dropped: doc
                .ignored_fields
                .iter()
                .take(MAX_DROPPED)
                .cloned()
                .collect(),
            ..Default::default()
        }
    }

    fn push_dropped(&mut self, name: &str) {
        if self.dropped.len() < MAX_DROPPED {
            self.dropped.push(truncate_for_display(name, 64));
        }
    }

    /// Whatever metadata can be read, for a rejection event; every value
    /// that is not the expected type is left out, every string truncated.
    pub fn attempted(&self, limits: &Limits) -> ClientMetadata {
        let m = &self.metadata;
        let s = |f: &Field<String>| f.value().map(|v| truncate_for_display(v, 256));
        let list = |f: &Field<Entries>, n: usize| -> Vec<String> {
            f.value()
                .map(|a| {
                    a.iter()
                        .flatten()
                        .take(n)
                        .map(|v| truncate_for_display(v, 256))
                        .collect()
                })
                .unwrap_or_default()
        };
        ClientMetadata {
            client_name: s(&m.client_name),
            redirect_uris: list(&m.redirect_uris, limits.max_redirect_uris),
            grant_types: list(&m.grant_types, 8),
            response_types: list(&m.response_types, 8),
            token_endpoint_auth_method: s(&m.token_endpoint_auth_method),
            application_type: s(&m.application_type),
            scope: s(&m.scope),
            client_uri: s(&m.client_uri),
            logo_uri: s(&m.logo_uri),
            tos_uri: s(&m.tos_uri),
            policy_uri: s(&m.policy_uri),
            contacts: list(&m.contacts, limits.max_contacts),
            jwks_uri: s(&m.jwks_uri),
            software_id: s(&m.software_id),
            software_version: s(&m.software_version),
        }
    }
}
