//! CEF lines: `CEF:0|regwatch|regwatch|VERSION|SignatureID|Name|Severity|ext`.
//!
//! Escaping follows the CEF specification: in the header `\` and `|` are
//! escaped with a backslash; in extension values `\` and `=` are, and line
//! breaks are written as `\n` / `\r`. The header cannot carry a line break
//! at all, so one there becomes a space. Extension keys are fixed ASCII
//! names chosen here, never data.
//!
//! Custom string fields keep one meaning per slot across every signature
//! id: `cs1` client_id, `cs2` client name, `cs3` scopes (or what a
//! registration named), `cs4` resource (or the policy rule), `cs5`
//! correlation id, `cs6` token, tool or dedup key.

use regwatch_schemas::{Alert, Envelope, EventPayload, RegistrationMethod};

use crate::mapping::{
    alert_names, cef_severity, event_action, event_names, event_severity, event_succeeded,
    user_name,
};

/// The header fields that vary per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    pub signature_id: &'a str,
    pub name: &'a str,
    /// 0–10; larger values are clamped to 10.
    pub severity: u8,
}

/// Escapes a header field: `\` → `\\`, `|` → `\|`, line breaks → space.
pub fn escape_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Escapes an extension value: `\` → `\\`, `=` → `\=`, LF → `\n`,
/// CR → `\r`.
pub fn escape_extension(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// One CEF line (without a trailing newline) from a header and extension
/// pairs, in the given order.
pub fn line(header: &Header<'_>, extension: &[(&str, String)]) -> String {
    let mut out = format!(
        "CEF:0|{vendor}|{product}|{version}|{sig}|{name}|{sev}|",
        vendor = escape_header(crate::PRODUCT_NAME),
        product = escape_header(crate::PRODUCT_NAME),
        version = escape_header(crate::PRODUCT_VERSION),
        sig = escape_header(header.signature_id),
        name = escape_header(header.name),
        sev = header.severity.min(10),
    );
    for (i, (key, value)) in extension.iter().enumerate() {
        debug_assert!(
            key.chars().all(|c| c.is_ascii_alphanumeric()),
            "CEF keys are fixed alphanumeric names: {key}"
        );
        if i > 0 {
            out.push(' ');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(&escape_extension(value));
    }
    out
}

/// Extension pairs under construction; empty values are left out.
#[derive(Default)]
struct Ext(Vec<(&'static str, String)>);

impl Ext {
    fn add(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        let v = value.into();
        if !v.is_empty() {
            self.0.push((key, v));
        }
        self
    }

    /// A custom field with its label (`cs1Label=client_id cs1=…`).
    fn custom(&mut self, slot: Slot, label: &'static str, value: impl Into<String>) {
        let v = value.into();
        if v.is_empty() {
            return;
        }
        let (key, label_key) = slot.keys();
        self.0.push((label_key, label.into()));
        self.0.push((key, v));
    }
}

/// The CEF custom fields regwatch uses, each with its `…Label` key.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Cs1,
    Cs2,
    Cs3,
    Cs4,
    Cs5,
    Cs6,
    Cn1,
    Cfp1,
}

impl Slot {
    fn keys(self) -> (&'static str, &'static str) {
        match self {
            Slot::Cs1 => ("cs1", "cs1Label"),
            Slot::Cs2 => ("cs2", "cs2Label"),
            Slot::Cs3 => ("cs3", "cs3Label"),
            Slot::Cs4 => ("cs4", "cs4Label"),
            Slot::Cs5 => ("cs5", "cs5Label"),
            Slot::Cs6 => ("cs6", "cs6Label"),
            Slot::Cn1 => ("cn1", "cn1Label"),
            Slot::Cfp1 => ("cfp1", "cfp1Label"),
        }
    }
}

/// The CEF line of one event.
pub fn event(e: &Envelope) -> String {
    let names = event_names(e.event_type());
    let header = Header {
        signature_id: names.signature_id,
        name: names.title,
        severity: cef_severity(event_severity(e)),
    };
    let mut x = Ext::default();
    x.add("rt", e.occurred_at.timestamp_millis().to_string())
        .add("externalId", e.event_id.to_string())
        .add("cat", crate::ecs::categories(e).0[0])
        .add("act", event_action(e))
        .add(
            "outcome",
            if event_succeeded(e) {
                "success"
            } else {
                "failure"
            },
        );
    if let Some(src) = &e.source {
        x.add("src", src.ip.clone().unwrap_or_default()).add(
            "requestClientApplication",
            src.user_agent.clone().unwrap_or_default(),
        );
    }
    x.add("suser", user_name(e).unwrap_or_default());
    x.custom(
        Slot::Cs1,
        "client_id",
        e.client_id.clone().unwrap_or_default(),
    );
    x.custom(
        Slot::Cs5,
        "correlation_id",
        e.correlation_id.clone().unwrap_or_default(),
    );
    payload(e, &mut x);
    x.add("msg", names.title);
    line(&header, &x.0)
}

fn payload(e: &Envelope, x: &mut Ext) {
    match &e.payload {
        EventPayload::ClientRegistered(d) => {
            // RFC 7591 is a POST; a metadata document is fetched, not posted.
            if d.registration_method == RegistrationMethod::Dcr {
                x.add("requestMethod", "POST");
            }
            x.custom(
                Slot::Cs2,
                "client_name",
                d.metadata.client_name.clone().unwrap_or_default(),
            );
            x.custom(
                Slot::Cs3,
                "redirect_uris",
                d.metadata.redirect_uris.join(" "),
            );
        }
        EventPayload::ClientRegistrationRejected(d) => {
            let method = if d.operation == "update" {
                "PUT"
            } else {
                "POST"
            };
            x.add("requestMethod", method)
                .add("reason", d.error_description.clone());
            let name = d.attempted.as_ref().and_then(|m| m.client_name.clone());
            x.custom(Slot::Cs2, "client_name", name.unwrap_or_default());
            x.custom(Slot::Cs4, "policy_rule", d.rule.clone());
            x.custom(Slot::Cs6, "error", d.error.clone());
            x.custom(Slot::Cn1, "http_status", d.http_status.to_string());
        }
        EventPayload::ClientUpdated(d) => {
            x.custom(
                Slot::Cs2,
                "client_name",
                d.metadata.client_name.clone().unwrap_or_default(),
            );
            let fields: Vec<&str> = d.changes.iter().map(|c| c.field.as_str()).collect();
            x.custom(Slot::Cs3, "changed_fields", fields.join(","));
        }
        EventPayload::ClientDeleted(d) => {
            x.add("reason", d.reason.clone());
            x.custom(Slot::Cn1, "tokens_revoked", d.tokens_revoked.to_string());
        }
        EventPayload::ClientExpired(d) => {
            x.add("reason", d.reason.clone());
            x.custom(Slot::Cn1, "tokens_revoked", d.tokens_revoked.to_string());
        }
        EventPayload::ClientRevoked(d) => {
            x.add("reason", d.reason.clone());
            x.custom(Slot::Cn1, "tokens_revoked", d.tokens_revoked.to_string());
        }
        EventPayload::ClientDisabled(d) => {
            x.add("reason", d.reason.clone());
        }
        EventPayload::ClientAccessDenied(d) => {
            x.add("reason", d.reason.clone())
                .add("request", d.endpoint.clone());
        }
        EventPayload::ConsentGranted(d) => {
            x.custom(Slot::Cs3, "scopes", d.scopes.join(" "));
            x.custom(Slot::Cs4, "resource", d.resource.clone());
        }
        EventPayload::ConsentDenied(d) => {
            x.add("reason", d.reason.clone());
            x.custom(Slot::Cs3, "scopes", d.scopes.join(" "));
            x.custom(
                Slot::Cs4,
                "resource",
                d.resource.clone().unwrap_or_default(),
            );
        }
        EventPayload::TokenIssued(d) => {
            x.custom(Slot::Cs3, "scopes", d.scopes.join(" "));
            x.custom(Slot::Cs4, "resource", d.resource.clone());
            x.custom(Slot::Cs6, "token_id", d.token_id.clone());
        }
        EventPayload::TokenRefreshed(d) => {
            x.custom(Slot::Cs3, "scopes", d.scopes.join(" "));
            x.custom(Slot::Cs4, "resource", d.resource.clone());
            x.custom(Slot::Cs6, "token_id", d.token_id.clone());
        }
        EventPayload::TokenRevoked(d) => {
            x.add("reason", d.reason.clone());
            x.custom(
                Slot::Cs6,
                "token_id",
                d.token_id.clone().unwrap_or_default(),
            );
            x.custom(Slot::Cn1, "revoked_count", d.count.to_string());
        }
        EventPayload::ToolCalled(d) => {
            x.add("reason", d.reason.clone().unwrap_or_default());
            x.custom(
                Slot::Cs3,
                "deciding_scope",
                d.deciding_scope.clone().unwrap_or_default(),
            );
            x.custom(Slot::Cs4, "resource", d.resource.clone());
            x.custom(Slot::Cs6, "tool", d.tool.clone());
        }
    }
}

/// The CEF line of one alert.
pub fn alert(a: &Alert) -> String {
    let names = alert_names(a.kind);
    let header = Header {
        signature_id: names.signature_id,
        name: names.title,
        severity: cef_severity(a.severity),
    };
    let status = match serde_json::to_value(a.status) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    };
    let mut x = Ext::default();
    x.add("rt", a.updated_at.timestamp_millis().to_string())
        .add("start", a.created_at.timestamp_millis().to_string())
        .add("end", a.updated_at.timestamp_millis().to_string())
        .add("externalId", a.alert_id.to_string())
        .add("cat", "alert")
        .add("act", names.action);
    x.custom(Slot::Cs1, "client_id", a.client_id.clone());
    x.custom(Slot::Cs2, "alert_status", status);
    x.custom(
        Slot::Cs3,
        "related_client_ids",
        a.related_client_ids.join(","),
    );
    x.custom(Slot::Cs6, "dedup_key", a.dedup_key.clone());
    x.custom(Slot::Cfp1, "score", format!("{:.3}", a.score));
    x.add("msg", a.summary.clone());
    line(&header, &x.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_escapes_pipe_and_backslash_and_drops_line_breaks() {
        assert_eq!(escape_header(r"a|b\c"), r"a\|b\\c");
        assert_eq!(escape_header("a\r\nb"), "a  b");
        assert_eq!(escape_header("a=b"), "a=b", "= is literal in the header");
    }

    #[test]
    fn extension_escapes_equals_backslash_and_line_breaks() {
        assert_eq!(escape_extension(r"a=b\c"), r"a\=b\\c");
        assert_eq!(escape_extension("l1\nl2\rl3"), r"l1\nl2\rl3");
        assert_eq!(escape_extension("a|b"), "a|b", "| is literal in extensions");
        assert_eq!(
            escape_extension(r"\n"),
            r"\\n",
            "a literal backslash-n stays two chars"
        );
    }

    #[test]
    fn severity_is_clamped_to_ten() {
        let h = Header {
            signature_id: "x",
            name: "y",
            severity: 200,
        };
        assert!(line(&h, &[]).ends_with("|x|y|10|"), "{}", line(&h, &[]));
    }

    #[test]
    fn line_has_the_cef_prefix_and_eight_fields() {
        let h = Header {
            signature_id: "client.registered",
            name: "OAuth client registered",
            severity: 1,
        };
        let l = line(&h, &[("src", "203.0.113.7".into()), ("msg", "a=b".into())]);
        assert_eq!(
            l,
            format!(
                "CEF:0|regwatch|regwatch|{}|client.registered|OAuth client registered|1|src=203.0.113.7 msg=a\\=b",
                crate::PRODUCT_VERSION
            )
        );
    }
}
