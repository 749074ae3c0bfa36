//! The README's figures about the catalogue are the catalogue's: the counts `clauses` prints,
//! the number of faults, one row per fault in the staging mutation table, and the staging
//! plan's covering and per-case totals. A fault, a check or a share added without the README
//! following fails here, naming what to change.

use token_conformance::checks::staging::{covering_total, per_case_total};
use token_conformance::coverage;
use token_conformance::faults::Fault;

const README: &str = include_str!("../../README.md");

/// The README with every run of whitespace made one space (its sentences wrap anywhere).
fn flat() -> String {
    README.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_catalogue_counts_are_the_ones_clauses_prints() {
    let cov = coverage::of_this_build();
    let line = format!(
        "`{} clauses, {} checks, {} faults, 0 uncovered`",
        cov.clauses.len(),
        cov.checks,
        cov.faults
    );
    assert!(flat().contains(&line), "README.md should quote {line}");
    let carries = format!(
        "The reference server carries **{} faults**",
        Fault::ALL.len()
    );
    assert!(flat().contains(&carries), "README.md should say {carries}");
}

#[test]
fn the_staging_mutation_table_has_one_row_per_fault() {
    let missing: Vec<&str> = Fault::ALL
        .iter()
        .map(|f| f.name())
        .filter(|name| {
            README
                .lines()
                .filter(|l| l.starts_with(&format!("| `{name}` |")))
                .count()
                != 1
        })
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's staging mutation table should have exactly one row for each of {missing:?} \
         (token-conformance mutants --profile staging --seed 1 --markdown table.md)"
    );
}

#[test]
fn the_staging_plan_totals_are_the_plans() {
    let today = format!(
        "Today: {} covering requests + {} per case",
        covering_total(),
        per_case_total()
    );
    assert!(flat().contains(&today), "README.md should say {today}");
}
