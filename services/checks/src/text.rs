//! Characters that make one text render like another: the one list.
//!
//! - [`DEFAULT_IGNORABLE`]: Unicode's `Default_Ignorable_Code_Point`
//!   (DerivedCoreProperties.txt, Unicode 16). A renderer shows these as
//!   nothing, so "Chat\u{200B}GPT" looks like "ChatGPT". It includes the
//!   Hangul fillers (U+115F, U+1160, U+3164, U+FFA0), the variation
//!   selectors and the tag characters (U+E0000–U+E0FFF), which the old
//!   copy in the authorization server missed.
//! - [`BIDI_CONTROLS`]: the bidirectional formatting controls of UAX #9
//!   (ALM, LRM, RLM, LRE–RLO, LRI–PDI). They reorder what is shown. All
//!   of them are also default-ignorable; reports name them apart because
//!   they are the stronger sign of intent.
//!
//! Control characters (`Cc`) are not here: `char::is_control` is exact
//! and every caller rejects them outright.

use std::ops::RangeInclusive;

/// `Default_Ignorable_Code_Point`, Unicode 16, as inclusive ranges in
/// code point order.
pub const DEFAULT_IGNORABLE: &[RangeInclusive<char>] = &[
    '\u{00AD}'..='\u{00AD}',   // SOFT HYPHEN
    '\u{034F}'..='\u{034F}',   // COMBINING GRAPHEME JOINER
    '\u{061C}'..='\u{061C}',   // ARABIC LETTER MARK
    '\u{115F}'..='\u{1160}',   // HANGUL CHOSEONG / JUNGSEONG FILLER
    '\u{17B4}'..='\u{17B5}',   // KHMER VOWEL INHERENT AQ, AA
    '\u{180B}'..='\u{180F}',   // MONGOLIAN FREE VARIATION SELECTORS, VOWEL SEPARATOR
    '\u{200B}'..='\u{200F}',   // ZERO WIDTH SPACE .. RIGHT-TO-LEFT MARK
    '\u{202A}'..='\u{202E}',   // LRE .. RLO
    '\u{2060}'..='\u{206F}',   // WORD JOINER .. NOMINAL DIGIT SHAPES (incl. LRI .. PDI)
    '\u{3164}'..='\u{3164}',   // HANGUL FILLER
    '\u{FE00}'..='\u{FE0F}',   // VARIATION SELECTORS 1-16
    '\u{FEFF}'..='\u{FEFF}',   // ZERO WIDTH NO-BREAK SPACE (BOM)
    '\u{FFA0}'..='\u{FFA0}',   // HALFWIDTH HANGUL FILLER
    '\u{FFF0}'..='\u{FFF8}',   // unassigned, reserved default-ignorable
    '\u{1BCA0}'..='\u{1BCA3}', // SHORTHAND FORMAT CONTROLS
    '\u{1D173}'..='\u{1D17A}', // MUSICAL SYMBOL BEGIN/END BEAM .. PHRASE
    '\u{E0000}'..='\u{E0FFF}', // TAGS, VARIATION SELECTORS 17-256, reserved
];

/// The bidirectional formatting controls (UAX #9 §2), as inclusive
/// ranges in code point order.
pub const BIDI_CONTROLS: &[RangeInclusive<char>] = &[
    '\u{061C}'..='\u{061C}', // ARABIC LETTER MARK
    '\u{200E}'..='\u{200F}', // LEFT-TO-RIGHT MARK, RIGHT-TO-LEFT MARK
    '\u{202A}'..='\u{202E}', // LRE, RLE, PDF, LRO, RLO
    '\u{2066}'..='\u{2069}', // LRI, RLI, FSI, PDI
];

fn in_ranges(ranges: &[RangeInclusive<char>], c: char) -> bool {
    // Nothing below U+00AD is in either list: the common ASCII case costs
    // one comparison.
    c >= '\u{00AD}' && ranges.iter().any(|r| r.contains(&c))
}

/// `c` is a bidirectional formatting control.
pub fn is_bidi_control(c: char) -> bool {
    in_ranges(BIDI_CONTROLS, c)
}

/// `c` is `Default_Ignorable_Code_Point` (bidi controls included).
pub fn is_default_ignorable(c: char) -> bool {
    in_ranges(DEFAULT_IGNORABLE, c)
}

/// `c` renders as nothing and is not a bidi control: what reports list
/// as "invisible characters".
pub fn is_invisible(c: char) -> bool {
    is_default_ignorable(c) && !is_bidi_control(c)
}

/// `c` is invisible or a bidi control: a character that lets a name look
/// like another one.
pub fn is_hidden(c: char) -> bool {
    is_default_ignorable(c) || is_bidi_control(c)
}

