//! SIEM encodings of the regwatch contract: every event type and every
//! alert kind as OCSF 1.8.0, ECS 9.x and CEF. Pure: values in, JSON or a
//! line out, no IO. Delivery (pull API, Kafka, syslog, HEC) lives elsewhere.
//!
//! Layout:
//! - [`mapping`]: the one table of names, severities and outcomes every
//!   format reads (CEF signature ids, ECS actions, titles), so the three
//!   renderings of one event never disagree.
//! - [`ocsf`]: OCSF 1.8.0 records (Entity Management, API Activity, User
//!   Access Management, Authentication, Detection Finding).
//! - [`ecs`]: ECS 9.x documents.
//! - [`cef`]: CEF lines and the escaping rules of the header and extension.
//!
//! The mapping is documented as a table in `services/siem/README.md`.

pub mod cef;
pub mod ecs;
pub mod mapping;
pub mod ocsf;

/// The version regwatch reports as its product version in every format.
pub const PRODUCT_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Product and vendor name in every format.
pub const PRODUCT_NAME: &str = "regwatch";
