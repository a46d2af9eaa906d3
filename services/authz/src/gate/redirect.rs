//! Redirect URI rules (RFC 9700 §2.1/§4.1, RFC 8252 §7, OIDC
//! `application_type`). Pure: a URI string in, a class or a rejection out.

use regwatch_checks::addr::{host_loopback, Loopback};
use url::Url;

use super::Rejection;
use crate::config::RedirectMode;
use crate::error::ErrorCode;

/// What kind of redirect a URI is, once admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectClass {
    /// `https://host/…`
    Https,
    /// `http://127.0.0.1:port/…` or `http://[::1]:port/…` (any port matches
    /// later), the address in any spelling the URL parser reads as loopback
    /// (`127.1`, `0x7f000001`, `[::ffff:7f00:1]`; `regwatch_checks::addr`).
    LoopbackIp,
    /// `http://localhost:port/…`: admitted, RFC 8252 §8.3 says NOT RECOMMENDED.
    LoopbackName,
    /// `com.example.app:/cb` (reverse-DNS private-use scheme).
    PrivateUseScheme,
}

impl RedirectClass {
    pub fn risk_signal(self) -> Option<&'static str> {
        match self {
            RedirectClass::Https => None,
            RedirectClass::LoopbackIp => Some("loopback_redirect"),
            RedirectClass::LoopbackName => Some("localhost_redirect"),
            RedirectClass::PrivateUseScheme => Some("private_use_scheme"),
        }
    }
}

/// Schemes that are never a redirect target.
const FORBIDDEN_SCHEMES: &[&str] = &[
    "javascript",
    "data",
    "file",
    "vbscript",
    "about",
    "blob",
    "ftp",
    "ws",
    "wss",
    "filesystem",
    "view-source",
    "chrome",
    "mailto",
    "tel",
    "sms",
];

fn reject(rule: &'static str, description: String) -> Rejection {
    Rejection::new(ErrorCode::InvalidRedirectUri, rule, description)
}

/// Options that change the rules.
pub struct RedirectRules<'a> {
    pub mode: RedirectMode,
    pub allow_non_reverse_dns_schemes: bool,
    /// `application_type` as registered (`None` when the client sent none).
    pub application_type: Option<&'a str>,
    pub max_len: usize,
    pub domain_denylist: &'a [String],
    pub domain_allowlist: &'a [String],
}

