//! Detection power: every fault of the reference server is caught by the clause it declares,
//! every check fails under at least one fault, and the fault-free server passes every clause
//! whatever the seed.

use crate::common;

use token_conformance::checks::Profile;
use token_conformance::faults::Fault;
use token_conformance::mutants::{self, Verdict};

/// Fewer cases than the CLI default: each fault is still killed (the table in the README is
/// made with the default), and the whole file stays well under a minute on two cores.
const CASES: u32 = 16;

#[test]
fn every_fault_is_detected_by_its_declared_clause() {
    let results =
        common::runtime().block_on(mutants::run_all(Fault::ALL, 11, CASES, 2, |_, _, _| {}));
    let problems: Vec<String> = results
        .iter()
        .filter(|r| r.verdict != Verdict::Killed)
        .map(|r| {
            format!(
                "{} ({:?}, declared {:?}): {} — failing {:?} {}",
                r.fault,
                r.profile,
                r.fault.clauses(),
                r.verdict.as_str(),
                r.failed_clauses,
                r.note
            )
        })
        .collect();
    assert!(
        problems.is_empty(),
        "faults not detected by their declared clause:\n{}",
        problems.join("\n")
    );
    // Faults that only the strict profile can see run (and are killed) under it.
    for r in &results {
        assert_eq!(
            r.profile == Profile::Strict,
            r.fault.strict_only(),
            "{}",
            r.fault
        );
    }
    let never = mutants::checks_never_failed(&results);
    assert!(
        never.is_empty(),
        "checks that no fault makes fail: {never:?}"
    );
}

#[test]
fn the_fault_free_server_passes_every_clause_under_20_seeds() {
    let rt = common::runtime();
    for seed in 0..20u64 {
        // Alternate the profiles: the fault-free server must satisfy strict as well.
        let profile = if seed % 2 == 0 {
            Profile::Documented
        } else {
            Profile::Strict
        };
        let result = rt.block_on(mutants::run_one(None, 1000 + seed, CASES, profile, true));
        assert!(
            result.failed_clauses.is_empty() && result.note.is_empty(),
            "seed {} ({profile:?}): failing {:?} {:?} {}",
            1000 + seed,
            result.failed_clauses,
            result.failed_checks,
            result.note
        );
        assert_eq!(result.verdict, Verdict::Survived, "seed {}", 1000 + seed);
    }
}

#[test]
fn under_the_staging_profile_the_covering_set_kills_validation_faults_within_400_requests() {
    // Rules only one mutation of the schema reveals: the staging profile's few generated
    // cases would miss them, its covering set cannot.
    let faults = [
        Fault::TypeLooselyMatched,
        Fault::StringTrueCoerced,
        Fault::NumericBodyIdAccepted,
    ];
    for r in killed_under_staging_within_400(&faults, 2) {
        assert_eq!(r.profile, Profile::Staging, "{}", r.fault);
    }
}

#[test]
fn under_the_staging_profile_covering_cases_kill_what_one_generated_case_misses() {
    // Each needs a case the staging profile's one generated case rarely makes: an update
    // without relationships, a long name, a probe a tenth of a second after a change, a 429
    // (the run's own pace meets the limit), a change made right after the warm probe; a name
    // with capitals and two spaces in a row, an update that turns can_access_cma off, a
    // factory token sent a changed flag.
    let faults = [
        Fault::NameLowercased,
        Fault::NameWhitespaceCollapsed,
        Fault::SecretRotatedOnCmaRevoke,
        Fault::HardcodedAppliesFlags,
        Fault::RoleDroppedWhenOmitted,
        Fault::RoleResetWhenOmitted,
        Fault::NameTruncated64,
        Fault::RateLimitWithoutReset,
        Fault::StaleDecisionWindow,
        Fault::CdaGrantCached,
    ];
    killed_under_staging_within_400(&faults, 3);
}

