//! A deterministic, labeled scenario corpus and the evaluation that runs
//! the detectors over it. The generator uses its own SplitMix64 generator
//! so the output depends on the seed only (never on a crate's RNG
//! algorithm), and the committed JSONL can be checked for freshness.
//!
//! Labels are per client: benign, or an attack of one kind, optionally
//! part of a campaign (bursts, duplicates, shared redirect hosts, dormant
//! clusters are detected as campaigns, not client by client).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use chrono::{DateTime, Duration, TimeZone, Utc};
use regwatch_schemas::alert::{Alert, AlertKind};
use serde::{Deserialize, Serialize};
use uuid::{Builder, Uuid};

use crate::config::DetectConfig;
use crate::engine::Detector;
use crate::input::{
    ActivityKind, ActivityObservation, ClientObservation, Observation, RegistrationMethod,
    RejectedObservation,
};

/// The seed of the committed corpus.
pub const DEFAULT_SEED: u64 = 0x7265_6777_6174_6368; // "regwatch"

/// SplitMix64: tiny, fast, and fixed forever.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1).max(1) as u64) as i64
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    /// One element.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    /// A UUIDv4 from the stream.
    pub fn uuid(&mut self) -> Uuid {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_be_bytes());
        Builder::from_random_bytes(b).into_uuid()
    }
    /// A UUIDv7 at `at` from the stream.
    pub fn uuid7(&mut self, at: DateTime<Utc>) -> Uuid {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&self.next_u64().to_be_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_be_bytes()[..2]);
        Builder::from_unix_timestamp_millis(at.timestamp_millis().max(0) as u64, &b).into_uuid()
    }
}

/// Ground truth for one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// `None`: benign. Otherwise the attack kind the client embodies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<AlertKind>,
    /// The campaign it belongs to, when detection is judged per campaign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// A short description of the scenario.
    pub scenario: String,
}

/// One line of the corpus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabeledEvent {
    /// The observation.
    pub obs: Observation,
    /// Ground truth of its client.
    pub label: Label,
}

struct Gen {
    rng: Rng,
    start: DateTime<Utc>,
    events: Vec<LabeledEvent>,
}

const ADJ: &[&str] = &[
    "Acme",
    "Brightwave",
    "Northwind",
    "Bluebird",
    "Granite",
    "Lumen",
    "Pinecone",
    "Harbor",
    "Quartz",
    "Tidal",
    "Orbit",
    "Maple",
    "Saffron",
    "Juniper",
    "Copperleaf",
    "Falcon",
    "Meridian",
    "Nimbus",
    "Kestrel",
    "Willow",
    "Obsidian",
    "Sequoia",
    "Vantage",
    "Zephyr",
    "Cobalt",
    "Ember",
    "Atlas",
    "Beacon",
    "Cascade",
    "Driftwood",
];
const NOUN: &[&str] = &[
    "Notes",
    "Assistant",
    "Docs",
    "Analytics",
    "CRM",
    "Tickets",
    "Deploy",
    "Search",
    "Mail",
    "Calendar",
    "Wiki",
    "Sheets",
    "Support",
    "Billing",
    "Monitor",
    "Studio",
    "Agent",
    "Connector",
    "Planner",
    "Inbox",
];
const TLD: &[&str] = &["com", "io", "app", "dev", "ai", "co", "net", "de", "fr"];
const SCOPES: &[&str] = &[
    "mcp:read",
    "mcp:tools",
    "files:read",
    "calendar:read",
    "profile",
    "email",
    "offline_access",
];
const SENSITIVE: &[&str] = &["admin", "tools:write", "files:write", "mcp:admin"];

