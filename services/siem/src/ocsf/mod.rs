//! OCSF 1.8.0 records.
//!
//! Layout:
//! - this file: the class table ([`Class`]), the base attributes every
//!   record carries (`metadata`, `time`, `type_uid`, severity, status) and
//!   the shared objects (actor, source endpoint, the OAuth client entity).
//! - [`events`]: one or two records per event type.
//! - [`finding`]: alerts as Detection Finding (2004).
//!
//! `type_uid = class_uid × 100 + activity_id` is computed in one place,
//! [`Record::new`]. Fields of the contract that OCSF has no attribute for
//! go to `unmapped`, so nothing is lost and no unknown attribute is added.

mod events;
mod finding;

pub use events::event;
pub use finding::alert;

use regwatch_schemas::{ActorKind, ClientMetadata, Envelope, Severity};
use serde_json::{json, Map, Value};

use crate::mapping::{ocsf_severity_id, ocsf_severity_name};

/// The OCSF schema version every record declares in `metadata.version`.
pub const OCSF_VERSION: &str = "1.8.0";
/// `managed_entity.type` of an OAuth client (`type_id` 99, Other: OCSF
/// has no entity type for applications).
pub const OAUTH_CLIENT_ENTITY: &str = "OAuth Client";
/// The profile tool calls use (`message_context` names MCP).
pub const AI_OPERATION_PROFILE: &str = "ai_operation";

/// The OCSF classes regwatch emits, with their category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    DetectionFinding,
    Authentication,
    EntityManagement,
    UserAccessManagement,
    ApiActivity,
}

impl Class {
    pub fn uid(self) -> u32 {
        match self {
            Class::DetectionFinding => 2004,
            Class::Authentication => 3002,
            Class::EntityManagement => 3004,
            Class::UserAccessManagement => 3005,
            Class::ApiActivity => 6003,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::DetectionFinding => "Detection Finding",
            Class::Authentication => "Authentication",
            Class::EntityManagement => "Entity Management",
            Class::UserAccessManagement => "User Access Management",
            Class::ApiActivity => "API Activity",
        }
    }

    /// `category_uid`: the class uid's thousands.
    pub fn category_uid(self) -> u32 {
        self.uid() / 1000
    }

    pub fn category_name(self) -> &'static str {
        match self.category_uid() {
            2 => "Findings",
            3 => "Identity & Access Management",
            _ => "Application Activity",
        }
    }
}

/// A class, an activity id and its caption (from the OCSF 1.8.0 class
/// definitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    pub class: Class,
    pub id: u32,
    pub name: &'static str,
}

impl Activity {
    pub const fn new(class: Class, id: u32, name: &'static str) -> Self {
        Activity { class, id, name }
    }

    pub fn type_uid(self) -> u64 {
        u64::from(self.class.uid()) * 100 + u64::from(self.id)
    }
}

/// `status_id`/`status` of the event classes (Detection Finding has its
/// own status enum, see [`finding`]).
pub(crate) fn status(succeeded: bool) -> (u8, &'static str) {
    if succeeded {
        (1, "Success")
    } else {
        (2, "Failure")
    }
}

/// One record under construction: the base attributes are set by `new`,
/// the class attributes by the caller through `set`.
pub(crate) struct Record(Map<String, Value>);

impl Record {
    pub(crate) fn new(
        activity: Activity,
        time_ms: i64,
        severity: Severity,
        metadata: Value,
    ) -> Self {
        let class = activity.class;
        let mut m = Map::new();
        m.insert("class_uid".into(), json!(class.uid()));
        m.insert("class_name".into(), json!(class.name()));
        m.insert("category_uid".into(), json!(class.category_uid()));
        m.insert("category_name".into(), json!(class.category_name()));
        m.insert("activity_id".into(), json!(activity.id));
        m.insert("activity_name".into(), json!(activity.name));
        m.insert("type_uid".into(), json!(activity.type_uid()));
        m.insert(
            "type_name".into(),
            json!(format!("{}: {}", class.name(), activity.name)),
        );
        m.insert("time".into(), json!(time_ms));
        m.insert("severity_id".into(), json!(ocsf_severity_id(severity)));
        m.insert("severity".into(), json!(ocsf_severity_name(severity)));
        m.insert("metadata".into(), metadata);
        Record(m)
    }

    pub(crate) fn set(&mut self, key: &str, value: Value) -> &mut Self {
        self.0.insert(key.into(), value);
        self
    }

    /// Sets `key` only when there is a value.
    pub(crate) fn set_some(&mut self, key: &str, value: Option<Value>) -> &mut Self {
        if let Some(v) = value {
            self.0.insert(key.into(), v);
        }
        self
    }

    pub(crate) fn into_value(self) -> Value {
        Value::Object(self.0)
    }
}

/// `metadata.product`.
pub(crate) fn product() -> Value {
    json!({
        "name": crate::PRODUCT_NAME,
        "vendor_name": crate::PRODUCT_NAME,
        "version": crate::PRODUCT_VERSION,
    })
}

