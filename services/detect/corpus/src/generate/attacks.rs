//! Attacks, one scenario family per alert kind, plus floods of refused
//! registrations that never become a client.

use std::net::{IpAddr, Ipv4Addr};

use regwatch_detect::ActivityKind;
use regwatch_schemas::alert::AlertKind;

use super::{slug, Gen, Vendor, ADJ, NOUN, SENSITIVE, TLD};
use crate::Label;

impl Gen {
    fn attack_label(kind: AlertKind, campaign: Option<String>, scenario: &str) -> Label {
        Label {
            attack: Some(kind),
            campaign,
            scenario: scenario.to_owned(),
        }
    }

    pub(super) fn impersonation(&mut self, span: i64, vendors: &[Vendor]) {
        let cases: &[(&str, &str, &str)] = &[
            (
                "ChatGP\u{0422}",
                "https://chatgpt-auth.com/cb",
                "cyrillic Te",
            ),
            (
                "\u{0421}laude",
                "https://claude-mcp.net/callback",
                "cyrillic Es",
            ),
            (
                "Cl\u{0430}ude",
                "https://alice-tools.github.io/cb",
                "cyrillic a, github.io",
            ),
            (
                "\u{0421}h\u{0430}tGPT",
                "https://xn--chtgpt-fua.com/cb",
                "two cyrillic letters, IDN host",
            ),
            (
                "Chat\u{200B}GPT",
                "https://openai-connect.io/cb",
                "zero-width space",
            ),
            (
                "Cla\u{200D}ude",
                "https://claude-login.app/cb",
                "zero-width joiner",
            ),
            (
                "ＣｈａｔＧＰＴ",
                "https://chatgpt.com.evil.example/cb",
                "full-width",
            ),
            ("C1aude", "https://c1aude.ai/cb", "digit one for l"),
            (
                "CIaude",
                "https://claude.ai.attacker.net/cb",
                "capital I for l",
            ),
            (
                "ChatGPT ",
                "https://chatgpt-plugins.dev/cb",
                "trailing space",
            ),
            (" Claude", "https://anthropic-mcp.com/cb", "leading space"),
            (
                "ChatGPT",
                "https://mcp-chatgpt.help/oauth",
                "exact name, foreign domain",
            ),
            (
                "Claude",
                "https://bob.github.io/claude/cb",
                "exact name, someone's github.io",
            ),
            ("chatgpt", "https://gpt-oauth.xyz/cb", "case variant"),
            ("ChatGTP", "https://chatgtp.app/cb", "transposition"),
            ("Claud", "https://claud-ai.com/cb", "deletion"),
            ("Windsurff", "https://windsurff.io/cb", "insertion"),
            ("Perplexlty", "https://perplexlty.ai/cb", "substitution"),
            ("Curs0r", "https://curs0r.sh/cb", "digit zero for o"),
            (
                "Cursor",
                "http://10.1.2.3/cb",
                "exact name, private address",
            ),
            (
                "Visual Studio C0de",
                "https://vscode-auth.dev/cb",
                "digit zero",
            ),
            (
                "Visual Studio Code",
                "https://vscode-marketplace.net/cb",
                "exact name, foreign domain",
            ),
            (
                "GitHub Copilot",
                "https://copilot-github.org/cb",
                "exact name, foreign domain",
            ),
            ("GitHub Copi1ot", "https://gh-copilot.app/cb", "digit one"),
            (
                "ChatGPT Helper",
                "https://helper-gpt.com/cb",
                "brand as a word",
            ),
            (
                "Claude Connector",
                "https://connector-hub.io/cb",
                "brand as a word",
            ),
            ("\u{202E}ChatGPT", "https://rtl-gpt.com/cb", "bidi override"),
            ("Gem\u{0456}ni", "https://gemini-ai.app/cb", "cyrillic i"),
            ("Ζed", "https://zed-editor.app/cb", "greek Zeta"),
            (
                "Perplex\u{0456}ty",
                "https://perplexity.ai.login-page.com/cb",
                "cyrillic i",
            ),
            ("Raycаst", "https://raycast-store.com/cb", "cyrillic a"),
            (
                "MCP Inspector",
                "https://inspector-mcp.com/cb",
                "local tool name on a web host",
            ),
            ("Wіndsurf", "https://windsurf.co/cb", "cyrillic i"),
            ("ChatGPT", "cursor-evil://cb", "exact name, custom scheme"),
            (
                "Claude Code",
                "https://claude-code.dev/cb",
                "exact name, foreign domain",
            ),
            ("Clіne", "https://cline.dev/cb", "cyrillic i"),
        ];
        for (i, (name, redirect, scenario)) in cases.iter().enumerate() {
            let label = Self::attack_label(AlertKind::NameImpersonation, None, scenario);
            let t = self.rng.range(3600, span);
            let ip = self.public_ip();
            let id = self.register(
                &label,
                t,
                name,
                &[(*redirect).to_owned()],
                &["mcp:read".to_owned()],
                None,
                Some(ip),
            );
            if i % 3 == 0 {
                self.normal_life(&label, &id, t, &["mcp:read".to_owned()], Some(ip));
            }
        }
        // Impersonating established third-party clients (registered late in
        // the span, once the genuine ones have consents).
        let web: Vec<Vendor> = vendors
            .iter()
            .filter(|v| !v.native && v.name.is_ascii())
            .take(10)
            .cloned()
            .collect();
        for (i, v) in web.iter().enumerate() {
            let name = match i % 4 {
                0 => v
                    .name
                    .replacen('o', "\u{043E}", 1)
                    .replacen('e', "\u{0435}", 1),
                1 => v.name.clone(),
                2 => format!("{} ", v.name),
                _ => v.name.replacen('a', "\u{0430}", 1).replacen('o', "0", 1),
            };
            let name = if name == v.name && i % 4 != 1 {
                format!("{}\u{200B}", v.name)
            } else {
                name
            };
            let label = Self::attack_label(
                AlertKind::NameImpersonation,
                None,
                "lookalike of an established client",
            );
            let t = span + self.rng.range(3600, 7200);
            let ip = self.public_ip();
            let redirect = format!(
                "https://{}-login.{}/cb",
                slug(&v.name),
                self.rng.pick(&["click", "top", "site"])
            );
            self.register(&label, t, &name, &[redirect], &v.scopes, None, Some(ip));
        }
    }

