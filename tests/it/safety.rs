//! Safe against a real staging: the documented rate limit stays on and nothing surfaces as a
//! 429; a killed run leaves fixtures that `sweep` removes; a run touches nothing it did not
//! create (but the unchanged-values update of factory tokens); production needs a flag.

use crate::common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use token_conformance::checks::Profile;
use token_conformance::engine::Session;
use token_conformance::fixtures;
use token_conformance::outcome::Status;
use token_conformance::plan::{self, BudgetKind, Destructive, Plan, Remote, TargetKind};
use token_conformance::reference::{ReferenceServer, ServerConfig};

const SECRET: &str = "safety-management-secret-7d1e";

async fn server(rate_limited: bool) -> ReferenceServer {
    let mut config = ServerConfig {
        admin_secret: Some(SECRET.to_owned()),
        ..ServerConfig::default()
    };
    if !rate_limited {
        config.rate_limit = None;
    }
    ReferenceServer::start(config).await.unwrap()
}

fn options(server: &ReferenceServer, profile: Profile) -> Plan {
    Plan {
        budget: if profile == Profile::Staging {
            BudgetKind::Staging
        } else {
            BudgetKind::Full
        },
        ..common::options_for(server, SECRET, 99)
    }
}

/// Every token and role, by id, as the management token sees them (last-access dates left
/// out: reading changes them).
async fn everything(base: &str) -> BTreeMap<String, Value> {
    common::everything(base, SECRET).await
}

