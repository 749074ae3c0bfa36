use super::*;

const STRONG: &str = "9f2c4e7a1b3d5f60-xy";

fn secrets() -> Secrets {
    let secrets = Secrets::default();
    secrets.register(STRONG, "$FIXTURE_TOKEN_7");
    secrets
}

#[test]
fn registered_and_learned_secrets_are_replaced() {
    let secrets = Secrets::default();
    secrets.register("abcdef123456", "$CONFORMANCE_API_TOKEN");
    secrets.register_always("abcdef123456", "$CONFORMANCE_API_TOKEN");
    secrets.learn_from(
        &serde_json::json!({"data": [{"attributes": {"token": "zzzz9999yyyy-0a1b2c"}}]}),
    );
    let text = "Bearer abcdef123456 and zzzz9999yyyy-0a1b2c";
    assert_eq!(
        secrets.redact(text),
        "Bearer $CONFORMANCE_API_TOKEN and [secret]"
    );
}

#[test]
fn a_huge_listing_is_not_remembered_whole() {
    // A hostile listing of 100k tokens must not make every later redaction (and every
    // registration) walk 100k secrets: learning stops at a bound, position still works.
    let secrets = secrets();
    let data: Vec<serde_json::Value> = (0..100_000)
        .map(|i| serde_json::json!({"attributes": {"token": format!("{i:08}-9f2c4e7a1b3d5f")}}))
        .collect();
    let started = std::time::Instant::now();
    secrets.learn_from(&serde_json::json!({ "data": data }));
    let known = secrets.known.read().map(|k| k.len()).unwrap_or(usize::MAX);
    assert!(known <= MAX_LEARNED + 1, "{known} secrets kept");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // The run's own secrets are still registered and replaced past the bound.
    secrets.register("0a1b2c3d4e5f6789-own", "$FIXTURE_TOKEN_8");
    assert_eq!(
        secrets.redact(&format!("{STRONG} 0a1b2c3d4e5f6789-own")),
        "$FIXTURE_TOKEN_7 $FIXTURE_TOKEN_8"
    );
    // A token past the bound is still replaced by position.
    let json = serde_json::json!({"token": "99999999-9f2c4e7a1b3d5f"});
    assert_eq!(secrets.redact_json(&json)["token"], "[secret]");
}

#[test]
fn short_values_are_not_treated_as_secrets() {
    let secrets = Secrets::default();
    assert!(secrets.register("a", "[x]"));
    assert_eq!(secrets.redact("a cat"), "a cat");
}

#[test]
fn raw_and_json_escaped_forms_in_any_mix() {
    let s = secrets();
    assert_eq!(s.redact(&format!("x{STRONG}y")), "x$FIXTURE_TOKEN_7y");
    // Every character escaped, upper- and lower-case hex, and a mix.
    let all: String = STRONG
        .chars()
        .map(|c| format!("\\u{:04X}", c as u32))
        .collect();
    assert_eq!(s.redact(&format!("\"{all}\"")), "\"$FIXTURE_TOKEN_7\"");
    let mixed = STRONG.replace('-', "\\u002d").replacen('9', "\\u0039", 1);
    assert_eq!(s.redact(&mixed), "$FIXTURE_TOKEN_7");
    // Nested: an escape inside a JSON string inside a JSON string.
    let nested = STRONG.replace('-', "\\\\u002d");
    assert_eq!(s.redact(&nested), "$FIXTURE_TOKEN_7");
}

#[test]
fn short_escapes_and_surrogate_pairs() {
    let s = Secrets::default();
    s.register("a/b\"c\\d🦀e-0123456789", "[secret]");
    assert_eq!(
        s.redact("<a\\/b\\\"c\\\\d\\ud83e\\udd80e-0123456789>"),
        "<[secret]>"
    );
}

