//! The output layer: what a target sends may be shown on a terminal, written to a report or
//! published as a page, so every text that reaches a person passes through here.
//!
//! - [`terminal`] / [`terminal_line`]: characters that drive a terminal or reorder what it
//!   shows (C0 and C1 controls, DEL, bidirectional overrides and isolates, line and paragraph
//!   separators) become the visible text `\u{1b}`. The text never holds such a character
//!   afterwards, so applying it again changes nothing. The suite's own colours are added by
//!   the renderer after this step.
//! - [`json_safe`]: the same characters in serialized JSON written as `\uXXXX` escapes, which
//!   JSON reads back as the same value (so a body or snapshot stays exact and replayable).
//!
//! Secrets are replaced before any of this, by [`crate::client::Secrets`].

/// Whether `c` must not reach a terminal raw (tab and line feed are handled by the caller).
pub fn is_unsafe(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
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
            // Every unsafe character is in the basic plane: one escape.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
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
