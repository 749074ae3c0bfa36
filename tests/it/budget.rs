//! The staging plan matches what a staging run sends: against the reference server at the
//! documented rate limit (60 requests per 3 s), each clause's measured requests stay within
//! its planned share (`STAGING_PLAN`, with `STRICT_PLAN` under `--strict`), the run within
//! 400, with and without the destructive clause, strict, and on the embedded server (whose
//! destructive check gets a server of its own).

use crate::common;

use std::sync::Arc;

use token_conformance::checks::staging::{STAGING_PLAN, strict_extra};
use token_conformance::engine::Session;
use token_conformance::outcome::Status;
use token_conformance::plan::{self, BudgetKind, Destructive, Plan, Strictness, TargetKind};
use token_conformance::reference::{RateLimit, ReferenceServer, ServerConfig};
use token_conformance::report::RunReport;

const SECRET: &str = "budget-management-secret-3b9f";

/// The staging budget at its default cap.
fn staging(plan: Plan, destructive: Destructive) -> Plan {
    Plan {
        budget: BudgetKind::Staging,
        cases: plan::staging_cases(plan::STAGING_DEFAULT_MAX_REQUESTS).unwrap(),
        limits: plan::Limits {
            max_requests: Some(plan::STAGING_DEFAULT_MAX_REQUESTS),
            ..plan::Limits::default()
        },
        destructive,
        ..plan
    }
}

async fn run(plan: &Plan) -> (RunReport, u64) {
    let session = Arc::new(Session::open(plan).await.unwrap());
    let report = session.run_all(|_, _, _| {}).await;
    let retries = session
        .client()
        .stats()
        .retries
        .load(std::sync::atomic::Ordering::Relaxed);
    if let Ok(session) = Arc::try_unwrap(session) {
        session.close().await;
    }
    (report, retries)
}

/// Every clause passes (but those in `skipped`, skipped), within its planned share; the run
/// within 400 requests.
fn assert_within_plan(report: &RunReport, retries: u64, skipped: &[&str]) {
    let cases = report.cases;
    let strict = report.profile == token_conformance::checks::Profile::Strict;
    let planned_for = |id: &str| {
        STAGING_PLAN
            .iter()
            .find(|p| p.clause.id() == id)
            .map(|p| p.requests(cases) + if strict { strict_extra(p.clause) } else { 0 })
            .unwrap()
    };
    // What the run sent per clause, for recalibrating the plan (`--nocapture`).
    let lines: Vec<String> = report
        .clauses
        .iter()
        .map(|c| format!("{:<34} {:>4} / {}", c.id, c.requests, planned_for(&c.id)))
        .collect();
    eprintln!(
        "{}\n{} requests in all, {retries} retries",
        lines.join("\n"),
        report.requests
    );
    for clause in &report.clauses {
        let planned = planned_for(&clause.id);
        let expected = if skipped.contains(&clause.id.as_str()) {
            Status::Skipped
        } else {
            Status::Pass
        };
        assert_eq!(
            clause.status, expected,
            "{}: {:#?}",
            clause.id, clause.checks
        );
        // A 429 is a request sent again, in whichever clause met it: each clause's own
        // resends are allowed on top of its share (some 3 to 5 in a run against the
        // documented limit), and the run says nothing of a clause within that.
        let resends: u64 = clause.checks.iter().map(|c| c.resends).sum();
        assert!(
            clause.requests <= planned + resends,
            "{} sent {} requests, {resends} of them resends, {planned} planned (the run met \
             {retries} 429s)",
            clause.id,
            clause.requests
        );
        let over: Vec<&String> = clause
            .checks
            .iter()
            .flat_map(|c| &c.warnings)
            .filter(|w| w.contains("planned share"))
            .collect();
        assert!(over.is_empty(), "{}: {over:?}", clause.id);
    }
    assert_eq!(
        report.clauses.len(),
        STAGING_PLAN.len(),
        "every clause is covered"
    );
    assert!(report.requests <= 400, "{} requests", report.requests);
}

async fn rate_limited_server() -> ReferenceServer {
    ReferenceServer::start(ServerConfig {
        admin_secret: Some(SECRET.to_owned()),
        rate_limit: Some(RateLimit::DOCUMENTED_DEFAULT),
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

#[test]
fn a_staging_run_keeps_every_clause_within_its_planned_share() {
    common::runtime().block_on(async {
        let server = rate_limited_server().await;
        let options = staging(common::options_for(&server, SECRET, 5), Destructive::Forbid);
        let (report, retries) = run(&options).await;
        assert_within_plan(&report, retries, &["update.hardcoded.still_deletable"]);
    });
}

#[test]
fn with_destructive_allowed_every_clause_passes_within_its_planned_share() {
    common::runtime().block_on(async {
        let server = rate_limited_server().await;
        let options = staging(common::options_for(&server, SECRET, 6), Destructive::Allow);
        let (report, retries) = run(&options).await;
        assert_within_plan(&report, retries, &[]);
    });
}

#[test]
fn with_strict_the_strict_only_checks_stay_within_their_share_too() {
    common::runtime().block_on(async {
        let server = rate_limited_server().await;
        let options = Plan {
            strictness: Strictness::Strict,
            ..staging(common::options_for(&server, SECRET, 8), Destructive::Forbid)
        };
        let (report, retries) = run(&options).await;
        assert_within_plan(&report, retries, &["update.hardcoded.still_deletable"]);
        let validation = report
            .clauses
            .iter()
            .find(|c| c.id == "update.request.validation")
            .unwrap();
        assert!(
            validation
                .checks
                .iter()
                .any(|c| c.name == "unknown_members_are_refused" && c.status == Status::Pass),
            "{:#?}",
            validation.checks
        );
    });
}

#[test]
fn on_the_embedded_server_the_private_destructive_server_counts_in_the_budget() {
    common::runtime().block_on(async {
        let options = staging(
            Plan {
                target: TargetKind::Embedded(Box::new(ServerConfig {
                    rate_limit: Some(RateLimit::DOCUMENTED_DEFAULT),
                    ..ServerConfig::default()
                })),
                seed: 7,
                ..Plan::default()
            },
            Destructive::EmbeddedOnly,
        );
        let (report, retries) = run(&options).await;
        assert_within_plan(&report, retries, &[]);
        // The destructive check's requests went to a server of its own, and count in the run.
        let sum: u64 = report.clauses.iter().map(|c| c.requests).sum();
        assert!(
            report.requests >= sum,
            "{} requests in all, {sum} by the clauses",
            report.requests
        );
    });
}
