//! The output layer: what a target sends may be shown on a terminal, written to a report or
//! published as a page, so every text that reaches a person passes through here.
//!
//! - [`terminal`] / [`terminal_line`]: characters that drive a terminal, reorder what it
//!   shows or show as nothing (C0 and C1 controls, DEL, bidirectional overrides and isolates,
//!   line and paragraph separators, zero-width and other invisible characters: see
//!   [`is_unsafe`]) become the visible text `\u{1b}`. The text never holds such a character
//!   afterwards, so applying it again changes nothing. The suite's own colours are added by
//!   the renderer after this step.
//! - [`json_safe`]: the same characters in serialized JSON written as `\uXXXX` escapes, which
//!   JSON reads back as the same value (so a body or snapshot stays exact and replayable).
//!
//! Secrets are replaced before any of this, by [`crate::client::Secrets`].

/// Whether `c` must not reach a terminal or a report raw (tab and line feed are handled by
/// the caller): C0 and C1 controls and DEL; bidirectional marks, embeddings, overrides and
/// isolates; line and paragraph separators; and the invisible characters (Unicode's
/// default-ignorable code points, and the interlinear annotation controls), which would
/// let a target show `975\u{200b}` as `975` or smuggle text in tag characters.
///
/// Variation selectors are default-ignorable too but are kept: they choose how the
/// character before them is drawn (an emoji's colour form, a CJK glyph variant), so
/// escaping them would make ordinary names unreadable, and they never hide a character on
/// their own. Letters and combining marks are kept as well.
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        || is_invisible(c)
}

/// The default-ignorable code points (Unicode's `Default_Ignorable_Code_Point`: drawn as
/// nothing) but the variation selectors, and the interlinear annotation controls.
fn is_invisible(c: char) -> bool {
    matches!(c,
        // Soft hyphen, combining grapheme joiner.
        '\u{ad}' | '\u{34f}'
        // Hangul fillers.
        | '\u{115f}' | '\u{1160}' | '\u{3164}' | '\u{ffa0}'
        // Khmer inherent vowels, Mongolian vowel separator.
        | '\u{17b4}' | '\u{17b5}' | '\u{180e}'
        // Zero width space, non-joiner, joiner (marks 200e/200f are above).
        | '\u{200b}'..='\u{200d}'
        // Word joiner, invisible operators, the deprecated format controls.
        | '\u{2060}'..='\u{2065}' | '\u{206a}'..='\u{206f}'
        // Byte order mark (zero width no-break space), unassigned ignorables, interlinear
        // annotation.
        | '\u{feff}' | '\u{fff0}'..='\u{fffb}'
        // Shorthand format controls, musical symbol format controls.
        | '\u{1bca0}'..='\u{1bca3}' | '\u{1d173}'..='\u{1d17a}'
        // Tag characters and the reserved ignorables around the variation selectors
        // (U+E0100..U+E01EF, kept).
        | '\u{e0000}'..='\u{e00ff}' | '\u{e01f0}'..='\u{e0fff}')
}

fn escape_with(text: &str, keep: impl Fn(char) -> bool) -> String {
    if text
        .chars()
        .all(|c| keep(c) || !is_unsafe(c) && c != '\t' && c != '\n')
    {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if keep(c) || !(is_unsafe(c) || c == '\t' || c == '\n') {
            out.push(c);
        } else {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        }
    }
    out
}

/// `text` for a terminal or a report, line breaks and tabs kept: every other control or
/// bidirectional character written as `\u{..}`.
pub fn terminal(text: &str) -> String {
    escape_with(text, |c| c == '\n' || c == '\t')
}

/// [`terminal`] for text that must stay on one line (a table cell, a `sweep` line): line
/// feeds and tabs are escaped too.
pub fn terminal_line(text: &str) -> String {
    escape_with(text, |_| false)
}

