//! A `curl` command that replays one exchange, with secrets as environment variables.
//!
//! It is built from the request as recorded (already redacted) and quoting is the last step:
//! nothing may be replaced in the line afterwards, since a replacement inside a quoted word
//! can end the quotes early and turn the rest into commands.

use crate::client::Exchange;

/// Quote for a POSIX shell: single quotes, with `'` written as `'\''`.
pub(crate) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `curl -g URL -X METHOD -H ... --data-binary BODY`. The request was recorded redacted, so
/// the management secret reads `$CONFORMANCE_API_TOKEN`; that header is double-quoted so the
/// shell expands it. A fixture token's secret reads `$FIXTURE_TOKEN_<id>`: such a token only
/// lived during the run, so its reproducer needs a token of your own with the same setup.
pub fn curl_command(ex: &Exchange) -> String {
    let mut parts = vec![
        "curl -g".to_owned(),
        shell_quote(&ex.request.url),
        if ex.request.method.bytes().all(|b| b.is_ascii_uppercase())
            && !ex.request.method.is_empty()
        {
            format!("-X {}", ex.request.method)
        } else {
            format!("-X {}", shell_quote(&ex.request.method))
        },
    ];
    for (name, value) in &ex.request.headers {
        if is_variable_bearer(value) {
            // Double quotes, so that the shell expands the variable; nothing else can be in
            // there (see `is_variable_bearer`).
            parts.push(format!("-H \"{name}: {value}\""));
        } else {
            parts.push(format!("-H {}", shell_quote(&format!("{name}: {value}"))));
        }
    }
    if let Some(body) = &ex.request.body {
        parts.push(format!("--data-binary {}", shell_quote(body)));
    }
    parts.join(" ")
}

/// Exactly `Bearer $NAME` with `NAME` of capitals, digits and `_`: safe to double-quote.
fn is_variable_bearer(value: &str) -> bool {
    value.strip_prefix("Bearer $").is_some_and(|name| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_plain_variable_is_expanded() {
        assert!(is_variable_bearer("Bearer $CONFORMANCE_API_TOKEN"));
        assert!(is_variable_bearer("Bearer $FIXTURE_TOKEN_12"));
        assert!(!is_variable_bearer(
            "Bearer $FIXTURE_TOKEN_1$(touch /tmp/x)"
        ));
        assert!(!is_variable_bearer("Bearer $(id)"));
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
