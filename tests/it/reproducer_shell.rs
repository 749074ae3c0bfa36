//! The `curl` reproducer a failure prints, read by a real POSIX shell: for arbitrary names,
//! ids and secrets (quotes, `$()`, backticks, newlines, control characters, Unicode), the
//! shell passes `curl` exactly the recorded request (URL, method, headers, the redacted body)
//! and runs nothing else.
//!
//! A request is recorded the way the client records one (the secrets registered first, then
//! redaction), put in a failure, and turned into a check report; its reproducer is run by
//! `/bin/sh -s` with `curl` replaced by a function that writes its arguments NUL-separated.
//! Every name carries commands that would create files in the shell's (empty) working
//! directory if any of them ran. When the request authenticates as a fixture token, the
//! failure's fixture script is run the same way, under a `curl` that answers each create
//! with a new id and secret: it runs nothing else, and the failing request goes out as
//! recorded but for the new id and secret.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use proptest::prelude::*;
use reqwest::Method;
use serde_json::json;

use token_conformance::checks::{self, Budget, Profile, Settings};
use token_conformance::client::{Auth, Client, Exchange, Request, Target, is_strong};
use token_conformance::outcome::{Failure, Finding};
use token_conformance::report::check_report;

/// What the shell has in `CONFORMANCE_API_TOKEN` (not the run's secret).
const EXPANDED: &str = "expanded-by-the-shell";

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "'",
            "\"",
            "'\\''",
            "\\",
            "$(touch pwned1)",
            "`touch pwned2`",
            "; touch pwned3; echo ",
            "'; touch pwned4; echo '",
            "$CONFORMANCE_API_TOKEN",
            "${HOME}",
            "\n",
            "\r",
            "\t",
            "\u{1b}[2J\u{1b}[H",
            "\u{7}",
            "\u{0}",
            "\u{7f}",
            "\u{85}",
            "\u{9b}",
            "\u{202e}",
            "\u{2066}",
            "é",
            "🦀",
            "%27",
            "\\u0027",
            "!",
            "#",
            "*",
            "&",
            "|",
            ">",
            "<",
            "~",
            " ",
            "\u{2028}",
        ])
        .prop_map(str::to_owned),
        any::<char>().prop_map(String::from),
        prop::collection::vec(
            prop::sample::select(b"abcdefxyz0123456789-_".to_vec()),
            1..10
        )
        .prop_map(|b| String::from_utf8(b).unwrap()),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..10).prop_map(|parts| parts.concat())
}

/// A secret: arbitrary text, or a strong one built to break quotes.
fn secret() -> impl Strategy<Value = String> {
    prop_oneof![
        text().prop_filter("not empty", |s| !s.is_empty()),
        (text(), "[a-f0-9]{12}").prop_map(|(t, hex)| format!("zzz'; touch pwned5; echo '{t}{hex}")),
    ]
}

