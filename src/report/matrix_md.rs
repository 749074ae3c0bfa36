//! The compatibility matrix as Markdown.

use std::fmt::Write as _;

use super::matrix::Matrix;
use crate::outcome::Status;
use crate::spec::Spec;

pub(crate) fn tool_line(matrix: &Matrix) -> String {
    format!(
        "`PUT /access_tokens/:id` · token-conformance {} · seed {} · {} generated cases per property",
        env!("CARGO_PKG_VERSION"),
        matrix.seed,
        matrix.cases
    )
}

/// Markdown cells must not break the table, nor hold a character that drives a terminal.
fn md_cell(text: &str) -> String {
    crate::output::terminal_line(
        &text
            .replace('\\', "\\\\")
            .replace('|', "\\|")
            .replace(['\n', '\r'], " "),
    )
}

/// The matrix as Markdown: a row per clause with its evidence level, a column per target, a
/// summary row, then the checks behind each fail and inconclusive cell. It holds no timings,
/// ports or run ids, so the same seed gives the same text.
pub fn markdown(matrix: &Matrix) -> String {
    let clauses = Spec::embedded().catalog().clauses();
    let mut out = String::from("# Compatibility matrix\n\n");
    let _ = writeln!(out, "{}\n", tool_line(matrix));
    out.push_str("| target | what it is |\n|---|---|\n");
    for target in &matrix.targets {
        let _ = writeln!(
            out,
            "| `{}` | {} |",
            target.name,
            md_cell(&target.description)
        );
    }
    out.push_str("\n| clause | evidence |");
    for target in &matrix.targets {
        let _ = write!(out, " `{}` |", target.name);
    }
    out.push_str("\n|---|---|");
    for _ in &matrix.targets {
        out.push_str("---|");
    }
    out.push('\n');
    for clause in clauses {
        let _ = write!(out, "| `{}` | {} |", clause.id, clause.evidence);
        for target in &matrix.targets {
            let word = match target.cell(&clause.id).status {
                None => "—".to_owned(),
                Some(Status::Fail) => "**fail**".to_owned(),
                Some(status) => status.as_str().to_owned(),
            };
            let _ = write!(out, " {word} |");
        }
        out.push('\n');
    }
    out.push_str("| **summary** | |");
    for target in &matrix.targets {
        let _ = write!(out, " {} |", target.summary(clauses));
    }
    out.push('\n');
    let mut notes = String::new();
    for target in &matrix.targets {
        match &target.outcome {
            Err(reason) => {
                let _ = writeln!(
                    notes,
                    "- `{}`: could not be tested: {}",
                    target.name,
                    md_cell(reason)
                );
            }
            Ok(report) => {
                for clause in &report.clauses {
                    for check in &clause.checks {
                        match check.status {
                            Status::Fail => {
                                let _ = writeln!(
                                    notes,
                                    "- `{}` · **fail** · `{}`",
                                    target.name,
                                    check.full_name()
                                );
                            }
                            Status::Inconclusive => {
                                let _ = writeln!(
                                    notes,
                                    "- `{}` · inconclusive · `{}`: {}",
                                    target.name,
                                    check.full_name(),
                                    md_cell(check.message.lines().next().unwrap_or(""))
                                );
                            }
                            Status::Pass | Status::Skipped => {}
                        }
                    }
                }
            }
        }
    }
    if !notes.is_empty() {
        out.push_str("\n## Not passing\n\n");
        let _ = writeln!(
            out,
            "The HTML report has each failure in full. A failure replays with `token-conformance run --seed {} --filter <clause>::<check>` against its target (an embedded target with a fault: against `token-conformance serve --fault <name>`).\n",
            matrix.seed
        );
        out.push_str(&notes);
    }
    out
}