    pub(super) fn drift(&mut self, span: i64) {
        let targets: &[(&str, &str)] = &[
            ("https://evil-collector.com/cb", "new registrable domain"),
            ("http://{host}/cb", "https to http"),
            ("http://192.168.1.20/cb", "private address"),
            ("http://127.0.0.1:8080/cb", "loopback added to a web client"),
            ("myapp://cb", "custom scheme without a dot"),
            ("https://*.{domain}/cb", "wildcard"),
            ("https://mallory.github.io/cb", "other github.io owner"),
            ("https://xn--80ak6aa92e.com/cb", "IDN host"),
            ("https://{host}.attacker.net/cb", "suffix trick"),
            ("https://login-{domain}/cb", "new domain, lookalike"),
        ];
        for i in 0..44 {
            let (target, scenario) = targets[i % targets.len()];
            let label = Self::attack_label(AlertKind::RedirectDrift, None, scenario);
            let a = *self.rng.pick(ADJ);
            let name = format!("{a} Sync {i}");
            let host = format!("{}.{}", slug(&name), self.rng.pick(TLD));
            let domain = host.clone();
            let old = vec![format!("https://{host}/oauth/cb")];
            let new = vec![target.replace("{host}", &host).replace("{domain}", &domain)];
            let t = self.rng.range(0, span);
            let ip = self.public_ip();
            let id = self.register(
                &label,
                t,
                &name,
                &old,
                &["mcp:read".to_owned()],
                None,
                Some(ip),
            );
            let after = self.normal_life(&label, &id, t, &["mcp:read".to_owned()], Some(ip));
            let with_prev = i % 2 == 0;
            let scopes = vec!["mcp:read".to_owned()];
            let tu = after + self.rng.range(60, 86400);
            self.update(
                &label, &id, tu, &name, &old, &new, &scopes, &scopes, with_prev,
            );
        }
        // One redirect host shared by many differently named clients.
        for c in 0..3 {
            let host = format!("collect{c}.harvest-tokens.net");
            let campaign = format!("shared-host-{c}");
            let t0 = self.rng.range(0, span);
            for k in 0..7 {
                let label = Self::attack_label(
                    AlertKind::RedirectDrift,
                    Some(campaign.clone()),
                    "shared redirect host",
                );
                let name = format!("{} {}", self.rng.pick(ADJ), self.rng.pick(NOUN));
                let ip = self.public_ip();
                self.register(
                    &label,
                    t0 + k * 1800,
                    &name,
                    &[format!("https://{host}/cb")],
                    &["mcp:read".to_owned()],
                    None,
                    Some(ip),
                );
            }
        }
    }

