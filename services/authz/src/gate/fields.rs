//! Field checks of the gate: a string or a list of strings against its
//! limits (type, count, length), plain URIs, and the client name.

use super::{meta, Entries, Field, Rejection};
use crate::config::{Limits, PolicyConfig};
use crate::error::ErrorCode;

pub(super) fn opt_string(
    k: &str,
    f: &Field<String>,
    max: usize,
) -> Result<Option<String>, Rejection> {
    match f {
        Field::Absent | Field::Null => Ok(None),
        Field::Value(s) if s.len() > max => Err(meta(
            "field.too_long",
            format!("{k} is longer than {max} bytes"),
        )),
        Field::Value(s) => Ok(Some(s.clone())),
        Field::WrongType => Err(meta("field.wrong_type", format!("{k} must be a string"))),
    }
}

pub(super) fn string_list(
    k: &str,
    f: &Field<Entries>,
    max_items: usize,
    max_len: usize,
) -> Result<Option<Vec<String>>, Rejection> {
    let code = if k == "redirect_uris" {
        ErrorCode::InvalidRedirectUri
    } else {
        ErrorCode::InvalidClientMetadata
    };
    let wrong_type = || {
        Rejection::new(
            code,
            "field.wrong_type",
            format!("{k} must be an array of strings"),
        )
    };
    match f {
        Field::Absent | Field::Null => Ok(None),
        Field::Value(a) => {
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
                    Some(s) if s.len() <= max_len => out.push(s.clone()),
                    Some(_) => {
                        return Err(Rejection::new(
                            code,
                            "field.too_long",
                            format!("an entry of {k} is longer than {max_len} bytes"),
                        ))
                    }
                    None => return Err(wrong_type()),
                }
            }
            Ok(Some(out))
        }
        Field::WrongType => Err(wrong_type()),
    }
}

pub(super) fn check_plain_uri(k: &str, u: &str) -> Result<(), Rejection> {
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
pub(super) fn check_name(
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
