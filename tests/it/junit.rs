//! The JUnit report: a run against a reference server with one fault shows exactly that check
//! failed, with its reproducer, and the document stays well-formed whatever a message holds.

use crate::common;

use token_conformance::checks::Profile;
use token_conformance::faults::Fault;
use token_conformance::outcome::Status;
use token_conformance::plan::{Plan, TargetKind};
use token_conformance::report::junit::junit;
use token_conformance::report::{CheckReport, ClauseReport, RunReport};
use token_conformance::spec::Evidence;

fn run_with_fault(fault: Fault) -> RunReport {
    common::runtime().block_on(async {
        let options = Plan {
            target: TargetKind::Embedded(Box::new(token_conformance::mutants::server_config(
                Some(fault),
            ))),
            cases: 8,
            seed: 3,
            ..Plan::default()
        };
        common::run_suite(&options).await
    })
}

#[test]
fn a_fault_shows_as_exactly_one_failed_testcase_with_its_reproducer() {
    let report = run_with_fault(Fault::HardcodedAcceptsUpdates);
    let xml = junit(&report);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");

    let failures: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .collect();
    assert_eq!(failures.len(), 1, "{xml}");
    let failure = failures[0];
    let case = failure.parent_element().unwrap();
    assert_eq!(case.tag_name().name(), "testcase");
    assert_eq!(
        case.attribute("name"),
        Some("factory_tokens_reject_an_unchanged_update")
    );
    assert_eq!(
        case.attribute("classname"),
        Some("update.hardcoded.rejected")
    );
    let suite = case.parent_element().unwrap();
    assert_eq!(suite.attribute("name"), Some("update.hardcoded.rejected"));
    let text = failure.text().unwrap();
    assert!(text.contains("reproduce: curl"), "{text}");
    assert!(text.contains("$CONFORMANCE_API_TOKEN"), "{text}");
    assert!(
        text.contains("replay: token-conformance replay --seed 3"),
        "{text}"
    );
    // The one-line summary is what went wrong (the clause is the testcase's classname).
    let message = failure.attribute("message").unwrap();
    assert!(
        text.starts_with("clause update.hardcoded.rejected (documented): "),
        "{text}"
    );
    assert_eq!(text.lines().nth(1), Some(message));
    assert!(message.contains("accepted an update"), "{message}");

    // Every other testcase passed, or is skipped with a reason.
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let total: usize = report.clauses.iter().map(|c| c.checks.len()).sum();
    assert_eq!(cases.len(), total);
    for case in cases
        .iter()
        .filter(|c| **c != failure.parent_element().unwrap())
    {
        for child in case.children().filter(roxmltree::Node::is_element) {
            match child.tag_name().name() {
                "skipped" => assert!(
                    !child.attribute("message").unwrap_or("").trim().is_empty(),
                    "{:?} skipped without a reason",
                    case.attribute("name")
                ),
                "system-out" => {}
                other => panic!("{:?}: unexpected <{other}>", case.attribute("name")),
            }
        }
    }

    // Totals.
    let skipped = doc
        .descendants()
        .filter(|n| n.has_tag_name("skipped"))
        .count();
    assert_eq!(root.attribute("tests"), Some(total.to_string().as_str()));
    assert_eq!(root.attribute("failures"), Some("1"));
    assert_eq!(root.attribute("errors"), Some("0"));
    assert_eq!(
        root.attribute("skipped"),
        Some(skipped.to_string().as_str())
    );
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), report.clauses.len());
    // The run's start on the suites (RFC 3339 UTC), and a time on every element.
    let stamp = root.attribute("timestamp").unwrap();
    assert!(is_rfc3339_utc(stamp), "{stamp}");
    for case in &cases {
        assert!(
            case.attribute("time")
                .is_some_and(|t| t.parse::<f64>().is_ok())
        );
    }
    for (suite, clause) in suites.iter().zip(&report.clauses) {
        assert_eq!(suite.attribute("timestamp"), Some(stamp));
        assert!(
            suite
                .attribute("time")
                .is_some_and(|t| t.parse::<f64>().is_ok())
        );
        assert_eq!(suite.attribute("name"), Some(clause.id.as_str()));
        assert_eq!(
            suite.attribute("tests"),
            Some(clause.checks.len().to_string().as_str())
        );
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, a plausible date.
fn is_rfc3339_utc(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 20
        && text.ends_with('Z')
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && b[10] == b'T'
        && [13, 16].iter().all(|&i| b[i] == b':')
        && text[..4].parse::<u32>().is_ok_and(|y| y >= 2024)
}

fn check(name: &str, status: Status, message: &str) -> CheckReport {
    CheckReport {
        clause: "update.applies".to_owned(),
        name: name.to_owned(),
        status,
        message: message.to_owned(),
        cases: 1,
        requests: 2,
        resends: 0,
        duration_ms: 1234,
        warnings: vec!["a <warning> & \u{7}bell".to_owned()],
        reproducer: None,
        expected: None,
        observed: None,
        exchanges: Vec::new(),
        replay_id: None,
        script: None,
    }
}

#[test]
fn markup_quotes_and_control_characters_keep_the_document_well_formed() {
    let nasty = "name \"<a&b>\" 'q' \u{1}\u{1b}[31m \u{FFFE} \u{202E}🦀\tend\r\nsecond ]]> line";
    let report = RunReport {
        target_name: "t<&\"'>\u{0}".to_owned(),
        base_url: "http://127.0.0.1:1".to_owned(),
        cda_url: None,
        environment: None,
        embedded: true,
        seed: 1,
        cases: 1,
        profile: Profile::Documented,
        clauses: vec![ClauseReport {
            id: "update.applies".to_owned(),
            title: "a <title> & \"more\"".to_owned(),
            status: Status::Fail,
            evidence: Evidence::Documented,
            requests: 6,
            checks: vec![
                check("failing", Status::Fail, nasty),
                check("skipped", Status::Skipped, nasty),
                check("inconclusive", Status::Inconclusive, nasty),
                check("passing", Status::Pass, ""),
            ],
        }],
        requests: 6,
        requests_past_cap: 0,
        rate_limit_wait_ms: 0,
        duration_ms: 5,
        started_at: "2026-12-02T01:37:53Z".to_owned(),
    };
    let xml = junit(&report);
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let failure = doc
        .descendants()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    let text = failure.text().unwrap();
    // Markup comes back exactly; what XML forbids, and what the output layer lets through
    // only escaped (controls, `\r`, bidirectional overrides), is shown as an escape.
    let shown =
        "name \"<a&b>\" 'q' \\u{1}\\u{1b}[31m \\u{fffe} \\u{202e}🦀\tend\\u{d}\nsecond ]]> line";
    assert_eq!(text, shown);
    // The message's first line ends at its CRLF, before the `\r` is escaped.
    let first = shown.split_once("\\u{d}\n").unwrap().0;
    assert_eq!(failure.attribute("message"), Some(first));
    let skipped: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("skipped"))
        .map(|n| n.attribute("message").unwrap().to_owned())
        .collect();
    assert_eq!(
        skipped,
        [first.to_owned(), format!("inconclusive: {first}")]
    );
    let out = doc
        .descendants()
        .find(|n| n.has_tag_name("system-out"))
        .unwrap();
    assert_eq!(out.text(), Some("warning: a <warning> & \\u{7}bell"));
    assert_eq!(
        doc.root_element().attribute("name"),
        Some("token-conformance t<&\"'>\\u{0}")
    );
    assert_eq!(doc.root_element().attribute("tests"), Some("4"));
    assert_eq!(doc.root_element().attribute("failures"), Some("1"));
    assert_eq!(doc.root_element().attribute("skipped"), Some("2"));
    let passing = doc
        .descendants()
        .find(|n| n.attribute("name") == Some("passing"))
        .unwrap();
    assert_eq!(passing.attribute("time"), Some("1.234"));
}
