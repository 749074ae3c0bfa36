//! A `curl` command that replays one exchange, with secrets as environment variables.

use crate::target::Exchange;

/// Quote for a POSIX shell: single quotes, with `'` written as `'\''`.
fn shell_quote(text: &str) -> String {
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
        format!("-X {}", ex.request.method),
    ];
    for (name, value) in &ex.request.headers {
        if name.eq_ignore_ascii_case("authorization") && value.contains('$') {
            let safe = value.replace(['"', '\\', '`'], "");
            parts.push(format!("-H \"{name}: {safe}\""));
        } else {
            parts.push(format!("-H {}", shell_quote(&format!("{name}: {value}"))));
        }
    }
    if let Some(body) = &ex.request.body {
        parts.push(format!("--data-binary {}", shell_quote(body)));
    }
    parts.join(" ")
}