fn slug(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// `r` with its port replaced when it is a loopback URI.
fn with_loopback_port(r: &str, port: i64) -> String {
    if !(r.contains("://127.0.0.1:") || r.contains("://localhost:")) {
        return r.to_owned();
    }
    let Some((head, rest)) = r.split_once("://") else {
        return r.to_owned();
    };
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let host = hostport.split(':').next().unwrap_or("127.0.0.1");
    format!("{head}://{host}:{port}/{path}")
}

/// A benign vendor: name, redirect template, software id, native or web.
#[derive(Debug, Clone)]
struct Vendor {
    name: String,
    redirects: Vec<String>,
    software_id: Option<String>,
    native: bool,
    scopes: Vec<String>,
}

impl Gen {
    fn at(&self, secs: i64) -> DateTime<Utc> {
        self.start + Duration::seconds(secs)
    }

    fn public_ip(&mut self) -> IpAddr {
        // Avoid 10/8, 127/8, 172.16/12, 192.168/16, 100.64/10.
        let a = *self
            .rng
            .pick(&[23u8, 31, 45, 52, 64, 81, 92, 104, 141, 151, 185, 203, 212]);
        IpAddr::V4(Ipv4Addr::new(
            a,
            self.rng.below(256) as u8,
            self.rng.below(256) as u8,
            1 + self.rng.below(250) as u8,
        ))
    }

    fn push(&mut self, obs: Observation, label: &Label) {
        self.events.push(LabeledEvent {
            obs,
            label: label.clone(),
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn register(
        &mut self,
        label: &Label,
        t: i64,
        name: &str,
        redirects: &[String],
        scopes: &[String],
        software_id: Option<&str>,
        ip: Option<IpAddr>,
    ) -> String {
        let id = self.rng.uuid().to_string();
        let at = self.at(t);
        let obs = ClientObservation {
            client_id: id.clone(),
            client_name: Some(name.to_owned()),
            redirect_uris: redirects.to_vec(),
            scopes: scopes.to_vec(),
            software_id: software_id.map(str::to_owned),
            token_endpoint_auth_method: None,
            source_ip: ip,
            at,
            event_id: self.rng.uuid7(at),
            registration_method: RegistrationMethod::Dcr,
            previous_redirect_uris: None,
            previous_scopes: None,
        };
        self.push(Observation::Registered(obs), label);
        id
    }

    /// A registration the authorization server refused (no client id).
    fn reject(&mut self, label: &Label, t: i64, name: &str, rule: &str, ip: Option<IpAddr>) {
        let at = self.at(t);
        let error = if rule.starts_with("redirect.") {
            "invalid_redirect_uri"
        } else {
            "invalid_client_metadata"
        };
        let obs = RejectedObservation {
            client_id: None,
            client_name: Some(name.to_owned()),
            software_id: None,
            source_ip: ip,
            rule: Some(rule.to_owned()),
            error: Some(error.to_owned()),
            operation: "register".to_owned(),
            registration_method: RegistrationMethod::Dcr,
            at,
            event_id: self.rng.uuid7(at),
        };
        self.push(Observation::Rejected(obs), label);
    }

    fn activity(
        &mut self,
        label: &Label,
        id: &str,
        t: i64,
        kind: ActivityKind,
        ip: Option<IpAddr>,
    ) {
        let at = self.at(t);
        let obs = ActivityObservation {
            client_id: id.to_owned(),
            kind,
            source_ip: ip,
            at,
            event_id: self.rng.uuid7(at),
        };
        self.push(Observation::Activity(obs), label);
    }

    #[allow(clippy::too_many_arguments)]
    fn update(
        &mut self,
        label: &Label,
        id: &str,
        t: i64,
        name: &str,
        old: &[String],
        new: &[String],
        old_scopes: &[String],
        new_scopes: &[String],
        with_previous: bool,
    ) {
        let at = self.at(t);
        let obs = ClientObservation {
            client_id: id.to_owned(),
            client_name: Some(name.to_owned()),
            redirect_uris: new.to_vec(),
            scopes: new_scopes.to_vec(),
            software_id: None,
            token_endpoint_auth_method: None,
            source_ip: None,
            at,
            event_id: self.rng.uuid7(at),
            registration_method: RegistrationMethod::Dcr,
            previous_redirect_uris: with_previous.then(|| old.to_vec()),
            previous_scopes: with_previous.then(|| old_scopes.to_vec()),
        };
        self.push(Observation::Updated(obs), label);
    }

    /// Consent, a token and a tool call or two, as a normal client does.
    fn normal_life(
        &mut self,
        label: &Label,
        id: &str,
        t: i64,
        scopes: &[String],
        ip: Option<IpAddr>,
    ) -> i64 {
        let tc = t + self.rng.range(20, 1800);
        self.activity(
            label,
            id,
            tc,
            ActivityKind::ConsentGranted {
                scopes: scopes.to_vec(),
            },
            ip,
        );
        self.activity(label, id, tc + 2, ActivityKind::TokenIssued, ip);
        if self.rng.chance(0.5) {
            let tt = tc + self.rng.range(5, 600);
            self.activity(
                label,
                id,
                tt,
                ActivityKind::ToolCalled {
                    tool: "search".into(),
                },
                ip,
            );
        }
        tc + 600
    }

    fn vendors(&mut self) -> Vec<Vendor> {
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

    fn benign(&mut self, vendors: &[Vendor], n: usize, span: i64) {
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
                    let host = crate::host::analyze_redirect(&redirects[0])
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

    fn attack_label(kind: AlertKind, campaign: Option<String>, scenario: &str) -> Label {
        Label {
            attack: Some(kind),
            campaign,
            scenario: scenario.to_owned(),
        }
    }

    fn impersonation(&mut self, span: i64, vendors: &[Vendor]) {
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

    fn drift(&mut self, span: i64) {
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

    fn scope_escalation(&mut self, span: i64) {
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

    fn bursts(&mut self, span: i64) {
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

    fn dormant(&mut self, span: i64) {
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

    fn duplicates(&mut self, span: i64) {
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

    fn revoked(&mut self, span: i64) {
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
    fn rejected_floods(&mut self, span: i64) {
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

    /// Benign: a misconfigured client refused a few times (a fragment in
    /// its redirect URI, plain http), then fixed and registered.
    fn benign_retries(&mut self, vendors: &[Vendor], span: i64) {
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

/// Generates the corpus for `seed`: benign traffic over seven days, then
/// attacks of every kind mixed in, sorted by time (stable).
pub fn generate(seed: u64) -> Vec<LabeledEvent> {
    let start = Utc
        .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let mut g = Gen {
        rng: Rng::new(seed),
        start,
        events: Vec::new(),
    };
    let span = 6 * 86400;
    let vendors = g.vendors();
    g.benign(&vendors, 450, span);
    g.impersonation(span, &vendors);
    g.drift(span);
    g.scope_escalation(span);
    g.bursts(span);
    g.dormant(span);
    g.duplicates(span);
    g.revoked(span);
    g.rejected_floods(span);
    g.benign_retries(&vendors, span);
    g.events.sort_by_key(|e| e.obs.at());
    g.events
}

/// The corpus as JSONL, one event a line.
pub fn to_jsonl(events: &[LabeledEvent]) -> String {
    let mut out = String::new();
    for e in events {
        if let Ok(line) = serde_json::to_string(e) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// Precision and recall of one kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindScore {
    /// Alert kind.
    pub kind: AlertKind,
    /// Attack units (clients, or campaigns) labeled with this kind.
    pub units: usize,
    /// Of them, detected by an alert of this kind.
    pub detected: usize,
    /// Clients alerted with this kind (as the main client; for an alert
    /// that names no client, the refused attempts it cites).
    pub alerted: usize,
    /// Of them, attack clients (of any kind).
    pub alerted_attack: usize,
    /// `detected / units`.
    pub recall: f64,
    /// `alerted_attack / alerted`.
    pub precision: f64,
}

/// The evaluation result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Events replayed.
    pub events: usize,
    /// Benign clients.
    pub benign_clients: usize,
    /// Attack clients.
    pub attack_clients: usize,
    /// Benign refused registrations that named no client (each its own unit).
    pub benign_attempts: usize,
    /// Attack refused registrations that named no client.
    pub attack_attempts: usize,
    /// Alerts emitted (including updates of one condition).
    pub alerts: usize,
    /// Per kind.
    pub kinds: Vec<KindScore>,
    /// Benign units (clients, client-less refused attempts) that are the
    /// subject of any alert.
    pub benign_alerted: usize,
    /// `benign_alerted / (benign_clients + benign_attempts)`.
    pub false_positive_rate: f64,
    /// The benign clients alerted, with the alert summaries (for tuning).
    pub false_positives: Vec<(String, String)>,
}

const REJECTED_UNIT: &str = "rejected:";

/// The unit of ground truth an observation belongs to: its client, or for a
/// refused registration that named none, the attempt itself.
fn unit_of(obs: &Observation) -> String {
    match obs {
        Observation::Rejected(r) if r.client_id.as_deref().unwrap_or("").is_empty() => {
            format!("{REJECTED_UNIT}{}", r.event_id)
        }
        o => o.client_id().to_owned(),
    }
}

/// What an alert is about: its client, or, when it names none (a burst of
/// client-less refused attempts), the attempts it cites.
fn subjects(a: &Alert) -> Vec<String> {
    if a.client_id.is_empty() {
        a.event_ids
            .iter()
            .map(|e| format!("{REJECTED_UNIT}{e}"))
            .collect()
    } else {
        vec![a.client_id.clone()]
    }
}

/// Replays `events` through a fresh detector and scores the alerts.
pub fn evaluate(
    events: &[LabeledEvent],
    config: DetectConfig,
) -> Result<EvalReport, crate::ConfigError> {
    let mut det = Detector::new(config)?;
    let mut alerts: Vec<Alert> = Vec::new();
    let mut next_sweep: Option<DateTime<Utc>> = None;
    for e in events {
        let at = e.obs.at();
        let due = *next_sweep.get_or_insert(at + Duration::hours(1));
        if at >= due {
            alerts.extend(det.sweep(at));
            next_sweep = Some(at + Duration::hours(1));
        }
        alerts.extend(det.observe(&e.obs));
    }
    if let Some(last) = events.last() {
        alerts.extend(det.sweep(last.obs.at() + Duration::days(3)));
    }

    // Units of ground truth: clients by id; a refused attempt that named
    // no client is its own unit, `rejected:<event_id>`.
    let mut labels: BTreeMap<String, Label> = BTreeMap::new();
    for e in events {
        labels
            .entry(unit_of(&e.obs))
            .or_insert_with(|| e.label.clone());
    }
    let benign: BTreeSet<&str> = labels
        .iter()
        .filter(|(_, l)| l.attack.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    let attack: BTreeSet<&str> = labels
        .iter()
        .filter(|(_, l)| l.attack.is_some())
        .map(|(k, _)| k.as_str())
        .collect();
    let is_attempt = |u: &str| u.starts_with(REJECTED_UNIT);

    let mut kinds = Vec::new();
    for kind in AlertKind::ALL {
        let of_kind: Vec<&Alert> = alerts.iter().filter(|a| a.kind == kind).collect();
        let main: BTreeSet<String> = of_kind.iter().flat_map(|a| subjects(a)).collect();
        let touched: BTreeSet<String> = of_kind
            .iter()
            .flat_map(|a| subjects(a).into_iter().chain(a.related_client_ids.clone()))
            .collect();
        // Units: campaigns by name, single clients by id.
        let mut units: BTreeMap<String, bool> = BTreeMap::new();
        for (id, l) in &labels {
            if l.attack != Some(kind) {
                continue;
            }
            let unit = l.campaign.clone().unwrap_or_else(|| id.clone());
            let hit = touched.contains(id.as_str());
            let e = units.entry(unit).or_insert(false);
            *e |= hit;
        }
        let detected = units.values().filter(|v| **v).count();
        let alerted_attack = main.iter().filter(|c| attack.contains(c.as_str())).count();
        kinds.push(KindScore {
            kind,
            units: units.len(),
            detected,
            alerted: main.len(),
            alerted_attack,
            recall: if units.is_empty() {
                1.0
            } else {
                detected as f64 / units.len() as f64
            },
            precision: if main.is_empty() {
                1.0
            } else {
                alerted_attack as f64 / main.len() as f64
            },
        });
    }
    let mut false_positives: Vec<(String, String)> = alerts
        .iter()
        .flat_map(|a| subjects(a).into_iter().map(|s| (s, a.summary.clone())))
        .filter(|(s, _)| benign.contains(s.as_str()))
        .collect();
    false_positives.sort();
    false_positives.dedup();
    let benign_alerted: BTreeSet<&str> = false_positives.iter().map(|(c, _)| c.as_str()).collect();
    Ok(EvalReport {
        events: events.len(),
        benign_clients: benign.iter().filter(|u| !is_attempt(u)).count(),
        attack_clients: attack.iter().filter(|u| !is_attempt(u)).count(),
        benign_attempts: benign.iter().filter(|u| is_attempt(u)).count(),
        attack_attempts: attack.iter().filter(|u| is_attempt(u)).count(),
        alerts: alerts.len(),
        benign_alerted: benign_alerted.len(),
        false_positive_rate: if benign.is_empty() {
            0.0
        } else {
            benign_alerted.len() as f64 / benign.len() as f64
        },
        kinds,
        false_positives,
    })
}
