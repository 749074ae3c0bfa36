//! Coverage of the catalog: every clause has a check, every check has a fault that proves it,
//! and a strict-only check has a strict fault. [`of_this_build`] computes it for the real
//! catalog, check table and fault table; [`coverage`] for any such data (the unit tests feed it
//! synthetic catalogs). `token-conformance clauses` prints it ([`render_text`], [`to_json`]:
//! clause → checks → faults in one place), `mutants` counts a check as proven only by a fault
//! listed here, and a unit test fails the build's tests when the real catalog is not covered.
//!
//! Which faults prove a check is read from the declarations, at the level of clauses: a fault
//! declares the clauses it breaks, a check the clause it verifies. A strict-only check is
//! proved by the strict faults of its clause; any other check by the clause's other faults,
//! and by its strict faults too when the clause has no strict-only check (such a check sees
//! them through `Cx::observed` under `--profile strict`). `mutants` then shows that each check
//! really fails under one of them.

use serde::Serialize;

use crate::checks;
use crate::faults::Fault;
use crate::spec::{Evidence, Spec};

mod render;

pub use render::{render_text, to_json};

/// A clause as the catalog lists it.
#[derive(Debug, Clone)]
pub struct ClauseIn<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its title.
    pub title: &'a str,
    /// The sentence it comes from.
    pub quote: &'a str,
    /// How strongly it is known.
    pub evidence: Evidence,
    /// Whether verifying it is destructive.
    pub destructive: bool,
    /// The checks the catalog lists under it.
    pub checks: Vec<&'a str>,
}

/// A check as the check table declares it.
#[derive(Debug, Clone, Copy)]
pub struct CheckIn<'a> {
    /// The clause it verifies.
    pub clause: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Whether it runs only under `--profile strict`.
    pub strict_only: bool,
}

/// A fault as the fault table declares it.
#[derive(Debug, Clone)]
pub struct FaultIn<'a> {
    /// Its name.
    pub name: &'a str,
    /// The clauses it breaks.
    pub clauses: Vec<&'a str>,
    /// Whether only `--profile strict` can see it.
    pub strict_only: bool,
}

/// The coverage of a catalog: its clauses with their checks and faults, and what is missing.
#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// Where the clauses come from.
    pub source: String,
    /// Every clause of the catalog, in its order.
    pub clauses: Vec<ClauseRow>,
    /// Every check of the table.
    pub checks: usize,
    /// Every fault of the table.
    pub faults: usize,
    /// What is not covered; empty when the catalog is.
    pub problems: Vec<Problem>,
}

/// One clause, its checks and their faults.
#[derive(Debug, Clone, Serialize)]
pub struct ClauseRow {
    /// The clause id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// How strongly it is known.
    pub evidence: Evidence,
    /// Whether verifying it is destructive.
    pub destructive: bool,
    /// The sentence it comes from.
    pub quote: String,
    /// Its checks: those the catalog lists, then any the table has and the catalog does not.
    pub checks: Vec<CheckRow>,
}

/// One check of a clause and the faults that prove it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRow {
    /// The check's name.
    pub name: String,
    /// Whether the check table has it (a name only the catalog lists is not a check).
    pub exists: bool,
    /// Whether it runs only under `--profile strict`.
    pub strict_only: bool,
    /// The faults that prove it, by name.
    pub faults: Vec<String>,
}

/// Something the catalog, the check table or the fault table leaves uncovered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// A clause no check of the table verifies.
    #[error("clause {clause} has no check")]
    ClauseWithoutCheck {
        /// The clause.
        clause: String,
    },
    /// The catalog lists a check the table does not have.
    #[error("clause {clause} lists check {check}, which does not exist")]
    NoSuchCheck {
        /// The clause.
        clause: String,
        /// The listed name.
        check: String,
    },
    /// The table has a check the catalog does not list under its clause.
    #[error("check {clause}::{check} is not listed in specs/clauses.json")]
    CheckNotListed {
        /// The clause.
        clause: String,
        /// The check.
        check: String,
    },
    /// A check no fault proves.
    #[error("check {clause}::{check} has no fault that proves it")]
    CheckWithoutFault {
        /// The clause.
        clause: String,
        /// The check.
        check: String,
    },
    /// A strict-only check with no strict fault of its clause.
    #[error("strict-only check {clause}::{check} has no strict fault")]
    StrictCheckWithoutStrictFault {
        /// The clause.
        clause: String,
        /// The check.
        check: String,
    },
    /// A check or fault names a clause the catalog does not have.
    #[error("{owner} names clause {clause}, which is not in the catalog")]
    UnknownClause {
        /// `check <name>` or `fault <name>`.
        owner: String,
        /// The id it names.
        clause: String,
    },
}

