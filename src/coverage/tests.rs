use super::*;

fn clause<'a>(id: &'a str, checks: &[&'a str]) -> ClauseIn<'a> {
    ClauseIn {
        id,
        title: "t",
        quote: "q",
        evidence: Evidence::Documented,
        destructive: false,
        checks: checks.to_vec(),
    }
}

fn check<'a>(clause: &'a str, name: &'a str, strict_only: bool) -> CheckIn<'a> {
    CheckIn {
        clause,
        name,
        strict_only,
    }
}

fn fault<'a>(name: &'a str, clauses: &[&'a str], strict_only: bool) -> FaultIn<'a> {
    FaultIn {
        name,
        clauses: clauses.to_vec(),
        strict_only,
    }
}

#[test]
fn the_real_catalog_is_fully_covered() {
    let coverage = of_this_build();
    assert!(coverage.is_complete(), "{}", render_text(&coverage));
    assert_eq!(
        coverage.clauses.len(),
        Spec::embedded().catalog().clauses().len()
    );
    assert_eq!(coverage.checks, checks::all().len());
    assert_eq!(coverage.faults, Fault::ALL.len());
}

#[test]
fn a_covered_synthetic_catalog_attributes_faults_by_clause_and_profile() {
    let clauses = [clause("a.b", &["plain", "picky"])];
    let checks = [check("a.b", "plain", false), check("a.b", "picky", true)];
    let faults = [
        fault("loose", &["a.b"], false),
        fault("lax", &["a.b"], true),
    ];
    let coverage = coverage("s", &clauses, &checks, &faults);
    assert!(coverage.is_complete(), "{:?}", coverage.problems);
    let rows = &coverage.clauses[0].checks;
    assert_eq!(rows[0].faults, ["loose"]);
    assert_eq!(rows[1].faults, ["lax"]);
}

#[test]
fn a_strict_fault_proves_a_plain_check_when_the_clause_has_no_strict_check() {
    let clauses = [clause("a.b", &["plain"])];
    let checks = [check("a.b", "plain", false)];
    let faults = [fault("lax", &["a.b"], true)];
    let coverage = coverage("s", &clauses, &checks, &faults);
    assert!(coverage.is_complete(), "{:?}", coverage.problems);
    assert_eq!(coverage.clauses[0].checks[0].faults, ["lax"]);
}

#[test]
fn a_clause_without_a_check_fails() {
    let clauses = [clause("a.b", &["plain"]), clause("a.c", &["ghost"])];
    let checks = [check("a.b", "plain", false)];
    let faults = [fault("loose", &["a.b"], false)];
    let problems = coverage("s", &clauses, &checks, &faults).problems;
    assert_eq!(
        problems,
        [
            Problem::ClauseWithoutCheck {
                clause: "a.c".to_owned()
            },
            Problem::NoSuchCheck {
                clause: "a.c".to_owned(),
                check: "ghost".to_owned()
            },
        ]
    );
}

#[test]
fn a_check_without_a_fault_fails() {
    let clauses = [clause("a.b", &["plain"]), clause("a.c", &["other"])];
    let checks = [check("a.b", "plain", false), check("a.c", "other", false)];
    let faults = [fault("loose", &["a.b"], false)];
    let problems = coverage("s", &clauses, &checks, &faults).problems;
    assert_eq!(
        problems,
        [Problem::CheckWithoutFault {
            clause: "a.c".to_owned(),
            check: "other".to_owned()
        }]
    );
}

#[test]
fn a_strict_only_check_without_a_strict_fault_fails() {
    let clauses = [clause("a.b", &["plain", "picky"])];
    let checks = [check("a.b", "plain", false), check("a.b", "picky", true)];
    let faults = [fault("loose", &["a.b"], false)];
    let problems = coverage("s", &clauses, &checks, &faults).problems;
    assert_eq!(
        problems,
        [Problem::StrictCheckWithoutStrictFault {
            clause: "a.b".to_owned(),
            check: "picky".to_owned()
        }]
    );
}

#[test]
fn an_unknown_id_fails() {
    let clauses = [clause("a.b", &["plain"])];
    let checks = [check("a.b", "plain", false), check("a.x", "stray", false)];
    let faults = [fault("loose", &["a.b", "a.y"], false)];
    let coverage = coverage("s", &clauses, &checks, &faults);
    assert_eq!(
        coverage.problems,
        [
            Problem::UnknownClause {
                owner: "check stray".to_owned(),
                clause: "a.x".to_owned()
            },
            Problem::UnknownClause {
                owner: "fault loose".to_owned(),
                clause: "a.y".to_owned()
            },
        ]
    );
    assert!(render_text(&coverage).contains(" 2 uncovered"));
    assert_eq!(to_json(&coverage)["complete"], false);
    assert_eq!(to_json(&coverage)["problems"][0]["kind"], "unknown_clause");
}

#[test]
fn a_check_the_catalog_does_not_list_fails() {
    let clauses = [clause("a.b", &["plain"])];
    let checks = [check("a.b", "plain", false), check("a.b", "extra", false)];
    let faults = [fault("loose", &["a.b"], false)];
    let problems = coverage("s", &clauses, &checks, &faults).problems;
    assert_eq!(
        problems,
        [Problem::CheckNotListed {
            clause: "a.b".to_owned(),
            check: "extra".to_owned()
        }]
    );
}

#[test]
fn the_text_shows_clause_checks_and_faults() {
    let text = render_text(&of_this_build());
    assert!(
        text.contains("update.role.preserved [documented]"),
        "{text}"
    );
    assert!(
        text.contains(
            "    - role_is_preserved_when_relationships_are_omitted: covered\n        proved by: role-dropped-when-omitted, role-reset-when-omitted, response-role-from-request\n"
        ),
        "{text}"
    );
    assert!(text.contains("    - unknown_members_are_refused: covered (strict profile)\n        proved by: unknown-members-accepted\n"), "{text}");
    assert!(text.contains(" 0 uncovered"), "{text}");
}
