//! The RFC 7662 introspection client, and the pure judgement of an answer.
//!
//! The authorization server is the only authority here: it says whether a
//! token is active, for which audience, and (when asked with `tool=`)
//! whether the token may call that tool, recording the `tool.called` audit
//! event itself. This server caches no answer, so a token or client revoked
//! at the authorization server stops working on its very next request.

use std::time::Duration;

use serde::Deserialize;

use crate::config::McpConfig;

/// Largest introspection answer read, in bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why an introspection call gave no usable answer. None of these carries
/// the token that was introspected.
#[derive(Debug, thiserror::Error)]
pub enum IntrospectionError {
    #[error("introspection request failed: {0}")]
    Transport(#[source] reqwest::Error),
    #[error("introspection endpoint answered HTTP {0}")]
    Status(u16),
    #[error("introspection answer larger than {MAX_ANSWER_BYTES} bytes")]
    TooLarge,
    #[error("introspection answer is not RFC 7662 JSON: {0}")]
    Malformed(#[source] serde_json::Error),
}

/// `aud` is a string or an array of strings (RFC 7662 §2.2, RFC 7519 §4.1.3).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, resource: &str) -> bool {
        match self {
            Audience::One(a) => a == resource,
            Audience::Many(v) => v.iter().any(|a| a == resource),
        }
    }
}

/// The authorization server's decision about one tool call.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ToolDecision {
    pub name: String,
    pub allowed: bool,
    /// The scope the tool needs, for the `insufficient_scope` challenge.
    #[serde(default)]
    pub required_scope: Option<String>,
}

/// An RFC 7662 answer; only the members this server reads.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
    #[serde(default)]
    pub aud: Option<Audience>,
    #[serde(default)]
    pub exp: Option<i64>,
    #[serde(default)]
    pub token_type: Option<String>,
    /// Present only when the request named a tool.
    #[serde(default)]
    pub tool: Option<ToolDecision>,
}

/// Who is calling, as the authorization server described the token. Put in
/// the request extensions so tools can see it; the token itself is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub client_id: String,
    pub sub: Option<String>,
    pub scopes: Vec<String>,
}

