//! The compatibility matrix as one self-contained XHTML page.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::junit::{escape_attr, escape_text};
use super::matrix::Matrix;
use super::matrix_md::{anchor, error_anchor, tool_line};
use crate::outcome::Status;
use crate::spec::{Clause, Spec};

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 1em 1.5em; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.5em; }
table { border-collapse: collapse; margin: 1em 0; }
table.matrix { width: 100%; }
table.matrix td.status { min-width: 6em; }
p.meta { color: #444; }
th, td { border: 1px solid #c8c8c8; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
thead th { background: #f0f0f0; }
td.status { text-align: center; font-weight: 600; }
td.pass { background: #d9f2d9; color: #14521b; }
td.fail { background: #f8d0d0; color: #8a1010; }
td.inconclusive { background: #fbe7b5; color: #6b4a00; }
td.skipped { background: #e6e6e6; color: #555; }
td.none { background: #fff; color: #999; }
td.untested { background: #ececf4; color: #33335c; text-align: center; vertical-align: middle; font-weight: 600; }
td.untested .why { display: block; font-weight: normal; font-size: 0.85em; margin-top: 0.5em; }
section.detail.untested { border-color: #6b6b9a; }
td a { color: inherit; }
.title { font-weight: normal; color: #555; font-size: 0.9em; }
tfoot td, tfoot th { font-weight: 600; background: #f7f7f7; }
section.detail { border-left: 4px solid #c8c8c8; padding: 0.2em 1em; margin: 1.5em 0; }
section.detail.fail { border-color: #c62828; }
section.detail.inconclusive { border-color: #e0a800; }
blockquote { margin: 0.5em 0; padding-left: 1em; border-left: 2px solid #ddd; color: #444; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
";

/// `text` cut to `max` characters, with `…` when cut.
fn cut(text: &str, max: usize) -> String {
    let mut out: String = text.chars().take(max).collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out
}

/// The matrix as one self-contained XHTML page: inline CSS, no script, no external resource.
/// Cells are coloured by status; each fail and inconclusive cell links to a details section
/// further down with the clause's quote and each check's full text. A target that could not
/// be tested is one "not tested" cell spanning its column, linking to why. The page says when
/// the run started and which version ran; the embedded servers' ports are not shown. It
/// needs no script and fills the window's width.
pub fn html(matrix: &Matrix) -> String {
    let clauses = Spec::embedded().catalog().clauses();
    let mut out = String::from(
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>token-conformance compatibility matrix</title>\n<style>",
    );
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n<h1>Compatibility matrix</h1>\n");
    let _ = writeln!(
        out,
        "<p class=\"meta\">{} · run <time>{}</time></p>",
        escape_text(&tool_line(matrix).replace('`', "")),
        escape_text(&matrix.started)
    );
    out.push_str("<table class=\"targets\">\n<thead><tr><th>target</th><th>what it is</th><th>profile</th><th>clauses</th></tr></thead>\n<tbody>\n");
    for target in &matrix.targets {
        let summary = match &target.outcome {
            Ok(_) => escape_text(&target.summary(clauses)),
            Err(_) => format!(
                "<a href=\"#{}\">not tested</a>",
                escape_attr(&error_anchor(&target.name))
            ),
        };
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\"><code>{}</code></th><td>{}</td><td>{}</td><td>{summary}</td></tr>",
            escape_text(&target.name),
            escape_text(&target.description.replace('`', "")),
            target.profile_cell(matrix.cases),
        );
    }
    out.push_str("</tbody>\n</table>\n");

    out.push_str("<table class=\"matrix\">\n<thead><tr><th scope=\"col\">clause</th><th scope=\"col\">evidence</th>");
    for target in &matrix.targets {
        let _ = write!(
            out,
            "<th scope=\"col\" data-target=\"{}\"><code>{}</code></th>",
            escape_attr(&target.name),
            escape_text(&target.name)
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (row, clause) in clauses.iter().enumerate() {
        let _ = write!(
            out,
            "<tr id=\"c-{}\"><th scope=\"row\"><code>{}</code><br/><span class=\"title\">{}</span></th><td>{}</td>",
            escape_attr(&clause.id),
            escape_text(&clause.id),
            escape_text(&clause.title),
            clause.evidence
        );
        for target in &matrix.targets {
            if let Some(reason) = target.not_tested() {
                // One cell for the whole column, in the first row.
                if row == 0 {
                    let _ = write!(
                        out,
                        "<td class=\"status untested\" rowspan=\"{}\" data-target=\"{}\" data-clause=\"{}\"><a href=\"#{}\">not tested</a><span class=\"why\">{}</span></td>",
                        clauses.len(),
                        escape_attr(&target.name),
                        escape_attr(&clause.id),
                        escape_attr(&error_anchor(&target.name)),
                        escape_text(&cut(&target.scrub(reason), 160))
                    );
                }
                continue;
            }
            let cell = target.cell(&clause.id);
            let data = format!(
                " data-target=\"{}\" data-clause=\"{}\"",
                escape_attr(&target.name),
                escape_attr(&clause.id)
            );
            match cell.status {
                None => {
                    let _ = write!(
                        out,
                        "<td class=\"status none\"{data} title=\"no check of this clause was selected\">—</td>"
                    );
                }
                Some(status @ (Status::Fail | Status::Inconclusive)) => {
                    let href = if cell.error.is_some() {
                        error_anchor(&target.name)
                    } else {
                        anchor(&target.name, &clause.id)
                    };
                    let _ = write!(
                        out,
                        "<td class=\"status {status}\"{data}><a href=\"#{}\">{status}</a></td>",
                        escape_attr(&href)
                    );
                }
                Some(status) => {
                    let reasons: Vec<String> = cell
                        .clause
                        .map(|c| {
                            c.checks
                                .iter()
                                .filter(|k| k.status == Status::Skipped)
                                .map(|k| {
                                    format!(
                                        "{}: {}",
                                        k.name,
                                        k.message.lines().next().unwrap_or("")
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let title = if reasons.is_empty() {
                        String::new()
                    } else {
                        format!(" title=\"{}\"", escape_attr(&reasons.join("\n")))
                    };
                    let _ = write!(
                        out,
                        "<td class=\"status {status}\"{data}{title}>{status}</td>"
                    );
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n<tfoot><tr><th scope=\"row\">summary</th><td></td>");
    for target in &matrix.targets {
        let _ = write!(
            out,
            "<td data-target=\"{}\">{}</td>",
            escape_attr(&target.name),
            escape_text(&target.summary(clauses))
        );
    }
    out.push_str("</tr></tfoot>\n</table>\n");

    let quotes: BTreeMap<&str, &Clause> = clauses.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut details = String::new();
    for target in &matrix.targets {
        match &target.outcome {
            Err(reason) => {
                let _ = writeln!(
                    details,
                    "<section id=\"{}\" class=\"detail untested\">\n<h3><code>{}</code>: not tested</h3>\n<p>No check ran on this target.</p>\n<pre>{}</pre>\n</section>",
                    escape_attr(&error_anchor(&target.name)),
                    escape_text(&target.name),
                    escape_text(&target.scrub(reason))
                );
            }
            Ok(report) => {
                for clause in report
                    .clauses
                    .iter()
                    .filter(|c| matches!(c.status, Status::Fail | Status::Inconclusive))
                {
                    let id = anchor(&target.name, &clause.id);
                    let _ = writeln!(
                        details,
                        "<section id=\"{}\" class=\"detail {}\">\n<h3><code>{}</code> · <code>{}</code>: {}</h3>",
                        escape_attr(&id),
                        clause.status,
                        escape_text(&target.name),
                        escape_text(&clause.id),
                        clause.status
                    );
                    if let Some(spec) = quotes.get(clause.id.as_str()) {
                        let _ = writeln!(
                            details,
                            "<blockquote>{}</blockquote>\n<p>evidence: {}</p>",
                            escape_text(&spec.quote),
                            spec.evidence
                        );
                    }
                    for check in clause
                        .checks
                        .iter()
                        .filter(|k| matches!(k.status, Status::Fail | Status::Inconclusive))
                    {
                        let _ = writeln!(
                            details,
                            "<div class=\"check\" id=\"{}\">\n<h4><code>{}</code>: {}</h4>\n<pre>{}</pre>\n</div>",
                            escape_attr(&format!("{id}-{}", check.name)),
                            escape_text(&check.name),
                            check.status,
                            escape_text(&target.scrub(&check.message))
                        );
                    }
                    let _ = writeln!(
                        details,
                        "<p><a href=\"#c-{}\">back to the table</a></p>\n</section>",
                        escape_attr(&clause.id)
                    );
                }
            }
        }
    }
    if !details.is_empty() {
        out.push_str("<h2>Details</h2>\n");
        out.push_str(&details);
    }
    out.push_str("</body>\n</html>\n");
    out
}
