//! Benign traffic: the vendors, their installs and ordinary follow-ups,
//! and misconfigured clients refused before they register correctly.

use std::collections::BTreeSet;

use regwatch_detect::host::analyze_redirect;
use regwatch_detect::ActivityKind;

use super::{slug, with_loopback_port, Gen, Vendor, ADJ, NOUN, SCOPES, TLD};
use crate::Label;

impl Gen {
    pub(super) fn vendors(&mut self) -> Vec<Vendor> {
        let mut out = Vec::new();
        let mut used = BTreeSet::new();
        // Third-party web and native vendors with varied domains.
        while out.len() < 70 {
            let a = *self.rng.pick(ADJ);
            let n = *self.rng.pick(NOUN);
            let name = format!("{a} {n}");
            if !used.insert(name.clone()) {
                continue;
            }
            let s = slug(&name);
            let kind = self.rng.below(10);
            let scopes: Vec<String> = SCOPES
                .iter()
                .filter(|_| self.rng.chance(0.4))
                .map(|s| (*s).to_owned())
                .chain(["mcp:read".to_owned()])
                .collect();
            let (redirects, native) = match kind {
                0..=3 => (
                    vec![format!("https://{s}.{}/oauth/callback", self.rng.pick(TLD))],
                    false,
                ),
                4 => (
                    vec![format!("https://app.{s}.{}/mcp/cb", self.rng.pick(TLD))],
                    false,
                ),
                5 => (vec![format!("https://{s}.github.io/callback")], false),
                6 => (
                    vec![format!("https://{s}.vercel.app/api/auth/callback")],
                    false,
                ),
                7 => (
                    vec![format!(
                        "http://127.0.0.1:{}/callback",
                        self.rng.range(3000, 60000)
                    )],
                    true,
                ),
                8 => (vec![format!("com.{s}.desktop:/oauth2redirect")], true),
                _ => (
                    vec![
                        format!("http://localhost:{}/callback", self.rng.range(3000, 60000)),
                        format!("https://{s}.{}/cb", self.rng.pick(TLD)),
                    ],
                    true,
                ),
            };
            let software_id = self.rng.chance(0.3).then(|| format!("{s}-mcp"));
            out.push(Vendor {
                name,
                redirects,
                software_id,
                native,
                scopes,
            });
        }
        // Non-Latin single-script names and IDN domains.
        for (name, redirect) in [
            ("日本語アシスタント", "https://assistant.example.jp/cb"),
            ("Помощник задач", "https://zadachi.ru/oauth/cb"),
            ("Βοηθός Σημειώσεων", "https://simeioseis.gr/cb"),
            ("Bücherwurm Suche", "https://bücher-suche.de/oauth/cb"),
            ("Café Planner", "https://café-planner.fr/cb"),
            ("数据助手", "https://shuju.cn/cb"),
        ] {
            out.push(Vendor {
                name: name.into(),
                redirects: vec![redirect.into()],
                software_id: None,
                native: false,
                scopes: vec!["mcp:read".into()],
            });
        }
        // Genuine well-known clients, on their owners' domains or loopback.
        let genuine: &[(&str, &str, bool)] = &[
            (
                "ChatGPT",
                "https://chatgpt.com/connector_platform_oauth_redirect",
                false,
            ),
            ("Claude", "https://claude.ai/api/mcp/auth_callback", false),
            ("Claude Code", "http://localhost:{port}/callback", true),
            (
                "Cursor",
                "cursor://anysphere.cursor-retrieval/oauth/user-callback",
                true,
            ),
            ("Visual Studio Code", "http://127.0.0.1:{port}/", true),
            ("Visual Studio Code", "https://vscode.dev/redirect", false),
            (
                "MCP Inspector",
                "http://localhost:{port}/oauth/callback",
                true,
            ),
            ("Windsurf", "https://windsurf.com/oauth/callback", false),
            (
                "Perplexity",
                "https://www.perplexity.ai/rest/connections/oauth_callback",
                false,
            ),
            ("Zed", "http://127.0.0.1:{port}/mcp/oauth", true),
            (
                "Raycast",
                "https://raycast.com/redirect?packageName=Extension",
                false,
            ),
            ("Gemini CLI", "http://localhost:{port}/oauth2callback", true),
        ];
        for (name, redirect, native) in genuine {
            let port = self.rng.range(1024, 65000).to_string();
            out.push(Vendor {
                name: (*name).into(),
                redirects: vec![redirect.replace("{port}", &port)],
                software_id: None,
                native: *native,
                scopes: vec!["mcp:read".into(), "mcp:tools".into()],
            });
        }
        out
    }

