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

/// The anchor of a cell's details: `t-<target>-<clause>` (target names are letters, digits,
/// `-`, `_` and `.`; so are clause ids). Shared with the HTML page.
pub(crate) fn anchor(target: &str, clause: &str) -> String {
    format!("t-{target}-{clause}")
}

/// The anchor of a target that could not be tested.
pub(crate) fn error_anchor(target: &str) -> String {
    format!("e-{target}")
}

/// The matrix as Markdown: a row per clause with its evidence level, a column per target, a
/// summary row, then a details section with the checks behind each fail and inconclusive
/// cell, which links to them. A target that could not be tested is a column of "not tested"
/// linking to why. It holds no timings, ports or run ids (the run date is the one line that
/// differs between two runs of one seed), and ends with a newline.
pub fn markdown(matrix: &Matrix) -> String {
    let clauses = Spec::embedded().catalog().clauses();
    let mut out = String::from("# Compatibility matrix\n\n");
    let _ = writeln!(out, "{} · run {}\n", tool_line(matrix), matrix.started);
    out.push_str("| target | what it is | profile |\n|---|---|---|\n");
    for target in &matrix.targets {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            target.name,
            md_cell(&target.description),
            target.profile_cell(matrix.cases)
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
            let word = if target.not_tested().is_some() {
                format!("[not tested](#{})", error_anchor(&target.name))
            } else {
                match target.cell(&clause.id).status {
                    None => "—".to_owned(),
                    Some(Status::Fail) => {
                        format!("[**fail**](#{})", anchor(&target.name, &clause.id))
                    }
                    Some(Status::Inconclusive) => {
                        format!("[inconclusive](#{})", anchor(&target.name, &clause.id))
                    }
                    Some(status) => status.as_str().to_owned(),
                }
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
                    "\n<a id=\"{}\"></a>\n\n### `{}`: not tested\n\n`{}` could not be tested: {}",
                    error_anchor(&target.name),
                    target.name,
                    target.name,
                    md_cell(&target.scrub(reason))
                );
            }
            Ok(report) => {
                for clause in report
                    .clauses
                    .iter()
                    .filter(|c| matches!(c.status, Status::Fail | Status::Inconclusive))
                {
                    let _ = writeln!(
                        notes,
                        "\n<a id=\"{}\"></a>\n\n### `{}` · `{}`: {}\n",
                        anchor(&target.name, &clause.id),
                        target.name,
                        clause.id,
                        clause.status
                    );
                    for check in &clause.checks {
                        match check.status {
                            Status::Fail => {
                                let _ = writeln!(notes, "- **fail** · `{}`", check.full_name());
                            }
                            Status::Inconclusive => {
                                let _ = writeln!(
                                    notes,
                                    "- inconclusive · `{}`: {}",
                                    check.full_name(),
                                    md_cell(
                                        &target.scrub(check.message.lines().next().unwrap_or(""))
                                    )
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
        out.push_str("\n## Details\n\n");
        let _ = writeln!(
            out,
            "The HTML report has each failure in full. A failure replays with `token-conformance replay --seed {} --filter <clause>::<check>` and its target's options (an embedded target with a fault: `--fault <name>`).",
            matrix.seed
        );
        out.push_str(&notes);
    }
    // Every cell was escaped where it was written; the page as a whole passes the output
    // layer too, so that no text can reach it raw (line breaks are the page's own).
    crate::output::terminal(&out)
}
