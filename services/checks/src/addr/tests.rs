use std::net::IpAddr;

use url::Url;

use super::*;

use IpScope::{Global, Internal};
const LOOP: IpScope = IpScope::Loopback;

/// `(address, scope)`. A CIMD fetch refuses everything but `Global`
/// (and `Loopback` with the development flag).
const SCOPES: &[(&str, IpScope)] = &[
    // loopback
    ("127.0.0.1", LOOP),
    ("127.255.255.254", LOOP),
    ("127.1.2.3", LOOP),
    ("::1", LOOP),
    ("::ffff:127.0.0.1", LOOP),
    ("::ffff:7f00:1", LOOP),
    // private and internal IPv4
    ("10.0.0.1", Internal),
    ("10.255.255.255", Internal),
    ("172.16.0.1", Internal),
    ("172.31.255.255", Internal),
    ("192.168.1.1", Internal),
    ("169.254.169.254", Internal),
    ("169.254.0.1", Internal),
    ("100.64.0.1", Internal),
    ("100.127.255.255", Internal),
    ("0.0.0.0", Internal),
    ("0.1.2.3", Internal),
    ("255.255.255.255", Internal),
    ("240.0.0.1", Internal),
    ("224.0.0.251", Internal),
    ("239.255.255.250", Internal),
    ("192.0.0.8", Internal),
    ("192.0.2.10", Internal),
    ("198.51.100.7", Internal),
    ("203.0.113.7", Internal),
    ("198.18.0.1", Internal),
    ("198.19.255.255", Internal),
    ("192.88.99.1", Internal),
    // neighbours of internal blocks stay global
    ("172.15.255.255", Global),
    ("172.32.0.0", Global),
    ("100.63.255.255", Global),
    ("100.128.0.0", Global),
    ("198.17.255.255", Global),
    ("198.20.0.0", Global),
    ("11.0.0.1", Global),
    ("126.255.255.255", Global),
    ("128.0.0.0", Global),
    ("128.0.0.1", Global),
    ("223.255.255.255", Global),
    // public
    ("8.8.8.8", Global),
    ("1.1.1.1", Global),
    ("2606:4700::1111", Global),
    ("2a00:1450:4001:80b::200e", Global),
    // IPv6 special use
    ("::", Internal),
    ("::2", Internal),
    ("fe80::1", Internal),
    ("febf::1", Internal),
    ("fec0::1", Internal),
    ("fc00::1", Internal),
    ("fd12:3456:789a::1", Internal),
    ("ff02::1", Internal),
    ("100::1", Internal),
    ("2001:db8::1", Internal),
    ("2001::1", Internal),
    ("2001:2::1", Internal),
    ("3fff::1", Internal),
    ("5f00::1", Internal),
    ("4000::1", Internal),
    // IPv6 forms embedding an IPv4 address are judged by it; through a
    // translator, loopback is the translator's: internal, not ours.
    ("::ffff:10.0.0.1", Internal),
    ("::ffff:169.254.169.254", Internal),
    ("::ffff:0.0.0.0", Internal),
    ("::ffff:8.8.8.8", Global),
    ("::127.0.0.1", Internal),
    ("::10.0.0.1", Internal),
    ("::8.8.8.8", Internal),
    ("::ffff:0:10.0.0.1", Internal),
    ("64:ff9b::a00:1", Internal),
    ("64:ff9b::7f00:1", Internal),
    ("64:ff9b::a9fe:a9fe", Internal),
    ("64:ff9b::808:808", Global),
    ("64:ff9b:1::a00:1", Internal),
    ("2002:0a00:0001::", Internal),
    ("2002:7f00:0001::1", Internal),
    ("2002:a9fe:a9fe::", Internal),
    ("2002:0808:0808::1", Global),
];

#[test]
fn ip_scope_table() {
    for &(text, scope) in SCOPES {
        let ip: IpAddr = text.parse().expect("test table holds valid addresses");
        assert_eq!(ip_scope(ip), scope, "{text}");
        assert_eq!(is_loopback_ip(ip), scope == LOOP, "{text}");
        assert_eq!(is_internal_ip(ip), scope != Global, "{text}");
    }
}

