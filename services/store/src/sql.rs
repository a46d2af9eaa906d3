//! Plain `{{name}}` placeholders in the ClickHouse query files, replaced by
//! literals rendered here.
//!
//! Why not server-side parameters (`{name:Type}`): ClickHouse 18.16 does not
//! have them. Why not the `clickhouse` crate's `?` binding: the query files
//! are also run by `schemas/clickhouse/chdb_suite.py` on ClickHouse 26.x,
//! which substitutes the same placeholders the same way. Rendered SQL goes
//! out with `query_raw`, so a `?` inside a value is never taken for a bind
//! marker.

use std::fmt::Write;

use crate::{Result, StoreError};

/// A value for a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// A string literal, quoted and escaped.
    Str(String),
    /// An unsigned integer.
    UInt(u64),
    /// A comma-separated list of string literals (for `IN (…)`); never empty
    /// when rendered (an empty list renders as `''`, which matches no id).
    StrList(Vec<String>),
    /// An identifier (database name): `[A-Za-z0-9_]+`, not quoted.
    Ident(String),
}

/// Appends `s` as a ClickHouse string literal.
pub fn quote(s: &str, out: &mut String) {
    out.push('\'');
    // Most values (ids, names) need no escape: copy them whole.
    if !s
        .bytes()
        .any(|b| matches!(b, b'\\' | b'\'' | b'\0' | b'\n' | b'\r' | b'\t'))
    {
        out.push_str(s);
        out.push('\'');
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
}

/// Checks a database or table name before it is spliced into SQL.
pub fn check_ident(name: &str) -> Result<&str> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(name)
    } else {
        Err(StoreError::InvalidQuery(format!(
            "{name:?} is not a plain identifier ([A-Za-z_][A-Za-z0-9_]*)"
        )))
    }
}

/// Replaces every `{{name}}` in `template` with its value. Fails when the
/// template uses a name not given, or a given name is not used (both are
/// drift between a query file and the code).
pub fn render(template: &str, values: &[(&str, Lit)]) -> Result<String> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut used = vec![false; values.len()];
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| {
            StoreError::InvalidQuery("unclosed {{ placeholder in a query file".into())
        })?;
        let name = after[..close].trim();
        let (idx, (_, lit)) = values
            .iter()
            .enumerate()
            .find(|(_, (n, _))| *n == name)
            .ok_or_else(|| {
                StoreError::InvalidQuery(format!("no value for placeholder {{{{{name}}}}}"))
            })?;
        used[idx] = true;
        match lit {
            Lit::Str(s) => quote(s, &mut out),
            Lit::UInt(n) => {
                let _ = write!(out, "{n}");
            }
            Lit::StrList(items) if items.is_empty() => out.push_str("''"),
            Lit::StrList(items) => {
                out.reserve(items.iter().map(|s| s.len() + 4).sum());
                for (i, s) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    quote(s, &mut out);
                }
            }
            Lit::Ident(name) => out.push_str(check_ident(name)?),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(StoreError::InvalidQuery(format!(
            "placeholder {{{{{}}}}} is not in the query file",
            values[i].0
        )));
    }
    Ok(out)
}

/// Splits a DDL file into statements: `--` comment lines dropped, split on
/// `;`, blanks skipped. (The DDL files keep `;` out of string literals.)
pub fn statements(file: &str) -> Vec<String> {
    let code: Vec<&str> = file
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    code.join("\n")
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_escapes() {
        let sql = render(
            "SELECT 1 FROM {{db}}.t WHERE a = {{a}} AND b IN ({{b}}) AND c > {{c}}",
            &[
                ("db", Lit::Ident("rw_1".into())),
                ("a", Lit::Str("it's \\ ? {{x}}".into())),
                ("b", Lit::StrList(vec!["x".into(), "y".into()])),
                ("c", Lit::UInt(7)),
            ],
        );
        assert_eq!(
            sql.ok().as_deref(),
            Some("SELECT 1 FROM rw_1.t WHERE a = 'it\\'s \\\\ ? {{x}}' AND b IN ('x', 'y') AND c > 7")
        );
    }

    #[test]
    fn refuses_drift_and_bad_identifiers() {
        assert!(render("SELECT {{a}}", &[]).is_err());
        assert!(render("SELECT 1", &[("a", Lit::UInt(1))]).is_err());
        assert!(render("SELECT {{a", &[("a", Lit::UInt(1))]).is_err());
        assert!(render("{{d}}", &[("d", Lit::Ident("x; DROP".into()))]).is_err());
        assert_eq!(
            render("IN ({{l}})", &[("l", Lit::StrList(vec![]))])
                .ok()
                .as_deref(),
            Some("IN ('')")
        );
    }

    #[test]
    fn splits_statements() {
        let s = statements("-- a comment; with a semicolon\nCREATE TABLE a (x UInt8);\n\nCREATE VIEW b AS SELECT 1\n");
        assert_eq!(
            s,
            vec!["CREATE TABLE a (x UInt8)", "CREATE VIEW b AS SELECT 1"]
        );
    }
}
