//! A `curl` command that replays one exchange, with secrets as environment variables; and,
//! when the failing requests name fixtures the run created (and removed when the check
//! ended), a POSIX `sh` script that creates new ones like them, sends the requests against
//! their ids and deletes them again ([`script`]).
//!
//! Both are built from the requests as recorded (already redacted) and quoting is the last
//! step: nothing may be replaced in a line afterwards, since a replacement inside a quoted
//! word can end the quotes early and turn the rest into commands. A fixture id the script
//! captures goes between quoted pieces as a double-quoted variable (`'…/'"$token_1"`), never
//! into a quoted piece.

use std::fmt::Write as _;

use serde_json::Value;

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
    curl_words(
        ex,
        &shell_quote(&ex.request.url),
        ex.request.body.as_deref().map(shell_quote).as_deref(),
    )
}

/// `curl -g URL -X METHOD -H ... --data-binary BODY`, with the URL and body already shell
/// words.
fn curl_words(ex: &Exchange, url: &str, body: Option<&str>) -> String {
    let mut parts = vec![
        "curl -g".to_owned(),
        url.to_owned(),
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
    if let Some(body) = body {
        parts.push(format!("--data-binary {body}"));
    }
    parts.join(" ")
}

/// A fixture the script creates anew: its shell variable and the id it had in the run.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fixture {
    var: String,
    old_id: String,
}

/// The fixtures the failing requests name.
#[derive(Debug, Default)]
struct Needed {
    tokens: Vec<Fixture>,
    roles: Vec<Fixture>,
}

impl Needed {
    fn token(&mut self, id: &str) {
        if safe_id(id) && !self.tokens.iter().any(|f| f.old_id == id) {
            let var = format!("token_{}", self.tokens.len() + 1);
            self.tokens.push(Fixture {
                var,
                old_id: id.to_owned(),
            });
        }
    }

    fn role(&mut self, id: &str) {
        if safe_id(id) && !self.roles.iter().any(|f| f.old_id == id) {
            let var = format!("role_{}", self.roles.len() + 1);
            self.roles.push(Fixture {
                var,
                old_id: id.to_owned(),
            });
        }
    }
}

/// An id the suite would build a path from: 1 to 64 letters, digits, `-` and `_`.
fn safe_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `(collection, id, the rest)` of a URL that addresses one token or role.
fn addressed(url: &str) -> Option<(&'static str, &str, usize, usize)> {
    for collection in ["/access_tokens/", "/roles/"] {
        if let Some(at) = url.find(collection) {
            let start = at + collection.len();
            let len = url[start..]
                .find(['/', '?', '#'])
                .unwrap_or(url.len() - start);
            let name = if collection == "/roles/" {
                "roles"
            } else {
                "access_tokens"
            };
            return Some((name, &url[start..start + len], start, start + len));
        }
    }
    None
}

/// Whether the exchange shows (in what was sent or what came back) that the resource it
/// addresses is a fixture of the run: its name carries the fixture marker.
fn names_a_fixture(ex: &Exchange) -> bool {
    let sent = ex
        .request
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<Value>(b).ok());
    [sent.as_ref(), ex.json.as_ref()]
        .into_iter()
        .flatten()
        .any(|json| {
            json.pointer("/data/attributes/name")
                .and_then(Value::as_str)
                .is_some_and(crate::fixtures::is_fixture_name)
        })
}

/// The fixtures `exchanges` need: tokens whose secret a request authenticates with
/// (`$FIXTURE_TOKEN_<id>`), tokens and roles a request addresses whose name shows they are
/// fixtures, and the roles a request body assigns to such a token.
fn needed(exchanges: &[Exchange]) -> Needed {
    let mut needed = Needed::default();
    for ex in exchanges {
        for (_, value) in &ex.request.headers {
            if let Some(id) = value.strip_prefix("Bearer $FIXTURE_TOKEN_") {
                needed.token(id);
            }
        }
        if let Some((collection, id, _, _)) = addressed(&ex.request.url)
            && names_a_fixture(ex)
        {
            if collection == "roles" {
                needed.role(id);
            } else {
                needed.token(id);
            }
        }
    }
    if needed.tokens.is_empty() {
        return needed;
    }
    for ex in exchanges {
        let sent = ex
            .request
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str::<Value>(b).ok());
        if let Some(role) = sent
            .as_ref()
            .and_then(|b| b.pointer("/data/relationships/role/data/id"))
            .and_then(Value::as_str)
        {
            needed.role(role);
        }
    }
    needed
}

