//! How an event is keyed on [`EVENTS_TOPIC`](crate::EVENTS_TOPIC): part of
//! the contract, because per-client order rests on it (`VERSIONING.md`: a
//! change of key or partitioning changes the topic name).
//!
//! The key is the `client_id`; an event without one (a rejected
//! registration never got an id) is keyed by its source address, so one
//! source's refusals stay in order; failing both, by its `event_id`.

use serde::Deserialize;

use crate::event::Envelope;

/// The record key of an event with these fields: `client_id`, else
/// `source:<ip>`, else the `event_id`. Empty strings count as absent.
pub fn partition_key(client_id: Option<&str>, source_ip: Option<&str>, event_id: &str) -> String {
    match (client_id, source_ip) {
        (Some(c), _) if !c.is_empty() => c.to_string(),
        (_, Some(ip)) if !ip.is_empty() => format!("source:{ip}"),
        _ => event_id.to_string(),
    }
}

impl Envelope {
    /// This event's record key (see [`partition_key`]).
    pub fn partition_key(&self) -> String {
        let ip = self.source.as_ref().and_then(|s| s.ip.as_deref());
        partition_key(
            self.client_id.as_deref(),
            ip,
            &self.event_id.hyphenated().to_string(),
        )
    }
}

/// The few fields of an event's JSON that route it, read leniently: an
/// event this build cannot parse whole (a newer `schema_version`, an event
/// type it does not know) still gets its key and its `schema_version`
/// header, and the consumer decides what to do with it.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
pub struct EventHead {
    #[serde(default)]
    pub schema_version: Option<u32>,
    #[serde(default)]
    source: Option<HeadSource>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
struct HeadSource {
    #[serde(default)]
    ip: Option<String>,
}

impl EventHead {
    /// `None` when `json` is not a JSON object with these fields.
    pub fn read(json: &str) -> Option<EventHead> {
        serde_json::from_str(json).ok()
    }

    pub fn source_ip(&self) -> Option<&str> {
        self.source.as_ref().and_then(|s| s.ip.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, ClientDeleted, EventPayload, Source};

    #[test]
    fn key_table() {
        let cases = [
            (Some("c1"), Some("10.0.0.9"), "c1"),
            (Some("c1"), None, "c1"),
            (None, Some("10.0.0.9"), "source:10.0.0.9"),
            (Some(""), Some("10.0.0.9"), "source:10.0.0.9"),
            (None, Some(""), "0190-e"),
            (Some(""), None, "0190-e"),
            (None, None, "0190-e"),
        ];
        for (client, ip, key) in cases {
            assert_eq!(
                partition_key(client, ip, "0190-e"),
                key,
                "{client:?} {ip:?}"
            );
        }
    }

    #[test]
    fn envelope_key_follows_the_rule() {
        let mut e = Envelope::new(
            "https://as.example.com",
            Actor::anonymous_client(),
            EventPayload::ClientDeleted(ClientDeleted {
                reason: "admin".into(),
                tokens_revoked: 0,
            }),
            chrono::Utc::now(),
        );
        assert_eq!(e.partition_key(), e.event_id.to_string());
        e.source = Some(Source {
            ip: Some("10.1.2.3".into()),
            user_agent: None,
        });
        assert_eq!(e.partition_key(), "source:10.1.2.3");
        e.client_id = Some("c-9".into());
        assert_eq!(e.partition_key(), "c-9");
        // The lenient head of the same JSON routes the same way.
        let json = serde_json::to_string(&e).expect("json");
        let head = EventHead::read(&json).expect("head");
        let id = e.event_id.to_string();
        assert_eq!(
            partition_key(e.client_id.as_deref(), head.source_ip(), &id),
            e.partition_key()
        );
        assert_eq!(head.schema_version, Some(crate::SCHEMA_VERSION));
    }

    #[test]
    fn head_reads_what_the_envelope_would_refuse() {
        let cases = [
            (
                r#"{"schema_version":1,"source":{"ip":"10.0.0.9"}}"#,
                Some((Some(1), Some("10.0.0.9"))),
            ),
            (
                r#"{"schema_version":2,"source":null,"event_type":"client.teleported"}"#,
                Some((Some(2), None)),
            ),
            ("not json", None),
            ("42", None),
        ];
        for (json, expected) in cases {
            let got = EventHead::read(json);
            let got = got.as_ref().map(|h| (h.schema_version, h.source_ip()));
            assert_eq!(got, expected, "{json}");
        }
    }
}