#[test]
fn under_the_staging_profile_the_faults_the_blind_reviews_found_are_killed_within_400_requests() {
    // Bugs the suite once missed: a body id that selects the token, a deleted token still
    // updatable, a mass-assigned secret, drafts refused to a preview-only token, a frozen
    // X-RateLimit-Remaining, a self-demotion shown with the old role, the factory guard run
    // after validation; and two name round-trips the staging covering name must reach (a
    // combining mark, the HTML metacharacters).
    let faults = [
        Fault::BodyIdSelectsToken,
        Fault::DeletedTokenUpdatable,
        Fault::TokenMassAssigned,
        Fault::PreviewRequiresCda,
        Fault::RateLimitRemainingFrozen,
        Fault::VisibilityFromRoleBeforeUpdate,
        Fault::HardcodedGuardAfterValidation,
        Fault::NameNfcNormalised,
        Fault::NameHtmlEscaped,
        // And the next review's: an escalation by self-update, a permission checked after the
        // write, a second Content-Type, a role reference nobody looks up.
        Fault::SelfUpdateUnguarded,
        Fault::PermissionCheckedAfterWrite,
        Fault::ContentTypeAppended,
        Fault::RoleReferenceUnchecked,
    ];
    killed_under_staging_within_400(&faults, 3);
}

#[test]
fn under_the_staging_profile_the_third_blind_review_s_faults_are_killed_within_400_requests() {
    // Written without reading the checks: a false flag dropped as blank, a drafts scope
    // refreshed only with can_access_cda, a CMA deny list a grant does not clear, a factory
    // token's role reassignable, the secret shown by the updated token's role, an upgrade of
    // role refused, a success echoing the request's Content-Type, a no-op update answered 204,
    // a name of digits answered as a number. (`throttle-body-not-envelope` is left out: under
    // the staging budget no 429 is forced, and errors.envelope sees one only when the run met
    // it first.)
    killed_under_staging_within_400(&common::THIRD_BLIND_REVIEW, 3);
}

#[test]
fn a_fault_runs_only_its_declared_clauses_unless_all_checks_is_asked() {
    let rt = common::runtime();
    let fault = Fault::NameTruncated64;
    let declared = rt.block_on(mutants::run_one(
        Some(fault),
        1,
        CASES,
        Profile::Documented,
        false,
    ));
    assert_eq!(declared.verdict, Verdict::Killed);
    assert!(
        declared
            .failed_checks
            .iter()
            .all(|c| c.starts_with("update.applies::")),
        "{:?}",
        declared.failed_checks
    );
    let whole = rt.block_on(mutants::run_one(
        Some(fault),
        1,
        CASES,
        Profile::Documented,
        true,
    ));
    assert_eq!(whole.verdict, Verdict::Killed);
    assert!(
        whole.requests > declared.requests,
        "the whole suite sends more: {} vs {}",
        whole.requests,
        declared.requests
    );
}

/// Each of `faults` is killed by its declared clause under the staging profile (against a
/// server with the documented rate limit, `parallel` servers at once), within 400 requests,
/// and each run sends at most 400 (but for cleanup's resends).
fn killed_under_staging_within_400(
    faults: &[Fault],
    parallel: usize,
) -> Vec<mutants::MutantResult> {
    let results = common::runtime().block_on(mutants::run_all_under(
        faults,
        11,
        mutants::Suite::Staging { max_requests: 400 },
        parallel,
        false,
        |_, _, _| {},
    ));
    for r in &results {
        assert_eq!(
            r.verdict,
            Verdict::Killed,
            "{}: failing {:?} {}",
            r.fault,
            r.failed_clauses,
            r.note
        );
        let detected = r.requests_to_detection.unwrap();
        assert!(detected <= 400, "{}: {detected} requests", r.fault);
        // The run itself stays within the cap: every fixture's deletion is paid before the
        // fixture is created. Only cleanup's resends after a 429 may go past it, and few.
        assert!(
            r.requests - r.requests_past_cap <= 400 && r.requests_past_cap <= 3,
            "{}: {} requests, {} of them cleanup past the cap",
            r.fault,
            r.requests,
            r.requests_past_cap
        );
    }
    results
}
