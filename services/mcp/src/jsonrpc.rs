//! Just enough JSON-RPC to find the tool calls in a POST body (pure).
//!
//! The body is read here with the same parser rmcp uses (`serde_json`), and
//! anything this reader cannot interpret unambiguously is refused rather
//! than passed on: a message whose `method` or `params.name` appears twice,
//! or is not a string, could otherwise mean one tool to this check and
//! another to rmcp.

use serde::Deserialize;
use serde_json::value::RawValue;

/// Most `tools/call` messages checked in one batch.
pub const MAX_CALLS_PER_BODY: usize = 16;

/// MCP tool names (2025-11-25): 1–128 characters from `[A-Za-z0-9_.-]`.
pub const MAX_TOOL_NAME_LEN: usize = 128;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("the body is not a JSON-RPC message or batch: {0}")]
    Malformed(String),
    #[error("tools/call without a valid params.name")]
    BadToolName,
    #[error("more than {MAX_CALLS_PER_BODY} tool calls in one body")]
    TooManyCalls,
}

// Derived deserializers refuse duplicate fields, which is the point: a
// `serde_json::Value` would silently keep the last one.
#[derive(Deserialize)]
struct Message<'a> {
    #[serde(default)]
    method: Option<String>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CallParams {
    name: String,
}

/// The tool names of every `tools/call` in `body` (a message or a batch),
/// in order. Empty when there is none.
pub fn tool_calls(body: &[u8]) -> Result<Vec<String>, BodyError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let messages: Vec<Message<'_>> = if first == Some(&b'[') {
        serde_json::from_slice(body).map_err(|e| BodyError::Malformed(e.to_string()))?
    } else {
        vec![serde_json::from_slice(body).map_err(|e| BodyError::Malformed(e.to_string()))?]
    };
    let mut names = Vec::new();
    for m in messages {
        if m.method.as_deref() != Some("tools/call") {
            continue;
        }
        let params = m.params.ok_or(BodyError::BadToolName)?;
        // A derived deserializer would also read `["name"]` positionally;
        // MCP params are an object, so anything else is refused.
        if !params.get().starts_with('{') {
            return Err(BodyError::BadToolName);
        }
        let p: CallParams =
            serde_json::from_str(params.get()).map_err(|_| BodyError::BadToolName)?;
        if !is_tool_name(&p.name) {
            return Err(BodyError::BadToolName);
        }
        if names.len() == MAX_CALLS_PER_BODY {
            return Err(BodyError::TooManyCalls);
        }
        names.push(p.name);
    }
    Ok(names)
}

fn is_tool_name(s: &str) -> bool {
    (1..=MAX_TOOL_NAME_LEN).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: &str, expected: Result<&[&str], ()>) {
        let got = tool_calls(body.as_bytes());
        match expected {
            Ok(names) => assert_eq!(
                got.as_deref().ok(),
                Some(&names.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..]),
                "{body}"
            ),
            Err(()) => assert!(got.is_err(), "{body} -> {got:?}"),
        }
    }

    #[test]
    fn tool_calls_are_found() {
        check(
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
            Ok(&[]),
        );
        check(
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            Ok(&[]),
        );
        check(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#, Ok(&[]));
        check(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[1]}"#,
            Ok(&[]),
        );
        check(
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_item","arguments":{"id":"a"}}}"#,
            Ok(&["get_item"]),
        );
        check(
            r#" {"method":"tools\/call","params":{"name":"delete_item"}}"#,
            Ok(&["delete_item"]),
        );
        check(
            r#"[{"method":"tools/list"},{"method":"tools/call","params":{"name":"list_items"}},{"method":"tools/call","params":{"name":"delete_item"}}]"#,
            Ok(&["list_items", "delete_item"]),
        );
    }

    #[test]
    fn ambiguous_or_bad_bodies_are_refused() {
        check("", Err(()));
        check("not json", Err(()));
        check(
            r#"{"method":"tools/list","method":"tools/call","params":{"name":"delete_item"}}"#,
            Err(()),
        );
        check(
            r#"{"method":"tools/call","params":{"name":"get_item","name":"delete_item"}}"#,
            Err(()),
        );
        check(r#"{"method":"tools/call"}"#, Err(()));
        check(r#"{"method":"tools/call","params":{"name":7}}"#, Err(()));
        check(r#"{"method":"tools/call","params":{"name":""}}"#, Err(()));
        check(
            r#"{"method":"tools/call","params":{"name":"a\"b"}}"#,
            Err(()),
        );
        check(
            r#"{"method":"tools/call","params":["delete_item"]}"#,
            Err(()),
        );
        check(r#"{"method":5}"#, Err(()));
        check(r#"[{"method":"tools/call","params":{"name":"x"}}"#, Err(()));
        let many = format!(
            "[{}]",
            vec![r#"{"method":"tools/call","params":{"name":"x"}}"#; MAX_CALLS_PER_BODY + 1]
                .join(",")
        );
        assert_eq!(tool_calls(many.as_bytes()), Err(BodyError::TooManyCalls));
    }
}
