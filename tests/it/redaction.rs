//! Secrets never leave the process: the suite runs against a server whose every issued
//! secret is known, with a fault that puts secrets into answers (so failures are printed in
//! full), and every output and artifact is searched for them.

use crate::common;

use std::process::Command;
use std::sync::Arc;

use token_conformance::engine::Session;
use token_conformance::faults::{Fault, FaultSet};
use token_conformance::plan::Plan;
use token_conformance::reference::{ReferenceServer, ServerConfig};

const SECRET: &str = "redaction-management-secret-0f3c9b";

fn assert_no_secret(what: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(!text.contains(secret.as_str()), "{what} contains a secret");
    }
}

#[test]
fn no_output_or_artifact_holds_a_secret() {
    let rt = common::runtime();
    let server = rt.block_on(async {
        let config = ServerConfig {
            admin_secret: Some(SECRET.to_owned()),
            rate_limit: None,
            faults: FaultSet::of([Fault::TokenShownToEveryone]),
            ..ServerConfig::default()
        };
        ReferenceServer::start(config).await.unwrap()
    });
    let dir = std::env::temp_dir().join(format!("tc-redaction-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let junit = dir.join("report.xml");
    let snapshots = dir.join("snapshots");
    let out = Command::new(env!("CARGO_BIN_EXE_token-conformance"))
        .args([
            "run",
            "-v",
            "--seed",
            "8",
            "--cases",
            "8",
            "--base-url",
            &server.cma_url(),
            "--cda-url",
            &server.cda_url(),
        ])
        .args([
            "--json",
            json.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ])
        .args([
            "--update-snapshots",
            "--snapshot-dir",
            snapshots.to_str().unwrap(),
        ])
        .env("CONFORMANCE_API_TOKEN", SECRET)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // The fault is caught, so failures (with their exchanges) were printed in full.
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("FAIL update.token.visibility"), "{stdout}");
    assert!(stdout.contains("Authorization: Bearer $"), "{stdout}");
    assert!(
        stdout.contains("[secret]") || stdout.contains("$FIXTURE_TOKEN_"),
        "{stdout}"
    );

    let mut secrets = server.issued_secrets();
    secrets.push(SECRET.to_owned());
    assert!(
        secrets.len() > 10,
        "the run's fixture tokens are among the issued secrets"
    );
    assert_no_secret("stdout", &stdout, &secrets);
    assert_no_secret("stderr", &stderr, &secrets);
    assert_no_secret(
        "the JSON report",
        &std::fs::read_to_string(&json).unwrap(),
        &secrets,
    );
    assert_no_secret(
        "the JUnit report",
        &std::fs::read_to_string(&junit).unwrap(),
        &secrets,
    );
    let mut snapshot_files = 0;
    for entry in walk(&snapshots) {
        snapshot_files += 1;
        assert_no_secret(
            &entry.display().to_string(),
            &std::fs::read_to_string(&entry).unwrap(),
            &secrets,
        );
    }
    assert!(snapshot_files > 10, "snapshots were recorded");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_library_report_holds_no_secret_either() {
    common::runtime().block_on(async {
        let config = ServerConfig {
            admin_secret: Some(SECRET.to_owned()),
            rate_limit: None,
            faults: FaultSet::of([Fault::TokenShownToEveryone, Fault::SecretRotatedByUpdate]),
            ..ServerConfig::default()
        };
        let server = ReferenceServer::start(config).await.unwrap();
        let options = Plan {
            cases: 8,
            record_requests: true,
            ..common::options_for(&server, SECRET, 2)
        };
        let session = Arc::new(Session::open(&options).await.unwrap());
        let report = session.run_all(|_, _, _| {}).await;
        let mut secrets = server.issued_secrets();
        secrets.push(SECRET.to_owned());
        assert_no_secret("the rendered report", &report.render(true), &secrets);
        assert_no_secret("the JSON report", &report.to_json().to_string(), &secrets);
        let sent = session.client().stats().sent.lock().unwrap().clone();
        assert_no_secret("the transcript", &format!("{sent:?}"), &secrets);
    });
}

/// What a forged bearer derived from `secret` shows of it: every run of 12 characters, as
/// is, in upper case and percent-encoded.
fn derived_forms(secret: &str) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(12)
        .flat_map(|window| {
            let run: String = window.iter().collect();
            let percent: String = run.bytes().map(|b| format!("%{b:02X}")).collect();
            [run.to_ascii_uppercase(), percent, run]
        })
        .collect()
}

#[test]
fn bearers_derived_from_secrets_are_redacted_too() {
    common::runtime().block_on(async {
        // Fault-free, every forged bearer is sent; with a fault, one is accepted and its
        // exchange printed in full.
        for faults in [
            FaultSet::none(),
            FaultSet::of([Fault::ForgedBearerSchemeStripped]),
            FaultSet::of([Fault::ForgedBearerCase]),
        ] {
            let config = ServerConfig {
                admin_secret: Some(SECRET.to_owned()),
                rate_limit: None,
                faults: faults.clone(),
                ..ServerConfig::default()
            };
            let server = ReferenceServer::start(config).await.unwrap();
            let options = Plan {
                filter: Some("bearers_derived".to_owned()),
                record_requests: true,
                ..common::options_for(&server, SECRET, 4)
            };
            let session = Arc::new(Session::open(&options).await.unwrap());
            let report = session.run_all(|_, _, _| {}).await;
            let failed = report.counts().1;
            assert_eq!(failed, usize::from(!faults.is_empty()), "{faults:?}");
            let forms: Vec<String> = server
                .issued_secrets()
                .iter()
                .chain([SECRET.to_owned()].iter())
                .flat_map(|s| derived_forms(s))
                .collect();
            assert!(forms.len() > 100);
            let rendered = report.render(true);
            assert!(
                faults.is_empty() || rendered.contains("FIXTURE_TOKEN_"),
                "{rendered}"
            );
            assert_no_secret("the rendered report", &rendered, &forms);
            assert_no_secret("the JSON report", &report.to_json().to_string(), &forms);
            let sent = session.client().stats().sent.lock().unwrap().clone();
            // Fault-free: the fixtures, every forged bearer twice, the recorded forms.
            assert!(
                sent.len() > if faults.is_empty() { 30 } else { 10 },
                "{}",
                sent.len()
            );
            assert_no_secret("the transcript", &format!("{sent:?}"), &forms);
        }
    });
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
    }
    files
}