impl Coverage {
    /// Whether nothing is missing.
    pub fn is_complete(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The coverage of this build: the embedded catalog, [`checks::all`] and [`Fault::ALL`].
pub fn of_this_build() -> Coverage {
    let catalog = Spec::embedded().catalog();
    let clauses: Vec<ClauseIn<'_>> = catalog
        .clauses()
        .iter()
        .map(|c| ClauseIn {
            id: &c.id,
            title: &c.title,
            quote: &c.quote,
            evidence: c.evidence,
            destructive: c.destructive,
            checks: c.checks.iter().map(String::as_str).collect(),
        })
        .collect();
    let defs = checks::all();
    let checks: Vec<CheckIn<'_>> = defs
        .iter()
        .map(|d| CheckIn {
            clause: d.clause.id(),
            name: d.name,
            strict_only: d.strict_only,
        })
        .collect();
    let faults: Vec<FaultIn<'_>> = Fault::ALL
        .iter()
        .map(|f| FaultIn {
            name: f.name(),
            clauses: f.clauses().iter().map(|c| c.id()).collect(),
            strict_only: f.strict_only(),
        })
        .collect();
    coverage(catalog.source(), &clauses, &checks, &faults)
}

/// The coverage of `clauses` by `checks` and `faults`.
pub fn coverage(
    source: &str,
    clauses: &[ClauseIn<'_>],
    checks: &[CheckIn<'_>],
    faults: &[FaultIn<'_>],
) -> Coverage {
    let mut problems = Vec::new();
    let known = |id: &str| clauses.iter().any(|c| c.id == id);
    for check in checks.iter().filter(|c| !known(c.clause)) {
        problems.push(Problem::UnknownClause {
            owner: format!("check {}", check.name),
            clause: check.clause.to_owned(),
        });
    }
    for fault in faults {
        for clause in fault.clauses.iter().filter(|c| !known(c)) {
            problems.push(Problem::UnknownClause {
                owner: format!("fault {}", fault.name),
                clause: (*clause).to_owned(),
            });
        }
    }
    let mut rows = Vec::with_capacity(clauses.len());
    for clause in clauses {
        let own: Vec<&CheckIn<'_>> = checks.iter().filter(|c| c.clause == clause.id).collect();
        let breaking: Vec<&FaultIn<'_>> = faults
            .iter()
            .filter(|f| f.clauses.contains(&clause.id))
            .collect();
        let has_strict_check = own.iter().any(|c| c.strict_only);
        if own.is_empty() {
            problems.push(Problem::ClauseWithoutCheck {
                clause: clause.id.to_owned(),
            });
        }
        let mut names: Vec<&str> = clause.checks.clone();
        names.extend(
            own.iter()
                .map(|c| c.name)
                .filter(|n| !clause.checks.contains(n)),
        );
        let mut row_checks = Vec::with_capacity(names.len());
        for name in names {
            let Some(def) = own.iter().find(|c| c.name == name) else {
                problems.push(Problem::NoSuchCheck {
                    clause: clause.id.to_owned(),
                    check: name.to_owned(),
                });
                row_checks.push(CheckRow {
                    name: name.to_owned(),
                    exists: false,
                    strict_only: false,
                    faults: Vec::new(),
                });
                continue;
            };
            if !clause.checks.contains(&name) {
                problems.push(Problem::CheckNotListed {
                    clause: clause.id.to_owned(),
                    check: name.to_owned(),
                });
            }
            let proving: Vec<String> = breaking
                .iter()
                .filter(|f| {
                    if def.strict_only {
                        f.strict_only
                    } else {
                        !f.strict_only || !has_strict_check
                    }
                })
                .map(|f| f.name.to_owned())
                .collect();
            if proving.is_empty() {
                let (clause, check) = (clause.id.to_owned(), name.to_owned());
                problems.push(if def.strict_only {
                    Problem::StrictCheckWithoutStrictFault { clause, check }
                } else {
                    Problem::CheckWithoutFault { clause, check }
                });
            }
            row_checks.push(CheckRow {
                name: name.to_owned(),
                exists: true,
                strict_only: def.strict_only,
                faults: proving,
            });
        }
        rows.push(ClauseRow {
            id: clause.id.to_owned(),
            title: clause.title.to_owned(),
            evidence: clause.evidence,
            destructive: clause.destructive,
            quote: clause.quote.to_owned(),
            checks: row_checks,
        });
    }
    Coverage {
        source: source.to_owned(),
        clauses: rows,
        checks: checks.len(),
        faults: faults.len(),
        problems,
    }
}

#[cfg(test)]
mod tests;