    pub(super) fn benign(&mut self, vendors: &[Vendor], n: usize, span: i64) {
        for i in 0..n {
            let v = vendors[if i < vendors.len() {
                i
            } else {
                self.rng.below(vendors.len() as u64) as usize
            }]
            .clone();
            let label = Label {
                attack: None,
                campaign: None,
                scenario: format!("benign: {}", if v.native { "native" } else { "web" }),
            };
            let t = self.rng.range(0, span);
            let ip = self.public_ip();
            // Native clients pick a fresh loopback port per install.
            let redirects: Vec<String> = v
                .redirects
                .iter()
                .map(|r| {
                    let port = self.rng.range(1024, 65000);
                    with_loopback_port(r, port)
                })
                .collect();
            let id = self.register(
                &label,
                t,
                &v.name,
                &redirects,
                &v.scopes,
                v.software_id.as_deref(),
                Some(ip),
            );
            let mut now = self.normal_life(&label, &id, t, &v.scopes, Some(ip));
            // Benign follow-ups.
            match self.rng.below(12) {
                0 if v.native => {
                    // Loopback port change (RFC 8252: any port).
                    let port = self.rng.range(1024, 65000);
                    let new: Vec<String> = redirects
                        .iter()
                        .map(|r| with_loopback_port(r, port))
                        .collect();
                    now += self.rng.range(3600, 86400);
                    let label = Label {
                        scenario: "benign: loopback port change".into(),
                        ..label.clone()
                    };
                    self.update(
                        &label, &id, now, &v.name, &redirects, &new, &v.scopes, &v.scopes, true,
                    );
                }
                1 if !v.native => {
                    // Path change on the same host.
                    let new: Vec<String> = redirects.iter().map(|r| format!("{r}/v2")).collect();
                    now += self.rng.range(3600, 86400);
                    let label = Label {
                        scenario: "benign: redirect path change".into(),
                        ..label.clone()
                    };
                    let with_prev = self.rng.chance(0.5);
                    self.update(
                        &label, &id, now, &v.name, &redirects, &new, &v.scopes, &v.scopes,
                        with_prev,
                    );
                }
                2 => {
                    // One more non-sensitive scope.
                    let mut s2 = v.scopes.clone();
                    s2.push("calendar:write".into());
                    now += self.rng.range(3600, 86400);
                    let label = Label {
                        scenario: "benign: one scope added".into(),
                        ..label.clone()
                    };
                    self.update(
                        &label, &id, now, &v.name, &redirects, &redirects, &v.scopes, &s2, true,
                    );
                }
                3 if !v.native && redirects.iter().all(|r| r.starts_with("https://")) => {
                    // Second redirect on another host of the same registrable domain.
                    let mut new = redirects.clone();
                    let host = analyze_redirect(&redirects[0])
                        .registrable
                        .unwrap_or_default();
                    if !host.ends_with("github.io") && !host.ends_with("vercel.app") {
                        new.push(format!("https://auth.{host}/callback"));
                        now += self.rng.range(3600, 86400);
                        let label = Label {
                            scenario: "benign: second host, same domain".into(),
                            ..label.clone()
                        };
                        self.update(
                            &label, &id, now, &v.name, &redirects, &new, &v.scopes, &v.scopes, true,
                        );
                    }
                }
                4 => {
                    now += self.rng.range(600, 86400);
                    self.activity(&label, &id, now, ActivityKind::Deleted, None);
                }
                5 => {
                    // Re-consent with the same scopes, token refreshes.
                    now += self.rng.range(600, 86400);
                    self.activity(
                        &label,
                        &id,
                        now,
                        ActivityKind::ConsentGranted {
                            scopes: v.scopes.clone(),
                        },
                        Some(ip),
                    );
                    self.activity(&label, &id, now + 5, ActivityKind::TokenRefreshed, Some(ip));
                }
                6 => {
                    // The same user re-registers the same client once (lost credentials).
                    let t2 = now + self.rng.range(60, 3000);
                    let id2 = self.register(
                        &label,
                        t2,
                        &v.name,
                        &redirects,
                        &v.scopes,
                        v.software_id.as_deref(),
                        Some(ip),
                    );
                    self.normal_life(&label, &id2, t2, &v.scopes, Some(ip));
                }
                _ => {}
            }
        }
    }

    /// Benign: a misconfigured client refused a few times (a fragment in
    /// its redirect URI, plain http), then fixed and registered.
    pub(super) fn benign_retries(&mut self, vendors: &[Vendor], span: i64) {
        for _ in 0..6 {
            let v = self.rng.pick(vendors).clone();
            let label = Label {
                attack: None,
                campaign: None,
                scenario: "benign: refused, then fixed".into(),
            };
            let t = self.rng.range(0, span);
            let ip = self.public_ip();
            let tries = self.rng.range(1, 3);
            for k in 0..tries {
                let rule = if k % 2 == 0 {
                    "redirect.fragment"
                } else {
                    "redirect.plain_http"
                };
                self.reject(&label, t + k * 40, &v.name, rule, Some(ip));
            }
            let redirects: Vec<String> = v
                .redirects
                .iter()
                .map(|r| {
                    let port = self.rng.range(1024, 65000);
                    with_loopback_port(r, port)
                })
                .collect();
            let t2 = t + tries * 40 + 120;
            let id = self.register(
                &label,
                t2,
                &v.name,
                &redirects,
                &v.scopes,
                v.software_id.as_deref(),
                Some(ip),
            );
            self.normal_life(&label, &id, t2, &v.scopes, Some(ip));
        }
    }
}