/// Every spelling of a loopback host that the URL parser accepts, one
/// case each: the consent page, the gate, the CIMD fetcher and the
/// detectors all get the same answer from these functions.
const LOOPBACK_URLS: &[(&str, Option<Loopback>)] = &[
    ("http://127.0.0.1/cb", Some(Loopback::Address)),
    ("http://127.0.0.1:33418/cb", Some(Loopback::Address)),
    ("http://0x7f000001:9999/cb", Some(Loopback::Address)),
    ("http://2130706433/cb", Some(Loopback::Address)),
    ("http://127.1/cb", Some(Loopback::Address)),
    ("http://0177.0.0.1/cb", Some(Loopback::Address)),
    ("http://127.000.000.001/cb", Some(Loopback::Address)),
    ("http://0x7f.1/cb", Some(Loopback::Address)),
    ("http://017700000001/cb", Some(Loopback::Address)),
    ("http://127.0.0.1./cb", Some(Loopback::Address)),
    ("http://[::1]/cb", Some(Loopback::Address)),
    ("http://[0:0:0:0:0:0:0:1]/cb", Some(Loopback::Address)),
    ("http://[::ffff:127.0.0.1]/cb", Some(Loopback::Address)),
    ("http://[::ffff:7f00:1]/cb", Some(Loopback::Address)),
    ("http://localhost/cb", Some(Loopback::Localhost)),
    ("http://LocalHost:8080/cb", Some(Loopback::Localhost)),
    ("http://localhost./cb", Some(Loopback::Localhost)),
    ("http://app.localhost/cb", Some(Loopback::UnderLocalhost)),
    ("https://127.1/cb", Some(Loopback::Address)),
    // negatives
    ("http://127.0.0.1.evil.example/cb", None),
    ("http://0x7f000001.evil.example/", None),
    ("http://localhost.evil.example/", None),
    ("http://evillocalhost/", None),
    ("http://[::2]/", None),
    ("http://128.0.0.1/", None),
    ("http://0.0.0.0/", None),
    ("http://[::]/", None),
    ("http://[64:ff9b::7f00:1]/", None),
    ("http://[::127.0.0.1]/", None),
    ("http://10.0.0.1/", None),
    ("https://app.example.com/cb", None),
    // a private-use scheme's host is not a network host
    ("cursor://127.0.0.1/cb", None),
    ("com.example.app://localhost/cb", None),
];

#[test]
fn loopback_url_table() {
    for &(text, expected) in LOOPBACK_URLS {
        let url = Url::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(url_loopback(&url), expected, "{text}");
        if matches!(url.scheme(), "http" | "https") {
            let host = url.host().expect("http URLs have a host");
            assert_eq!(host_loopback(&host), expected, "{text}");
            assert_eq!(
                is_loopback_host(&host),
                matches!(expected, Some(Loopback::Address | Loopback::Localhost)),
                "{text}"
            );
        }
        let http_loopback = url.scheme() == "http"
            && matches!(expected, Some(Loopback::Address | Loopback::Localhost));
        assert_eq!(is_loopback_http(text), http_loopback, "{text}");
    }
}

#[test]
fn the_parser_normalizes_what_a_prefix_check_would_miss() {
    // The reason string checks are gone: the raw text does not start with
    // "http://127." but the browser connects to 127.0.0.1.
    let url = Url::parse("http://0x7f000001:9999/cb").expect("valid");
    assert_eq!(url.host_str(), Some("127.0.0.1"));
    assert_eq!(url.port(), Some(9999));
}

#[test]
fn unparseable_and_hostless_uris_are_not_loopback() {
    for text in [
        "",
        "not a uri",
        "/relative/cb",
        "http://",
        "mailto:a@localhost",
    ] {
        assert!(!is_loopback_http(text), "{text}");
    }
}

#[test]
fn domain_hosts_are_matched_by_name_only() {
    use url::Host;
    assert_eq!(
        host_loopback(&Host::Domain("LOCALHOST")),
        Some(Loopback::Localhost)
    );
    assert_eq!(
        host_loopback(&Host::Domain("a.b.localhost.")),
        Some(Loopback::UnderLocalhost)
    );
    assert_eq!(host_loopback(&Host::Domain(".localhost")), None);
    assert_eq!(host_loopback(&Host::Domain("localhost..")), None);
    assert_eq!(
        host_loopback(&Host::Domain("ünïcode.localhost")),
        Some(Loopback::UnderLocalhost)
    );
    assert_eq!(host_loopback(&Host::Domain("ü")), None);
}
