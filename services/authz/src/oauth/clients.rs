//! Resolve a `client_id` to an active client: a registered (DCR) client
//! from the store, or a Client ID Metadata Document client admitted by the
//! registry ([`crate::registry::cimd`]).

use regwatch_schemas::RegistrationMethod;

use crate::error::{ErrorCode, OAuthError};
use crate::events::RequestCtx;
use crate::registry::{self, cimd::AdmitError};
use crate::secrets;
use crate::store::{ClientRow, ClientStatus};
use crate::AppState;

/// Whether a client id names a metadata document rather than a registration.
pub fn is_url_client_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Why a client cannot be used.
#[derive(Debug)]
pub enum ClientError {
    Unknown,
    Inactive(ClientStatus),
    /// The metadata document could not be fetched or was refused.
    Cimd {
        rule: String,
        description: String,
    },
    Store(OAuthError),
}

impl ClientError {
    pub fn to_oauth(&self) -> OAuthError {
        match self {
            ClientError::Unknown => OAuthError::new(ErrorCode::InvalidClient, "unknown client"),
            ClientError::Inactive(s) => OAuthError::new(
                ErrorCode::InvalidClient,
                format!("client is {}", s.as_str()),
            ),
            ClientError::Cimd { description, .. } => {
                OAuthError::new(ErrorCode::InvalidClient, description.clone())
            }
            ClientError::Store(e) => e.clone(),
        }
    }
}

/// An active client for `client_id`, from `endpoint`.
pub async fn resolve(
    st: &AppState,
    ctx: &RequestCtx,
    client_id: &str,
    endpoint: &str,
) -> Result<ClientRow, ClientError> {
    if client_id.len() > 2048 {
        return Err(ClientError::Unknown);
    }
    let existing = st
        .store
        .get_client(client_id)
        .await
        .map_err(|e| ClientError::Store(e.into()))?;
    if let Some(c) = &existing {
        if c.status != ClientStatus::Active {
            registry::record_denied(st, ctx, client_id, c.status, endpoint, "client_inactive")
                .await;
            return Err(ClientError::Inactive(c.status));
        }
        if c.registration_method == RegistrationMethod::Dcr {
            return Ok(c.clone());
        }
    }
    if !is_url_client_id(client_id) {
        return Err(ClientError::Unknown);
    }
    let Some(fetcher) = &st.cimd else {
        return Err(ClientError::Unknown);
    };
    registry::cimd::admit(st, ctx, fetcher, client_id, existing)
        .await
        .map_err(|e| match e {
            AdmitError::Refused { rule, description } => ClientError::Cimd { rule, description },
            AdmitError::Gone => ClientError::Unknown,
            AdmitError::Store(e) => ClientError::Store(e.into()),
        })
}

/// A client's credentials at the token and revocation endpoints, as the
/// shell read them (`client_secret_basic`, `client_secret_post`, or an id
/// alone for a public client).
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<String>,
    /// Whether they came in `Authorization: Basic` (a refusal then
    /// carries a Basic challenge).
    pub basic: bool,
}

/// Authenticate the client of a token or revocation request.
pub async fn authenticate(
    st: &AppState,
    ctx: &RequestCtx,
    credentials: Option<ClientCredentials>,
    endpoint: &str,
) -> Result<ClientRow, OAuthError> {
    let Some(creds) = credentials else {
        return Err(OAuthError::new(
            ErrorCode::InvalidClient,
            "client authentication required",
        ));
    };
    let unauthorized = |d: &str| {
        let mut e = OAuthError::new(ErrorCode::InvalidClient, d);
        if creds.basic {
            e.www_authenticate = Some("Basic realm=\"regwatch\"".into());
        }
        e
    };
    let client = match resolve(st, ctx, &creds.client_id, endpoint).await {
        Ok(c) => c,
        Err(ClientError::Store(e)) => return Err(e),
        Err(e) => return Err(unauthorized(&e.to_oauth().description)),
    };
    match (&client.secret_hash, &creds.secret) {
        (Some(h), Some(s)) if secrets::hash_token(s).ct_eq(&secrets::TokenHash(h.clone())) => {
            Ok(client)
        }
        (Some(_), _) => Err(unauthorized("client authentication failed")),
        (None, None) => Ok(client),
        (None, Some(_)) => Err(unauthorized("this client is public and has no secret")),
    }
}
