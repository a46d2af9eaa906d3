//! Secrets and tokens: generated from the OS RNG, kept only as SHA-256
//! hashes, compared in constant time.
//!
//! Every token this server issues carries 256 bits of entropy, so a single
//! unsalted SHA-256 is enough at rest: there is nothing to brute-force.
//! (User passwords are low-entropy and use argon2 instead; see `users`.)

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A SHA-256 of a token, hex encoded (the form stored and indexed).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

impl std::fmt::Debug for TokenHash {
    // A hash is not a secret, but keep log lines short and uniform.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenHash({}…)", &self.0[..8.min(self.0.len())])
    }
}

impl TokenHash {
    /// Constant-time equality.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }

    /// A short public identifier derived from the hash, safe for events.
    pub fn public_id(&self) -> String {
        self.0[..16.min(self.0.len())].to_string()
    }
}

/// A fresh random token: `prefix` + 43 base64url characters (256 bits).
pub fn new_token(prefix: &str) -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(b))
}

/// A fresh client identifier (128 bits, not a secret, not guessable).
pub fn new_client_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("rwc_{}", URL_SAFE_NO_PAD.encode(b))
}

pub fn hash_token(token: &str) -> TokenHash {
    let d = Sha256::digest(token.as_bytes());
    let mut s = String::with_capacity(64);
    for byte in d {
        use std::fmt::Write;
        let _ = write!(s, "{byte:02x}");
    }
    TokenHash(s)
}

/// Whether `presented` hashes to one of `known`, checking all of them in
/// constant time per entry (no early exit on a match).
pub fn matches_any(presented: &str, known: &[TokenHash]) -> bool {
    let h = hash_token(presented);
    known.iter().fold(false, |acc, k| acc | k.ct_eq(&h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hash_stably() {
        let a = new_token("rat_");
        let b = new_token("rat_");
        assert_ne!(a, b);
        assert!(a.starts_with("rat_") && a.len() == 4 + 43);
        assert!(hash_token(&a).ct_eq(&hash_token(&a)));
        assert!(!hash_token(&a).ct_eq(&hash_token(&b)));
        assert_eq!(
            hash_token("abc").0,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(matches_any(&a, &[hash_token(&b), hash_token(&a)]));
        assert!(!matches_any("nope", &[hash_token(&b)]));
        assert!(!format!("{:?}", hash_token(&a)).contains(&hash_token(&a).0));
    }
}
