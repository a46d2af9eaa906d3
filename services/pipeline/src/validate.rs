//! Record validation against the event contract: pure, no IO.
//!
//! [`validate`] decides, for one record value, either a [`WireEvent`] (the
//! envelope parsed once, with the text it came from, which the store and
//! the detectors then share) or a [`Rejection`] naming why it cannot be
//! accepted. The checks run cheapest first, and the ones that bound work
//! (size, nesting) run before any parser sees the bytes:
//!
//! 1. empty value (a tombstone or a producer bug) → `empty`
//! 2. more than `max_record_bytes` → `oversized`
//! 3. JSON nesting deeper than `max_depth` → `too_deep`
//! 4. the bytes are UTF-8, the envelope parses and its `schema_version` is
//!    supported → valid
//! 5. otherwise the failure is classified: not JSON (or not UTF-8, which
//!    RFC 8259 requires) → `invalid_json`,
//!    a `schema_version` this build does not read → `unknown_schema_version`,
//!    an `event_type` outside the closed set → `unknown_event_type`,
//!    anything else (missing field, wrong type) → `contract_violation`.

use regwatch_schemas::{EventType, WireEvent, SUPPORTED_SCHEMA_VERSIONS};
use serde::Deserialize;

/// Bounds applied to every record before and while it is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted record value, in bytes.
    pub max_record_bytes: usize,
    /// Deepest accepted JSON nesting (objects and arrays).
    pub max_depth: usize,
}

/// Why a record was refused. The string form is stable: it is written to
/// the dead-letter topic and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    Empty,
    Oversized,
    TooDeep,
    InvalidJson,
    UnknownSchemaVersion,
    UnknownEventType,
    ContractViolation,
    /// The sink refused the event with a non-retryable error.
    SinkRejected,
}

impl RejectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Empty => "empty",
            RejectReason::Oversized => "oversized",
            RejectReason::TooDeep => "too_deep",
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::UnknownSchemaVersion => "unknown_schema_version",
            RejectReason::UnknownEventType => "unknown_event_type",
            RejectReason::ContractViolation => "contract_violation",
            RejectReason::SinkRejected => "sink_rejected",
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused record: the reason and a human-readable detail (never the
/// record itself; the dead-letter record carries the original bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

/// Validate one record value against the contract (a Kafka record's
/// value, borrowed: it is copied once, into the event, after the bounds).
pub fn validate(value: Option<&[u8]>, limits: &Limits) -> Result<WireEvent, Rejection> {
    let bytes = match value {
        None | Some([]) => return Err(Rejection::new(RejectReason::Empty, "record has no value")),
        Some(b) => b,
    };
    check_bounds(bytes, limits)?;
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Rejection::new(RejectReason::InvalidJson, format!("not UTF-8: {e}")))?;
    parse(text.to_owned())
}

/// [`validate`] for a value the caller owns (an outbox row's payload): it
/// moves into the event uncopied.
pub fn validate_owned(value: String, limits: &Limits) -> Result<WireEvent, Rejection> {
    if value.is_empty() {
        return Err(Rejection::new(RejectReason::Empty, "record has no value"));
    }
    check_bounds(value.as_bytes(), limits)?;
    parse(value)
}

/// The checks that bound the parser's work: size, then nesting.
fn check_bounds(bytes: &[u8], limits: &Limits) -> Result<(), Rejection> {
    if bytes.len() > limits.max_record_bytes {
        return Err(Rejection::new(
            RejectReason::Oversized,
            format!("{} bytes, limit {}", bytes.len(), limits.max_record_bytes),
        ));
    }
    // Before any parser: serde_json recurses per nesting level, so a deep
    // record costs stack and time. The scan is linear and allocation-free.
    if let Some(depth) = regwatch_checks::json::exceeds_depth(bytes, limits.max_depth) {
        return Err(Rejection::new(
            RejectReason::TooDeep,
            format!("nesting deeper than {} (reached {depth})", limits.max_depth),
        ));
    }
    Ok(())
}

/// The one parse of a record: the envelope, and a supported version.
fn parse(text: String) -> Result<WireEvent, Rejection> {
    match WireEvent::parse(text) {
        Ok(ev) if SUPPORTED_SCHEMA_VERSIONS.contains(&ev.envelope().schema_version) => Ok(ev),
        Ok(ev) => Err(unknown_version(ev.envelope().schema_version)),
        Err(e) => Err(classify(e.json.as_bytes(), e.error)),
    }
}

fn unknown_version(v: u32) -> Rejection {
    Rejection::new(
        RejectReason::UnknownSchemaVersion,
        format!("schema_version {v}, supported {SUPPORTED_SCHEMA_VERSIONS:?}"),
    )
}

/// The fields that decide how to classify a record the envelope parser
/// refused. Every field optional: this probe must not fail where the
/// envelope did, except on bytes that are not JSON at all.
#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    schema_version: Option<serde_json::Value>,
    #[serde(default)]
    event_type: Option<serde_json::Value>,
}

