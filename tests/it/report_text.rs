//! No report shows Rust `Debug` text: the suite runs against the reference server with a few
//! faults that between them make every check fail at least once (asserted: the test cannot
//! pass on reports without failures), and every report of every run — the terminal text, the JSON,
//! JUnit, the Markdown summary, and the HTML and Markdown matrix of all the runs — is searched
//! for `Some(`, `None`, `Object {` and `String(`.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;

use token_conformance::checks::{self, Profile};
use token_conformance::faults::Fault;
use token_conformance::outcome::Status;
use token_conformance::plan::{Plan, Strictness, TargetKind};
use token_conformance::report::matrix::{Matrix, TargetResult};
use token_conformance::report::{RunReport, junit::junit, matrix_html, matrix_md, summary};

/// As in tests/mutants.rs: with this seed and these cases every check fails under some fault.
const SEED: u64 = 11;
const CASES: u32 = 16;

/// The suite against the reference server with `fault`, under the profile that sees it.
async fn run_with(fault: Fault) -> RunReport {
    let plan = Plan {
        target: TargetKind::Embedded(Box::new(token_conformance::mutants::server_config(Some(
            fault,
        )))),
        seed: SEED,
        cases: CASES,
        strictness: if fault.strict_only() {
            Strictness::Strict
        } else {
            Strictness::Documented
        },
        concurrency: 8,
        ..Plan::default()
    };
    common::run_suite(&plan).await
}

/// Faults that, with [`SEED`] and [`CASES`], make every check fail at least once between them
/// (a greedy cover of what each fault fails, from a run of all of them).
const COVER: &[&str] = &[
    "secret-rotated-by-update",
    "stale-read",
    "errors-under-errors",
    "hardcoded-cannot-rotate",
    "unknown-members-accepted",
    "non-ascii-name-500",
    "html-content-type",
    "no-rate-limit-headers",
    "unknown-id-500",
    "forged-bearer-prefix",
];

/// A run per fault, two at a time (each is a whole suite with its own server), in fault order.
async fn run_all(faults: Vec<Fault>) -> Vec<(Fault, RunReport)> {
    let limit = Arc::new(tokio::sync::Semaphore::new(2));
    let mut tasks = tokio::task::JoinSet::new();
    for fault in faults {
        let limit = Arc::clone(&limit);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (fault, run_with(fault).await)
        });
    }
    let mut reports = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        reports.push(joined.unwrap());
    }
    reports.sort_by_key(|(fault, _)| *fault);
    reports
}

/// The checks that failed in none of `reports`.
fn never_failed(reports: &[(Fault, RunReport)]) -> Vec<String> {
    let failed: BTreeSet<String> = reports
        .iter()
        .flat_map(|(_, r)| r.clauses.iter().flat_map(|c| &c.checks))
        .filter(|k| k.status == Status::Fail)
        .map(|k| k.full_name())
        .collect();
    checks::all()
        .iter()
        .map(|def| def.full_name())
        .filter(|name| !failed.contains(name))
        .collect()
}

/// `text` with the insides of its double-quoted stretches (JSON strings, the clause quotes,
/// `&quot;`-quoted attributes) blanked: there a target's own words and generated names may say
/// anything, `None` included, and a `Debug` pattern is what stands outside them (`Some("12")`
/// keeps its `Some(`).
fn outside_quotes(text: &str) -> String {
    let text = text.replace("&quot;", "\"");
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    let mut escaped = false;
    for c in text.chars() {
        if quoted {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
                out.push(c);
            }
            continue;
        }
        if c == '"' {
            quoted = true;
        }
        out.push(c);
    }
    out
}