/// Serialized JSON (as serde_json writes it) with every [`is_unsafe`] character written as a
/// `\uXXXX` escape. Such characters only occur inside strings there, where the escape means
/// the same character, so the document reads back as the same value.
pub fn json_safe(serialized: &str) -> String {
    if !serialized.chars().any(is_unsafe) {
        return serialized.to_owned();
    }
    let mut out = String::with_capacity(serialized.len() + 16);
    for c in serialized.chars() {
        if is_unsafe(c) {
            // One escape per UTF-16 unit: a character beyond the basic plane (a tag
            // character) is a surrogate pair, as JSON writes it.
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `value` as compact JSON text, safe for a terminal (see [`json_safe`]).
pub fn json_text(value: &serde_json::Value) -> String {
    json_safe(&value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_become_visible_text() {
        assert_eq!(terminal("a\x1b[2Jb\x07c\rd"), "a\\u{1b}[2Jb\\u{7}c\\u{d}d");
        assert_eq!(
            terminal("x\u{9b}31m\u{85}\u{202e}y\u{2066}"),
            "x\\u{9b}31m\\u{85}\\u{202e}y\\u{2066}"
        );
        assert_eq!(terminal("line\n\tnext"), "line\n\tnext");
        assert_eq!(terminal_line("line\n\tnext"), "line\\u{a}\\u{9}next");
        assert_eq!(terminal("é 🦀 ok"), "é 🦀 ok");
        assert_eq!(terminal("\u{7f}\u{0}"), "\\u{7f}\\u{0}");
    }

    #[test]
    fn invisible_characters_become_visible_text() {
        assert_eq!(terminal_line("975\u{200b}"), "975\\u{200b}");
        for c in [
            '\u{200b}',
            '\u{200c}',
            '\u{200d}',
            '\u{feff}',
            '\u{ad}',
            '\u{2060}',
            '\u{2061}',
            '\u{2062}',
            '\u{2063}',
            '\u{2064}',
            '\u{180e}',
            '\u{34f}',
            '\u{3164}',
            '\u{e0001}',
            '\u{e0041}',
            '\u{e007f}',
            '\u{fff9}',
            '\u{1d173}',
        ] {
            assert!(is_unsafe(c), "{c:?}");
            let shown = terminal(&format!("a{c}b"));
            assert_eq!(shown, format!("a\\u{{{:x}}}b", u32::from(c)));
        }
    }

    #[test]
    fn letters_marks_and_emoji_stay_readable() {
        // Accents (precomposed and combining), other scripts, emoji with their variation
        // selector and keycap, a CJK ideograph with an ideographic variation selector.
        for text in [
            "é e\u{301} ñ",
            "Ærøskøbing",
            "日本語 中文 한국어",
            "العربية עברית",
            "हिन्दी ไทย",
            "❤\u{fe0f} ⚠\u{fe0f} 1\u{fe0f}\u{20e3}",
            "葛\u{e0100}",
            "🦀",
        ] {
            assert_eq!(terminal(text), text);
            assert_eq!(
                json_safe(&serde_json::json!(text).to_string()),
                serde_json::json!(text).to_string()
            );
        }
    }

    #[test]
    fn a_tag_character_is_a_surrogate_pair_in_json() {
        let value = serde_json::json!({"id": "975\u{e0041}\u{200b}"});
        let text = json_text(&value);
        assert!(
            text.contains("\\udb40\\udc41") && text.contains("\\u200b"),
            "{text}"
        );
        assert!(text.is_ascii(), "{text}");
        let back: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, value);
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = terminal_line("\x1b]0;title\x07\n\u{202e}");
        assert!(!once.chars().any(|c| is_unsafe(c) || c == '\n'));
        assert_eq!(terminal_line(&once), once);
        assert_eq!(terminal(&once), once);
    }

    #[test]
    fn json_stays_the_same_value() {
        let value = serde_json::json!({"name": "a\u{1b}b\u{85}c\u{202e}d\u{7f}\n\"é"});
        let text = json_text(&value);
        assert!(!text.chars().any(is_unsafe), "{text}");
        assert!(text.contains("\\u0085") && text.contains("\\u202e") && text.contains("\\u007f"));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(back, value);
    }
}