fn fixture_names(all: &BTreeMap<String, Value>) -> Vec<String> {
    all.values()
        .filter_map(|v| v.pointer("/attributes/name").and_then(Value::as_str))
        .filter(|name| fixtures::is_fixture_name(name))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_staging_profile_passes_under_the_documented_rate_limit_within_400_requests() {
    common::runtime().block_on(async {
        let server = server(true).await;
        let before = everything(&server.cma_url()).await;
        let mut options = options(&server, Profile::Staging);
        options.limits.max_requests = Some(plan::STAGING_DEFAULT_MAX_REQUESTS);
        options.cases = plan::staging_cases(plan::STAGING_DEFAULT_MAX_REQUESTS).unwrap();
        options.destructive = Destructive::Forbid;
        let session = Arc::new(Session::open(&options).await.unwrap());
        let report = session.run_all(|_, _, _| {}).await;
        for clause in &report.clauses {
            if clause.id == "update.hardcoded.still_deletable" {
                // Destructive clauses are skipped, with the reason, where they are not allowed.
                assert_eq!(clause.status, Status::Skipped);
                assert!(
                    clause.checks[0].message.contains("destructive"),
                    "{}",
                    clause.checks[0].message
                );
            } else {
                assert_eq!(
                    clause.status,
                    Status::Pass,
                    "{}: {:#?}",
                    clause.id,
                    clause.checks
                );
            }
        }
        assert_eq!(report.clauses.len(), 19, "every clause is covered");
        assert!(report.requests <= 400, "{} requests", report.requests);
        assert!(
            report.rate_limit_wait_ms > 0,
            "60 requests per 3 s cannot pass without waiting"
        );
        assert!(report.render(false).contains("waits on rate limits"));
        let after = everything(&server.cma_url()).await;
        assert_eq!(
            before, after,
            "the run left something behind or changed something"
        );
    });
}

#[test]
fn a_run_touches_nothing_it_did_not_create() {
    common::runtime().block_on(async {
        let server = server(false).await;
        // A bystander role and token the run must not touch.
        let client = reqwest::Client::new();
        let post = |path: &str, body: Value| {
            client
                .post(format!("{}{path}", server.cma_url()))
                .bearer_auth(SECRET)
                .header("X-Api-Version", "3")
                .header("Content-Type", "application/json")
                .body(body.to_string())
                .send()
        };
        let role = post("/roles", serde_json::json!({"data": {"type": "role", "attributes": {"name": "bystander"}}})).await.unwrap();
        let role: Value = serde_json::from_str(&role.text().await.unwrap()).unwrap();
        let role_id = role["data"]["id"].as_str().unwrap().to_owned();
        post("/access_tokens", serde_json::json!({"data": {"type": "access_token", "attributes": {
            "name": "bystander token", "can_access_cda": true, "can_access_cda_preview": false, "can_access_cma": true},
            "relationships": {"role": {"data": {"type": "role", "id": role_id}}}}}))
        .await
        .unwrap();
        let before = everything(&server.cma_url()).await;
        let mut options = options(&server, Profile::Documented);
        options.destructive = Destructive::Forbid;
        options.record_requests = true;
        let session = Arc::new(Session::open(&options).await.unwrap());
        let report = session.run_all(|_, _, _| {}).await;
        assert!(report.clauses.iter().all(|c| c.status != Status::Fail), "{}", report.render(false));
        let after = everything(&server.cma_url()).await;
        assert_eq!(before, after, "something that existed before the run changed");

        // Every write aimed at something that existed before is the unchanged-values update
        // of a factory token.
        let sent = session.client().stats().sent.lock().unwrap().clone();
        for request in sent.iter().filter(|r| r.method != "GET") {
            let path = request.url.trim_start_matches(&server.cma_url());
            let Some(id) = path.strip_prefix("/access_tokens/").or_else(|| path.strip_prefix("/roles/")).map(|rest| rest.split('/').next().unwrap()) else {
                continue;
            };
            let kind = if path.starts_with("/roles/") { "role" } else { "token" };
            let Some(existing) = before.get(&format!("{kind} {id}")) else { continue };
            assert_eq!(request.method, "PUT", "{} {path} touched a pre-existing {kind}", request.method);
            assert!(!existing["attributes"]["hardcoded_type"].is_null(), "PUT {path} updated a pre-existing non-factory {kind}");
            let body: Value = serde_json::from_str(request.body.as_deref().unwrap()).unwrap();
            for attr in ["name", "can_access_cda", "can_access_cda_preview", "can_access_cma"] {
                assert_eq!(body["data"]["attributes"][attr], existing["attributes"][attr], "PUT {path} changed {attr}");
            }
        }
    });
}

#[test]
fn production_needs_an_explicit_flag() {
    common::runtime().block_on(async {
        let options = Plan {
            target: TargetKind::Remote(Remote::new("https://site-api.datocms.com", SECRET)),
            ..Plan::default()
        };
        let err = Session::open(&options).await.unwrap_err();
        assert!(err.to_string().contains("--allow-production"), "{err}");
    });
}

#[test]
fn sweep_removes_what_a_killed_run_left_behind() {
    let rt = common::runtime();
    let server = rt.block_on(server(false));
    let base = server.cma_url();
    let before = rt.block_on(everything(&base));
    let mut child = Command::new(env!("CARGO_BIN_EXE_token-conformance"))
        .args([
            "run",
            "--base-url",
            &base,
            "--cda-url",
            &server.cda_url(),
            "--cases",
            "200",
            "--no-destructive",
        ])
        .env("CONFORMANCE_API_TOKEN", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the run has fixtures out there, then kill it without warning.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = rt.block_on(everything(&base));
        if fixture_names(&now).len() >= 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run created no fixtures in 30 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no cleanup can run
    child.wait().unwrap();
    let left = rt.block_on(everything(&base));
    assert!(
        !fixture_names(&left).is_empty(),
        "a killed run leaves its fixtures"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_token-conformance"))
        .args(["sweep", "--base-url", &base])
        .env("CONFORMANCE_API_TOKEN", SECRET)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let after = rt.block_on(everything(&base));
    assert!(
        fixture_names(&after).is_empty(),
        "left after sweep: {:?}",
        fixture_names(&after)
    );
    // Nothing else was removed, and what existed before is as it was (updates of fixtures
    // do not count: they are gone).
    for (key, value) in &before {
        assert_eq!(after.get(key), Some(value), "{key} changed or disappeared");
    }
    assert_eq!(before.len(), after.len());
}