/// The recorded URL as a shell word, the fixture id it addresses as its variable.
fn url_word(url: &str, needed: &Needed) -> String {
    if let Some((collection, id, start, end)) = addressed(url) {
        let list = if collection == "roles" {
            &needed.roles
        } else {
            &needed.tokens
        };
        if let Some(fixture) = list.iter().find(|f| f.old_id == id) {
            return format!(
                "{}\"${}\"{}",
                shell_quote(&url[..start]),
                fixture.var,
                if end < url.len() {
                    shell_quote(&url[end..])
                } else {
                    String::new()
                }
            );
        }
    }
    shell_quote(url)
}

/// The recorded body as a shell word, with the fixture ids it names (`data.id`, the role it
/// assigns) as their variables. A body that is not JSON, or that holds the marker used to
/// split it, is sent as recorded.
fn body_word(body: &str, needed: &Needed) -> String {
    const MARK: &str = "@@tc-fixture:";
    let Ok(mut json) = serde_json::from_str::<Value>(body) else {
        return shell_quote(body);
    };
    if body.contains(MARK) || crate::output::json_text(&json) != body {
        return shell_quote(body);
    }
    let mut swap = |pointer: &str, list: &[Fixture]| {
        if let Some(slot) = json.pointer_mut(pointer)
            && let Some(fixture) = slot
                .as_str()
                .and_then(|id| list.iter().find(|f| f.old_id == id))
        {
            *slot = Value::String(format!("{MARK}{}@@", fixture.var));
        }
    };
    swap("/data/id", &needed.tokens);
    swap("/data/relationships/role/data/id", &needed.roles);
    let text = crate::output::json_text(&json);
    let mut word = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let Some(end) = after.find("@@") else { break };
        word.push_str(&shell_quote(&rest[..at]));
        let _ = write!(word, "\"${}\"", &after[..end]);
        rest = &after[end + 2..];
    }
    word.push_str(&shell_quote(rest));
    word
}

/// The headers a create or delete sends: the failing request's own (`Accept`,
/// `X-Api-Version`, `X-Environment`), as the management token.
fn management_headers(ex: &Exchange, json_body: bool) -> String {
    let mut out = String::new();
    for (name, value) in &ex.request.headers {
        if name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("content-type") {
            continue;
        }
        let _ = write!(out, " -H {}", shell_quote(&format!("{name}: {value}")));
    }
    if json_body {
        out.push_str(" -H 'Content-Type: application/vnd.api+json'");
    }
    out.push_str(" -H \"Authorization: Bearer $CONFORMANCE_API_TOKEN\"");
    out
}

