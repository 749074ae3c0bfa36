//! `--junit PATH`: the run as a JUnit XML report, the format most CI systems read (GitLab,
//! Jenkins, GitHub Actions reporters, Azure Pipelines).
//!
//! One `<testsuite>` per clause (named by the clause id), one `<testcase>` per check; the
//! suites carry the run's start (`timestamp`, RFC 3339 UTC) and every element its `time`. A fail is
//! a `<failure>` whose text is the failure in full, which already ends with the `replay:` line
//! and the `curl` reproducer, and whose `message` is its one-line summary (what went wrong); skipped and inconclusive checks are `<skipped>` with the reason
//! (inconclusive ones prefixed `inconclusive: `), since JUnit has no "could not test" outcome
//! and an inconclusive check is never a violation.
//!
//! Generated token names carry arbitrary Unicode, so every text goes through [`escape_text`] or
//! [`escape_attr`]: markup characters are escaped, and characters XML 1.0 forbids (U+FFFE,
//! U+FFFF) or the output layer lets through only escaped ([`crate::output::is_unsafe`]:
//! control characters, `\r` among them, bidirectional and invisible characters) are written
//! as a visible `\u{..}` escape, which keeps the document well-formed and the character
//! readable.

use std::fmt::Write as _;

use crate::outcome::Status;

use super::{CheckReport, RunReport};

/// The run as a JUnit XML document.
pub fn junit(report: &RunReport) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let checks = || report.clauses.iter().flat_map(|c| c.checks.iter());
    let count = |status: Status| checks().filter(|k| k.status == status).count();
    let skipped = count(Status::Skipped) + count(Status::Inconclusive);
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{skipped}\" time=\"{}\" timestamp=\"{}\">",
        escape_attr(&format!("token-conformance {}", report.target_name)),
        checks().count(),
        count(Status::Fail),
        seconds(report.duration_ms),
        escape_attr(&report.started_at),
    );
    for clause in &report.clauses {
        let in_clause =
            |status: Status| clause.checks.iter().filter(|k| k.status == status).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
            escape_attr(&clause.id),
            clause.checks.len(),
            in_clause(Status::Fail),
            in_clause(Status::Skipped) + in_clause(Status::Inconclusive),
            seconds(clause.checks.iter().map(|k| k.duration_ms).sum()),
            escape_attr(&report.started_at),
        );
        out.push_str("    <properties>\n");
        for (name, value) in [
            ("title", clause.title.clone()),
            ("evidence", clause.evidence.to_string()),
            ("target", report.target_name.clone()),
            ("seed", report.seed.to_string()),
        ] {
            let _ = writeln!(
                out,
                "      <property name=\"{name}\" value=\"{}\"/>",
                escape_attr(&value)
            );
        }
        out.push_str("    </properties>\n");
        for check in &clause.checks {
            testcase(&mut out, check);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn testcase(out: &mut String, check: &CheckReport) {
    let _ = write!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
        escape_attr(&check.clause),
        escape_attr(&check.name),
        seconds(check.duration_ms),
    );
    let first_line = check.message.lines().find(|l| !l.trim().is_empty());
    let body = match check.status {
        Status::Pass => None,
        Status::Fail => Some(format!(
            "<failure message=\"{}\" type=\"violation\">{}</failure>",
            escape_attr(summary(check).unwrap_or("violation")),
            escape_text(&check.message),
        )),
        Status::Skipped => Some(format!(
            "<skipped message=\"{}\"/>",
            escape_attr(first_line.unwrap_or("skipped"))
        )),
        Status::Inconclusive => Some(format!(
            "<skipped message=\"inconclusive: {}\"/>",
            escape_attr(first_line.unwrap_or("no reason given"))
        )),
    };
    let system_out = (!check.warnings.is_empty()).then(|| {
        let lines: Vec<String> = check
            .warnings
            .iter()
            .map(|w| format!("warning: {w}"))
            .collect();
        format!(
            "<system-out>{}</system-out>",
            escape_text(&lines.join("\n"))
        )
    });
    if body.is_none() && system_out.is_none() {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    for part in [body, system_out].into_iter().flatten() {
        let _ = writeln!(out, "      {part}");
    }
    out.push_str("    </testcase>\n");
}

/// The line a CI system shows for a failure: what went wrong. A failure's text opens with
/// `clause <id> (<evidence>): "<quote>"`, which the testcase's classname already says, so the
/// line after it is taken; any other text gives its first line.
fn summary(check: &CheckReport) -> Option<&str> {
    let mut lines = check.message.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next()?;
    if first.starts_with(&format!("clause {} (", check.clause)) {
        return lines.next().or(Some(first));
    }
    Some(first)
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// Whether XML 1.0 allows `c` in a document at all (`Char` of the XML 1.0 grammar).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn escape(text: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            // A parser normalises these in attribute values (and `\r` everywhere) unless they
            // are written as character references.
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            // The output layer's rule, as everywhere else: a CI page shows this text.
            c if crate::output::is_unsafe(c) || !xml_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// `text` as XML character data: `&`, `<`, `>` escaped, and characters XML 1.0 forbids or
/// the output layer does not let through raw ([`crate::output::is_unsafe`]: controls,
/// `\r` among them, bidirectional and invisible characters) written as a visible `\u{..}`
/// escape.
pub fn escape_text(text: &str) -> String {
    escape(text, false)
}

/// `text` as a double- or single-quoted XML attribute value: as [`escape_text`], and quotes,
/// tabs and line feeds escaped so that a parser gives back exactly `text`.
pub fn escape_attr(text: &str) -> String {
    escape(text, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_forbidden_characters_are_escaped() {
        assert_eq!(escape_text("a<b>&c\"'"), "a&lt;b&gt;&amp;c\"'");
        assert_eq!(
            escape_attr("a\"'\n\tb"),
            "a&quot;&apos;&#10;&#9;b".to_owned()
        );
        assert_eq!(
            escape_text("x\u{1}y\u{1b}\u{FFFE}\u{FFFF}"),
            "x\\u{1}y\\u{1b}\\u{fffe}\\u{ffff}"
        );
        assert_eq!(
            escape_text("é 🦀 \u{202E} \u{85} 9\u{200b}"),
            "é 🦀 \\u{202e} \\u{85} 9\\u{200b}"
        );
        assert_eq!(escape_text("a\r\nb"), "a\\u{d}\nb");
    }
}