/// Whether `value` is what the shell expands: `Bearer $NAME`.
fn variable(value: &str) -> Option<&str> {
    value.strip_prefix("Bearer $").filter(|name| {
        !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// `text` single-quoted for a POSIX shell, as a naive reproducer would write it.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn run_case(
    name: &str,
    id: &str,
    secret: &str,
    in_name: bool,
    late: usize,
) -> Result<bool, TestCaseError> {
    let management = "mgmt'$(touch pwned6)`x`-0f3c9b8a7d6e5f4a";
    let client = Client::new(Target {
        base_url: "http://127.0.0.1:9".to_owned(),
        cda_url: None,
        environment: None,
        secret: management.to_owned(),
        name: "shell".to_owned(),
        embedded: false,
        ca_pem: None,
    })
    .unwrap();
    let label = format!("$FIXTURE_TOKEN_{id}");
    client.secrets().register(secret, &label);
    let name = if in_name {
        format!("{name}{secret}{name}{management}")
    } else {
        name.to_owned()
    };
    let valid_header = reqwest::header::HeaderValue::from_str(&format!("Bearer {secret}")).is_ok();
    let auth = if valid_header {
        Auth::Token {
            secret: secret.to_owned(),
            label,
        }
    } else {
        Auth::Management
    };
    let req = Request::cma(Method::PUT, format!("/access_tokens/{id}"))
        .json(json!({ "data": { "type": "access_token", "id": id, "attributes": {
            "name": name, "can_access_cda": true, "can_access_cda_preview": false, "can_access_cma": true } } }))
        .auth(auth);
    let Ok(sent) = client.recorded(&req) else {
        // An id the URL parser refuses is never sent, so there is nothing to reproduce.
        return Ok(false);
    };
    // A secret the target reveals only later, equal to a stretch of the name *as quoted*:
    // replacing it in a quoted line would end the quotes early.
    let quoted_name: Vec<char> = quoted(&name).chars().collect();
    let start = late % quoted_name.len().max(1);
    let late_secret: String = quoted_name.iter().skip(start).take(20).collect();
    if is_strong(&late_secret) {
        client.secrets().register(&late_secret, "[secret]");
    }
    let exchange = Exchange {
        request: sent.into(),
        status: 422,
        headers: Vec::new(),
        body_text: format!("{{\"echo\":{}}}", serde_json::to_string(&name).unwrap()).into(),
        json: None,
        elapsed: Duration::ZERO,
        attempts: 1,
    };
    let settings = Settings {
        seed: 1,
        budget: Budget::full(1),
        profile: Profile::Documented,
        destructive: false,
        run_id: "00000000".to_owned(),
        replay: checks::ReplayHint::default(),
    };
    let def = &checks::all()[0];
    let report = check_report(
        def,
        Err(Finding::Fail(Failure {
            message: format!("bad answer for {name}"),
            exchanges: vec![exchange.clone()],
        })),
        1,
        1,
        Duration::ZERO,
        Vec::new(),
        &settings,
        client.secrets(),
    );
    let reproducer = report.reproducer.clone().unwrap();
    prop_assert!(
        report
            .message
            .contains(&format!("reproduce: {reproducer}\n")),
        "the printed line is the reproducer"
    );
    prop_assert!(!reproducer.contains(management));
    // The fixture script's own lines are the suite's fixed text (a secret the generator
    // makes `$CONFORMANCE_API_TOKEN` would match them); its replayed requests are checked.
    let script_block: String = report
        .script
        .iter()
        .flat_map(|s| s.lines())
        .map(|l| format!("    {l}\n"))
        .collect();
    let replayed: Vec<&str> = report
        .script
        .iter()
        .flat_map(|s| s.lines())
        .filter(|l| l.starts_with("curl -g"))
        .collect();
    let rest = report.message.replace(&script_block, "");
    if let Some(script) = &report.script {
        prop_assert!(!script.contains(management));
        prop_assert!(
            report.message.contains(&script_block),
            "the script is printed"
        );
    }
    if is_strong(secret) {
        prop_assert!(!reproducer.contains(secret), "{reproducer}");
        prop_assert!(!rest.contains(secret));
        prop_assert!(!replayed.iter().any(|l| l.contains(secret)), "{replayed:?}");
    }
    prop_assert!(
        !reproducer
            .chars()
            .any(|c| token_conformance::output::is_unsafe(c) || c == '\n'),
        "{reproducer:?}"
    );

    // What the shell must hand to curl: the recorded request, variables expanded.
    let sent = client.secrets().redact_request(&exchange.request);
    let mut expected = vec![
        "-g".to_owned(),
        sent.url.clone(),
        "-X".to_owned(),
        sent.method.clone(),
    ];
    for (header, value) in &sent.headers {
        expected.push("-H".to_owned());
        expected.push(match variable(value) {
            Some("CONFORMANCE_API_TOKEN") => format!("{header}: Bearer {EXPANDED}"),
            Some(_) => format!("{header}: Bearer "),
            None => format!("{header}: {value}"),
        });
    }
    expected.push("--data-binary".to_owned());
    expected.push(sent.body.clone().unwrap());

    let dir = tempdir();
    let out = dir.with_extension("args");
    let script = format!("curl() {{ printf '%s\\0' \"$@\" > \"$OUT\"; }}\n{reproducer}\n");
    let mut child = Command::new("/bin/sh")
        .arg("-s")
        .current_dir(&dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("OUT", &out)
        .env("CONFORMANCE_API_TOKEN", EXPANDED)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let recorded = std::fs::read(&out).unwrap_or_default();
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let _ = std::fs::remove_file(&out);
    let _ = std::fs::remove_dir_all(&dir);
    prop_assert!(output.status.success(), "{output:?}\n{script}");
    prop_assert!(
        output.stdout.is_empty() && output.stderr.is_empty(),
        "{output:?}\n{script}"
    );
    prop_assert!(
        leftovers.is_empty(),
        "a command ran: {leftovers:?}\n{script}"
    );
    let mut args: Vec<String> = recorded
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    prop_assert_eq!(args.pop(), Some(String::new()), "NUL-terminated");
    prop_assert_eq!(args, expected.clone(), "{}", script);
    if let Some(script) = &report.script {
        run_script(script, &sent, expected)?;
    }
    Ok(report.script.is_some())
}

/// The fixture script of the same failure, under a `curl` that answers every create with a
/// new id and secret: it runs nothing but curl, and the failing request goes out exactly as
/// recorded but for the fixture's new id (path and `data.id`) and secret.
fn run_script(
    script: &str,
    sent: &token_conformance::client::SentRequest,
    mut expected: Vec<String>,
) -> Result<(), TestCaseError> {
    prop_assert!(!script.chars().any(token_conformance::output::is_unsafe));
    let dir = tempdir();
    let out = dir.with_extension("calls");
    let mock = "curl() { n=$(cat \"$OUT.n\" 2>/dev/null || echo 0); n=$((n+1)); echo \"$n\" > \"$OUT.n\"; \
                printf '%s\\0' \"$@\" > \"$OUT.$n\"; \
                case \" $* \" in *\" -X POST \"*) printf '%s' '{\"data\":{\"type\":\"x\",\"id\":\"777\",\"attributes\":{\"token\":\"s3cret\"}}}';; esac; }\n";
    // The definitions first, then the script without its `#!` line.
    let full = format!("{mock}{script}");
    let output = Command::new("/bin/sh")
        .arg("-c")
        .arg(&full)
        .current_dir(&dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("OUT", &out)
        .env("CONFORMANCE_API_TOKEN", EXPANDED)
        .output()
        .unwrap();
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let count: usize = std::fs::read_to_string(out.with_extension("calls.n"))
        .ok()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let calls: Vec<Vec<String>> = (1..=count)
        .map(|n| {
            let path = format!("{}.{n}", out.display());
            let bytes = std::fs::read(&path).unwrap_or_default();
            let _ = std::fs::remove_file(&path);
            let mut args: Vec<String> = bytes
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.pop();
            args
        })
        .collect();
    let _ = std::fs::remove_file(out.with_extension("calls.n"));
    let _ = std::fs::remove_dir_all(&dir);
    prop_assert!(output.status.success(), "{output:?}\n{full}");
    prop_assert!(leftovers.is_empty(), "a command ran: {leftovers:?}\n{full}");
    let methods: Vec<&str> = calls
        .iter()
        .filter_map(|c| {
            c.iter()
                .position(|a| a == "-X")
                .map(|at| c[at + 1].as_str())
        })
        .collect();
    prop_assert_eq!(
        &methods,
        &["POST", "POST", "PUT", "DELETE", "DELETE"],
        "{}",
        full
    );
    // What curl must get: the new id where the old one was, the new secret as the bearer.
    let id = sent
        .body
        .as_deref()
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .and_then(|b| {
            b.pointer("/data/id")
                .and_then(|i| i.as_str())
                .map(str::to_owned)
        })
        .unwrap();
    // Only an id the suite builds paths from is the run's fixture (a fixture's id always
    // is one); any other stays as recorded.
    let safe = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let url = &mut expected[1];
    if safe && let Some(at) = url.rfind(&format!("/access_tokens/{id}")) {
        url.replace_range(at.., "/access_tokens/777");
    }
    for arg in expected.iter_mut() {
        if arg == "Authorization: Bearer " {
            *arg = "Authorization: Bearer s3cret".to_owned();
        }
    }
    let mut body: serde_json::Value = serde_json::from_str(sent.body.as_deref().unwrap()).unwrap();
    if safe {
        body["data"]["id"] = json!("777");
    }
    *expected.last_mut().unwrap() = token_conformance::output::json_text(&body);
    prop_assert_eq!(&calls[2], &expected, "{}", full);
    Ok(())
}

fn tempdir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tc-shell-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_shell_passes_curl_exactly_the_recorded_request(
        name in text(),
        id in text(),
        secret in secret(),
        in_name in any::<bool>(),
        late in any::<usize>(),
    ) {
        run_case(&name, &id, &secret, in_name, late)?;
    }
}

/// The case of the issue, always run: a name that holds a matching secret.
#[test]
fn a_name_holding_the_secret_cannot_break_the_quotes() {
    // A request as a fixture token: the fixture script is checked too.
    assert!(
        run_case(
            "zzz'; touch pwned; echo '",
            "12",
            "'; touch pwned; echo '",
            true,
            0,
        )
        .unwrap()
    );
    assert!(run_case("x", "12", "zzz'; touch pwned; echo 'abc0123", true, 3).unwrap());
}