/// The `Debug` patterns in `text` (outside quoted stretches), each with some context.
fn debug_patterns(text: &str) -> Vec<String> {
    let text = outside_quotes(text);
    let mut found = Vec::new();
    let context = |at: usize| {
        let start = text.floor_char_boundary(at.saturating_sub(60));
        let end = text.ceil_char_boundary((at + 60).min(text.len()));
        text[start..end].replace('\n', "⏎")
    };
    for pattern in ["Some(", "Object {", "String(", "None"] {
        for (at, _) in text.match_indices(pattern) {
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
            let before = text[..at].chars().next_back();
            let after = text[at + pattern.len()..].chars().next();
            // `None` as a word (not "Nonesuch"); the others as written (not "IsSome(").
            if word(before) || (pattern == "None" && word(after)) {
                continue;
            }
            found.push(format!("{pattern:?} in …{}…", context(at)));
        }
    }
    found
}

#[test]
fn the_pattern_search_finds_debug_text_and_spares_quoted_words() {
    assert!(!debug_patterns(r#"the response's role is None, expected "12""#).is_empty());
    assert!(!debug_patterns(r#"role Some("12")"#).is_empty());
    assert!(
        !debug_patterns(r#"[Template(Object {"data": Object {"type": String("x")}})]"#).is_empty()
    );
    assert!(debug_patterns(r#"name "None of Some(these)" and "a \" None""#).is_empty());
    assert!(debug_patterns("Nonesuch, IsSome(x), no role").is_empty());
}

#[test]
fn no_report_shows_debug_text_for_runs_that_fail_every_check() {
    let rt = common::runtime();
    let mut reports = rt.block_on(run_all(
        Fault::ALL
            .iter()
            .copied()
            .filter(|f| COVER.contains(&f.name()))
            .collect(),
    ));
    // Should the faults change so that the few no longer fail every check, all the others
    // run too (slower, but the assertion below stays about every check).
    if !never_failed(&reports).is_empty() {
        let rest = Fault::ALL
            .iter()
            .copied()
            .filter(|f| !COVER.contains(&f.name()))
            .collect();
        reports.extend(rt.block_on(run_all(rest)));
    }

    // Not vacuous: every check failed somewhere, so every failure text was rendered.
    let never = never_failed(&reports);
    assert!(never.is_empty(), "checks that never failed: {never:?}");

    let mut problems = Vec::new();
    let mut search = |what: String, text: &str| {
        for found in debug_patterns(text) {
            problems.push(format!("{what}: {found}"));
        }
    };
    for (fault, report) in &reports {
        let name = fault.name();
        search(format!("{name}: terminal"), &report.render(true));
        search(
            format!("{name}: terminal, coloured"),
            &report.render_styled(true, true),
        );
        search(
            format!("{name}: JSON"),
            &serde_json::to_string_pretty(&report.to_json()).unwrap(),
        );
        search(format!("{name}: JUnit"), &junit(report));
        search(format!("{name}: summary"), &summary::summary(report));
        // The structured findings are there, with their evidence.
        let json = report.to_json();
        for finding in json["findings"].as_array().unwrap() {
            assert!(
                finding["replay_id"]
                    .as_str()
                    .is_some_and(|id| id.len() == 10)
            );
            if finding["status"] == "fail" {
                assert!(finding["expected"].is_string(), "{finding}");
                assert!(finding["observed"].is_string(), "{finding}");
            }
        }
    }
    let matrix = Matrix {
        seed: SEED,
        cases: CASES,
        started: "2026-12-02 00:49 UTC".to_owned(),
        targets: reports
            .iter()
            .map(|(fault, report)| TargetResult {
                name: fault.name().to_owned(),
                description: fault.description().to_owned(),
                profile: if fault.strict_only() {
                    Profile::Strict
                } else {
                    Profile::Documented
                },
                embedded: true,
                outcome: Ok(report.clone()),
            })
            .collect(),
    };
    search("matrix: HTML".to_owned(), &matrix_html::html(&matrix));
    search("matrix: Markdown".to_owned(), &matrix_md::markdown(&matrix));
    assert!(
        problems.is_empty(),
        "Rust Debug text in the reports:\n{}",
        problems.join("\n")
    );
}

/// `run` against a `serve` with one fault, with these extra arguments and environment.
fn cli_run(
    server: &common::Serve,
    secret: &str,
    extra: &[&str],
    env: &[(&str, &std::path::Path)],
) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_token-conformance"));
    for var in [
        "CONFORMANCE_BASE_URL",
        "CONFORMANCE_CDA_URL",
        "CONFORMANCE_ENVIRONMENT",
        "CONFORMANCE_SEED",
        "GITHUB_STEP_SUMMARY",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(["run", "--base-url", &server.cma, "--cda-url", &server.cda])
        .args([
            "--seed",
            "3",
            "--cases",
            "4",
            "--filter",
            "update.hardcoded",
        ])
        .args(extra)
        .env("CONFORMANCE_API_TOKEN", secret);
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.output().unwrap()
}

#[test]
fn the_summary_is_written_or_appended_to_the_step_summary_and_the_json_holds_the_findings() {
    let secret = "report-text-secret-7f3a9c";
    let server = common::serve(secret, &["--fault", "hardcoded-accepts-updates"]);
    let dir = std::env::temp_dir().join(format!("report-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (step, own, json) = (dir.join("step.md"), dir.join("own.md"), dir.join("r.json"));
    std::fs::write(&step, "earlier step\n").unwrap();

    // GITHUB_STEP_SUMMARY alone: appended to, what an earlier step wrote kept.
    let out = cli_run(
        &server,
        secret,
        &["--json", json.to_str().unwrap()],
        &[("GITHUB_STEP_SUMMARY", &step)],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("does not match"), "{stderr}");
    let md = std::fs::read_to_string(&step).unwrap();
    assert!(
        md.starts_with("earlier step\n## token-conformance: "),
        "{md}"
    );
    assert!(
        md.contains("| `update.hardcoded.rejected` | ❌ fail |"),
        "{md}"
    );
    assert!(
        md.contains("<details>") && md.contains("</details>"),
        "{md}"
    );
    assert!(md.contains("curl "), "{md}");
    assert!(!md.contains(secret), "{md}");
    assert!(debug_patterns(&md).is_empty(), "{md}");

    // The JSON report: the run's date and the failure as structured data, redacted.
    let text = std::fs::read_to_string(&json).unwrap();
    assert!(!text.contains(secret));
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        report["started_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z') && s.len() == 20)
    );
    assert!(report["tool"]["version"].is_string());
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["status"] == "fail")
        .unwrap();
    assert_eq!(finding["clause"], "update.hardcoded.rejected");
    assert!(finding["expected"].is_string() && finding["observed"].is_string());
    let exchange = finding["exchanges"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(exchange["request"]["method"], "PUT", "{exchange}");
    assert!(
        exchange["request"]["path"]
            .as_str()
            .unwrap()
            .starts_with("/access_tokens/")
    );
    assert!(
        exchange["request"]["body"]["data"].is_object(),
        "{exchange}"
    );
    assert!(exchange["response"]["status"].is_u64());
    assert!(exchange["response"]["body"].is_object(), "{exchange}");
    let id = finding["replay_id"].as_str().unwrap();
    let check = format!(
        "{}::{}",
        finding["clause"].as_str().unwrap(),
        finding["check"].as_str().unwrap()
    );
    assert_eq!(
        id,
        token_conformance::report::replay_id::replay_id(3, 4, "documented", &check)
    );

    // --summary: that file, written whole; the step summary left alone.
    std::fs::write(&own, "stale\n").unwrap();
    let out = cli_run(
        &server,
        secret,
        &["--summary", own.to_str().unwrap()],
        &[("GITHUB_STEP_SUMMARY", &step)],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        std::fs::read_to_string(&own)
            .unwrap()
            .starts_with("## token-conformance: ")
    );
    assert_eq!(std::fs::read_to_string(&step).unwrap(), md);
    let _ = std::fs::remove_dir_all(&dir);
}
