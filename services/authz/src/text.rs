//! Small pure string rules shared by the configuration, the gate, the
//! cores and the HTTP shell: cutting untrusted text for display, and the
//! RFC 6749 scope syntax. A leaf: it imports nothing from the crate.

/// Cut a string for display in an error or event, on a char boundary.
pub fn truncate_for_display(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max_chars).collect();
        t.push('…');
        t
    }
}

/// Whether `s` is an RFC 6749 §3.3 scope token.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// The tokens of a space-separated scope string (empty tokens skipped).
pub fn scope_tokens(s: &str) -> impl Iterator<Item = &str> {
    s.split(' ').filter(|x| !x.is_empty())
}
