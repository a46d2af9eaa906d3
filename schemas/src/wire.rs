//! An event as it travels between processes: the JSON text and the
//! [`Envelope`] read from it, kept together so that each hop parses the
//! JSON once.
//!
//! The pipeline parses a record into a [`WireEvent`] when it validates it;
//! the event store takes the same value (the envelope for its columns, the
//! text as the stored document) and the detectors read its envelope. No one
//! downstream parses the text again, and no one needs to check that the
//! text and the envelope agree: the fields are private and both
//! constructors derive one from the other.

use crate::event::Envelope;

/// An envelope and the JSON it was read from (or written to).
///
/// Invariant: `envelope` is what `json` parses to. Held by construction:
/// [`WireEvent::parse`] reads the envelope from the text,
/// [`WireEvent::from_envelope`] writes the text from the envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct WireEvent {
    envelope: Envelope,
    json: String,
}

/// JSON text that does not read as an [`Envelope`], handed back with the
/// parser's error so the caller can classify or log it without a copy.
#[derive(Debug, thiserror::Error)]
#[error("not an event envelope: {error}")]
pub struct NotAnEnvelope {
    pub json: String,
    #[source]
    pub error: serde_json::Error,
}

impl WireEvent {
    /// Parse `json` once and keep both forms. The text is kept as it came
    /// (fields this build does not know included: see `VERSIONING.md`).
    pub fn parse(json: String) -> Result<Self, NotAnEnvelope> {
        match serde_json::from_str::<Envelope>(&json) {
            Ok(envelope) => Ok(WireEvent { envelope, json }),
            Err(error) => Err(NotAnEnvelope { json, error }),
        }
    }

    /// Serialize `envelope` (for producers that hold only the typed event,
    /// and for tests).
    pub fn from_envelope(envelope: Envelope) -> Result<Self, serde_json::Error> {
        let json = serde_json::to_string(&envelope)?;
        Ok(WireEvent { envelope, json })
    }

    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The JSON text, exactly as received.
    pub fn json(&self) -> &str {
        &self.json
    }

    pub fn into_parts(self) -> (Envelope, String) {
        (self.envelope, self.json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, ClientDeleted, EventPayload};

    fn envelope() -> Envelope {
        let mut e = Envelope::new(
            "https://as.example.com",
            Actor::admin("ops"),
            EventPayload::ClientDeleted(ClientDeleted {
                reason: "admin".into(),
                tokens_revoked: 1,
            }),
            chrono::Utc::now(),
        );
        e.client_id = Some("c-1".into());
        e
    }

    #[test]
    fn both_constructors_keep_text_and_envelope_in_agreement() {
        let written = WireEvent::from_envelope(envelope()).expect("serialize");
        let read = WireEvent::parse(written.json().to_string()).expect("parse");
        assert_eq!(read, written);
        assert_eq!(read.envelope().event_id, written.envelope().event_id);
    }

    #[test]
    fn the_text_is_kept_as_received() {
        // A field from a newer producer: ignored by the envelope, kept in
        // the text the store returns.
        let mut v = serde_json::to_value(envelope()).expect("value");
        v["x_newer_field"] = serde_json::json!(1);
        let text = v.to_string();
        let ev = WireEvent::parse(text.clone()).expect("parse");
        assert_eq!(ev.json(), text);
    }

    #[test]
    fn what_is_not_an_envelope_comes_back_with_the_error() {
        for text in ["not json", "[1]", r#"{"event_id":"x"}"#] {
            let err = WireEvent::parse(text.to_string()).expect_err(text);
            assert_eq!(err.json, text);
        }
    }
}
