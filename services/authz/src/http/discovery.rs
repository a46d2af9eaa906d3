//! RFC 8414 authorization server metadata (also served at the OpenID
//! discovery path). The `issuer` is the configured one, byte for byte.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

use crate::AppState;

pub async fn metadata(State(st): State<AppState>) -> impl IntoResponse {
    let p = &st.cfg.policy;
    let body = json!({
        "issuer": st.cfg.issuer,
        "authorization_endpoint": st.url("/authorize"),
        "token_endpoint": st.url("/token"),
        "registration_endpoint": st.url("/register"),
        "revocation_endpoint": st.url("/revoke"),
        "introspection_endpoint": st.url("/introspect"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": p.scopes_supported,
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": st.cimd.is_some(),
    });
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        axum::Json(body),
    )
}
