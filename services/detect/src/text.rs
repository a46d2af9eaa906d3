//! Client-name analysis: the comparison key (a case-folded UTS #39
//! skeleton of the NFKC form without invisible characters) and the
//! character-level red flags that make a name suspicious on its own.
//! Which characters are invisible or bidi controls is decided by
//! `regwatch_checks::text` (one list for every crate).

use regwatch_checks::text::{is_bidi_control, is_hidden, is_invisible};
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use unicode_security::{skeleton, MixedScript, RestrictionLevel, RestrictionLevelDetection};

/// Character-level facts about one client name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NameAnalysis {
    /// The comparison key: equal keys mean "looks the same to a user".
    pub key: String,
    /// Words of the key (split on spaces and punctuation), for brand-in-name
    /// matches such as "ChatGPT Helper".
    pub tokens: Vec<String>,
    /// Invisible code points found (`regwatch_checks::text::is_invisible`:
    /// default-ignorable, bidi controls apart), as `U+XXXX`.
    pub invisible: Vec<String>,
    /// Bidi controls found, as `U+XXXX`.
    pub bidi_controls: Vec<String>,
    /// NFKC changed the name: full-width or other compatibility forms.
    pub compatibility_forms: bool,
    /// Leading or trailing whitespace, or runs of it inside.
    pub whitespace_padding: bool,
    /// No single script covers the name (UTS #39 mixed-script).
    pub mixed_script: bool,
    /// The UTS #39 restriction level of the visible name, e.g. `single_script`.
    pub restriction_level: &'static str,
    /// Non-ASCII characters that are confusable with another script's.
    pub confusable_chars: Vec<String>,
}

impl NameAnalysis {
    /// True when the characters alone are a red flag, whatever the name says.
    pub fn has_hidden_characters(&self) -> bool {
        !self.invisible.is_empty() || !self.bidi_controls.is_empty()
    }

    /// True when the name uses any trick that makes it render like another.
    pub fn is_disguised(&self) -> bool {
        self.has_hidden_characters()
            || self.compatibility_forms
            || self.whitespace_padding
            || self.mixed_script
            || !self.confusable_chars.is_empty()
    }
}

fn codepoint(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

fn level_name(l: RestrictionLevel) -> &'static str {
    match l {
        RestrictionLevel::ASCIIOnly => "ascii_only",
        RestrictionLevel::SingleScript => "single_script",
        RestrictionLevel::HighlyRestrictive => "highly_restrictive",
        RestrictionLevel::ModeratelyRestrictive => "moderately_restrictive",
        RestrictionLevel::MinimallyRestrictive => "minimally_restrictive",
        RestrictionLevel::Unrestricted => "unrestricted",
    }
}

/// Skeleton, then lowercase, until stable (at most three rounds). The
/// skeleton must come first: it maps capital `I` and digit `1` to `l`
/// before lowercasing would turn `I` into an unrelated `i`.
fn fold(s: &str) -> String {
    let mut cur: String = s.to_owned();
    for _ in 0..3 {
        let next: String = skeleton(&cur).collect::<String>().to_lowercase();
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

/// The comparison key of a name (see [`NameAnalysis::key`]).
pub fn name_key(name: &str) -> String {
    let visible: String = name.nfkc().filter(|c| !is_hidden(*c)).collect();
    let collapsed = visible.split_whitespace().collect::<Vec<_>>().join(" ");
    fold(&collapsed)
}

/// Splits a key into words of at least three characters.
pub fn key_tokens(key: &str) -> Vec<String> {
    key.split(|c: char| c.is_whitespace() || (c.is_ascii_punctuation() && c != '\''))
        .filter(|t| t.chars().count() >= 3)
        .map(str::to_owned)
        .collect()
}

/// Analyses one raw client name.
pub fn analyze_name(name: &str) -> NameAnalysis {
    let invisible: Vec<String> = name
        .chars()
        .filter(|c| is_invisible(*c))
        .map(codepoint)
        .collect();
    let bidi_controls: Vec<String> = name
        .chars()
        .filter(|c| is_bidi_control(*c))
        .map(codepoint)
        .collect();
    let visible: String = name.chars().filter(|c| !is_hidden(*c)).collect();
    let nfkc: String = visible.nfkc().collect();
    let compatibility_forms = nfkc != visible.nfc().collect::<String>();
    let collapsed = nfkc.split_whitespace().collect::<Vec<_>>().join(" ");
    let whitespace_padding = collapsed != nfkc;
    // Scripts are judged on the visible text without spaces and ASCII
    // punctuation, which belong to every script.
    let letters: String = nfkc.chars().filter(|c| !c.is_whitespace()).collect();
    let mixed_script = !letters.as_str().is_single_script();
    let restriction_level = level_name(letters.as_str().detect_restriction_level());
    let confusable_chars = if name.is_ascii() {
        Vec::new()
    } else {
        nfkc.chars()
            .filter(|c| {
                !c.is_ascii() && unicode_security::is_potential_mixed_script_confusable_char(*c)
            })
            .map(|c| format!("{c} ({})", codepoint(c)))
            .collect()
    };
    let key = fold(&collapsed);
    let tokens = key_tokens(&key);
    NameAnalysis {
        key,
        tokens,
        invisible,
        bidi_controls,
        compatibility_forms,
        whitespace_padding,
        mixed_script,
        restriction_level,
        confusable_chars,
    }
}
