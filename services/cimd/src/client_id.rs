//! Syntactic checks on a URL-formatted `client_id` (CIMD §3, MCP 2025-11-25).

use std::net::IpAddr;

use regwatch_checks::addr::is_loopback_host;
use url::{Host, Url};

use crate::error::CimdError;
use crate::ip::is_forbidden_ip;

/// Longest `client_id` URL we accept, in bytes.
pub const MAX_CLIENT_ID_LEN: usize = 2048;

/// Validate a URL-formatted `client_id` for production: `https` only.
///
/// Equivalent to [`validate_client_id_url_with`] with the development flag
/// off. See there for the rules.
pub fn validate_client_id_url(input: &str) -> Result<Url, CimdError> {
    validate_client_id_url_with(input, false)
}

/// Validate a URL-formatted `client_id`.
///
/// Rules, checked on the raw text as well as on the parsed URL (the parser
/// silently normalises dot segments, backslashes and whitespace, so checking
/// only its output would accept what the draft forbids):
///
/// - at most [`MAX_CLIENT_ID_LEN`] bytes of printable ASCII, no spaces and no
///   backslashes (hosts must be given as A-labels);
/// - scheme `https`; `http` only when `allow_loopback_dev` is set *and* the
///   host is a loopback address or `localhost`;
/// - a host, no userinfo (not even an empty `@`), no query (not even an
///   empty `?`), no fragment;
/// - a path other than `/`, without `.` or `..` segments (also
///   percent-encoded ones);
/// - an IP-literal host must pass [`is_forbidden_ip`] (IP literals never go
///   through the resolver, so this is where they are checked), refused as
///   [`CimdError::ForbiddenAddress`].
///
/// Returns the parsed URL to fetch. The document's `client_id` is compared
/// with `input` itself, not with the parsed URL's serialisation.
pub fn validate_client_id_url_with(
    input: &str,
    allow_loopback_dev: bool,
) -> Result<Url, CimdError> {
    if input.is_empty() {
        return Err(CimdError::invalid_url("empty"));
    }
    if input.len() > MAX_CLIENT_ID_LEN {
        return Err(CimdError::invalid_url(format!(
            "longer than {MAX_CLIENT_ID_LEN} bytes"
        )));
    }
    if let Some(bad) = input.chars().find(|c| !c.is_ascii_graphic() || *c == '\\') {
        return Err(CimdError::invalid_url(format!(
            "forbidden character {bad:?} (printable ascii only, no backslash)"
        )));
    }

    let scheme_end = input
        .find("://")
        .ok_or_else(|| CimdError::invalid_url("not an absolute url with an authority"))?;
    let scheme = &input[..scheme_end];
    if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
        return Err(CimdError::invalid_url("scheme must be https"));
    }

    // Raw authority and path, before the parser normalises anything.
    let rest = &input[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if authority.contains('@') {
        return Err(CimdError::invalid_url("userinfo is not allowed"));
    }
    let after_authority = &rest[authority_end..];
    let raw_path_end = after_authority
        .find(['?', '#'])
        .unwrap_or(after_authority.len());
    let raw_path = &after_authority[..raw_path_end];
    for segment in raw_path.split('/') {
        if is_dot_segment(segment) {
            return Err(CimdError::invalid_url(
                "path must not contain . or .. segments",
            ));
        }
    }

    let url = Url::parse(input).map_err(|e| CimdError::invalid_url(e.to_string()))?;

    if !url.username().is_empty() || url.password().is_some() {
        return Err(CimdError::invalid_url("userinfo is not allowed"));
    }
    if url.query().is_some() {
        return Err(CimdError::invalid_url("query is not allowed"));
    }
    if url.fragment().is_some() {
        return Err(CimdError::invalid_url("fragment is not allowed"));
    }
    if raw_path.is_empty() || url.path() == "/" || url.path().is_empty() {
        return Err(CimdError::invalid_url("path must not be empty or /"));
    }

    let host = url
        .host()
        .ok_or_else(|| CimdError::invalid_url("host is required"))?;
    let literal: Option<IpAddr> = match host {
        Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        Host::Domain("") => return Err(CimdError::invalid_url("host is required")),
        Host::Domain(_) => None,
    };
    if let Some(addr) = literal {
        if is_forbidden_ip(addr, allow_loopback_dev) {
            return Err(CimdError::ForbiddenAddress { addr });
        }
    }

    match url.scheme() {
        "https" => {}
        "http" => {
            if !(allow_loopback_dev && is_loopback_host(&host)) {
                return Err(CimdError::invalid_url(
                    "scheme must be https (http is only allowed for loopback in development)",
                ));
            }
        }
        _ => return Err(CimdError::invalid_url("scheme must be https")),
    }

    Ok(url)
}

