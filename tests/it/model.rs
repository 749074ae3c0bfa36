//! The model as the oracle: `update.isolation` passes on the conformant server, and a
//! divergence of a generated sequence is reported as the shrunk sequence of calls, each with
//! its request, answer and the model's prediction, in the terminal and in the JSON report.

use crate::common;

use token_conformance::faults::Fault;
use token_conformance::mutants::server_config;
use token_conformance::outcome::Status;
use token_conformance::plan::{Plan, TargetKind};
use token_conformance::report::RunReport;

async fn run(fault: Option<Fault>, filter: &str, seed: u64) -> RunReport {
    let options = Plan {
        seed,
        cases: 16,
        filter: Some(filter.to_owned()),
        target: TargetKind::Embedded(Box::new(server_config(fault))),
        ..Plan::default()
    };
    common::run_suite(&options).await
}

fn check<'a>(report: &'a RunReport, name: &str) -> &'a token_conformance::report::CheckReport {
    report
        .clauses
        .iter()
        .flat_map(|c| c.checks.iter())
        .find(|k| k.name == name)
        .unwrap()
}

#[test]
fn the_conformant_server_agrees_with_the_model() {
    common::runtime().block_on(async {
        let report = run(None, "update.isolation", 5).await;
        let clause = &report.clauses[0];
        assert_eq!(clause.id, "update.isolation");
        assert_eq!(clause.status, Status::Pass, "{:#?}", clause.checks);
        assert_eq!(clause.checks.len(), 2);
        // The preview flag alone is not documented: such probes are recorded, never asserted.
        let sequences = check(&report, "generated_sequences_agree_with_the_model");
        assert!(
            sequences
                .warnings
                .iter()
                .any(|w| w.contains("recorded, not asserted")),
            "{:?}",
            sequences.warnings
        );
    });
}

#[test]
fn a_divergence_is_shown_as_the_shrunk_sequence_with_each_prediction() {
    common::runtime().block_on(async {
        let report = run(
            Some(Fault::RoleChangeHalfApplied),
            "generated_sequences_agree_with_the_model",
            11,
        )
        .await;
        let failed = check(&report, "generated_sequences_agree_with_the_model");
        assert_eq!(failed.status, Status::Fail, "{}", failed.message);
        let message = &failed.message;
        assert!(message.contains("diverged from the model"), "{message}");
        // Shrunk: a role move and the gated probe that still sees the old role, at most a
        // step or two more.
        let steps: Vec<&str> = message
            .lines()
            .filter(|l| {
                l.trim_start()
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit())
            })
            .collect();
        assert!((2..=4).contains(&steps.len()), "{message}");
        assert!(
            steps.iter().any(|s| s.contains("relationships.role")),
            "{message}"
        );
        let last = steps.last().unwrap();
        assert!(last.contains("gated by can_manage_users"), "{message}");
        assert!(
            last.contains("PUT /roles/") && last.contains("→ 200"),
            "{message}"
        );
        assert!(last.contains("model: refused"), "{message}");
        // The exchanges are attached (the terminal shows them), and the JSON carries the same.
        assert!(message.contains("→ PUT http://127.0.0.1"), "{message}");
        let json = report.to_json().to_string();
        assert!(json.contains("diverged from the model"));
        assert!(json.contains("model: refused"));
        let terminal = report.render(false);
        assert!(terminal.contains("diverged from the model"), "{terminal}");
        // The probe went out with the fixture's secret, which reports show only as its label.
        assert!(message.contains("Bearer $FIXTURE_TOKEN_"), "{message}");
    });
}

#[test]
fn a_write_reaching_a_second_token_fails_both_isolation_checks() {
    common::runtime().block_on(async {
        let report = run(
            Some(Fault::WriteSpillsToRoleSiblings),
            "update.isolation",
            3,
        )
        .await;
        for name in [
            "an_update_changes_only_the_addressed_token",
            "generated_sequences_agree_with_the_model",
        ] {
            let k = check(&report, name);
            assert_eq!(k.status, Status::Fail, "{name}: {}", k.message);
            assert!(
                k.message.contains("bystander") || k.message.contains("token b"),
                "{}",
                k.message
            );
        }
    });
}