/// `s` has at least one [hidden](is_hidden) character.
pub fn has_hidden(s: &str) -> bool {
    s.chars().any(is_hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DerivedCoreProperties.txt (Unicode 16.0.0), `Default_Ignorable_Code_Point`
    /// lines, as published: an independent statement of the list above.
    const DERIVED_DEFAULT_IGNORABLE: &[&str] = &[
        "00AD",
        "034F",
        "061C",
        "115F..1160",
        "17B4..17B5",
        "180B..180D",
        "180E",
        "180F",
        "200B..200F",
        "202A..202E",
        "2060..2064",
        "2065",
        "2066..206F",
        "3164",
        "FE00..FE0F",
        "FEFF",
        "FFA0",
        "FFF0..FFF8",
        "1BCA0..1BCA3",
        "1D173..1D17A",
        "E0000",
        "E0001",
        "E0002..E001F",
        "E0020..E007F",
        "E0080..E00FF",
        "E0100..E01EF",
        "E01F0..E0FFF",
    ];

    /// UAX #9 Table 4 (explicit formatting characters) plus ALM, LRM, RLM.
    const UAX9_BIDI: &[&str] = &["061C", "200E", "200F", "202A..202E", "2066..2069"];

    fn expand(lines: &[&str]) -> Vec<u32> {
        let hex = |s: &str| u32::from_str_radix(s, 16).expect("hex code point");
        let mut out = Vec::new();
        for line in lines {
            let (lo, hi) = line.split_once("..").unwrap_or((line, line));
            out.extend(hex(lo)..=hex(hi));
        }
        assert!(
            out.windows(2).all(|w| w[0] < w[1]),
            "published lines are in order"
        );
        out
    }

    /// Every code point of Unicode, one by one, against the published lists.
    #[test]
    fn every_code_point_is_classified_as_published() {
        let ignorable = expand(DERIVED_DEFAULT_IGNORABLE);
        let bidi = expand(UAX9_BIDI);
        for cp in 0..=0x10FFFFu32 {
            let Some(c) = char::from_u32(cp) else {
                continue; // surrogates
            };
            let ig = ignorable.binary_search(&cp).is_ok();
            let bi = bidi.binary_search(&cp).is_ok();
            assert_eq!(is_default_ignorable(c), ig, "U+{cp:04X} default-ignorable");
            assert_eq!(is_bidi_control(c), bi, "U+{cp:04X} bidi");
            assert_eq!(is_invisible(c), ig && !bi, "U+{cp:04X} invisible");
            assert_eq!(is_hidden(c), ig || bi, "U+{cp:04X} hidden");
        }
    }

    /// The code points the review named, and their neighbours.
    #[test]
    fn named_code_points() {
        let cases: &[(char, bool, bool)] = &[
            // (char, invisible, bidi)
            ('\u{3164}', true, false), // HANGUL FILLER (authz's old list missed it)
            ('\u{3163}', false, false), // HANGUL LETTER I
            ('\u{3165}', false, false), // HANGUL LETTER SSANGNIEUN
            ('\u{E0000}', true, false), // first tag block code point
            ('\u{E0001}', true, false), // LANGUAGE TAG
            ('\u{E0041}', true, false), // TAG LATIN CAPITAL LETTER A
            ('\u{E007F}', true, false), // CANCEL TAG
            ('\u{E1000}', false, false),
            ('\u{200B}', true, false), // ZERO WIDTH SPACE
            ('\u{200D}', true, false), // ZERO WIDTH JOINER
            ('\u{00AD}', true, false), // SOFT HYPHEN
            ('\u{FEFF}', true, false),
            ('\u{FE0F}', true, false),
            ('\u{2064}', true, false),
            ('\u{202A}', false, true),
            ('\u{202E}', false, true), // RIGHT-TO-LEFT OVERRIDE
            ('\u{2066}', false, true),
            ('\u{2069}', false, true),
            ('\u{200E}', false, true),
            ('\u{200F}', false, true),
            ('\u{061C}', false, true),
            ('\u{061B}', false, false),
            ('\u{2070}', false, false),
            ('a', false, false),
            (' ', false, false),
            ('\u{00A0}', false, false), // NO-BREAK SPACE is visible whitespace
            ('\u{0430}', false, false), // Cyrillic a: a confusable, not hidden
        ];
        for &(c, invisible, bidi) in cases {
            let cp = u32::from(c);
            assert_eq!(is_invisible(c), invisible, "U+{cp:04X}");
            assert_eq!(is_bidi_control(c), bidi, "U+{cp:04X}");
            assert_eq!(is_hidden(c), invisible || bidi, "U+{cp:04X}");
        }
        assert!(has_hidden("Chat\u{3164}GPT"));
        assert!(has_hidden("\u{202E}ChatGPT"));
        assert!(!has_hidden("ChatGPT"));
        assert!(!has_hidden(""));
    }

    #[test]
    fn lists_are_sorted_and_disjoint() {
        for list in [DEFAULT_IGNORABLE, BIDI_CONTROLS] {
            for w in list.windows(2) {
                assert!(w[0].end() < w[1].start(), "{w:?}");
            }
        }
    }
}
