//! In-memory, bounded state of the browser side of the flow: authorization
//! requests waiting for sign-in and consent, and sign-in sessions. Both are
//! short-lived; losing them on restart only means signing in again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::secrets::{self, TokenHash};

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct PendingAuth {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    pub scopes: Vec<String>,
    pub resource: String,
    /// Anti-CSRF token of the forms of this request.
    pub csrf: String,
    created: Instant,
}

impl PendingAuth {
    pub fn new(
        client_id: String,
        redirect_uri: String,
        state: Option<String>,
        code_challenge: String,
        scopes: Vec<String>,
        resource: String,
    ) -> Self {
        PendingAuth {
            client_id,
            redirect_uri,
            state,
            code_challenge,
            scopes,
            resource,
            csrf: secrets::new_token(""),
            created: Instant::now(),
        }
    }
}

struct Session {
    user_id: String,
    expires: Instant,
}

pub struct FlowState {
    pending: Mutex<HashMap<String, PendingAuth>>,
    sessions: Mutex<HashMap<TokenHash, Session>>,
    max_pending: usize,
    pending_ttl: Duration,
    session_ttl: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("too many authorization requests in flight")]
pub struct Full;

impl FlowState {
    pub fn new(max_pending: usize, session_ttl: Duration) -> Self {
        FlowState {
            pending: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            max_pending: max_pending.max(1),
            pending_ttl: Duration::from_secs(600),
            session_ttl,
        }
    }

    /// Park a request; returns its id.
    pub fn park(&self, p: PendingAuth) -> Result<String, Full> {
        let mut m = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= self.max_pending {
            let ttl = self.pending_ttl;
            m.retain(|_, v| v.created.elapsed() < ttl);
            if m.len() >= self.max_pending {
                return Err(Full);
            }
        }
        let id = secrets::new_token("");
        m.insert(id.clone(), p);
        Ok(id)
    }

    pub fn get(&self, id: &str) -> Option<PendingAuth> {
        let m = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        m.get(id)
            .filter(|p| p.created.elapsed() < self.pending_ttl)
            .cloned()
    }

    /// Remove and return: a request is answered once.
    pub fn take(&self, id: &str) -> Option<PendingAuth> {
        let mut m = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        m.remove(id)
            .filter(|p| p.created.elapsed() < self.pending_ttl)
    }

    /// A new session for `user_id`; returns the cookie value.
    pub fn sign_in(&self, user_id: String) -> String {
        let token = secrets::new_token("");
        let mut m = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= self.max_pending * 4 {
            let now = Instant::now();
            m.retain(|_, s| s.expires > now);
        }
        m.insert(
            secrets::hash_token(&token),
            Session {
                user_id,
                expires: Instant::now() + self.session_ttl,
            },
        );
        token
    }

    pub fn user(&self, cookie: &str) -> Option<String> {
        let m = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&secrets::hash_token(cookie))
            .filter(|s| s.expires > Instant::now())
            .map(|s| s.user_id.clone())
    }
}
