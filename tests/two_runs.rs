//! A server the suite did not start keeps its data: two runs in a row against one
//! `token-conformance serve` (a remote target, on loopback) both pass and leave its factory
//! token exactly as it was; only `--destructive` rotates and deletes it, and then that
//! destructive clause runs and passes.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const SECRET: &str = "two-runs-management-secret-5c2a";

/// A `serve` child on free loopback ports, killed (by its own handle) when dropped.
struct Serve {
    child: Child,
    cma: String,
    cda: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_token-conformance"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--cda-addr",
            "127.0.0.1:0",
            "--rate-limit",
            "off",
        ])
        .env("CONFORMANCE_API_TOKEN", SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().take(20) {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut cma, mut cda) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while cma.is_none() || cda.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("serve printed its URLs within 30 s");
        if let Some(url) = line.strip_prefix("CMA: ") {
            cma = Some(url.trim().to_owned());
        }
        if let Some(url) = line.strip_prefix("CDA: ") {
            cda = Some(url.trim().to_owned());
        }
    }
    Serve {
        child,
        cma: cma.unwrap(),
        cda: cda.unwrap(),
    }
}

/// The factory tokens as the management token sees them: everything but the last-access
/// dates (reading changes those).
fn factory_tokens(base: &str) -> Vec<Value> {
    common::runtime().block_on(async {
        let text = reqwest::Client::new()
            .get(format!("{base}/access_tokens"))
            .bearer_auth(SECRET)
            .header("X-Api-Version", "3")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let body: Value = serde_json::from_str(&text).unwrap();
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| !t["attributes"]["hardcoded_type"].is_null())
            .map(|t| {
                let mut t = t.clone();
                let attrs = t["attributes"].as_object_mut().unwrap();
                attrs.remove("last_cma_access");
                attrs.remove("last_cda_access");
                t
            })
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
