//! What a person's or a department's name may hold. Names are shown to people who decide
//! on them (a patient choosing whom to consent to, a department reviewing a reader), so a
//! name must not contain characters that are invisible or that reorder the text around
//! them: "Dr. Amara Okafor\u{200b}" would look exactly like the real doctor, and a bidi
//! override can make "rotcoD" read as "Doctor". The ledger applies this rule, so every
//! replica refuses such a name alike, whichever gateway sent it.

/// Invisible or text-reordering code points: the bidi embeddings, overrides, isolates and
/// marks, zero-width spaces and joiners, word joiner and invisible operators, the byte
/// order mark, soft hyphen, combining grapheme joiner, Hangul fillers, variation
/// selectors and tag characters (Unicode general category Cf and the default-ignorable
/// code points that people's names never need).
const INVISIBLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{206F}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF0}', '\u{FFFB}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0000}', '\u{E0FFF}'),
];

/// Whether `c` is invisible or reorders text.
pub fn is_invisible(c: char) -> bool {
    INVISIBLE.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Why `name` is not acceptable as a name, or `None` when it is.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.chars().any(char::is_control) {
        Some("control characters are not allowed in a name")
    } else if name.chars().any(is_invisible) {
        Some("invisible or text-direction characters (zero-width, bidi controls) are not allowed in a name")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_names_in_many_scripts_are_accepted() {
        for n in [
            "Dr. Amara Okafor",
            "Zoë Ångström-Núñez",
            "O'Brien, Siobhán",
            "محمد بن سلمان",
            "שרה לוי",
            "王小明",
            "김민준",
            "Nguyễn Thị Minh Khai",
            "राहुल शर्मा",
            "Cardiology (Ward 4B)",
        ] {
            assert_eq!(name_problem(n), None, "{n}");
        }
    }

    #[test]
    fn invisible_and_reordering_characters_are_refused() {
        for n in [
            "Dr. Amara Okafor\u{200b}",
            "Dr.\u{200d}Amara",
            "\u{feff}Amara",
            "Amara\u{202e}rotcoD",
            "\u{2066}Amara\u{2069}",
            "Amara\u{200f}",
            "Ama\u{00ad}ra",
            "Amara\u{e0041}",
            "Amara\u{2060}",
            "Amara\u{061c}",
            "Amara\u{3164}",
        ] {
            assert!(name_problem(n).is_some(), "{n:?}");
        }
        assert!(name_problem("Amara\u{7}").is_some());
        assert!(name_problem("Amara\nOkafor").is_some());
    }
}
