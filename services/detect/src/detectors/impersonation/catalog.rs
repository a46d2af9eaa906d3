//! The name catalog of `name_impersonation` and its scoring: a client name
//! that renders like a protected name or an established client's name,
//! judged together with whether the redirect targets belong to the owner
//! of that name. Pure over the catalog: [`NameCatalog::assess`] only reads.

use serde::Serialize;
use serde_json::json;

use crate::config::{ImpersonationConfig, ProtectedName};
use crate::host::{RedirectClass, RedirectInfo};
use crate::names::{builtin_protected, IndexMatch, SymIndex};
use crate::text::{analyze_name, name_key, NameAnalysis};

/// An established (consented, unflagged) client name and where it redirects.
#[derive(Debug, Clone)]
pub struct EstablishedName {
    /// The name as the first established client wrote it.
    pub display: Box<str>,
    /// That client.
    pub client_id: Box<str>,
    /// Registrable domains its redirects use (at most four kept).
    pub domains: Vec<Box<str>>,
    /// Custom schemes its redirects use (at most two kept).
    pub schemes: Vec<Box<str>>,
    /// It redirects to loopback (a native client).
    pub loopback: bool,
}

/// Whether the redirect targets belong to the impersonated owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// Every redirect is on the owner's domains, schemes or allowed loopback.
    Owned,
    /// At least one redirect is elsewhere.
    NotOwned,
    /// No redirect URIs to judge by.
    Unknown,
}

/// How the name matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchType {
    /// Byte-identical name.
    Exact,
    /// Same name up to letter case only.
    CaseVariant,
    /// Same UTS #39 skeleton, different characters (homoglyphs, invisible
    /// characters, full-width forms, padding).
    Confusable,
    /// Small edit distance after folding.
    EditDistance,
    /// Contains the protected name as a word.
    ContainsName,
}

/// Who the name appears to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Target {
    /// A protected (built-in or configured) name.
    Protected {
        /// The protected name.
        name: String,
        /// Its owner's registrable domains.
        owner_domains: Vec<String>,
    },
    /// An established client.
    Established {
        /// Its name.
        name: String,
        /// Its client id.
        client_id: String,
        /// Its registrable domains.
        owner_domains: Vec<String>,
    },
}

impl Target {
    /// The impersonated name.
    pub fn name(&self) -> &str {
        match self {
            Target::Protected { name, .. } | Target::Established { name, .. } => name,
        }
    }
}

/// The outcome of one name check that crossed the alert threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImpersonationFinding {
    /// Score in [0, 1].
    pub score: f64,
    /// Who it resembles (`None`: suspicious characters only).
    pub target: Option<Target>,
    /// How.
    pub match_type: Option<MatchType>,
    /// Edit distance of the folded keys.
    pub distance: u8,
    /// Whether the redirects belong to the target's owner.
    pub ownership: Ownership,
    /// Redirect registrable domains (or classes) not owned by the target.
    pub foreign_redirects: Vec<String>,
    /// Short reasons, most important first.
    pub reasons: Vec<String>,
    /// Character analysis of the name.
    pub analysis: NameAnalysis,
}

impl ImpersonationFinding {
    /// Evidence JSON for the alert.
    pub fn evidence(&self, client_name: &str) -> serde_json::Value {
        json!({
            "client_name": client_name,
            "client_name_escaped": client_name.escape_unicode().to_string().replace("\\u{", "U+").replace('}', ""),
            "resembles": self.target,
            "match_type": self.match_type,
            "edit_distance": self.distance,
            "redirect_ownership": self.ownership,
            "foreign_redirects": self.foreign_redirects,
            "reasons": self.reasons,
            "skeleton_key": self.analysis.key,
            "invisible_characters": self.analysis.invisible,
            "bidi_controls": self.analysis.bidi_controls,
            "compatibility_forms": self.analysis.compatibility_forms,
            "whitespace_padding": self.analysis.whitespace_padding,
            "mixed_script": self.analysis.mixed_script,
            "restriction_level": self.analysis.restriction_level,
            "confusable_characters": self.analysis.confusable_chars,
        })
    }
}

