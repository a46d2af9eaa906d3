//! Bearer credentials in `Authorization` (RFC 6750 §2.1).
//!
//! The header is `Bearer` (any case: auth schemes are case-insensitive,
//! RFC 9110 §11.1), one or more spaces, then a `b64token`: letters,
//! digits, `-._~+/`, then optional `=` padding. Anything else in the token
//! (a space, a quote, a comma) is a malformed credential, refused before
//! anyone hashes or forwards it. Configured credentials (admin, API,
//! introspection tokens) are validated against the same [`is_token`], so
//! a server never starts with a token no client could present.

/// Longest token accepted, in bytes. Tokens regwatch issues are 47 bytes;
/// the cap bounds what is hashed or forwarded per request.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Why an `Authorization` value yields no bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// Not the Bearer scheme (another scheme, or no scheme): the request
    /// carries no bearer credentials at all (RFC 6750 §3.1: answer with a
    /// challenge and no error code).
    NotBearer,
    /// The Bearer scheme with an empty, over-long or ill-formed token
    /// (`invalid_token`, or `invalid_request`, RFC 6750 §3.1).
    Malformed,
}

/// The token of one `Authorization` header value.
pub fn parse(value: &str) -> Result<&str, BearerError> {
    // Optional whitespace around a field value is not part of it (RFC 9110 §5.5).
    let value = value.trim_matches([' ', '\t']);
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::NotBearer);
    }
    let token = rest.trim_start_matches(' ');
    if is_token(token) {
        Ok(token)
    } else {
        Err(BearerError::Malformed)
    }
}

/// `s` is a well-formed bearer token: `b64token` syntax, at most
/// [`MAX_TOKEN_LEN`] bytes.
pub fn is_token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && s.len() <= MAX_TOKEN_LEN
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use BearerError::{Malformed, NotBearer};

    #[test]
    fn parse_table() {
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN));
        let too_long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        let cases: &[(&str, Result<&str, BearerError>)] = &[
            ("Bearer abc.DEF-_~+/==", Ok("abc.DEF-_~+/==")),
            ("Bearer rwa_0123456789", Ok("rwa_0123456789")),
            // the scheme is case-insensitive
            ("bearer abc", Ok("abc")),
            ("BEARER abc", Ok("abc")),
            ("bEaReR abc", Ok("abc")),
            // spaces between scheme and token; whitespace around the value
            ("Bearer    abc", Ok("abc")),
            ("Bearer abc ", Ok("abc")),
            (" Bearer abc", Ok("abc")),
            (&long, Ok(&long[7..])),
            // no bearer credentials
            ("", Err(NotBearer)),
            ("Basic dXNlcjpwYXNz", Err(NotBearer)),
            ("Bearerabc", Err(NotBearer)),
            ("Token abc", Err(NotBearer)),
            ("Bearer\tabc", Err(NotBearer)),
            // bearer, but not a token
            ("Bearer", Err(Malformed)),
            ("Bearer ", Err(Malformed)),
            ("Bearer    ", Err(Malformed)),
            ("Bearer ===", Err(Malformed)),
            ("Bearer a b", Err(Malformed)),
            ("Bearer a\tb", Err(Malformed)),
            ("Bearer a\"b", Err(Malformed)),
            ("Bearer a,b", Err(Malformed)),
            ("Bearer a=b", Err(Malformed)),
            ("Bearer a!b", Err(Malformed)),
            ("Bearer ä", Err(Malformed)),
            (&too_long, Err(Malformed)),
        ];
        for (value, expected) in cases {
            assert_eq!(parse(value), *expected, "{value:?}");
        }
    }

    #[test]
    fn token_syntax() {
        assert!(is_token("0123456789abcdef"));
        assert!(is_token("abc=="));
        assert!(!is_token(""));
        assert!(!is_token("correct horse battery staple"));
        assert!(!is_token("0123456789abcdef\n"));
    }
}
