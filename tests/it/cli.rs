//! The command line as a user meets it: the default run, bad targets, bad configuration,
//! the clause catalog, the JSON report, and replay by seed.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

use token_conformance::engine::Session;
use token_conformance::plan::{Plan, Strictness};
use token_conformance::spec::{SchemaId, Spec};

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_token-conformance"));
    for var in [
        "CONFORMANCE_BASE_URL",
        "CONFORMANCE_CDA_URL",
        "CONFORMANCE_ENVIRONMENT",
        "CONFORMANCE_API_TOKEN",
        "CONFORMANCE_SEED",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_no_panic(out: &Output) {
    assert!(!text(out).contains("panicked"), "{}", text(out));
}

/// A loopback server answering every connection with `response`, for a bounded number of
/// connections, then stopping.
fn fake_server(response: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}

#[test]
fn no_arguments_runs_every_clause_against_the_embedded_server() {
    let out = bin().args(["--"]).output().unwrap();
    let out = if out.status.code() == Some(2) {
        bin().output().unwrap()
    } else {
        out
    };
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let all = text(&out);
    assert!(all.contains("embedded reference server"), "{all}");
    let clauses = Spec::embedded().catalog().clauses().len();
    assert!(
        all.contains(&format!("{clauses} clauses: {clauses} pass, 0 fail")),
        "{all}"
    );
}

#[test]
fn a_target_where_nothing_listens_is_reported_with_exit_4() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = bin()
        .args(["run", "--base-url", &format!("http://127.0.0.1:{port}")])
        .env("CONFORMANCE_API_TOKEN", "some-secret-value")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("could not be reached"),
        "{}",
        text(&out)
    );
    assert_no_panic(&out);
}

/// `run` against a loopback server that answers every request with `response`: exit 4 with
/// each of `expected` in the output, and no panic.
fn run_against_fake(response: &'static str, expected: &[&str]) {
    let url = fake_server(response);
    let out = bin()
        .args(["run", "--base-url", &url])
        .env("CONFORMANCE_API_TOKEN", "some-secret-value")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    for wanted in expected {
        assert!(
            text(&out).contains(wanted),
            "{wanted:?} missing from: {}",
            text(&out)
        );
    }
    assert_no_panic(&out);
}

#[test]
fn a_target_answering_html_is_reported_with_exit_4() {
    run_against_fake(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 20\r\nConnection: close\r\n\r\n<html>hello</html>\r\n",
        &["does not answer like the API", "text/html"],
    );
}

