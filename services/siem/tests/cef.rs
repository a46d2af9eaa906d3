//! CEF: arbitrary values round-trip through the encoder and a parser
//! written here from the CEF specification (independent of the encoder's
//! escaping code), and every sample parses.

mod common;

use common::samples;
use proptest::prelude::*;
use regwatch_siem::cef::{self, Header};

/// A parsed CEF line: the seven header fields after `CEF:0` and the
/// extension pairs in order.
#[derive(Debug, PartialEq)]
struct Parsed {
    header: Vec<String>,
    extension: Vec<(String, String)>,
}

/// Parses one CEF line. Header: split on `|` not escaped by `\`; `\|` and
/// `\\` unescape. Extension: a key is the run of key characters right
/// before an unescaped `=`, preceded by the start or a space; its value
/// runs to the space before the next key. Values unescape `\=`, `\\`,
/// `\n`, `\r`.
fn parse(line: &str) -> Result<Parsed, String> {
    let rest = line.strip_prefix("CEF:").ok_or("no CEF: prefix")?;
    let mut header = Vec::new();
    let mut field = String::new();
    let mut chars = rest.char_indices();
    let mut ext_start = None;
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '|')) => field.push('|'),
                Some((_, '\\')) => field.push('\\'),
                other => return Err(format!("bad header escape {other:?}")),
            },
            '|' => {
                header.push(std::mem::take(&mut field));
                if header.len() == 7 {
                    ext_start = Some(i + 1);
                    break;
                }
            }
            c => field.push(c),
        }
    }
    let ext = &rest[ext_start.ok_or("fewer than 8 fields")?..];

    // Positions of unescaped '=' (byte offsets into ext).
    let bytes: Vec<(usize, char)> = ext.char_indices().collect();
    let mut equals = Vec::new();
    let mut k = 0;
    while k < bytes.len() {
        match bytes[k].1 {
            '\\' => k += 2,
            '=' => {
                equals.push(bytes[k].0);
                k += 1
            }
            _ => k += 1,
        }
    }
    let is_key = |c: char| c.is_ascii_alphanumeric() || c == '_';
    // For each '=', where its key starts.
    let mut keys = Vec::new();
    for &eq in &equals {
        let before = &ext[..eq];
        let start = before
            .char_indices()
            .rev()
            .take_while(|(_, c)| is_key(*c))
            .last()
            .map(|(i, _)| i)
            .ok_or_else(|| format!("'=' without a key at {eq}"))?;
        if start != 0 && !before[..start].ends_with(' ') {
            return Err(format!("key at {start} not preceded by a space"));
        }
        keys.push((start, eq));
    }
    if keys.first().is_some_and(|(s, _)| *s != 0) || (keys.is_empty() && !ext.is_empty()) {
        return Err("extension does not start with a key".into());
    }
    let mut extension = Vec::new();
    for (n, &(start, eq)) in keys.iter().enumerate() {
        let end = keys.get(n + 1).map(|(s, _)| s - 1).unwrap_or(ext.len());
        let key = ext[start..eq].to_string();
        extension.push((key, unescape_value(&ext[eq + 1..end])?));
    }
    Ok(Parsed { header, extension })
}

fn unescape_value(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut it = raw.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('\\') => out.push('\\'),
            Some('=') => out.push('='),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            other => return Err(format!("bad extension escape {other:?} in {raw:?}")),
        }
    }
    Ok(out)
}

const KEYS: [&str; 6] = ["msg", "cs1", "cs2", "suser", "request", "reason"];

