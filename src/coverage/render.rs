//! [`Coverage`] as the text and the JSON of `token-conformance clauses`.

use serde_json::Value;

use super::Coverage;

/// The text `token-conformance clauses` prints: each clause, its checks, the faults that prove
/// each check, then what is uncovered and a count.
pub fn render_text(coverage: &Coverage) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "{}\n", coverage.source);
    for clause in &coverage.clauses {
        let destructive = if clause.destructive {
            ", destructive"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "{} [{}{destructive}] {}",
            clause.id, clause.evidence, clause.title
        );
        let _ = writeln!(out, "    \"{}\"", clause.quote);
        for check in &clause.checks {
            let note = if !check.exists {
                "UNCOVERED: no such check"
            } else if check.faults.is_empty() {
                "UNCOVERED: no fault proves it"
            } else if check.strict_only {
                "covered (strict profile)"
            } else {
                "covered"
            };
            let _ = writeln!(out, "    - {}: {note}", check.name);
            if !check.faults.is_empty() {
                let _ = writeln!(out, "        proved by: {}", check.faults.join(", "));
            }
        }
    }
    if !coverage.problems.is_empty() {
        out.push('\n');
    }
    for problem in &coverage.problems {
        let _ = writeln!(out, "UNCOVERED: {problem}");
    }
    let _ = writeln!(
        out,
        "\n{} clauses, {} checks, {} faults, {} uncovered",
        coverage.clauses.len(),
        coverage.checks,
        coverage.faults,
        coverage.problems.len()
    );
    out
}

/// The JSON `token-conformance clauses --json` prints: [`Coverage`] with a `complete` flag and
/// each problem's `message`.
pub fn to_json(coverage: &Coverage) -> Value {
    let mut value = serde_json::to_value(coverage).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("complete".to_owned(), Value::Bool(coverage.is_complete()));
        object.insert(
            "problems".to_owned(),
            Value::Array(
                coverage
                    .problems
                    .iter()
                    .map(|p| {
                        let mut entry = serde_json::to_value(p).unwrap_or(Value::Null);
                        if let Some(e) = entry.as_object_mut() {
                            e.insert("message".to_owned(), Value::String(p.to_string()));
                        }
                        entry
                    })
                    .collect(),
            ),
        );
    }
    value
}