/// Protected and established names, indexed.
#[derive(Debug, Clone)]
pub struct NameCatalog {
    protected: SymIndex<ProtectedName>,
    /// (key, protected id) of names matched as words; a short fixed list.
    word_names: Vec<(String, u32)>,
    established: SymIndex<EstablishedName>,
}

fn ownership_of(
    redirects: &[RedirectInfo],
    domains: &[&str],
    schemes: &[&str],
    loopback_allowed: bool,
) -> (Ownership, Vec<String>) {
    if redirects.is_empty() {
        return (Ownership::Unknown, Vec::new());
    }
    let mut foreign = Vec::new();
    for r in redirects {
        let owned = match r.class {
            RedirectClass::Https | RedirectClass::Http => r
                .registrable
                .as_deref()
                .is_some_and(|d| domains.contains(&d)),
            RedirectClass::Loopback => loopback_allowed,
            RedirectClass::CustomScheme => schemes.contains(&r.scheme.as_str()),
            RedirectClass::PrivateIp | RedirectClass::Invalid => false,
        };
        if !owned {
            let label = match (&r.registrable, r.class) {
                (Some(d), _) => d.clone(),
                (None, RedirectClass::CustomScheme) => format!("{}:", r.scheme),
                (None, c) => format!("{c:?}").to_lowercase(),
            };
            if !foreign.contains(&label) {
                foreign.push(label);
            }
        }
    }
    if foreign.is_empty() {
        (Ownership::Owned, foreign)
    } else {
        (Ownership::NotOwned, foreign)
    }
}

impl NameCatalog {
    /// Builds the protected index from config (and the built-in list) and
    /// an empty established index holding at most `max_names`.
    pub fn new(cfg: &ImpersonationConfig, max_names: usize) -> Self {
        let mut list = if cfg.builtin_protected {
            builtin_protected()
        } else {
            Vec::new()
        };
        list.extend(cfg.protected.iter().cloned());
        let mut protected: SymIndex<ProtectedName> = SymIndex::new(2, list.len().max(1) * 2);
        let mut word_names = Vec::new();
        for mut p in list {
            p.domains
                .iter_mut()
                .for_each(|d| *d = d.trim_end_matches('.').to_ascii_lowercase());
            let key = name_key(&p.name);
            let word = p.match_as_word;
            let existing = protected.find_exact(&key);
            match existing.and_then(|id| protected.get_mut(id)) {
                // The same name configured twice: merge the owners.
                Some(e) => {
                    e.domains.extend(p.domains);
                    e.schemes.extend(p.schemes);
                    e.loopback_allowed |= p.loopback_allowed;
                    e.match_as_word |= word;
                }
                None => {
                    let (id, _) = protected.insert(&key, p);
                    if word {
                        word_names.push((key, id));
                    }
                }
            }
        }
        NameCatalog {
            protected,
            word_names,
            established: SymIndex::new(1, max_names),
        }
    }

    /// Established names indexed.
    pub fn established_len(&self) -> usize {
        self.established.len()
    }

    /// Records `name` as established by `client_id` with these redirects.
    /// An existing entry with the same key gains the domains (up to four).
    pub fn establish(&mut self, name: &str, client_id: &str, redirects: &[RedirectInfo]) {
        let key = name_key(name);
        // Protected names are governed by the protected list alone.
        if key.is_empty() || self.protected.find_exact(&key).is_some() {
            return;
        }
        let id = match self.established.find_exact(&key) {
            Some(id) => id,
            None => {
                let e = EstablishedName {
                    display: name.into(),
                    client_id: client_id.into(),
                    domains: Vec::new(),
                    schemes: Vec::new(),
                    loopback: false,
                };
                self.established.insert(&key, e).0
            }
        };
        if let Some(e) = self.established.get_mut(id) {
            for r in redirects {
                match (r.class, &r.registrable) {
                    (RedirectClass::Loopback, _) => e.loopback = true,
                    (RedirectClass::CustomScheme, _)
                        if e.schemes.len() < 2 && !e.schemes.iter().any(|s| **s == *r.scheme) =>
                    {
                        e.schemes.push(r.scheme.as_str().into());
                    }
                    (RedirectClass::Https | RedirectClass::Http, Some(d))
                        if e.domains.len() < 4 && !e.domains.iter().any(|x| **x == **d) =>
                    {
                        e.domains.push(d.as_str().into());
                    }
                    _ => {}
                }
            }
        }
    }