/// What an introspection answer means for the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed(Caller),
    /// Inactive, expired, for another audience or another token type:
    /// answered with 401 `invalid_token`.
    InvalidToken(&'static str),
    /// Active but the tool is outside the grant: 403 `insufficient_scope`.
    ToolDenied {
        required_scope: Option<String>,
    },
    /// The answer breaks the contract (e.g. no `tool` member when one was
    /// asked for): fail closed as if the server were unavailable.
    Contract(&'static str),
}

/// Judge an answer. Pure: `now` is Unix seconds.
pub fn judge(answer: &Introspection, resource: &str, tool: Option<&str>, now: i64) -> Verdict {
    if !answer.active {
        return Verdict::InvalidToken("the access token is not active");
    }
    if answer.exp.is_some_and(|exp| exp <= now) {
        return Verdict::InvalidToken("the access token has expired");
    }
    if answer
        .token_type
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
    {
        return Verdict::InvalidToken("the token is not a bearer access token");
    }
    // MCP 2025-06-18: audience validation MUST. A token without `aud` could
    // have been issued for any resource, so it is refused too.
    if !answer.aud.as_ref().is_some_and(|a| a.contains(resource)) {
        return Verdict::InvalidToken("the access token is not for this resource");
    }
    let Some(client_id) = answer.client_id.clone().filter(|c| !c.is_empty()) else {
        return Verdict::Contract("active answer without client_id");
    };
    if let Some(name) = tool {
        match &answer.tool {
            None => return Verdict::Contract("answer without the tool decision"),
            Some(d) if d.name != name => {
                return Verdict::Contract("tool decision for another tool")
            }
            Some(d) if !d.allowed => {
                return Verdict::ToolDenied {
                    required_scope: d.required_scope.clone(),
                };
            }
            Some(_) => {}
        }
    }
    Verdict::Allowed(Caller {
        client_id,
        sub: answer.sub.clone(),
        scopes: answer
            .scope
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .map(String::from)
            .collect(),
    })
}

/// Calls the introspection endpoint. Cheap to clone.
#[derive(Clone)]
pub struct IntrospectionClient {
    http: reqwest::Client,
    endpoint: String,
    credential: String,
    resource: String,
}

impl IntrospectionClient {
    pub fn new(cfg: &McpConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.introspection_timeout_ms))
            // A redirect is never part of the contract; following one could
            // carry the shared credential somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(IntrospectionClient {
            http,
            endpoint: cfg.introspection_endpoint.clone(),
            credential: cfg.introspection_token.clone(),
            resource: cfg.resource.clone(),
        })
    }

    /// Introspect `token` for this resource, asking about `tool` when given.
    pub async fn introspect(
        &self,
        token: &str,
        tool: Option<&str>,
    ) -> Result<Introspection, IntrospectionError> {
        let mut form: Vec<(&str, &str)> = vec![("token", token), ("resource", &self.resource)];
        if let Some(t) = tool {
            form.push(("tool", t));
        }
        let mut resp = self
            .http
            .post(&self.endpoint)
            .bearer_auth(&self.credential)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| IntrospectionError::Transport(e.without_url()))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(IntrospectionError::Status(resp.status().as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
        {
            return Err(IntrospectionError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| IntrospectionError::Transport(e.without_url()))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(IntrospectionError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(IntrospectionError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RS: &str = "http://127.0.0.1:8500/mcp";
    const NOW: i64 = 1_795_262_400;

    fn active() -> Introspection {
        Introspection {
            active: true,
            client_id: Some("c1".into()),
            scope: Some("mcp:read mcp:write".into()),
            sub: Some("alice".into()),
            aud: Some(Audience::One(RS.into())),
            exp: Some(NOW + 60),
            token_type: Some("Bearer".into()),
            tool: None,
        }
    }

    fn with_tool(name: &str, allowed: bool) -> Introspection {
        Introspection {
            tool: Some(ToolDecision {
                name: name.into(),
                allowed,
                required_scope: Some("mcp:delete".into()),
            }),
            ..active()
        }
    }

    fn check(answer: Introspection, tool: Option<&str>, expected: &str) {
        let got = match judge(&answer, RS, tool, NOW) {
            Verdict::Allowed(_) => "allowed",
            Verdict::InvalidToken(_) => "invalid_token",
            Verdict::ToolDenied { .. } => "insufficient_scope",
            Verdict::Contract(_) => "contract",
        };
        assert_eq!(got, expected, "{answer:?} tool={tool:?}");
    }

    #[test]
    fn answers_are_judged() {
        check(active(), None, "allowed");
        check(
            Introspection {
                active: false,
                ..active()
            },
            None,
            "invalid_token",
        );
        check(Introspection::default(), None, "invalid_token");
        check(
            Introspection {
                exp: Some(NOW),
                ..active()
            },
            None,
            "invalid_token",
        );
        check(
            Introspection {
                token_type: Some("refresh_token".into()),
                ..active()
            },
            None,
            "invalid_token",
        );
        check(
            Introspection {
                token_type: None,
                ..active()
            },
            None,
            "allowed",
        );
        check(
            Introspection {
                aud: None,
                ..active()
            },
            None,
            "invalid_token",
        );
        check(
            Introspection {
                aud: Some(Audience::One("http://127.0.0.1:8500/mcp/".into())),
                ..active()
            },
            None,
            "invalid_token",
        );
        check(
            Introspection {
                aud: Some(Audience::One("http://other.example/mcp".into())),
                ..active()
            },
            None,
            "invalid_token",
        );
        check(
            Introspection {
                aud: Some(Audience::Many(vec!["x".into(), RS.into()])),
                ..active()
            },
            None,
            "allowed",
        );
        check(
            Introspection {
                client_id: None,
                ..active()
            },
            None,
            "contract",
        );
        check(with_tool("get_item", true), Some("get_item"), "allowed");
        check(
            with_tool("delete_item", false),
            Some("delete_item"),
            "insufficient_scope",
        );
        check(with_tool("get_item", true), Some("delete_item"), "contract");
        check(active(), Some("get_item"), "contract");
        // An inactive token is refused before the tool decision is looked at.
        check(
            Introspection {
                active: false,
                ..with_tool("get_item", true)
            },
            Some("get_item"),
            "invalid_token",
        );
    }

    #[test]
    fn the_contract_answer_parses() {
        let raw = r#"{"active":true,"client_id":"c1","scope":"mcp:read","sub":"alice","aud":"http://127.0.0.1:8500/mcp",
            "exp":1795262460,"iat":1795262400,"token_type":"Bearer","extra":1,
            "tool":{"name":"delete_item","allowed":false,"required_scope":"mcp:delete"}}"#;
        let a: Introspection = serde_json::from_str(raw).unwrap();
        assert_eq!(
            judge(&a, RS, Some("delete_item"), NOW),
            Verdict::ToolDenied {
                required_scope: Some("mcp:delete".into())
            }
        );
        let inactive: Introspection = serde_json::from_str(r#"{"active":false}"#).unwrap();
        assert!(!inactive.active);
    }
}
