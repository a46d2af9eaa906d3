//! Who signs in. A seam ([`IdentityProvider`]) where an upstream identity
//! provider can plug in later; today local users with argon2 password
//! hashes from configuration, and [`bootstrap`], which makes sure a
//! single-process deployment (`regwatch up`) has a user to sign in with.

use std::collections::HashMap;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::config::{AuthzConfig, UserEntry};

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

/// What [`bootstrap`] did: the user to sign in as and, when it made the
/// password up, that password, for the operator to read once. `Debug` does
/// not print the password.
pub struct Bootstrapped {
    pub username: String,
    /// `Some` when the password was generated: shown once, stored only as
    /// its argon2 hash.
    pub generated_password: Option<String>,
}

impl std::fmt::Debug for Bootstrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrapped")
            .field("username", &self.username)
            .field(
                "generated_password",
                &self.generated_password.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// Adds a local user to `cfg` (replacing a configured one of the same
/// name): `given` as `(username, password)`, or `admin` with a generated
/// password. Only the argon2 hash goes into the configuration.
pub fn bootstrap(
    cfg: &mut AuthzConfig,
    given: Option<(&str, &str)>,
) -> Result<Bootstrapped, argon2::password_hash::Error> {
    let (username, password, generated) = match given {
        Some((u, p)) => (u.to_string(), p.to_string(), false),
        None => ("admin".to_string(), crate::secrets::new_token(""), true),
    };
    let password_hash = hash_password(&password)?;
    cfg.oauth.users.retain(|u| u.username != username);
    cfg.oauth.users.push(UserEntry {
        username: username.clone(),
        password_hash,
    });
    Ok(Bootstrapped {
        username,
        generated_password: generated.then_some(password),
    })
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

    #[test]
    fn bootstrap_adds_the_given_user_or_generates_an_admin() {
        let mut cfg = AuthzConfig::default();
        cfg.oauth.users.push(UserEntry {
            username: "alice".into(),
            password_hash: "$argon2id$old".into(),
        });
        let b = bootstrap(&mut cfg, Some(("alice", "alice-password"))).unwrap();
        assert_eq!((b.username.as_str(), b.generated_password), ("alice", None));
        assert_eq!(cfg.oauth.users.len(), 1, "the configured alice is replaced");
        let users = LocalUsers::new(&cfg.oauth.users);
        assert_eq!(
            users.verify("alice", "alice-password").as_deref(),
            Some("alice")
        );

        let b = bootstrap(&mut cfg, None).unwrap();
        let password = b.generated_password.clone().expect("generated");
        assert_eq!(b.username, "admin");
        assert!(!format!("{b:?}").contains(&password), "{b:?}");
        let users = LocalUsers::new(&cfg.oauth.users);
        assert_eq!(users.verify("admin", &password).as_deref(), Some("admin"));
        assert_eq!(cfg.oauth.users.len(), 2, "alice and admin");
    }
}
