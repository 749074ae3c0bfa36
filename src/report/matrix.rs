//! The compatibility matrix as plain data: one column per target, one cell per clause. The
//! run in [`crate::matrix`] fills it; [`super::matrix_md`] and [`super::matrix_html`] render it.

use crate::outcome::Status;
use crate::report::{ClauseReport, RunReport};
use crate::spec::{Clause, Spec};

/// One target's column: its report, or why it could not be tested at all.
#[derive(Debug, Clone)]
pub struct TargetResult {
    /// Its name.
    pub name: String,
    /// What it is (see [`MatrixTarget::description`]).
    pub description: String,
    /// The run, or the error that stopped it before any check (every clause is then shown as
    /// inconclusive with this reason).
    pub outcome: Result<RunReport, String>,
}

/// The suite's results against every target of a file.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Seed of every run.
    pub seed: u64,
    /// Generated cases per property.
    pub cases: u32,
    /// One per target, in the file's order.
    pub targets: Vec<TargetResult>,
}

/// One cell: a clause on a target.
#[derive(Debug, Clone, Copy)]
pub struct Cell<'a> {
    /// Its status; `None` when the run selected no check of the clause.
    pub status: Option<Status>,
    /// The clause's report, when the target ran.
    pub clause: Option<&'a ClauseReport>,
    /// Why the target could not be tested at all.
    pub error: Option<&'a str>,
}

impl TargetResult {
    /// The cell of `clause` in this column.
    pub fn cell(&self, clause: &str) -> Cell<'_> {
        match &self.outcome {
            Ok(report) => {
                let found = report.clauses.iter().find(|c| c.id == clause);
                Cell {
                    status: found.map(|c| c.status),
                    clause: found,
                    error: None,
                }
            }
            Err(reason) => Cell {
                status: Some(Status::Inconclusive),
                clause: None,
                error: Some(reason),
            },
        }
    }

    /// Clause counts (pass, fail, inconclusive, skipped) over `clauses`.
    fn counts(&self, clauses: &[Clause]) -> [(Status, usize); 4] {
        let mut counts = [
            (Status::Pass, 0),
            (Status::Fail, 0),
            (Status::Inconclusive, 0),
            (Status::Skipped, 0),
        ];
        for clause in clauses {
            if let Some(status) = self.cell(&clause.id).status {
                for (s, n) in &mut counts {
                    if *s == status {
                        *n += 1;
                    }
                }
            }
        }
        counts
    }

    pub(crate) fn summary(&self, clauses: &[Clause]) -> String {
        let parts: Vec<String> = self
            .counts(clauses)
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        if parts.is_empty() {
            "—".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

impl Matrix {
    /// The worst cell of the whole matrix.
    pub fn overall(&self) -> Status {
        let clauses = Spec::embedded().catalog().clauses();
        Status::combine(
            self.targets
                .iter()
                .flat_map(|t| clauses.iter().filter_map(|c| t.cell(&c.id).status)),
        )
    }
}
