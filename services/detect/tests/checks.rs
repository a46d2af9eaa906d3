//! Redirect and name analysis ask `regwatch_checks`, so the detectors
//! classify a form exactly as the authorization server's gate and consent
//! page do (`services/authz/tests/checks.rs` holds the same cases).

use regwatch_checks::text::{BIDI_CONTROLS, DEFAULT_IGNORABLE};
use regwatch_detect::host::{analyze_redirect, RedirectClass};
use regwatch_detect::text::analyze_name;

#[test]
fn every_loopback_spelling_is_a_loopback_redirect() {
    for uri in [
        "http://0x7f000001:9999/cb",
        "http://2130706433/cb",
        "http://127.1/cb",
        "http://0177.0.0.1/cb",
        "http://127.000.000.001/cb",
        "http://[::1]/cb",
        "http://[0:0:0:0:0:0:0:1]/cb",
        "http://[::ffff:127.0.0.1]/cb",
        "http://[::ffff:7f00:1]/cb",
        "http://localhost/cb",
        "http://app.localhost/cb",
    ] {
        let r = analyze_redirect(uri);
        assert_eq!(r.class, RedirectClass::Loopback, "{uri}");
        assert_eq!(r.identity_host(), Some("loopback"), "{uri}");
        assert_eq!(r.registrable, None, "{uri}");
    }
}

#[test]
fn lookalike_and_internal_hosts_are_not_loopback() {
    for (uri, class) in [
        ("http://127.0.0.1.evil.example/cb", RedirectClass::Http),
        ("http://0x7f000001.evil.example/", RedirectClass::Http),
        ("http://128.0.0.1/", RedirectClass::Http),
        ("http://[::2]/", RedirectClass::PrivateIp),
        // The shared internal-address check is the CIMD fetcher's: more
        // than RFC 1918, CGNAT and link-local.
        ("http://0.0.0.0/", RedirectClass::PrivateIp),
        ("https://169.254.169.254/", RedirectClass::PrivateIp),
        ("https://192.0.2.1/", RedirectClass::PrivateIp),
        ("https://[64:ff9b::a00:1]/", RedirectClass::PrivateIp),
        ("https://[::ffff:10.0.0.1]/", RedirectClass::PrivateIp),
        ("https://8.8.8.8/", RedirectClass::Https),
    ] {
        assert_eq!(analyze_redirect(uri).class, class, "{uri}");
    }
}

/// The same list as the authorization server's gate and consent page:
/// every range of it, first and last code point.
#[test]
fn every_hidden_character_is_reported() {
    for r in DEFAULT_IGNORABLE.iter().chain(BIDI_CONTROLS) {
        for c in [*r.start(), *r.end()] {
            let a = analyze_name(&format!("Chat{c}GPT"));
            assert!(a.has_hidden_characters(), "U+{:04X}", u32::from(c));
            assert_eq!(a.key, analyze_name("ChatGPT").key, "U+{:04X}", u32::from(c));
        }
    }
    let a = analyze_name("Chat\u{3164}GPT\u{E0041}");
    assert_eq!(a.invisible, vec!["U+3164".to_owned(), "U+E0041".to_owned()]);
    assert!(a.bidi_controls.is_empty());
    let b = analyze_name("\u{2067}ChatGPT");
    assert_eq!(b.bidi_controls, vec!["U+2067".to_owned()]);
    assert!(b.invisible.is_empty());
}
