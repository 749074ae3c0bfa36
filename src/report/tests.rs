use super::json::{MAX_BODY_BYTES, body_json, url_path};
use super::*;
use crate::checks::Budget;
use serde_json::{Value, json};

fn settings() -> Settings {
    Settings {
        seed: 1,
        budget: Budget::full(1),
        profile: Profile::Documented,
        destructive: false,
        run_id: "00000000".to_owned(),
        replay: crate::checks::ReplayHint::default(),
    }
}

#[test]
fn dates_are_rfc3339_utc() {
    let at = |secs| rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(secs));
    assert_eq!(at(0), "1970-01-01T00:00:00Z");
    assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(at(1_796_175_473), "2026-12-02T01:37:53Z");
}

#[test]
fn a_body_is_json_when_it_is_and_short_otherwise() {
    assert_eq!(body_json(Some(r#"{"a":[1]}"#)), json!({"a": [1]}));
    assert_eq!(body_json(Some("<html>")), json!("<html>"));
    assert_eq!(body_json(None), Value::Null);
    let huge = format!("[{}0]", "0,".repeat(MAX_BODY_BYTES));
    assert!(
        body_json(Some(&huge))
            .as_str()
            .is_some_and(|s| s.len() < 4096)
    );
}

#[test]
fn a_request_is_shown_by_its_path() {
    assert_eq!(
        url_path("http://127.0.0.1:3/access_tokens/7?x=1"),
        "/access_tokens/7?x=1"
    );
    assert_eq!(url_path("https://h"), "/");
}

#[test]
fn the_replay_line_names_the_report_or_spells_the_target_out() {
    let def = &crate::checks::all()[0];
    let mut settings = settings();
    let id = replay_id::replay_id(1, 1, "documented", &def.full_name());
    assert_eq!(
        replay_line(def, &settings),
        format!(
            "token-conformance replay --seed 1 --cases 1 --profile documented --filter {}  # replay id {id}",
            def.full_name()
        )
    );
    settings.replay.base_url = Some("http://127.0.0.1:1/it's".to_owned());
    settings.replay.environment = Some("sandbox".to_owned());
    let line = replay_line(def, &settings);
    assert!(
        line.starts_with("CONFORMANCE_API_TOKEN=… token-conformance replay --seed 1"),
        "{line}"
    );
    assert!(
        line.contains(" --base-url 'http://127.0.0.1:1/it'\\''s' --environment 'sandbox'"),
        "{line}"
    );
    settings.replay.report = Some("out/r.json".into());
    assert_eq!(
        replay_line(def, &settings),
        format!("token-conformance replay {id} --report 'out/r.json'")
    );
}

#[test]
fn the_targets_words_are_redacted_then_escaped() {
    let secrets = Secrets::default();
    secrets.register("0f3c9b8a7d6e5f4a3b2c", "[secret]");
    let settings = settings();
    let def = &crate::checks::all()[0];
    let report = check_report(
        def,
        Err(Finding::Inconclusive(
            "code 0f3c9b8a7d6e5f4a3b2c\u{1b}[2J\r18 clauses: 18 pass\u{7}".to_owned(),
        )),
        0,
        0,
        Duration::ZERO,
        vec!["echo 0f3c9b8a7d6e5f4a3b2c\u{9b}\u{202e}".to_owned()],
        &settings,
        &secrets,
    );
    assert_eq!(
        report.message,
        "code [secret]\\u{1b}[2J\\u{d}18 clauses: 18 pass\\u{7}"
    );
    assert_eq!(report.warnings, vec!["echo [secret]\\u{9b}\\u{202e}"]);
}

#[test]
fn a_finding_line_shows_no_evidence_body_and_no_token() {
    let secrets = Secrets::default();
    // Weak: replaced only by position, which a `Debug` text does not have.
    assert!(secrets.register("weak-1", "$FIXTURE_TOKEN_1"));
    let ex = Exchange {
        request: crate::client::SentRequest {
            method: "POST".to_owned(),
            url: "http://127.0.0.1:1/roles".to_owned(),
            headers: Vec::new(),
            body: None,
        }
        .into(),
        status: 201,
        headers: Vec::new(),
        body_text: " ".repeat(4 << 20).into(),
        json: Some(json!({"data": {"id": 7, "attributes": {"token": "weak-1"}}})),
        elapsed: Duration::ZERO,
        attempts: 1,
    };
    let finding = Finding::Fail(crate::outcome::Failure {
        message: "data.id is a number\u{1b}[2J".to_owned(),
        exchanges: vec![ex],
    });
    let line = finding_line(&finding, &secrets);
    assert!(line.len() < 4096, "{} bytes", line.len());
    assert!(!line.contains("weak-1"), "{line}");
    assert!(!line.contains('\u{1b}'), "{line}");
    assert!(line.contains("data.id is a number"), "{line}");
    assert!(line.contains("POST /roles → 201"), "{line}");
}

#[test]
fn a_huge_word_from_the_target_is_cut_short() {
    // A target can put 4 MiB in an error code that a check quotes in its reason.
    let secrets = Secrets::default();
    secrets.register("0f3c9b8a7d6e5f4a3b2c", "[secret]");
    let settings = settings();
    let def = &crate::checks::all()[0];
    let huge = format!("code {}0f3c9b8a7d6e5f4a3b2c", " ".repeat(4 << 20));
    for result in [
        Err(Finding::Inconclusive(huge.clone())),
        Err(Finding::Fail(crate::outcome::Failure {
            message: huge.clone(),
            exchanges: Vec::new(),
        })),
    ] {
        let report = check_report(
            def,
            result,
            0,
            0,
            Duration::ZERO,
            vec![huge.clone()],
            &settings,
            &secrets,
        );
        assert!(report.message.len() < 8 << 10, "{}", report.message.len());
        assert!(report.warnings[0].len() < 8 << 10);
        assert!(!report.message.contains("0f3c9b8a7d6e5f4a3b2c"));
    }
}

/// What a hostile target put in a `text/plain` answer: screen clear, title, bell, colours,
/// CR, NUL, a C1 CSI, a bidi override and a zero-width space.
const HOSTILE_BODY: &str =
    "\x1b[2J\x1b]0;pwned\x07\x1b[31mRED\x1b[0m\r\0 \u{9b}31m \u{202e}975\u{200b}";

fn hostile_run() -> RunReport {
    let def = &crate::checks::all()[0];
    let ex = Exchange {
        request: crate::client::SentRequest {
            method: "PUT".to_owned(),
            url: "http://127.0.0.1:1/access_tokens/975".to_owned(),
            headers: Vec::new(),
            body: Some(json!({"name": "n\u{200d}"}).to_string()),
        }
        .into(),
        status: 400,
        headers: vec![("content-type".to_owned(), "text/plain".to_owned())],
        body_text: HOSTILE_BODY.to_owned().into(),
        json: None,
        elapsed: Duration::ZERO,
        attempts: 1,
    };
    let check = check_report(
        def,
        Err(Finding::Fail(crate::outcome::Failure {
            message: format!("answered {HOSTILE_BODY}"),
            exchanges: vec![ex],
        })),
        1,
        1,
        Duration::ZERO,
        vec![format!("warned {HOSTILE_BODY}")],
        &settings(),
        &Secrets::default(),
    );
    RunReport {
        target_name: "t\u{feff}".to_owned(),
        base_url: "http://127.0.0.1:1".to_owned(),
        cda_url: None,
        environment: None,
        embedded: false,
        seed: 1,
        cases: 1,
        profile: Profile::Documented,
        clauses: vec![ClauseReport {
            id: def.clause.id().to_owned(),
            title: "title\u{2060}".to_owned(),
            status: Status::Fail,
            evidence: Evidence::Documented,
            requests: 1,
            checks: vec![check],
        }],
        requests: 1,
        requests_past_cap: 0,
        rate_limit_wait_ms: 0,
        duration_ms: 1,
        started_at: "2026-12-02T01:37:53Z".to_owned(),
    }
}

#[test]
fn no_report_writer_lets_the_targets_words_through_raw() {
    let report = hostile_run();
    let human = report.render(true);
    let column = |name: &str, outcome| matrix::TargetResult {
        name: name.to_owned(),
        description: format!("described {HOSTILE_BODY}"),
        profile: Profile::Documented,
        embedded: false,
        outcome,
    };
    let grid = matrix::Matrix {
        seed: 1,
        cases: 1,
        started: "2026-12-02 00:49 UTC".to_owned(),
        targets: vec![
            column("tested", Ok(report.clone())),
            column("untested", Err(format!("refused: {HOSTILE_BODY}"))),
        ],
    };
    for (name, text) in [
        ("summary", summary::summary(&report)),
        ("junit", junit::junit(&report)),
        ("human", human),
        ("matrix markdown", matrix_md::markdown(&grid)),
        ("matrix html", matrix_html::html(&grid)),
    ] {
        let raw: Vec<char> = text
            .chars()
            .filter(|&c| crate::output::is_unsafe(c))
            .collect();
        assert!(raw.is_empty(), "{name}: {raw:?} in\n{text}");
        // The body is quoted, readable.
        assert!(
            text.contains("\\u{1b}]0;pwned\\u{7}") && text.contains("975\\u{200b}"),
            "{name}: {text}"
        );
    }
}
