//! A server the suite did not start keeps its data: two runs in a row against one
//! `token-conformance serve` (a remote target, on loopback) both pass and leave its factory
//! token exactly as it was; only `--destructive` rotates and deletes it, and then that
//! destructive clause runs and passes.

use crate::common;

use std::process::{Command, Output};

use common::Serve;
use serde_json::Value;

const SECRET: &str = "two-runs-management-secret-5c2a";

fn serve() -> Serve {
    common::serve(SECRET, &["--rate-limit", "off"])
}

/// The factory tokens as the management token sees them: everything but the last-access
/// dates (reading changes those).
fn factory_tokens(base: &str) -> Vec<Value> {
    common::runtime().block_on(async {
        common::list(base, SECRET, "/access_tokens")
            .await
            .into_iter()
            .filter(|t| !t["attributes"]["hardcoded_type"].is_null())
            .map(common::without_access_dates)
            .collect()
    })
}

fn run(serve: &Serve, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_token-conformance"))
        .args([
            "run",
            "--base-url",
            &serve.cma,
            "--cda-url",
            &serve.cda,
            "--cases",
            "2",
            "--seed",
            "4",
        ])
        .args(extra)
        .env("CONFORMANCE_API_TOKEN", SECRET)
        .env_remove("CONFORMANCE_BASE_URL")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The verdict of each clause: the result column and the clause id of each clause row.
fn verdicts(out: &Output) -> Vec<(String, String)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let status = words.next()?;
            if !matches!(
                status,
                "PASS" | "FAIL" | "INCONCLUSIVE" | "SKIPPED" | "SKIP"
            ) {
                return None;
            }
            let clause = words.find(|w| w.contains('.'))?;
            Some((status.to_owned(), clause.to_owned()))
        })
        .collect()
}

#[test]
fn two_runs_against_one_serve_pass_and_leave_its_factory_token_alone() {
    let serve = serve();
    let before = factory_tokens(&serve.cma);
    assert!(
        !before.is_empty(),
        "serve seeds a factory token (hardcoded_type non-null)"
    );
    assert!(
        before.iter().all(|t| t["attributes"]["token"].is_string()),
        "the management token sees the factory secrets: {before:?}"
    );

    let first = run(&serve, &[]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(factory_tokens(&serve.cma), before, "after the first run");
    let second = run(&serve, &[]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert_eq!(factory_tokens(&serve.cma), before, "after the second run");

    // Same verdict both times: every clause, and the destructive one skipped with its reason.
    let (v1, v2) = (verdicts(&first), verdicts(&second));
    assert_eq!(v1.len(), 19, "{}", text(&first));
    assert_eq!(v1, v2);
    let stdout = String::from_utf8_lossy(&first.stdout);
    let deletable = stdout
        .lines()
        .find(|l| l.contains("update.hardcoded.still_deletable"))
        .unwrap();
    assert!(!deletable.starts_with("PASS"), "{deletable}");
    assert!(stdout.contains("--destructive"), "{stdout}");
    assert!(
        v1.iter()
            .filter(|(_, c)| c != "update.hardcoded.still_deletable")
            .all(|(s, _)| s == "PASS"),
        "{stdout}"
    );

    // With --destructive the destructive clause runs, and passes.
    let forced = run(&serve, &["--destructive", "--filter", "update.hardcoded"]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced));
    let verdicts = verdicts(&forced);
    assert!(
        verdicts.contains(&(
            "PASS".to_owned(),
            "update.hardcoded.still_deletable".to_owned()
        )),
        "{}",
        text(&forced)
    );
    // It really rotated and deleted one: that factory token is gone now.
    let after = factory_tokens(&serve.cma);
    assert_eq!(after.len() + 1, before.len(), "{after:?}");
}