/// Only reached for refused records, so the second parse costs nothing on
/// the happy path.
fn classify(bytes: &[u8], err: serde_json::Error) -> Rejection {
    if err.is_syntax() || err.is_eof() {
        return Rejection::new(RejectReason::InvalidJson, err.to_string());
    }
    let probe = match serde_json::from_slice::<Probe>(bytes) {
        Ok(p) => p,
        // Valid JSON but not an object (an array, a number, …).
        Err(_) => return Rejection::new(RejectReason::ContractViolation, err.to_string()),
    };
    // A version we do not read explains every other difference, so it is
    // reported first.
    if let Some(v) = probe.schema_version.as_ref().and_then(|v| v.as_u64()) {
        let known = u32::try_from(v)
            .map(|v| SUPPORTED_SCHEMA_VERSIONS.contains(&v))
            .unwrap_or(false);
        if !known {
            return Rejection::new(
                RejectReason::UnknownSchemaVersion,
                format!("schema_version {v}, supported {SUPPORTED_SCHEMA_VERSIONS:?}"),
            );
        }
    }
    if let Some(serde_json::Value::String(t)) = probe.event_type.as_ref() {
        if EventType::parse(t).is_none() {
            let shown: String = t.chars().take(64).collect();
            return Rejection::new(
                RejectReason::UnknownEventType,
                format!("event_type {shown:?} is not in the contract"),
            );
        }
    }
    Rejection::new(RejectReason::ContractViolation, err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use regwatch_schemas::{Actor, ClientDeleted, Envelope, EventPayload};

    const LIMITS: Limits = Limits {
        max_record_bytes: 4096,
        max_depth: 8,
    };

    fn valid_json() -> String {
        let mut env = Envelope::new(
            "https://issuer.test",
            Actor::admin("ops"),
            EventPayload::ClientDeleted(ClientDeleted {
                reason: "admin".into(),
                tokens_revoked: 2,
            }),
            chrono::Utc::now(),
        );
        env.client_id = Some("c-1".into());
        serde_json::to_string(&env).unwrap_or_default()
    }

    fn with(field: &str, value: serde_json::Value) -> String {
        let mut v: serde_json::Value =
            serde_json::from_str(&valid_json()).unwrap_or(serde_json::Value::Null);
        v[field] = value;
        v.to_string()
    }

    fn nested(depth: usize) -> String {
        // A valid envelope whose `data` carries an extra deeply nested field.
        let mut v: serde_json::Value =
            serde_json::from_str(&valid_json()).unwrap_or(serde_json::Value::Null);
        let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        v["data"]["extra"] = serde_json::from_str(&deep).unwrap_or(serde_json::Value::Null);
        v.to_string()
    }

    fn check(input: &[u8], expected: Option<RejectReason>) {
        let got = validate(Some(input), &LIMITS).err().map(|r| r.reason);
        let shown = String::from_utf8_lossy(&input[..input.len().min(200)]);
        assert_eq!(got, expected, "input: {shown}");
        // The owned path decides the same for every text.
        if let Ok(text) = std::str::from_utf8(input) {
            let owned = validate_owned(text.to_owned(), &LIMITS)
                .err()
                .map(|r| r.reason);
            assert_eq!(owned, expected, "owned input: {shown}");
        }
    }

    #[test]
    fn classification_table() {
        let oversized = with("issuer", serde_json::Value::String("x".repeat(5000)));
        let cases: Vec<(String, Option<RejectReason>)> = vec![
            (valid_json(), None),
            ("{not json".into(), Some(RejectReason::InvalidJson)),
            ("\u{0}\u{1}binary".into(), Some(RejectReason::InvalidJson)),
            ("[1,2,3]".into(), Some(RejectReason::ContractViolation)),
            ("42".into(), Some(RejectReason::ContractViolation)),
            (
                with("schema_version", 2.into()),
                Some(RejectReason::UnknownSchemaVersion),
            ),
            (
                with("schema_version", 4_294_967_297u64.into()),
                Some(RejectReason::UnknownSchemaVersion),
            ),
            (
                with("event_type", "client.teleported".into()),
                Some(RejectReason::UnknownEventType),
            ),
            (
                with("event_id", "not-a-uuid".into()),
                Some(RejectReason::ContractViolation),
            ),
            (
                with("occurred_at", serde_json::Value::Null),
                Some(RejectReason::ContractViolation),
            ),
            (oversized, Some(RejectReason::Oversized)),
            // Within the cap: the envelope's own nesting plus 4 levels.
            (nested(4), None),
            (nested(9), Some(RejectReason::TooDeep)),
            (
                format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
                Some(RejectReason::Oversized),
            ),
        ];
        for (input, expected) in cases {
            check(input.as_bytes(), expected);
        }
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        // Far past serde_json's own recursion limit, under the size cap.
        let limits = Limits {
            max_record_bytes: 1 << 20,
            max_depth: 32,
        };
        let deep = "{\"a\":".repeat(50_000);
        let r = validate(Some(deep.as_bytes()), &limits).err();
        assert_eq!(r.map(|r| r.reason), Some(RejectReason::TooDeep));
    }

    #[test]
    fn bytes_that_are_not_utf8_are_not_json() {
        let mut bytes = valid_json().into_bytes();
        // Inside a string value (`issuer`): a lone continuation byte.
        let at = bytes.len() / 2;
        bytes[at] = 0x80;
        check(&bytes, Some(RejectReason::InvalidJson));
        check(b"\xff\xfe{}", Some(RejectReason::InvalidJson));
    }

    #[test]
    fn empty_values_are_refused() {
        assert_eq!(
            validate(None, &LIMITS).err().map(|r| r.reason),
            Some(RejectReason::Empty)
        );
        assert_eq!(
            validate(Some(b""), &LIMITS).err().map(|r| r.reason),
            Some(RejectReason::Empty)
        );
        assert_eq!(
            validate_owned(String::new(), &LIMITS)
                .err()
                .map(|r| r.reason),
            Some(RejectReason::Empty)
        );
    }

    #[test]
    fn valid_record_round_trips() {
        let json = valid_json();
        let ev = validate(Some(json.as_bytes()), &LIMITS).ok();
        assert_eq!(
            ev.as_ref().and_then(|e| e.envelope().client_id.clone()),
            Some("c-1".to_string())
        );
        assert_eq!(ev.as_ref().map(|e| e.json()), Some(json.as_str()));
        let owned = validate_owned(json.clone(), &LIMITS).ok();
        assert_eq!(owned, ev);
    }
}