    /// Checks one name with its redirects. `None` when nothing reaches
    /// `cfg.min_score`. `own_client_id` keeps a client from matching the
    /// established entry it created itself.
    pub fn assess(
        &self,
        name: &str,
        redirects: &[RedirectInfo],
        cfg: &ImpersonationConfig,
        own_client_id: Option<&str>,
    ) -> Option<ImpersonationFinding> {
        let analysis = analyze_name(name);
        if analysis.key.is_empty() {
            return None;
        }
        let min_len = [cfg.min_len_distance_1, cfg.min_len_distance_2];
        let mut best: Option<ImpersonationFinding> = None;
        fn consider(best: &mut Option<ImpersonationFinding>, f: ImpersonationFinding) {
            if best.as_ref().is_none_or(|b| f.score > b.score) {
                *best = Some(f);
            }
        }

        for m in self
            .protected
            .lookup(&analysis.key, cfg.max_distance_protected, min_len)
        {
            let Some(p) = self.protected.get(m.id) else {
                continue;
            };
            let domains: Vec<&str> = p.domains.iter().map(String::as_str).collect();
            let schemes: Vec<&str> = p.schemes.iter().map(String::as_str).collect();
            let (own, foreign) = ownership_of(redirects, &domains, &schemes, p.loopback_allowed);
            let target = Target::Protected {
                name: p.name.clone(),
                owner_domains: p.domains.clone(),
            };
            if let Some(f) = score_match(name, &p.name, m, own, foreign, target, &analysis, false) {
                consider(&mut best, f);
            }
        }
        // Brand used as a word inside a longer name ("ChatGPT Helper").
        // ...unless the whole name is itself a protected name ("Claude Code").
        let is_protected_name = self.protected.find_exact(&analysis.key).is_some();
        for (key, id) in &self.word_names {
            if is_protected_name || !contains_word(&analysis.key, key) {
                continue;
            }
            let Some(p) = self.protected.get(*id) else {
                continue;
            };
            let domains: Vec<&str> = p.domains.iter().map(String::as_str).collect();
            let schemes: Vec<&str> = p.schemes.iter().map(String::as_str).collect();
            let (own, foreign) = ownership_of(redirects, &domains, &schemes, p.loopback_allowed);
            let base = match own {
                Ownership::Owned => continue,
                Ownership::NotOwned => 0.45,
                Ownership::Unknown => 0.3,
            };
            let mut reasons = vec![format!("contains the protected name \"{}\"", p.name)];
            if own == Ownership::NotOwned {
                reasons.push(format!(
                    "redirects to {} which {} does not own",
                    foreign.join(", "),
                    p.name
                ));
            }
            let score = with_character_flags(base, &analysis, &mut reasons);
            consider(
                &mut best,
                ImpersonationFinding {
                    score,
                    target: Some(Target::Protected {
                        name: p.name.clone(),
                        owner_domains: p.domains.clone(),
                    }),
                    match_type: Some(MatchType::ContainsName),
                    distance: 0,
                    ownership: own,
                    foreign_redirects: foreign,
                    reasons,
                    analysis: analysis.clone(),
                },
            );
        }
        for m in self
            .established
            .lookup(&analysis.key, cfg.max_distance_established, min_len)
        {
            let Some(e) = self.established.get(m.id) else {
                continue;
            };
            if own_client_id.is_some_and(|c| c == &*e.client_id) {
                continue;
            }
            let domains: Vec<&str> = e.domains.iter().map(|d| &**d).collect();
            let schemes: Vec<&str> = e.schemes.iter().map(|d| &**d).collect();
            let (own, foreign) = ownership_of(redirects, &domains, &schemes, e.loopback);
            let target = Target::Established {
                name: e.display.to_string(),
                client_id: e.client_id.to_string(),
                owner_domains: e.domains.iter().map(|d| d.to_string()).collect(),
            };
            if let Some(f) = score_match(name, &e.display, m, own, foreign, target, &analysis, true)
            {
                consider(&mut best, f);
            }
        }
        // Hidden characters alone, resembling nothing: still a red flag.
        if best.is_none() && (analysis.has_hidden_characters() || analysis.mixed_script) {
            let mut reasons = Vec::new();
            let score = with_character_flags(0.15, &analysis, &mut reasons);
            consider(
                &mut best,
                ImpersonationFinding {
                    score,
                    target: None,
                    match_type: None,
                    distance: 0,
                    ownership: Ownership::Unknown,
                    foreign_redirects: Vec::new(),
                    reasons,
                    analysis: analysis.clone(),
                },
            );
        }
        best.filter(|f| f.score >= cfg.min_score)
    }
}

