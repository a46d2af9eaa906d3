//! Binding of MCP sessions (`Mcp-Session-Id`, protocol versions before
//! 2026-07-28) to the OAuth client and user that opened them.
//!
//! MCP 2025-06-18 (security best practices): a session id is not an
//! authenticator, and servers SHOULD bind it to the user. Here a session
//! may be used only with a token of the same client and subject as the one
//! that initialized it; any other request naming it is answered 404, as an
//! unknown session is, so session ids cannot be probed across clients.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::introspection::Caller;

/// Most sessions remembered; past it the oldest binding is dropped and that
/// session answers 404 (the client then starts a new one).
pub const MAX_SESSIONS: usize = 10_000;

type Owner = (String, Option<String>);

#[derive(Default)]
struct Inner {
    owners: HashMap<String, Owner>,
    order: VecDeque<String>,
}

/// Session id → the caller that opened it. Bounded.
#[derive(Default)]
pub struct SessionBindings {
    inner: Mutex<Inner>,
    max: usize,
}

impl SessionBindings {
    pub fn new(max: usize) -> Self {
        SessionBindings {
            inner: Mutex::new(Inner::default()),
            max: max.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every change below keeps the two collections consistent enough
        // (a stale `order` entry is skipped), so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Remember that `caller` opened `session`.
    pub fn bind(&self, session: &str, caller: &Caller) {
        let mut inner = self.lock();
        let owner = (caller.client_id.clone(), caller.sub.clone());
        if inner.owners.insert(session.to_owned(), owner).is_none() {
            inner.order.push_back(session.to_owned());
        }
        while inner.owners.len() > self.max {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.owners.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Whether `caller` may use `session`.
    pub fn owned_by(&self, session: &str, caller: &Caller) -> bool {
        self.lock()
            .owners
            .get(session)
            .is_some_and(|(client, sub)| *client == caller.client_id && *sub == caller.sub)
    }

    pub fn unbind(&self, session: &str) {
        let mut inner = self.lock();
        inner.owners.remove(session);
        inner.order.retain(|s| s != session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(client: &str, sub: &str) -> Caller {
        Caller {
            client_id: client.into(),
            sub: Some(sub.into()),
            scopes: Vec::new(),
        }
    }

    #[test]
    fn sessions_belong_to_their_opener_and_are_bounded() {
        let b = SessionBindings::new(2);
        b.bind("s1", &caller("c1", "alice"));
        assert!(b.owned_by("s1", &caller("c1", "alice")));
        assert!(!b.owned_by("s1", &caller("c2", "alice")));
        assert!(!b.owned_by("s1", &caller("c1", "bob")));
        assert!(!b.owned_by("s-unknown", &caller("c1", "alice")));
        b.bind("s2", &caller("c1", "alice"));
        b.bind("s3", &caller("c1", "alice"));
        assert!(!b.owned_by("s1", &caller("c1", "alice")), "oldest dropped");
        assert!(b.owned_by("s3", &caller("c1", "alice")));
        b.unbind("s3");
        assert!(!b.owned_by("s3", &caller("c1", "alice")));
    }
}