#[test]
fn a_target_answering_invalid_json_is_reported_with_exit_4() {
    run_against_fake(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{\"data\":[",
        &["does not answer like the API", "not JSON"],
    );
}

#[test]
fn a_mock_without_the_endpoints_is_quoted_and_told_what_the_suite_calls() {
    // Prism's answer to a path its document lacks, echoing the management token.
    let response = "HTTP/1.1 404 Not Found\r\nContent-Type: application/problem+json\r\nContent-Length: 89\r\nConnection: close\r\n\r\n{\"title\":\"Route not resolved, no path matched\",\"status\":404,\"detail\":\"some-secret-value\"}";
    run_against_fake(
        response,
        &[
            "does not answer like the API",
            "GET /site → 404",
            "Route not resolved, no path matched",
            "GET /users/me",
            "PUT /access_tokens/{access_token_id}",
            "POST /roles",
            "token-conformance openapi",
        ],
    );
    let out = bin()
        .args(["run", "--base-url", &fake_server(response)])
        .env("CONFORMANCE_API_TOKEN", "some-secret-value")
        .output()
        .unwrap();
    // The secret straddles the excerpt's 80-character cut: not even its start is shown.
    assert!(!text(&out).contains("some-secr"), "{}", text(&out));
}

#[test]
fn a_base_url_without_a_token_is_a_configuration_error() {
    let out = bin()
        .args(["run", "--base-url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("CONFORMANCE_API_TOKEN"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_malformed_url_is_a_configuration_error() {
    let out = bin()
        .args(["run", "--base-url", "not a url"])
        .env("CONFORMANCE_API_TOKEN", "x-secret-x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("invalid base URL"), "{}", text(&out));
}

#[test]
fn the_secret_is_never_a_flag() {
    let out = bin().args(["run", "--token", "abc"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn help_documents_the_exit_codes() {
    let out = bin().args(["run", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let all = text(&out);
    for code in [
        "0  every clause",
        "1  a clause was violated",
        "2  bad usage",
        "3  nothing failed",
        "4  the target could not be tested",
    ] {
        assert!(all.contains(code), "{all}");
    }
}

#[test]
fn every_clause_is_covered() {
    let out = bin().arg("clauses").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains(" 0 uncovered"), "{}", text(&out));
}

#[test]
fn clauses_shows_each_clause_with_its_checks_and_their_faults() {
    let out = bin().arg("clauses").output().unwrap();
    let all = text(&out);
    assert!(
        all.contains("update.role.preserved [documented]")
            && all.contains(
                "    - role_is_preserved_when_relationships_are_omitted: covered\n        proved by: role-dropped-when-omitted, role-reset-when-omitted, response-role-from-request\n"
            ),
        "{all}"
    );
    let out = bin().args(["clauses", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["complete"], true);
    assert_eq!(json["problems"], serde_json::json!([]));
    let clauses = json["clauses"].as_array().unwrap();
    assert_eq!(clauses.len(), Spec::embedded().catalog().clauses().len());
    let validation = clauses
        .iter()
        .find(|c| c["id"] == "update.request.validation")
        .unwrap();
    let strict = validation["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "unknown_members_are_refused")
        .unwrap();
    assert_eq!(strict["strict_only"], true);
    assert_eq!(
        strict["faults"],
        serde_json::json!(["unknown-members-accepted"])
    );
}

#[test]
fn the_json_report_matches_its_schema_and_holds_no_secret() {
    let dir = std::env::temp_dir().join(format!("tc-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("report.json");
    let secret = "json-report-secret-4f9a2c";
    let out = bin()
        .args([
            "run",
            "--seed",
            "5",
            "--cases",
            "4",
            "--json",
            path.to_str().unwrap(),
        ])
        .env("CONFORMANCE_API_TOKEN", secret)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(&path).unwrap();
    let json: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(
        Spec::embedded().schemas().validate(SchemaId::Report, &json),
        Ok(())
    );
    assert_eq!(json["seed"], 5);
    assert_eq!(
        json["clauses"].as_array().unwrap().len(),
        Spec::embedded().catalog().clauses().len()
    );
    assert!(json["requests"].as_u64().unwrap() > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every distinct request of a run, with what legitimately differs between runs masked: the
/// run id in fixture names and the ids the server hands out.
async fn transcript(seed: u64) -> Vec<String> {
    let options = Plan {
        seed,
        cases: 6,
        concurrency: 1,
        strictness: Strictness::Documented,
        record_requests: true,
        ..Plan::default()
    };
    let session = std::sync::Arc::new(Session::open(&options).await.unwrap());
    let report = session.run_all(|_, _, _| {}).await;
    assert!(
        report
            .clauses
            .iter()
            .all(|c| c.status != token_conformance::outcome::Status::Fail)
    );
    let run_id = &session.settings().run_id;
    let sent = session.client().stats().sent.lock().unwrap().clone();
    let mask = |s: &str| {
        let s = s.replace(run_id.as_str(), "RUN");
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            if !c.is_ascii_digit() {
                out.push(c);
            } else if !out.ends_with('#') {
                out.push('#');
            }
        }
        out
    };
    let mut lines: Vec<String> = sent
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.method,
                mask(&r.url),
                mask(r.body.as_deref().unwrap_or(""))
            )
        })
        .collect();
    // Concurrent probe bursts may leave in any order, and the `update.effect.*` histories probe
    // until their holds end, so how many times they send each probe varies: every distinct
    // request is compared, not how often it was sent.
    lines.sort();
    lines.dedup();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_sends_the_same_requests() {
    let a = transcript(424242).await;
    let b = transcript(424242).await;
    assert_eq!(a.len(), b.len());
    let diff: Vec<(&String, &String)> = a.iter().zip(&b).filter(|(x, y)| x != y).take(3).collect();
    assert!(diff.is_empty(), "the two runs differ: {diff:#?}");
    let c = transcript(7).await;
    assert_ne!(a, c, "another seed should generate other bodies");
}

#[test]
fn a_base_url_without_a_scheme_gets_a_suggestion() {
    let out = bin()
        .args(["run", "--base-url", "127.0.0.1:3000"])
        .env("CONFORMANCE_API_TOKEN", "x-secret-x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("did you mean http://127.0.0.1:3000"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("relative URL"), "{}", text(&out));
}

#[test]
fn an_unreachable_target_is_named_once_with_its_cause() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = bin()
        .args(["run", "--base-url", &url])
        .env("CONFORMANCE_API_TOKEN", "some-secret-value")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let all = text(&out);
    assert_eq!(all.matches(&url).count(), 1, "{all}");
    assert!(all.to_lowercase().contains("refused"), "{all}");
    assert!(!all.contains("error sending request"), "{all}");
}

#[test]
fn help_lists_the_staging_profile_and_what_serve_needs() {
    let run = text(&bin().args(["run", "--help"]).output().unwrap());
    let profile = &run[run.find("--profile").unwrap()..];
    assert!(
        profile[..profile.find("Possible values").unwrap()].contains("staging:"),
        "{run}"
    );
    assert!(
        run.contains("--strict") && run.contains("--budget"),
        "{run}"
    );
    let serve = text(&bin().args(["serve", "--help"]).output().unwrap());
    assert!(serve.contains("CONFORMANCE_API_TOKEN"), "{serve}");
    assert!(serve.contains("port 0"), "{serve}");
}

/// `--profile staging --strict`: the staging budget (few cases) with strictness (the
/// strict-only check runs); the header spells the profile as the flag does, and checks
/// without generated cases show no `0` in the cases column.
#[test]
fn staging_and_strict_combine_and_the_header_reads_like_the_flags() {
    let out = bin()
        .args([
            "run",
            "--profile",
            "staging",
            "--strict",
            "--seed",
            "3",
            "--verbose",
            "--filter",
            "update.request.validation::unknown_members_are_refused",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains("· profile strict ·"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.contains("unknown_members_are_refused"))
        .unwrap();
    assert_eq!(
        row.split_whitespace().next(),
        Some("pass"),
        "the strict-only check ran: {stdout}"
    );
    let documented = bin()
        .args(["run", "--verbose", "--filter", "headers.content_type"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&documented.stdout).into_owned();
    assert!(stdout.contains("· profile documented ·"), "{stdout}");
    assert!(!stdout.contains("Documented"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.contains("every_response_is_json"))
        .unwrap();
    let columns: Vec<&str> = row.split_whitespace().collect();
    // `pass`, then the requests (no cases), then the check's name.
    assert_eq!(columns[0], "pass", "{row}");
    assert!(columns[1].parse::<u64>().unwrap() > 0, "{row}");
    assert_eq!(columns[2], "every_response_is_json", "{row}");
}
