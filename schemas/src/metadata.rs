//! The one list of client metadata fields (RFC 7591 §2) regwatch reads,
//! whether a client registers (DCR) or publishes a metadata document
//! (CIMD). [`crate::ClientMetadata`] stores every one of them but `jwks`,
//! which the authorization server refuses (it wants `jwks_uri`).
//!
//! A request also carries fields that are not metadata: a DCR body may
//! hold `software_statement` (RFC 7591 §2.3), an RFC 7592 update
//! `client_id` and `client_secret`, a CIMD document `client_id`. Those
//! lists belong to their readers; anything else is dropped and named.

/// Client metadata fields, in RFC 7591 §2 order.
pub const CLIENT_METADATA_FIELDS: &[&str] = &[
    "redirect_uris",
    "token_endpoint_auth_method",
    "grant_types",
    "response_types",
    "client_name",
    "client_uri",
    "logo_uri",
    "scope",
    "contacts",
    "tos_uri",
    "policy_uri",
    "jwks_uri",
    "jwks",
    "software_id",
    "software_version",
    "application_type",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_metadata_is_the_list_but_jwks() {
        let stored = serde_json::to_value(crate::ClientMetadata::default()).unwrap();
        let mut stored: Vec<&str> = stored
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        stored.sort();
        let mut listed: Vec<&str> = CLIENT_METADATA_FIELDS
            .iter()
            .copied()
            .filter(|f| *f != "jwks")
            .collect();
        listed.sort();
        assert_eq!(stored, listed);
    }
}
