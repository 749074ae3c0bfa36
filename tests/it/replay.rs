//! Replay after the run, against a `token-conformance serve --fault` child: a failure taken
//! from a `run --json` report by its replay id shows the same violation again and leaves no
//! fixture behind; the `sh` script the report prints creates its fixtures, shows the
//! violating answer and removes them.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use token_conformance::fixtures::is_fixture_name;

const SECRET: &str = "replay-management-0f3c9b8a7d6e5f4a3b2c";
const CHECK: &str = "update.role.preserved::role_is_preserved_when_relationships_are_omitted";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tc-replay-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn suite(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_token-conformance"))
        .args(args)
        .current_dir(dir)
        .env("CONFORMANCE_API_TOKEN", SECRET)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The faulty server, and a report of a run against it (exit 1) with its failing check.
fn failed_run(dir: &Path) -> (common::Serve, Value) {
    let serve = common::serve(
        SECRET,
        &[
            "--fault",
            "role-dropped-when-omitted",
            "--rate-limit",
            "off",
        ],
    );
    let run = suite(
        &[
            "run",
            "--base-url",
            &serve.cma,
            "--cda-url",
            &serve.cda,
            "--seed",
            "5",
            "--cases",
            "8",
            "--filter",
            "update.role",
            "--json",
            "r.json",
        ],
        dir,
    );
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    let check = report["clauses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "update.role.preserved")
        .flat_map(|c| c["checks"].as_array().unwrap())
        .find(|k| k["status"] == "fail")
        .cloned()
        .unwrap_or_else(|| panic!("no failure in the report: {report:#}"));
    // The terminal text names the same id as the report.
    let id = check["replay_id"].as_str().unwrap();
    assert!(
        text(&run).contains(&format!(
            "replay: token-conformance replay {id} --report 'r.json'"
        )),
        "{}",
        text(&run)
    );
    (serve, check)
}

/// Tokens and roles on the server named like a fixture of some run.
fn fixtures_left(serve: &common::Serve) -> Vec<String> {
    common::runtime().block_on(async {
        let mut left = Vec::new();
        for path in ["/access_tokens", "/roles"] {
            for item in common::list(&serve.cma, SECRET, path).await {
                let name = item["attributes"]["name"].as_str().unwrap_or_default();
                if is_fixture_name(name) {
                    left.push(format!("{path}: {name}"));
                }
            }
        }
        left
    })
}

#[test]
fn a_failure_replayed_from_the_report_shows_the_same_violation_and_cleans_up() {
    let dir = scratch("report");
    let (serve, check) = failed_run(&dir);
    let id = check["replay_id"].as_str().unwrap();
    assert_eq!(fixtures_left(&serve), Vec::<String>::new(), "after the run");

    let replay = suite(&["replay", id, "--report", "r.json"], &dir);
    let out = text(&replay);
    assert_eq!(replay.status.code(), Some(1), "{out}");
    assert!(out.contains("the violation is shown again"), "{out}");
    assert!(out.contains(CHECK), "{out}");
    assert!(
        out.contains("without relationships") && out.contains("no role"),
        "{out}"
    );
    assert!(out.contains("fixture: POST"), "{out}");
    assert!(out.contains("cleanup: DELETE"), "{out}");
    assert!(!out.contains(SECRET), "the management secret was shown");
    assert_eq!(
        fixtures_left(&serve),
        Vec::<String>::new(),
        "after the replay"
    );

    // The same case by its seed and name, without the report.
    let by_seed = suite(
        &[
            "replay",
            "--seed",
            "5",
            "--cases",
            "8",
            "--filter",
            CHECK,
            "--base-url",
            &serve.cma,
        ],
        &dir,
    );
    assert_eq!(by_seed.status.code(), Some(1), "{}", text(&by_seed));
    assert!(text(&by_seed).contains(&format!("replay {id} ·")));
    assert_eq!(fixtures_left(&serve), Vec::<String>::new());

    // An id the report does not hold is a usage error that names the ones it does.
    let unknown = suite(&["replay", "0000000000", "--report", "r.json"], &dir);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));
    assert!(text(&unknown).contains(id), "{}", text(&unknown));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_printed_script_recreates_the_fixture_and_shows_the_violating_answer() {
    let dir = scratch("script");
    let (serve, check) = failed_run(&dir);
    let script = check["script"].as_str().unwrap();
    // The secret is the shell's, never in the script.
    assert!(!script.contains(SECRET));
    assert!(script.contains("$CONFORMANCE_API_TOKEN"));
    // The failure text carries the same script.
    let message = check["message"].as_str().unwrap();
    for line in script.lines() {
        assert!(message.contains(&format!("    {line}\n")), "{line}");
    }
    std::fs::write(dir.join("reproduce.sh"), script).unwrap();
    let ran = Command::new("sh")
        .arg("reproduce.sh")
        .current_dir(&dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("CONFORMANCE_API_TOKEN", SECRET)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&ran.stdout);
    assert!(ran.status.success(), "{}", text(&ran));
    // The PUT without relationships answers with the role dropped: the fault.
    let answer: Value = out
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON answer in {out}"));
    assert_eq!(answer["data"]["type"], "access_token", "{out}");
    assert!(
        answer["data"]["relationships"]["role"]["data"].is_null(),
        "{out}"
    );
    assert_eq!(
        fixtures_left(&serve),
        Vec::<String>::new(),
        "after the script"
    );

    // Without the token the script refuses to start, and creates nothing.
    let refused = Command::new("sh")
        .arg("reproduce.sh")
        .current_dir(&dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(text(&refused).contains("CONFORMANCE_API_TOKEN"));
    assert_eq!(fixtures_left(&serve), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_factory_token_changed_by_an_update_is_reproduced_by_the_update() {
    let dir = scratch("hardcoded");
    let serve = common::serve(
        SECRET,
        &["--fault", "hardcoded-applies-name", "--rate-limit", "off"],
    );
    let run = suite(
        &[
            "run",
            "--base-url",
            &serve.cma,
            "--seed",
            "1",
            "--destructive",
            "--filter",
            "update.hardcoded.rejected",
            "--json",
            "r.json",
        ],
        &dir,
    );
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    let check = &report["clauses"][0]["checks"][0];
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("changed after an update"),
        "{check:#}"
    );
    // The request that broke the promise, not the read that showed it.
    let reproducer = check["reproducer"].as_str().unwrap();
    assert!(reproducer.contains(" -X PUT "), "{reproducer}");
    // A factory token is no fixture: the line is complete as it is.
    assert!(check["script"].is_null(), "{check:#}");
    let _ = std::fs::remove_dir_all(&dir);
}