/// Check one redirect URI.
pub fn check(raw: &str, rules: &RedirectRules<'_>) -> Result<RedirectClass, Rejection> {
    let shown = crate::text::truncate_for_display(raw, 120);
    if raw.len() > rules.max_len {
        return Err(reject(
            "redirect.too_long",
            format!("redirect URI longer than {} bytes", rules.max_len),
        ));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(reject(
            "redirect.control_chars",
            format!("redirect URI {shown:?} has whitespace or control characters"),
        ));
    }
    if raw.contains('*') {
        return Err(reject(
            "redirect.wildcard",
            format!("redirect URI {shown:?} has a wildcard; redirect URIs are matched exactly"),
        ));
    }
    if raw.contains('#') {
        return Err(reject(
            "redirect.fragment",
            format!("redirect URI {shown:?} has a fragment (RFC 6749 §3.1.2)"),
        ));
    }
    let url = Url::parse(raw).map_err(|e| {
        reject(
            "redirect.unparseable",
            format!("redirect URI {shown:?} is not an absolute URI: {e}"),
        )
    })?;
    let scheme = url.scheme();
    if FORBIDDEN_SCHEMES.contains(&scheme) {
        return Err(reject(
            "redirect.forbidden_scheme",
            format!("redirect URI scheme {scheme:?} is not allowed"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(reject(
            "redirect.userinfo",
            format!("redirect URI {shown:?} carries userinfo"),
        ));
    }
    match scheme {
        "https" => {
            let host = url.host_str().ok_or_else(|| {
                reject(
                    "redirect.no_host",
                    format!("redirect URI {shown:?} has no host"),
                )
            })?;
            check_domain_lists(host, rules, &shown)?;
            Ok(RedirectClass::Https)
        }
        "http" => {
            // Names under `localhost` are refused: RFC 8252 §8.3 names only
            // `localhost`, and resolvers need not keep the rest local.
            match url.host().as_ref().and_then(host_loopback) {
                Some(Loopback::Address) => Ok(RedirectClass::LoopbackIp),
                Some(Loopback::Localhost) => Ok(RedirectClass::LoopbackName),
                Some(Loopback::UnderLocalhost) | None => Err(reject(
                    "redirect.plain_http",
                    format!("redirect URI {shown:?} uses plain http off loopback; use https"),
                )),
            }
        }
        other => {
            if rules.mode == RedirectMode::StrictMcp {
                return Err(reject(
                    "redirect.private_scheme_strict",
                    format!("redirect URI scheme {other:?}: this server admits only https and loopback http"),
                ));
            }
            if rules.application_type == Some("web") {
                return Err(reject(
                    "redirect.private_scheme_web_client",
                    format!("redirect URI scheme {other:?} needs application_type \"native\""),
                ));
            }
            if !other.contains('.') && !rules.allow_non_reverse_dns_schemes {
                return Err(reject(
                    "redirect.private_scheme_not_reverse_dns",
                    format!("private-use scheme {other:?} must be reverse-DNS, e.g. com.example.app (RFC 8252 §7.1)"),
                ));
            }
            if url.host_str().is_some_and(|h| !h.is_empty()) && other.contains('.') {
                // `com.example.app://evil.com/cb` reads like a web host to
                // people; RFC 8252 §7.1 puts the path right after one slash.
                return Err(reject(
                    "redirect.private_scheme_authority",
                    format!("private-use redirect {shown:?} must not have an authority (use {other}:/path)"),
                ));
            }
            Ok(RedirectClass::PrivateUseScheme)
        }
    }
}

fn host_matches(host: &str, domain: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    host == domain || host.ends_with(&format!(".{domain}"))
}

fn check_domain_lists(host: &str, rules: &RedirectRules<'_>, shown: &str) -> Result<(), Rejection> {
    if let Some(d) = rules.domain_denylist.iter().find(|d| host_matches(host, d)) {
        return Err(reject(
            "redirect.domain_denied",
            format!("redirect host of {shown:?} is under the denied domain {d:?}"),
        ));
    }
    if !rules.domain_allowlist.is_empty()
        && !rules.domain_allowlist.iter().any(|d| host_matches(host, d))
    {
        return Err(reject(
            "redirect.domain_not_allowed",
            format!("redirect host of {shown:?} is not on the allowed domain list"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(mode: RedirectMode, app: Option<&'static str>) -> RedirectRules<'static> {
        static DENY: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        RedirectRules {
            mode,
            allow_non_reverse_dns_schemes: false,
            application_type: app,
            max_len: 200,
            domain_denylist: DENY.get_or_init(|| vec!["evil.test".into()]),
            domain_allowlist: &[],
        }
    }

    #[test]
    fn table() {
        use RedirectClass::*;
        let ok: &[(&str, RedirectClass)] = &[
            ("https://app.example.com/cb", Https),
            ("https://app.example.com/cb?x=1", Https),
            ("http://127.0.0.1:33418/callback", LoopbackIp),
            ("http://127.0.0.1/callback", LoopbackIp),
            ("http://[::1]:8080/cb", LoopbackIp),
            ("http://localhost:6274/oauth/callback", LoopbackName),
            ("com.example.app:/oauth2redirect", PrivateUseScheme),
        ];
        for (u, class) in ok {
            assert_eq!(
                check(u, &rules(RedirectMode::Standard, None)).unwrap(),
                *class,
                "{u}"
            );
        }
        let bad: &[(&str, &str)] = &[
            ("https://app.example.com/cb#frag", "redirect.fragment"),
            ("https://app.example.com/cb#", "redirect.fragment"),
            ("https://*.example.com/cb", "redirect.wildcard"),
            ("https://user:pw@app.example.com/cb", "redirect.userinfo"),
            ("https://user@app.example.com/cb", "redirect.userinfo"),
            ("javascript:alert(1)", "redirect.forbidden_scheme"),
            ("data:text/html,hi", "redirect.forbidden_scheme"),
            ("file:///etc/passwd", "redirect.forbidden_scheme"),
            ("http://app.example.com/cb", "redirect.plain_http"),
            ("http://10.0.0.1/cb", "redirect.plain_http"),
            ("http://127.0.0.1.nip.io/cb", "redirect.plain_http"),
            ("/relative/cb", "redirect.unparseable"),
            ("not a uri", "redirect.control_chars"),
            ("myapp:/cb", "redirect.private_scheme_not_reverse_dns"),
            (
                "com.example.app://evil.com/cb",
                "redirect.private_scheme_authority",
            ),
            ("https://login.evil.test/cb", "redirect.domain_denied"),
            ("https://app.example.com/\u{0}", "redirect.control_chars"),
        ];
        for (u, rule) in bad {
            let r = check(u, &rules(RedirectMode::Standard, None)).unwrap_err();
            assert_eq!(r.rule, *rule, "{u}: {}", r.description);
            assert_eq!(r.error, ErrorCode::InvalidRedirectUri);
        }
        let long = format!("https://a.example.com/{}", "x".repeat(300));
        assert_eq!(
            check(&long, &rules(RedirectMode::Standard, None))
                .unwrap_err()
                .rule,
            "redirect.too_long"
        );
    }

    #[test]
    fn strict_mode_and_web_clients_refuse_private_schemes() {
        let u = "com.example.app:/cb";
        assert_eq!(
            check(u, &rules(RedirectMode::StrictMcp, None))
                .unwrap_err()
                .rule,
            "redirect.private_scheme_strict"
        );
        assert_eq!(
            check(u, &rules(RedirectMode::Standard, Some("web")))
                .unwrap_err()
                .rule,
            "redirect.private_scheme_web_client"
        );
        assert!(check(u, &rules(RedirectMode::Standard, Some("native"))).is_ok());
        assert!(check(
            "http://127.0.0.1:1/cb",
            &rules(RedirectMode::StrictMcp, None)
        )
        .is_ok());
    }

    #[test]
    fn allowlist_admits_only_listed_domains() {
        let allow = vec!["example.com".to_string()];
        let r = RedirectRules {
            domain_allowlist: &allow,
            ..rules(RedirectMode::Standard, None)
        };
        assert!(check("https://a.example.com/cb", &r).is_ok());
        assert!(check("https://example.com/cb", &r).is_ok());
        assert_eq!(
            check("https://badexample.com/cb", &r).unwrap_err().rule,
            "redirect.domain_not_allowed"
        );
        assert!(check("http://127.0.0.1:9/cb", &r).is_ok());
    }
}
