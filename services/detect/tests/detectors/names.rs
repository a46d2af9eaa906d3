//! `name_impersonation`: the name table, character flags and ownership,
//! established clients as targets.

use super::*;

/// (name, redirect, expected match type or None for no alert, expected target)
const NAME_CASES: &[(&str, &str, Option<MatchType>, &str)] = &[
    (
        "ChatGP\u{0422}",
        "https://chatgpt-auth.com/cb",
        Some(MatchType::Confusable),
        "ChatGPT",
    ),
    (
        "\u{0421}laude",
        "https://claude-mcp.net/cb",
        Some(MatchType::Confusable),
        "Claude",
    ),
    (
        "Chat\u{200B}GPT",
        "https://evil.example/cb",
        Some(MatchType::Confusable),
        "ChatGPT",
    ),
    (
        "Chat\u{2060}GPT",
        "https://evil.example/cb",
        Some(MatchType::Confusable),
        "ChatGPT",
    ),
    (
        "ＣｈａｔＧＰＴ",
        "https://evil.example/cb",
        Some(MatchType::Confusable),
        "ChatGPT",
    ),
    (
        "C1aude",
        "https://c1aude.ai/cb",
        Some(MatchType::Confusable),
        "Claude",
    ),
    (
        "ChatGPT ",
        "https://evil.example/cb",
        Some(MatchType::Confusable),
        "ChatGPT",
    ),
    (
        "Ζed",
        "https://zed-editor.app/cb",
        Some(MatchType::Confusable),
        "Zed",
    ),
    (
        "ChatGPT",
        "https://mcp-chatgpt.help/cb",
        Some(MatchType::Exact),
        "ChatGPT",
    ),
    (
        "ChatGTP",
        "https://chatgtp.app/cb",
        Some(MatchType::EditDistance),
        "ChatGPT",
    ),
    (
        "Windsurff",
        "https://windsurff.io/cb",
        Some(MatchType::EditDistance),
        "Windsurf",
    ),
    (
        "ChatGPT Helper",
        "https://helper.example/cb",
        Some(MatchType::ContainsName),
        "ChatGPT",
    ),
    // Someone's github.io is not OpenAI's.
    (
        "ChatGPT",
        "https://bob.github.io/cb",
        Some(MatchType::Exact),
        "ChatGPT",
    ),
    // IDN host: normalized to A-labels, not the owner's domain.
    (
        "ChatGPT",
        "https://chätgpt.com/cb",
        Some(MatchType::Exact),
        "ChatGPT",
    ),
    // Genuine clients: no alert.
    (
        "ChatGPT",
        "https://chatgpt.com/connector_platform_oauth_redirect",
        None,
        "",
    ),
    (
        "Claude",
        "https://claude.ai/api/mcp/auth_callback",
        None,
        "",
    ),
    ("Claude Code", "http://localhost:54321/callback", None, ""),
    (
        "Cursor",
        "cursor://anysphere.cursor-retrieval/oauth/user-callback",
        None,
        "",
    ),
    (
        "Visual Studio Code",
        "https://vscode.dev/redirect",
        None,
        "",
    ),
    ("Visual Studio Code", "http://127.0.0.1:33418/", None, ""),
    ("Gemini", "https://gemini.google.com/mcp/cb", None, ""),
    (
        "MCP Inspector",
        "http://localhost:6274/oauth/callback",
        None,
        "",
    ),
    // Unrelated names, including non-Latin single-script ones.
    ("Acme Notes", "https://acme.example/cb", None, ""),
    (
        "日本語アシスタント",
        "https://assistant.example.jp/cb",
        None,
        "",
    ),
    ("Помощник задач", "https://zadachi.ru/cb", None, ""),
    ("Client", "https://client.example/cb", None, ""),
];

#[test]
fn name_impersonation_table() {
    let cfg = DetectConfig::default();
    let catalog = NameCatalog::new(&cfg.impersonation, 1000);
    for (name, redirect, expected, target) in NAME_CASES {
        let r = [analyze_redirect(redirect)];
        let got = catalog.assess(name, &r, &cfg.impersonation, None);
        match expected {
            None => assert!(
                got.is_none(),
                "{name:?} on {redirect}: unexpected alert {got:?}"
            ),
            Some(mt) => {
                let f = got.unwrap_or_else(|| panic!("{name:?} on {redirect}: no alert"));
                assert_eq!(f.match_type, Some(*mt), "{name:?}");
                assert_eq!(
                    f.target.as_ref().map(|t| t.name()),
                    Some(*target),
                    "{name:?}"
                );
                assert!(
                    f.score >= cfg.impersonation.min_score && f.score <= 1.0,
                    "{name:?} score {}",
                    f.score
                );
            }
        }
    }
}

#[test]
fn name_flags_and_ownership() {
    let cfg = DetectConfig::default();
    let catalog = NameCatalog::new(&cfg.impersonation, 1000);
    let evil = [analyze_redirect("https://evil.example/cb")];
    let f = catalog
        .assess("Chat\u{200B}GPT", &evil, &cfg.impersonation, None)
        .expect("alert");
    assert_eq!(f.analysis.invisible, vec!["U+200B".to_owned()]);
    assert_eq!(f.ownership, Ownership::NotOwned);
    assert_eq!(f.foreign_redirects, vec!["evil.example".to_owned()]);
    let f = catalog
        .assess("ChatGP\u{0422}", &evil, &cfg.impersonation, None)
        .expect("alert");
    assert!(f.analysis.mixed_script);
    assert!(
        f.score > 0.85,
        "homoglyph on a foreign domain is near-certain: {}",
        f.score
    );
    // A homoglyph on the owner's own domain is still reported, weaker.
    let own = [analyze_redirect("https://chatgpt.com/cb")];
    let g = catalog
        .assess("ChatGP\u{0422}", &own, &cfg.impersonation, None)
        .expect("alert");
    assert_eq!(g.ownership, Ownership::Owned);
    assert!(g.score < f.score);
    // Bidi control without any lookalike still alerts.
    let b = catalog
        .assess("My\u{202E}Tool", &evil, &cfg.impersonation, None)
        .expect("alert");
    assert!(b.target.is_none());
    assert_eq!(b.analysis.bidi_controls, vec!["U+202E".to_owned()]);
}

#[test]
fn established_client_lookalikes_and_github_io_owners() {
    let cfg = DetectConfig::default();
    let mut catalog = NameCatalog::new(&cfg.impersonation, 1000);
    catalog.establish(
        "Pinecone Notes",
        "c-alice",
        &[analyze_redirect("https://alice.github.io/cb")],
    );
    let cases: &[(&str, &str, bool)] = &[
        ("Pinecone Notes", "https://alice.github.io/other", false), // same owner
        ("Pinecone Notes", "https://bob.github.io/cb", true),       // other github.io owner
        ("Pinec0ne Notes", "https://bob.github.io/cb", true),       // lookalike, other owner
        ("Pinecone Note", "https://pinecone.example/cb", true),     // distance 1
        ("Pinecone Notes\u{200B}", "https://alice.github.io/cb", true), // hidden character
        ("Walnut Notes", "https://walnut.example/cb", false),
    ];
    for (name, redirect, alert) in cases {
        let got = catalog.assess(
            name,
            &[analyze_redirect(redirect)],
            &cfg.impersonation,
            None,
        );
        assert_eq!(got.is_some(), *alert, "{name:?} on {redirect}: {got:?}");
    }
}