    pub(super) fn scope_escalation(&mut self, span: i64) {
        for i in 0..24 {
            let label = Self::attack_label(
                AlertKind::ScopeEscalation,
                None,
                if i % 2 == 0 {
                    "update adds sensitive scopes"
                } else {
                    "later consent broader"
                },
            );
            let name = format!("{} Reader {i}", self.rng.pick(ADJ));
            let redirect = vec![format!("https://{}.{}/cb", slug(&name), self.rng.pick(TLD))];
            let base = vec!["mcp:read".to_owned()];
            let t = self.rng.range(0, span);
            let ip = self.public_ip();
            let id = self.register(&label, t, &name, &redirect, &base, None, Some(ip));
            let after = self.normal_life(&label, &id, t, &base, Some(ip));
            let mut wide = base.clone();
            wide.push((*self.rng.pick(SENSITIVE)).to_owned());
            if i % 3 == 0 {
                wide.push("tools:admin".to_owned());
            }
            if i % 2 == 0 {
                self.update(
                    &label,
                    &id,
                    after + 3600,
                    &name,
                    &redirect,
                    &redirect,
                    &base,
                    &wide,
                    i % 4 == 0,
                );
            } else {
                self.activity(
                    &label,
                    &id,
                    after + 7200,
                    ActivityKind::ConsentGranted { scopes: wide },
                    Some(ip),
                );
            }
        }
    }

    pub(super) fn bursts(&mut self, span: i64) {
        for c in 0..8 {
            let campaign = format!("burst-{c}");
            let t0 = self.rng.range(0, span);
            let n = self.rng.range(15, 40);
            let ip = self.public_ip();
            let base = match ip {
                IpAddr::V4(v4) => v4.octets(),
                IpAddr::V6(_) => [203, 0, 113, 0],
            };
            for k in 0..n {
                let (scenario, name, src, sw) = match c % 4 {
                    0 => (
                        "one source address",
                        format!("mcp-client-{}", self.rng.below(100_000)),
                        ip,
                        None,
                    ),
                    1 => (
                        "one /24, many addresses",
                        format!("agent {}", self.rng.below(100_000)),
                        IpAddr::V4(Ipv4Addr::new(
                            base[0],
                            base[1],
                            base[2],
                            1 + self.rng.below(250) as u8,
                        )),
                        None,
                    ),
                    2 => (
                        "one name from many addresses",
                        "Helpful MCP Bot".to_owned(),
                        self.public_ip(),
                        None,
                    ),
                    _ => (
                        "one software_id",
                        format!("tool-{}", self.rng.below(100_000)),
                        self.public_ip(),
                        Some("bulk-reg-kit"),
                    ),
                };
                let label = Self::attack_label(
                    AlertKind::RegistrationBurst,
                    Some(campaign.clone()),
                    scenario,
                );
                let redirect = vec![format!(
                    "http://127.0.0.1:{}/cb",
                    self.rng.range(2000, 60000)
                )];
                let t = t0 + k * self.rng.range(2, 12);
                self.register(
                    &label,
                    t,
                    &name,
                    &redirect,
                    &["mcp:read".to_owned()],
                    sw,
                    Some(src),
                );
            }
        }
    }

    pub(super) fn dormant(&mut self, span: i64) {
        for c in 0..6 {
            let campaign = format!("dormant-{c}");
            let ip = self.public_ip();
            let base = match ip {
                IpAddr::V4(v4) => v4.octets(),
                IpAddr::V6(_) => [198, 51, 100, 0],
            };
            let t0 = self.rng.range(0, span);
            for k in 0..4 {
                let label = Self::attack_label(
                    AlertKind::DormantClient,
                    Some(campaign.clone()),
                    "registered, never consented",
                );
                let name = format!("{} Probe {}", self.rng.pick(ADJ), self.rng.below(1000));
                let src = IpAddr::V4(Ipv4Addr::new(
                    base[0],
                    base[1],
                    base[2],
                    1 + self.rng.below(250) as u8,
                ));
                let redirect = vec![format!("https://{}.{}/cb", slug(&name), self.rng.pick(TLD))];
                self.register(
                    &label,
                    t0 + k * 2400,
                    &name,
                    &redirect,
                    &["mcp:read".to_owned()],
                    None,
                    Some(src),
                );
            }
        }
    }