/// `.` or `..`, including the percent-encoded spellings the URL standard
/// treats the same way.
fn is_dot_segment(segment: &str) -> bool {
    let lower = segment.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(input, dev flag, expected)` where expected is `Ok(())` or the
    /// reason code of the error.
    fn check(input: &str, dev: bool, expected: Result<(), &str>) {
        let got = validate_client_id_url_with(input, dev)
            .map(|_| ())
            .map_err(|e| e.reason_code());
        assert_eq!(got, expected, "{input} (dev flag {dev})");
    }

    #[test]
    fn url_validation_table() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_CLIENT_ID_LEN));
        let just_fits = format!(
            "https://example.com/{}",
            "a".repeat(MAX_CLIENT_ID_LEN - "https://example.com/".len())
        );
        let cases: &[(&str, bool, Result<(), &str>)] = &[
            // accepted
            ("https://example.com/client", false, Ok(())),
            ("https://example.com/clients/", false, Ok(())),
            ("https://example.com:8443/client.json", false, Ok(())),
            (
                "https://app.example.com/oauth/client-metadata.json",
                false,
                Ok(()),
            ),
            (&just_fits, false, Ok(())),
            ("https://8.8.8.8/client", false, Ok(())),
            ("https://[2606:4700::1111]/client", false, Ok(())),
            // scheme
            ("http://example.com/client", false, Err("invalid_url")),
            ("http://example.com/client", true, Err("invalid_url")),
            ("ftp://example.com/client", false, Err("invalid_url")),
            ("file:///etc/passwd", false, Err("invalid_url")),
            ("javascript://example.com/x", false, Err("invalid_url")),
            ("example.com/client", false, Err("invalid_url")),
            ("https:example.com/client", false, Err("invalid_url")),
            // path
            ("https://example.com", false, Err("invalid_url")),
            ("https://example.com/", false, Err("invalid_url")),
            ("https://example.com/a/../client", false, Err("invalid_url")),
            ("https://example.com/./client", false, Err("invalid_url")),
            ("https://example.com/client/..", false, Err("invalid_url")),
            (
                "https://example.com/a/%2e%2e/client",
                false,
                Err("invalid_url"),
            ),
            (
                "https://example.com/a/%2E/client",
                false,
                Err("invalid_url"),
            ),
            (
                "https://example.com/a/.%2e/client",
                false,
                Err("invalid_url"),
            ),
            (
                "https://example.com/a\\..\\client",
                false,
                Err("invalid_url"),
            ),
            // dots inside a segment are fine
            ("https://example.com/.well-known/client", false, Ok(())),
            ("https://example.com/client..json", false, Ok(())),
            // fragment, query, userinfo
            ("https://example.com/client#frag", false, Err("invalid_url")),
            ("https://example.com/client#", false, Err("invalid_url")),
            ("https://example.com/client?x=1", false, Err("invalid_url")),
            ("https://example.com/client?", false, Err("invalid_url")),
            (
                "https://user:pass@example.com/client",
                false,
                Err("invalid_url"),
            ),
            ("https://user@example.com/client", false, Err("invalid_url")),
            ("https://@example.com/client", false, Err("invalid_url")),
            // characters and length
            ("", false, Err("invalid_url")),
            (" https://example.com/client", false, Err("invalid_url")),
            ("https://example.com/cli\tent", false, Err("invalid_url")),
            ("https://example.com/client\n", false, Err("invalid_url")),
            ("https://exämple.com/client", false, Err("invalid_url")),
            (&long, false, Err("invalid_url")),
            // IP literals are checked here, before any request
            ("https://127.0.0.1/client", false, Err("forbidden_address")),
            ("https://10.0.0.1/client", false, Err("forbidden_address")),
            (
                "https://169.254.169.254/latest/meta-data",
                false,
                Err("forbidden_address"),
            ),
            (
                "https://169.254.169.254/latest/meta-data",
                true,
                Err("forbidden_address"),
            ),
            ("https://[::1]/client", false, Err("forbidden_address")),
            (
                "https://[::ffff:127.0.0.1]/client",
                false,
                Err("forbidden_address"),
            ),
            ("https://[fd00::1]/client", true, Err("forbidden_address")),
            ("https://0x7f.1/client", false, Err("forbidden_address")),
            ("https://2130706433/client", false, Err("forbidden_address")),
            ("https://0.0.0.0/client", true, Err("forbidden_address")),
            (
                "http://127.0.0.1:8080/client",
                false,
                Err("forbidden_address"),
            ),
            // development flag: loopback over http
            ("http://127.0.0.1:8080/client", true, Ok(())),
            ("http://[::1]:8080/client", true, Ok(())),
            ("http://localhost:8080/client", true, Ok(())),
            ("http://localhost:8080/client", false, Err("invalid_url")),
            ("https://127.0.0.1/client", true, Ok(())),
            ("http://10.0.0.1/client", true, Err("forbidden_address")),
            // loopback in any spelling is loopback (regwatch_checks::addr)
            ("http://0x7f000001:8080/client", true, Ok(())),
            (
                "http://0x7f000001:8080/client",
                false,
                Err("forbidden_address"),
            ),
            ("http://[::ffff:7f00:1]:8080/client", true, Ok(())),
            // names under localhost are not admitted over http
            ("http://app.localhost:8080/client", true, Err("invalid_url")),
        ];
        for (input, dev, expected) in cases {
            check(input, *dev, *expected);
        }
    }

    #[test]
    fn production_entry_point_has_flag_off() {
        assert!(validate_client_id_url("http://127.0.0.1:8080/client").is_err());
        assert!(validate_client_id_url("https://example.com/client").is_ok());
    }
}
