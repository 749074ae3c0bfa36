//! `--summary PATH`: the run as Markdown for a CI job page (GitHub's `GITHUB_STEP_SUMMARY`):
//! a header line, a table of clauses with their status, and each failure's check, expected
//! and observed, and reproducer in a collapsed `<details>` block.
//!
//! Every text comes from the report, so it is already redacted; the target's words are
//! escaped here so that they cannot close a block, a table cell or an HTML element, and the
//! document passes the output layer ([`crate::output::terminal`]) last: an answer's body is
//! quoted as the target sent it, and neither it nor any other text may bring a control,
//! bidirectional or invisible character into a CI job page raw.

use std::fmt::Write as _;

use super::{CheckReport, RunReport};
use crate::outcome::Status;

/// The run as a Markdown summary, ending with a newline.
pub fn summary(report: &RunReport) -> String {
    let mut out = String::new();
    let (pass, fail, inconclusive, skipped) = report.counts();
    let _ = writeln!(out, "## token-conformance: {}\n", html(&report.target_name));
    let _ = writeln!(
        out,
        "target **{}** · profile `{}` · seed `{}` · token-conformance {} · {}\n",
        html(&report.target_name),
        report.profile.as_str(),
        report.seed,
        env!("CARGO_PKG_VERSION"),
        report.started_at,
    );
    let _ = writeln!(
        out,
        "{} clauses: {pass} pass, {fail} fail, {inconclusive} inconclusive, {skipped} skipped · {} requests in {:.1} s\n",
        report.clauses.len(),
        report.requests,
        report.duration_ms as f64 / 1000.0
    );
    out.push_str("| clause | status | title |\n|---|---|---|\n");
    for clause in &report.clauses {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            clause.id,
            badge(clause.status),
            cell(&clause.title)
        );
    }
    let failed: Vec<&CheckReport> = report
        .findings()
        .filter(|k| k.status == Status::Fail)
        .collect();
    if !failed.is_empty() {
        out.push_str("\n### Failures\n");
        for check in failed {
            failure(&mut out, check);
        }
    }
    let inconclusive: Vec<&CheckReport> = report
        .findings()
        .filter(|k| k.status == Status::Inconclusive)
        .collect();
    if !inconclusive.is_empty() {
        out.push_str("\n### Inconclusive\n\n");
        for check in inconclusive {
            let _ = writeln!(
                out,
                "- `{}`: {}",
                check.full_name(),
                cell(check.observed.as_deref().unwrap_or("no reason given"))
            );
        }
    }
    crate::output::terminal(&out)
}

fn failure(out: &mut String, check: &CheckReport) {
    let observed = check.observed.as_deref().unwrap_or("");
    let first = observed.lines().next().unwrap_or("violation");
    let _ = writeln!(
        out,
        "\n<details>\n<summary><code>{}</code>: {}</summary>\n",
        html(&check.full_name()),
        html(&crate::text::truncate(first, 200))
    );
    if let Some(expected) = &check.expected {
        let _ = writeln!(out, "**expected** (the clause): {}\n", html(expected));
    }
    out.push_str("**observed**:\n\n");
    fenced(out, "text", observed);
    if let Some(last) = check.exchanges.last() {
        let _ = writeln!(
            out,
            "\nthe failing request: <code>{} {}</code> answered **{}**\n",
            html(&last.request.method),
            html(super::json::url_path(&last.request.url)),
            last.status
        );
        fenced(out, "json", &crate::text::truncate(&last.body_text, 2000));
    }
    if let Some(reproducer) = &check.reproducer {
        out.push_str("\nreproducer:\n\n");
        fenced(out, "sh", reproducer);
    }
    if let Some(id) = &check.replay_id {
        let _ = writeln!(out, "\nreplay id: `{id}`");
    }
    out.push_str("\n</details>\n");
}

/// A fenced code block longer than any run of backticks in `text`, so that it cannot be
/// closed from inside.
fn fenced(out: &mut String, lang: &str, text: &str) {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest.max(2) + 1);
    let _ = writeln!(
        out,
        "{fence}{lang}\n{}\n{fence}",
        text.trim_end_matches('\n')
    );
}

fn badge(status: Status) -> &'static str {
    match status {
        Status::Pass => "✅ pass",
        Status::Fail => "❌ fail",
        Status::Inconclusive => "⚠️ inconclusive",
        Status::Skipped => "⏭️ skipped",
    }
}

/// Text for HTML (and Markdown outside code): markup characters escaped.
fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a table cell or a list item: escaped, on one line, `|` escaped.
fn cell(text: &str) -> String {
    html(&text.replace(['\n', '\r'], " ")).replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_outlasts_the_backticks_inside() {
        let mut out = String::new();
        fenced(&mut out, "text", "a ```` b");
        assert!(out.starts_with("`````text\n"), "{out}");
        assert!(out.ends_with("\n`````\n"), "{out}");
    }

    #[test]
    fn cells_cannot_break_the_table_or_the_markup() {
        assert_eq!(cell("a|b\n<c>"), "a\\|b &lt;c&gt;");
    }
}