    pub(super) fn duplicates(&mut self, span: i64) {
        for c in 0..8 {
            let campaign = format!("duplicate-{c}");
            let ip = self.public_ip();
            let name = format!("{} Relay", self.rng.pick(ADJ));
            let redirect = vec![format!("https://{}.{}/cb", slug(&name), self.rng.pick(TLD))];
            let t0 = self.rng.range(0, span);
            let n = self.rng.range(6, 14);
            for k in 0..n {
                let label = Self::attack_label(
                    AlertKind::DuplicateRegistration,
                    Some(campaign.clone()),
                    "identical re-registrations",
                );
                let tk = t0 + k * self.rng.range(120, 240);
                let id = self.register(
                    &label,
                    tk,
                    &name,
                    &redirect,
                    &["mcp:read".to_owned()],
                    None,
                    Some(ip),
                );
                // Some of them are used, so this is not just dormancy.
                if k % 2 == 0 {
                    self.normal_life(
                        &label,
                        &id,
                        t0 + k * 240,
                        &["mcp:read".to_owned()],
                        Some(ip),
                    );
                }
            }
        }
    }

    pub(super) fn revoked(&mut self, span: i64) {
        let attempts = [
            ActivityKind::TokenRefreshed,
            ActivityKind::ToolCalled {
                tool: "delete_repo".into(),
            },
            ActivityKind::ManagementCall {
                method: "PUT".into(),
            },
            ActivityKind::TokenIssued,
        ];
        for i in 0..20 {
            let label = Self::attack_label(
                AlertKind::RevokedClientActivity,
                None,
                "activity after revocation",
            );
            let name = format!("{} Toolkit {i}", self.rng.pick(ADJ));
            let redirect = vec![format!("https://{}.{}/cb", slug(&name), self.rng.pick(TLD))];
            let t = self.rng.range(0, span);
            let ip = self.public_ip();
            let id = self.register(
                &label,
                t,
                &name,
                &redirect,
                &["mcp:read".to_owned()],
                None,
                Some(ip),
            );
            let after = self.normal_life(&label, &id, t, &["mcp:read".to_owned()], Some(ip));
            let kind = if i % 2 == 0 {
                ActivityKind::Revoked
            } else {
                ActivityKind::Deleted
            };
            self.activity(&label, &id, after + 600, kind, None);
            let tries = 1 + self.rng.below(4) as i64;
            for k in 0..tries {
                let a = attempts[(i + k as usize) % attempts.len()].clone();
                self.activity(&label, &id, after + 1200 + k * 60, a, Some(ip));
            }
        }
    }

    /// Floods of refused registrations: one address, one /24, one name
    /// from many addresses, one IPv6 /64. No client ever exists.
    pub(super) fn rejected_floods(&mut self, span: i64) {
        const RULES: &[&str] = &[
            "redirect.fragment",
            "redirect.plain_http",
            "redirect.forbidden_scheme",
            "scope.unknown",
        ];
        for c in 0..4 {
            let campaign = format!("rejected-burst-{c}");
            let t0 = self.rng.range(0, span);
            // Small (the committed corpus stays under 1 MB), above every floor.
            let n = self.rng.range(13, 15);
            let ip = self.public_ip();
            let base = match ip {
                IpAddr::V4(v4) => v4.octets(),
                IpAddr::V6(_) => [203, 0, 113, 0],
            };
            let net6 = [0x2001, 0x0db8, self.rng.below(0xffff) as u16, 7];
            for k in 0..n {
                let (scenario, name, src) = match c {
                    0 => (
                        "refused: one address",
                        format!("mcp-probe-{}", self.rng.below(100_000)),
                        ip,
                    ),
                    1 => (
                        "refused: one /24",
                        format!("scan {}", self.rng.below(100_000)),
                        IpAddr::V4(Ipv4Addr::new(
                            base[0],
                            base[1],
                            base[2],
                            1 + self.rng.below(250) as u8,
                        )),
                    ),
                    2 => (
                        "refused: one name, many addresses",
                        "Quick Connector".to_owned(),
                        self.public_ip(),
                    ),
                    _ => (
                        "refused: one /64",
                        format!("client-{}", self.rng.below(100_000)),
                        IpAddr::V6(std::net::Ipv6Addr::new(
                            net6[0],
                            net6[1],
                            net6[2],
                            net6[3],
                            self.rng.below(0xffff) as u16,
                            self.rng.below(0xffff) as u16,
                            self.rng.below(0xffff) as u16,
                            1 + self.rng.below(0xfffe) as u16,
                        )),
                    ),
                };
                let label = Self::attack_label(
                    AlertKind::RegistrationBurst,
                    Some(campaign.clone()),
                    scenario,
                );
                let rule = *self.rng.pick(RULES);
                let t = t0 + k * self.rng.range(2, 12);
                self.reject(&label, t, &name, rule, Some(src));
            }
        }
    }
}