/// `metadata` of an event record. `uid` is the event id, or a derived id
/// for the second record of an event (see [`events`]); `event_code` is the
/// contract's event type.
pub(crate) fn event_metadata(e: &Envelope, uid: String, profiles: &[&str]) -> Value {
    let mut m = json!({
        "version": OCSF_VERSION,
        "uid": uid,
        "original_event_uid": e.event_id.to_string(),
        "event_code": e.event_type().as_str(),
        "log_name": "events",
        "product": product(),
    });
    if let Some(c) = &e.correlation_id {
        m["correlation_uid"] = json!(c);
    }
    if !profiles.is_empty() {
        m["profiles"] = json!(profiles);
    }
    m
}

/// `actor`: who caused the event. Clients are applications (`app_uid`),
/// people are users, regwatch's own jobs are the app `regwatch`.
pub(crate) fn actor(e: &Envelope, client_name: Option<&str>) -> Value {
    let a = &e.actor;
    match a.kind {
        ActorKind::Client => {
            let mut v = json!({});
            match a.id.as_ref().or(e.client_id.as_ref()) {
                Some(id) => v["app_uid"] = json!(id),
                None => v["invoked_by"] = json!("unregistered client"),
            }
            if let Some(n) = client_name {
                v["app_name"] = json!(n);
            }
            v
        }
        ActorKind::User | ActorKind::Admin => {
            let (type_id, type_name) = if a.kind == ActorKind::Admin {
                (2, "Admin")
            } else {
                (1, "User")
            };
            let id = a.id.as_deref().unwrap_or("unknown");
            json!({"user": {"uid": id, "name": id, "type_id": type_id, "type": type_name}})
        }
        ActorKind::System | ActorKind::Detector => {
            let mut v = json!({"app_name": crate::PRODUCT_NAME});
            if let Some(id) = &a.id {
                v["app_uid"] = json!(id);
            }
            v
        }
    }
}

/// `src_endpoint` from the envelope's source, when it has an address.
pub(crate) fn src_endpoint(e: &Envelope) -> Option<Value> {
    let ip = e.source.as_ref()?.ip.as_ref()?;
    Some(json!({ "ip": ip }))
}

/// `src_endpoint` where the class requires one: the address, or the
/// client's id as the endpoint's name when no address was recorded.
pub(crate) fn required_src_endpoint(e: &Envelope) -> Value {
    src_endpoint(e).unwrap_or_else(|| {
        let name = e
            .client_id
            .as_deref()
            .or(e.actor.id.as_deref())
            .unwrap_or("unknown");
        json!({ "name": name })
    })
}

/// The user agent of the request that caused the event, if recorded.
pub(crate) fn user_agent(e: &Envelope) -> Option<&str> {
    e.source.as_ref()?.user_agent.as_deref()
}

/// The client's metadata as entity/resource `data` (never a secret: the
/// contract does not carry any).
/// Unset fields (null, empty lists) are left out.
pub(crate) fn client_data(m: &ClientMetadata) -> Value {
    match serde_json::to_value(m) {
        Ok(Value::Object(mut fields)) => {
            fields.retain(|_, v| !(v.is_null() || v.as_array().is_some_and(|a| a.is_empty())));
            Value::Object(fields)
        }
        _ => Value::Null,
    }
}

/// The OAuth client as a managed entity (Entity Management's `entity`).
/// A rejected registration has no id: the entity is then named by the
/// attempted `client_name`, or as unnamed.
pub(crate) fn client_entity(
    client_id: Option<&str>,
    metadata: Option<&ClientMetadata>,
    data: Value,
) -> Value {
    let name = metadata.and_then(|m| m.client_name.as_deref());
    let mut v = json!({"type": OAUTH_CLIENT_ENTITY, "type_id": 99});
    if let Some(id) = client_id {
        v["uid"] = json!(id);
    }
    match (name, client_id) {
        (Some(n), _) => v["name"] = json!(n),
        (None, None) => v["name"] = json!("(unnamed client)"),
        (None, Some(_)) => {}
    }
    if let Some(version) = metadata.and_then(|m| m.software_version.as_deref()) {
        v["version"] = json!(version);
    }
    if !data.is_null() {
        v["data"] = data;
    }
    v
}

/// Envelope fields OCSF has no place for, kept under `unmapped`.
pub(crate) fn unmapped(e: &Envelope, mut extra: Map<String, Value>) -> Value {
    extra.insert("issuer".into(), json!(e.issuer));
    extra.insert("schema_version".into(), json!(e.schema_version));
    if let Some(c) = &e.client_id {
        extra.insert("client_id".into(), json!(c));
    }
    if let Some(r) = &e.request_id {
        extra.insert("request_id".into(), json!(r));
    }
    if let Some(p) = &e.policy {
        extra.insert(
            "policy".into(),
            serde_json::to_value(p).unwrap_or(Value::Null),
        );
    }
    Value::Object(extra)
}