#[test]
fn percent_encoded_forms() {
    let s = secrets();
    let all: String = STRONG.bytes().map(|b| format!("%{b:02x}")).collect();
    assert_eq!(s.redact(&format!("?q={all}&")), "?q=$FIXTURE_TOKEN_7&");
    let mixed = STRONG.replace('-', "%2D").replace('f', "%66");
    assert_eq!(s.redact(&mixed), "$FIXTURE_TOKEN_7");
    let spaced = Secrets::default();
    spaced.register("correct horse battery staple", "[secret]");
    assert_eq!(spaced.redact("correct+horse%20battery+staple"), "[secret]");
}

#[test]
fn percent_and_json_escapes_mixed_in_one_secret() {
    let s = secrets();
    let mixed = STRONG
        .replacen('2', "%32", 1)
        .replacen('c', "\\u0063", 1)
        .replacen('-', "\\\\u002D", 1);
    assert_ne!(mixed, STRONG);
    assert_eq!(s.redact(&format!("[{mixed}]")), "[$FIXTURE_TOKEN_7]");
    // Ordinary escapes around it are left alone.
    assert_eq!(s.redact("a%20b \\u0041 c\\\\d"), "a%20b \\u0041 c\\\\d");
}

#[test]
fn base64_of_user_and_secret_in_every_alignment() {
    let s = secrets();
    for text in [
        format!("x:{STRONG}"),
        format!("{STRONG}:"),
        format!(":{STRONG}"),
        format!("user:{STRONG}"),
        STRONG.to_owned(),
    ] {
        for alphabet in [STANDARD, URL_SAFE] {
            let encoded = base64(text.as_bytes(), alphabet);
            let redacted = s.redact(&format!("echo {encoded} end"));
            assert!(redacted.contains("$FIXTURE_TOKEN_7"), "{text}: {redacted}");
            assert!(!redacted.contains(&encoded), "{text}: {redacted}");
        }
    }
    // Whatever it holds, a Basic credential is replaced by position.
    assert_eq!(
        s.redact("got Basic dXNlcjpwYXNz, basic Zm9vOmJhcg=="),
        "got Basic [credentials], basic [credentials]"
    );
}

#[test]
fn base64_matches_the_standard_encoding() {
    assert_eq!(base64(b"user:pass", STANDARD), "dXNlcjpwYXNz");
    assert_eq!(base64(b"ab", STANDARD), "YWI");
    assert_eq!(base64(&[0xfb, 0xff], URL_SAFE), "-_8");
}

#[test]
fn weak_secrets_only_by_position() {
    let s = Secrets::default();
    assert!(
        s.learn_from(
            &serde_json::json!({"data": {"id": "string", "attributes": {"token": "string"}}})
        ) == 1
    );
    // Ids, codes and documentation keep the word.
    assert_eq!(
        s.redact("role string: INVALID_string \"a string\""),
        "role string: INVALID_string \"a string\""
    );
    assert_eq!(
        s.redact("echo: Authorization: Bearer string, \"bearer string\""),
        "echo: Authorization: Bearer [secret], \"bearer [secret]\""
    );
    assert_eq!(s.redact("bearer strings"), "bearer strings");
    let body = serde_json::json!({"data": {"id": "string", "attributes": {"token": "string",
        "headers": {"Authorization": "Bearer string"}}}});
    assert_eq!(
        s.redact_json(&body),
        serde_json::json!({"data": {"id": "string", "attributes": {"token": "[secret]",
            "headers": {"Authorization": "Bearer [secret]"}}}})
    );
    // Learning it again is no new finding.
    assert_eq!(s.learn_from(&serde_json::json!({"token": "string"})), 0);
}

#[test]
fn strength_needs_length_and_variety() {
    assert!(is_strong("0f3c9b8a7d6e5f4a3b2c1d0e9f8a7b"));
    assert!(!is_strong("string"));
    assert!(!is_strong("aaaaaaaaaaaaaaaaaaaaaaaa"));
    assert!(!is_strong("abababababababababab"));
    assert!(!is_strong("0123456789abcde"));
}

#[test]
fn placeholders_hold_no_quote_or_control() {
    let s = Secrets::default();
    s.register(STRONG, "$FIXTURE_TOKEN_1'$(x)\x1b");
    assert_eq!(s.redact(STRONG), "$FIXTURE_TOKEN_1_$_x__");
}
