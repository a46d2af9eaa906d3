//! Who signs in. A seam ([`IdentityProvider`]) where an upstream identity
//! provider can plug in later; today local users with argon2 password
//! hashes from configuration.

use std::collections::HashMap;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::config::UserEntry;

/// Verifies a sign-in. Implementations must take about the same time for
/// an unknown user as for a wrong password.
pub trait IdentityProvider: Send + Sync {
    /// The user's stable id when the credentials are right.
    fn verify(&self, username: &str, password: &str) -> Option<String>;
}

/// Users from configuration.
pub struct LocalUsers {
    users: HashMap<String, String>,
    /// Verified against when the user is unknown, so timing does not tell
    /// which usernames exist. Made on first use (hashing is slow).
    decoy: std::sync::OnceLock<String>,
}

/// Hash a password for the configuration (`regwatch hash-password`).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

impl LocalUsers {
    pub fn new(entries: &[UserEntry]) -> Self {
        let users = entries
            .iter()
            .map(|u| (u.username.clone(), u.password_hash.clone()))
            .collect();
        LocalUsers {
            users,
            decoy: std::sync::OnceLock::new(),
        }
    }
}

impl IdentityProvider for LocalUsers {
    fn verify(&self, username: &str, password: &str) -> Option<String> {
        let (hash, known) = match self.users.get(username) {
            Some(h) => (h.as_str(), true),
            None => (
                self.decoy
                    .get_or_init(|| {
                        hash_password("decoy password, never valid").unwrap_or_default()
                    })
                    .as_str(),
                false,
            ),
        };
        let parsed = PasswordHash::new(hash).ok()?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        (ok && known).then(|| username.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_only_the_right_password() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2"));
        let u = LocalUsers::new(&[UserEntry {
            username: "alice".into(),
            password_hash: h,
        }]);
        assert_eq!(u.verify("alice", "correct horse").as_deref(), Some("alice"));
        assert_eq!(u.verify("alice", "wrong"), None);
        assert_eq!(u.verify("bob", "correct horse"), None);
        assert_eq!(u.verify("bob", "decoy password, never valid"), None);
    }
}
