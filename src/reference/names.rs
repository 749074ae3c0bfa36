//! What two faults do to a name on input (`name-nfc-normalised`, `name-html-escaped`): a
//! canonical composition of the common accented Latin letters, and HTML escaping.

/// The combining marks [`compose_nfc`] knows, each with the letters it composes with and
/// their precomposed forms, pairwise.
const COMPOSITIONS: &[(char, &str, &str)] = &[
    ('\u{300}', "AEIOUaeiou", "ÀÈÌÒÙàèìòù"),
    ('\u{301}', "AEIOUYaeiouyCcNnSsZz", "ÁÉÍÓÚÝáéíóúýĆćŃńŚśŹź"),
    ('\u{302}', "AEIOUaeiou", "ÂÊÎÔÛâêîôû"),
    ('\u{303}', "ANOano", "ÃÑÕãñõ"),
    ('\u{308}', "AEIOUaeiouy", "ÄËÏÖÜäëïöüÿ"),
    ('\u{30A}', "Aa", "Åå"),
    ('\u{327}', "Cc", "Çç"),
];

/// `name` with each Latin letter followed by a combining mark of [`COMPOSITIONS`] replaced by
/// its precomposed form: canonical composition (NFC) for the common accented letters, which
/// is what the fault name-nfc-normalised needs to show.
pub(super) fn compose_nfc(name: &str) -> String {
    let mut out: Vec<char> = Vec::with_capacity(name.len());
    for c in name.chars() {
        let composed = out.last().and_then(|&base| {
            let (_, bases, precomposed) = COMPOSITIONS.iter().find(|(mark, _, _)| *mark == c)?;
            let at = bases.chars().position(|b| b == base)?;
            precomposed.chars().nth(at)
        });
        match composed {
            Some(precomposed) => {
                out.pop();
                out.push(precomposed);
            }
            None => out.push(c),
        }
    }
    out.into_iter().collect()
}

/// `name` with the HTML metacharacters escaped (fault name-html-escaped).
pub(super) fn html_escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_letter_and_its_combining_mark_compose_and_other_text_is_kept() {
        assert_eq!(compose_nfc("e\u{301}te\u{301}"), "été");
        assert_eq!(compose_nfc("Ae\u{308}n\u{303}c\u{327}"), "Aëñç");
        assert_eq!(compose_nfc("\u{301}x\u{301} 日本"), "\u{301}x\u{301} 日本");
        assert_eq!(compose_nfc("Été"), "Été");
    }

    #[test]
    fn the_html_metacharacters_are_escaped() {
        assert_eq!(html_escape("a&b<c>\"d'"), "a&amp;b&lt;c&gt;&quot;d&#39;");
        assert_eq!(html_escape("plain"), "plain");
    }
}