fn contains_word(hay: &str, word: &str) -> bool {
    hay.match_indices(word).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + word.len()..].chars().next();
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        boundary(before) && boundary(after)
    })
}

fn with_character_flags(base: f64, a: &NameAnalysis, reasons: &mut Vec<String>) -> f64 {
    let mut w = vec![base];
    if !a.bidi_controls.is_empty() {
        w.push(0.35);
        reasons.push(format!(
            "bidi control characters {}",
            a.bidi_controls.join(" ")
        ));
    }
    if !a.invisible.is_empty() {
        w.push(0.3);
        reasons.push(format!("invisible characters {}", a.invisible.join(" ")));
    }
    if a.mixed_script {
        w.push(0.2);
        reasons.push("mixed scripts".to_owned());
    }
    if a.compatibility_forms {
        w.push(0.1);
        reasons.push("compatibility forms (e.g. full-width letters)".to_owned());
    }
    if a.whitespace_padding {
        w.push(0.1);
        reasons.push("leading, trailing or repeated whitespace".to_owned());
    }
    crate::alerts::combine(w)
}

#[allow(clippy::too_many_arguments)]
fn score_match(
    raw: &str,
    target_name: &str,
    m: IndexMatch,
    own: Ownership,
    foreign: Vec<String>,
    target: Target,
    analysis: &NameAnalysis,
    established: bool,
) -> Option<ImpersonationFinding> {
    let match_type = if m.distance > 0 {
        MatchType::EditDistance
    } else if raw == target_name {
        MatchType::Exact
    } else if raw.to_lowercase() == target_name.to_lowercase() {
        MatchType::CaseVariant
    } else {
        MatchType::Confusable
    };
    let mut reasons = Vec::new();
    let base = match (match_type, own) {
        (MatchType::Confusable, Ownership::Owned) => 0.45,
        (MatchType::Confusable, _) => 0.85,
        (_, Ownership::Owned) => return None,
        (MatchType::Exact | MatchType::CaseVariant, Ownership::NotOwned) => 0.65,
        (MatchType::Exact | MatchType::CaseVariant, Ownership::Unknown) => 0.4,
        (MatchType::EditDistance, Ownership::NotOwned) => {
            if m.distance == 1 {
                0.6
            } else {
                0.5
            }
        }
        (MatchType::EditDistance, Ownership::Unknown) => 0.35,
        (MatchType::ContainsName, _) => 0.45,
    };
    reasons.push(match match_type {
        MatchType::Exact => format!("uses the name \"{target_name}\""),
        MatchType::CaseVariant => format!("uses the name \"{target_name}\" in different case"),
        MatchType::Confusable => format!("renders like \"{target_name}\" (same UTS #39 skeleton)"),
        MatchType::EditDistance => format!("{} edit(s) from \"{target_name}\"", m.distance),
        MatchType::ContainsName => format!("contains \"{target_name}\""),
    });
    match own {
        Ownership::NotOwned => reasons.push(format!(
            "redirects to {} which the owner of \"{target_name}\" does not use",
            foreign.join(", ")
        )),
        Ownership::Unknown => reasons.push("no redirect URI to check ownership".to_owned()),
        Ownership::Owned => reasons.push("redirects are on the owner's domains".to_owned()),
    }
    let mut score = with_character_flags(base, analysis, &mut reasons);
    if established {
        score *= 0.85;
    }
    Some(ImpersonationFinding {
        score,
        target: Some(target),
        match_type: Some(match_type),
        distance: m.distance,
        ownership: own,
        foreign_redirects: foreign,
        reasons,
        analysis: analysis.clone(),
    })
}