/// A POSIX `sh` script (curl, `tr`, `sed`, `head`; no jq) that reproduces `exchanges` after
/// the run: it creates a role and a token like the run's fixtures (the roles with no
/// permission granted, each token with every flag on and a role of its own), captures their
/// ids (and a token's secret, for a request that authenticates as it), sends every failing
/// request in order against them, and deletes them on exit. `None` when the requests name no
/// fixture: the `curl` line is then complete as it is.
pub(super) fn script(
    exchanges: &[Exchange],
    title: &str,
    role_permissions: &[String],
    mark: &str,
) -> Option<String> {
    let needed = needed(exchanges);
    if needed.tokens.is_empty() && needed.roles.is_empty() {
        return None;
    }
    // The CMA base URL: where the first request that addresses a fixture points.
    let (first, base) = exchanges.iter().find_map(|ex| {
        addressed(&ex.request.url).map(|(collection, _, start, _)| {
            let at = start - collection.len() - 2;
            (ex, ex.request.url[..at].to_owned())
        })
    })?;
    let base = shell_quote(&base);
    let create_headers = management_headers(first, true);
    let delete_headers = management_headers(first, false);
    let mut out = String::new();
    let _ = writeln!(out, "#!/bin/sh");
    let _ = writeln!(out, "# {title}");
    let _ = writeln!(
        out,
        "# The run's fixtures were removed when the check ended: this script creates new ones like them"
    );
    let _ = writeln!(
        out,
        "# (roles with no permission granted; tokens with every flag on, each with a role of its own),"
    );
    let _ = writeln!(
        out,
        "# sends the failing request(s) against their ids, and deletes them when it exits."
    );
    let _ = writeln!(
        out,
        "# Needs CONFORMANCE_API_TOKEN (the management token) in the environment."
    );
    out.push_str(
        "set -u
",
    );
    out.push_str(
        ": \"${CONFORMANCE_API_TOKEN:?set CONFORMANCE_API_TOKEN to the management token}\"
",
    );
    // The first `"id"` (and `"token"`) member of an answer: the resource's own, since a role
    // or token resource has none in its attributes; a quote inside a JSON string is escaped,
    // so a name cannot fake one.
    out.push_str("json_id() { tr ',{}' '\\n\\n\\n' | sed -n 's/^ *\"id\" *: *\"\\([A-Za-z0-9_-]*\\)\" *$/\\1/p' | head -n 1; }
");
    out.push_str("json_token() { tr ',{}' '\\n\\n\\n' | sed -n 's/^ *\"token\" *: *\"\\([^\"\\\\]*\\)\" *$/\\1/p' | head -n 1; }
");
    // Delete what was created, whatever happens after: tokens first, then roles.
    let token_roles: Vec<String> = needed
        .tokens
        .iter()
        .map(|t| format!("{}_role", t.var))
        .collect();
    out.push_str("cleanup() {\n");
    let deletes = needed
        .tokens
        .iter()
        .map(|t| ("access_tokens", &t.var))
        .chain(token_roles.iter().map(|var| ("roles", var)))
        .chain(needed.roles.iter().map(|r| ("roles", &r.var)));
    for (collection, var) in deletes {
        let _ = writeln!(
            out,
            "  [ -z \"${{{var}:-}}\" ] || curl -sS -g {base}'/{collection}/'\"${var}\" -X DELETE{delete_headers} -o /dev/null"
        );
    }
    out.push_str("}\ntrap cleanup EXIT\n");
    let mut attributes = serde_json::Map::new();
    for permission in role_permissions {
        attributes.insert(permission.clone(), Value::Bool(false));
    }
    let mut n = 0;
    let mut name = |label: &str| {
        n += 1;
        format!("{}{mark}-0-{n}-{label}", crate::fixtures::NAME_PREFIX)
    };
    let mut role_body = |label: &str| {
        let mut attributes = attributes.clone();
        attributes.insert("name".to_owned(), Value::String(name(label)));
        crate::output::json_text(
            &serde_json::json!({ "data": { "type": "role", "attributes": attributes } }),
        )
    };
    let create = |out: &mut String, var: &str, what: &str, command: String| {
        let _ = writeln!(out, "{var}=$({command})");
        let _ = writeln!(
            out,
            "[ -n \"${var}\" ] || {{ echo 'creating {what} failed' >&2; exit 1; }}"
        );
    };
    for role in &needed.roles {
        let command = format!(
            "curl -sS -g {base}'/roles' -X POST{create_headers} --data-binary {} | json_id",
            shell_quote(&role_body("role"))
        );
        create(&mut out, &role.var, "a role", command);
    }
    let mut token_names = Vec::new();
    for (token, own) in needed.tokens.iter().zip(&token_roles) {
        let command = format!(
            "curl -sS -g {base}'/roles' -X POST{create_headers} --data-binary {} | json_id",
            shell_quote(&role_body("role"))
        );
        create(&mut out, own, "a role", command);
        token_names.push((token, own));
    }
    for (token, own) in token_names {
        let body = serde_json::json!({ "data": {
            "type": "access_token",
            "attributes": { "name": name("token"), "can_access_cda": true,
                "can_access_cda_preview": true, "can_access_cma": true },
            "relationships": { "role": { "data": { "type": "role", "id": "@@ROLE@@" } } },
        }});
        let text = crate::output::json_text(&body);
        let (before, after) = text.split_once("@@ROLE@@").unwrap_or((&text, ""));
        let _ = writeln!(
            out,
            "created=$(curl -sS -g {base}'/access_tokens' -X POST{create_headers} --data-binary {}\"${own}\"{})",
            shell_quote(before),
            shell_quote(after)
        );
        let _ = writeln!(out, "{}=$(printf '%s' \"$created\" | json_id)", token.var);
        let _ = writeln!(
            out,
            "[ -n \"${}\" ] || {{ echo 'creating a token failed' >&2; exit 1; }}",
            token.var
        );
        // Only a name the shell accepts as a variable: `curl_words` expands no other.
        if token
            .old_id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            let _ = writeln!(
                out,
                "FIXTURE_TOKEN_{}=$(printf '%s' \"$created\" | json_token)",
                token.old_id
            );
        }
    }
    for ex in exchanges {
        let url = url_word(&ex.request.url, &needed);
        let body = ex.request.body.as_deref().map(|b| body_word(b, &needed));
        let _ = writeln!(
            out,
            "echo {}",
            shell_quote(&format!(
                "→ {} (the run's request, against the new fixtures)",
                ex.request.method
            ))
        );
        let _ = writeln!(out, "{}", curl_words(ex, &url, body.as_deref()));
        out.push_str(
            "echo
",
        );
    }
    Some(out)
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