/// Any text, weighted towards the characters CEF escapes.
fn text() -> impl Strategy<Value = String> {
    let tricky = prop::sample::select(vec![
        "|", "\\", "=", "\n", "\r", " ", "\\n", "a=b", " k=v", "é", "Аcme", "🦀", "\u{202e}", "\t",
    ]);
    prop::collection::vec(
        prop_oneof![any::<String>(), tricky.prop_map(String::from)],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn extension_values_round_trip(values in prop::collection::vec(text(), KEYS.len())) {
        let header = Header { signature_id: "client.registered", name: "n", severity: 3 };
        let ext: Vec<(&str, String)> = KEYS.iter().copied().zip(values.iter().cloned()).collect();
        let line = cef::line(&header, &ext);
        prop_assert!(!line.contains('\n') && !line.contains('\r'), "one line: {line:?}");
        let parsed = parse(&line).map_err(|e| TestCaseError::fail(format!("{e}: {line:?}")))?;
        let want: Vec<(String, String)> =
            ext.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        prop_assert_eq!(parsed.extension, want);
    }

    #[test]
    fn header_fields_round_trip(sig in text(), name in text(), severity in any::<u8>()) {
        let header = Header { signature_id: &sig, name: &name, severity };
        let line = cef::line(&header, &[("msg", name.clone())]);
        prop_assert!(!line.contains('\n') && !line.contains('\r'), "one line: {line:?}");
        let parsed = parse(&line).map_err(|e| TestCaseError::fail(format!("{e}: {line:?}")))?;
        // Line breaks cannot live in a header field: they become spaces.
        let flat = |s: &str| s.replace(['\r', '\n'], " ");
        prop_assert_eq!(&parsed.header[0], "0");
        prop_assert_eq!(&parsed.header[1], "regwatch");
        prop_assert_eq!(&parsed.header[3], env!("CARGO_PKG_VERSION"));
        prop_assert_eq!(&parsed.header[4], &flat(&sig));
        prop_assert_eq!(&parsed.header[5], &flat(&name));
        let sev: u8 = parsed.header[6].parse().unwrap();
        prop_assert_eq!(sev, severity.min(10));
        prop_assert_eq!(&parsed.extension[0].1, &name);
    }
}

#[test]
fn every_sample_renders_a_parsable_line() {
    let mut lines: Vec<(String, String)> = samples::events()
        .iter()
        .map(|e| (e.event_type().as_str().to_string(), cef::event(e)))
        .collect();
    lines.extend(
        samples::alerts()
            .iter()
            .map(|a| (format!("alert.{}", a.kind.as_str()), cef::alert(a))),
    );
    for (signature, line) in lines {
        let p = parse(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(p.header[4], signature, "{line}");
        let sev: u8 = p.header[6].parse().unwrap();
        assert!(sev <= 10, "{line}");
        let get = |k: &str| {
            p.extension
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert!(get("rt").unwrap().parse::<i64>().is_ok(), "{line}");
        assert!(get("externalId").is_some(), "{line}");
        assert!(get("act").is_some(), "{line}");
        // A custom field always travels with its label.
        for slot in ["cs1", "cs2", "cs3", "cs4", "cs5", "cs6", "cn1", "cfp1"] {
            assert_eq!(
                get(slot).is_some(),
                get(&format!("{slot}Label")).is_some(),
                "{slot} without its label: {line}"
            );
        }
        let keys: Vec<&str> = p.extension.iter().map(|(k, _)| k.as_str()).collect();
        let unique: std::collections::HashSet<&&str> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "duplicate key: {line}");
    }
}

#[test]
fn registration_line_carries_the_standard_keys() {
    let e = &samples::events()[0];
    let line = cef::event(e);
    let p = parse(&line).unwrap();
    let get = |k: &str| {
        p.extension
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("src").as_deref(), Some("203.0.113.7"));
    assert_eq!(
        get("requestClientApplication").as_deref(),
        Some("acme-mcp/1.4 (node 22)")
    );
    assert_eq!(get("cs1Label").as_deref(), Some("client_id"));
    assert_eq!(get("cs1"), e.client_id.clone());
    assert_eq!(get("outcome").as_deref(), Some("success"));
    assert_eq!(
        get("rt"),
        Some(e.occurred_at.timestamp_millis().to_string())
    );
    assert_eq!(p.header[5], "OAuth client registered");
}
