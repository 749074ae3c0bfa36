//! `clauses`: the catalog, with the checks that cover each clause.

use super::Code;
use crate::checks;
use crate::console::outln;
use crate::spec::Spec;

pub(crate) fn clauses() -> Code {
    let catalog = Spec::embedded().catalog();
    let all = checks::all();
    let mut uncovered = 0;
    outln!("{}\n", catalog.source());
    for clause in catalog.clauses() {
        outln!(
            "{} [{}{}] {}",
            clause.id,
            clause.evidence,
            if clause.destructive {
                ", destructive"
            } else {
                ""
            },
            clause.title
        );
        outln!("    \"{}\"", clause.quote);
        for name in &clause.checks {
            let def = all.iter().find(|d| d.clause == clause.id && d.name == name);
            let note = match def {
                Some(d) if d.strict_only => "covered (strict profile)",
                Some(_) => "covered",
                None => {
                    uncovered += 1;
                    "UNCOVERED: no such check"
                }
            };
            outln!("    - {name}: {note}");
        }
    }
    for def in &all {
        if catalog
            .clause(def.clause)
            .is_none_or(|c| !c.checks.iter().any(|n| n == def.name))
        {
            outln!(
                "check {} is not listed in specs/clauses.json",
                def.full_name()
            );
            uncovered += 1;
        }
    }
    outln!(
        "\n{} clauses, {} checks, {uncovered} uncovered",
        catalog.clauses().len(),
        all.len()
    );
    if uncovered == 0 {
        Code::Passed
    } else {
        Code::Violated
    }
}
