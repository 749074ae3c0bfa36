//! The resolver's rules, one test per rule.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

#[test]
fn nothing_given_is_the_embedded_server_documented_and_full() {
    let plan = Inputs::default().resolve().unwrap();
    assert!(matches!(plan.target, TargetKind::Embedded(ref c) if c.rate_limit.is_none()));
    assert_eq!(plan.strictness, Strictness::Documented);
    assert_eq!(plan.budget, BudgetKind::Full);
    assert_eq!(plan.profile(), Profile::Documented);
    assert_eq!(plan.cases, DEFAULT_CASES);
    assert_eq!(plan.limits.max_requests, None);
    assert_eq!(plan.limits.deadline, Some(DEFAULT_DEADLINE));
    assert!(plan.seed < 1_000_000_000);
}

#[test]
fn the_staging_budget_sizes_requests_and_cases_in_one_place() {
    let plan = Inputs {
        profile: Some(Profile::Staging),
        ..Inputs::default()
    }
    .resolve()
    .unwrap();
    assert_eq!(plan.budget, BudgetKind::Staging);
    assert_eq!(plan.strictness, Strictness::Documented);
    assert_eq!(plan.profile(), Profile::Staging);
    assert_eq!(plan.limits.max_requests, Some(STAGING_DEFAULT_MAX_REQUESTS));
    assert_eq!(
        plan.cases,
        staging_cases(STAGING_DEFAULT_MAX_REQUESTS).unwrap()
    );
    assert_eq!(plan.check_budget(), Budget::staging(plan.cases));
    // More requests, more cases; explicit cases win over the sizing.
    let bigger = Inputs {
        budget: Some(BudgetKind::Staging),
        max_requests: Some(1000),
        ..Inputs::default()
    }
    .resolve()
    .unwrap();
    assert_eq!(bigger.cases, staging_cases(1000).unwrap());
    assert!(bigger.cases > plan.cases);
    let explicit = Inputs {
        profile: Some(Profile::Staging),
        cases: Some(7),
        ..Inputs::default()
    }
    .resolve()
    .unwrap();
    assert_eq!(explicit.cases, 7);
    assert_eq!(
        explicit.limits.max_requests,
        Some(STAGING_DEFAULT_MAX_REQUESTS)
    );
}

#[test]
fn the_staging_budget_covers_every_clause_in_400_requests() {
    let cases = staging_cases(STAGING_DEFAULT_MAX_REQUESTS).unwrap_or(0);
    assert!(cases >= 1);
    assert!(STAGING_FIXED_REQUESTS + STAGING_REQUESTS_PER_CASE * u64::from(cases) <= 400);
    assert_eq!(staging_cases(100), Err(PlanError::StagingTooSmall(100)));
}

#[test]
fn strictness_and_budget_are_separate_axes() {
    for inputs in [
        Inputs {
            profile: Some(Profile::Staging),
            strict: true,
            ..Inputs::default()
        },
        Inputs {
            profile: Some(Profile::Strict),
            budget: Some(BudgetKind::Staging),
            ..Inputs::default()
        },
        Inputs {
            strict: true,
            budget: Some(BudgetKind::Staging),
            ..Inputs::default()
        },
    ] {
        let plan = inputs.resolve().unwrap();
        assert_eq!(plan.strictness, Strictness::Strict);
        assert_eq!(plan.budget, BudgetKind::Staging);
        assert_eq!(plan.profile(), Profile::Strict);
        assert_eq!(plan.check_budget(), Budget::staging(plan.cases));
        assert_eq!(plan.limits.max_requests, Some(STAGING_DEFAULT_MAX_REQUESTS));
    }
    let strict_full = Inputs {
        strict: true,
        ..Inputs::default()
    }
    .resolve()
    .unwrap();
    assert_eq!(strict_full.budget, BudgetKind::Full);
    assert_eq!(strict_full.check_budget(), Budget::full(DEFAULT_CASES));
}

#[test]
fn bad_input_is_an_error() {
    let resolve = |inputs: Inputs| inputs.resolve().unwrap_err();
    assert_eq!(
        resolve(Inputs {
            base_url: Some("http://127.0.0.1:9".into()),
            ..Inputs::default()
        }),
        PlanError::NoToken
    );
    assert_eq!(
        resolve(Inputs {
            base_url: Some("http://127.0.0.1:9".into()),
            token: Some("   ".into()),
            ..Inputs::default()
        }),
        PlanError::NoToken
    );
    for cases in [0, u64::from(MAX_CASES) + 1, u64::MAX] {
        assert_eq!(
            resolve(Inputs {
                cases: Some(cases),
                ..Inputs::default()
            }),
            PlanError::Cases(cases)
        );
    }
    assert_eq!(
        resolve(Inputs {
            profile: Some(Profile::Staging),
            max_requests: Some(100),
            ..Inputs::default()
        }),
        PlanError::StagingTooSmall(100)
    );
    assert_eq!(
        resolve(Inputs {
            profile: Some(Profile::Staging),
            budget: Some(BudgetKind::Full),
            ..Inputs::default()
        }),
        PlanError::BudgetConflict
    );
    let no_scheme = resolve(Inputs {
        base_url: Some("127.0.0.1:3000".into()),
        token: Some("t".into()),
        ..Inputs::default()
    });
    assert!(
        no_scheme
            .to_string()
            .contains("did you mean http://127.0.0.1:3000"),
        "{no_scheme}"
    );
    // Not host:port: left to the client's URL check.
    assert!(
        Inputs {
            base_url: Some("not a url".into()),
            token: Some("t".into()),
            ..Inputs::default()
        }
        .resolve()
        .is_ok()
    );
}

#[test]
fn the_environment_is_read_and_checked() {
    let inputs = Inputs::from_env(env(&[
        ("CONFORMANCE_BASE_URL", "http://127.0.0.1:3000"),
        ("CONFORMANCE_CDA_URL", " "),
        ("CONFORMANCE_API_TOKEN", "env-secret-6d1f"),
        ("CONFORMANCE_SEED", "42"),
        ("CONFORMANCE_PROFILE", "staging"),
        ("CONFORMANCE_BUDGET", "staging"),
        ("CONFORMANCE_MAX_REQUESTS", "1000"),
        ("CONFORMANCE_DEADLINE", "90s"),
    ]))
    .unwrap();
    let plan = inputs.resolve().unwrap();
    let TargetKind::Remote(remote) = &plan.target else {
        panic!("not remote: {plan:?}");
    };
    assert_eq!(remote.base_url, "http://127.0.0.1:3000");
    assert_eq!(remote.cda_url, None, "a blank variable is not given");
    assert_eq!(remote.secret.expose(), "env-secret-6d1f");
    assert_eq!(plan.seed, 42);
    assert_eq!(plan.limits.max_requests, Some(1000));
    assert_eq!(plan.cases, staging_cases(1000).unwrap());
    assert_eq!(plan.limits.deadline, Some(Duration::from_secs(90)));
    for (name, value) in [
        ("CONFORMANCE_SEED", "soon"),
        ("CONFORMANCE_CASES", "-1"),
        ("CONFORMANCE_PROFILE", "lenient"),
        ("CONFORMANCE_BUDGET", "tiny"),
        ("CONFORMANCE_DEADLINE", "forever"),
    ] {
        let err = Inputs::from_env(env(&[(name, value)])).unwrap_err();
        assert!(
            matches!(&err, PlanError::Env { name: n, .. } if *n == name),
            "{err}"
        );
    }
}

#[test]
fn a_flag_wins_over_the_environment() {
    // The command line fills `Inputs` from its flags and clap's `env`; what the harness
    // reads from the environment is overridden the same way, field by field.
    let from_env = Inputs::from_env(env(&[("CONFORMANCE_SEED", "1")])).unwrap();
    let plan = Inputs {
        seed: Some(2),
        ..from_env
    }
    .resolve()
    .unwrap();
    assert_eq!(plan.seed, 2);
}

#[test]
fn the_secret_never_shows_in_debug_or_display() {
    let plan = Inputs {
        base_url: Some("http://127.0.0.1:9".into()),
        token: Some("plan-secret-93a0".into()),
        ..Inputs::default()
    }
    .resolve()
    .unwrap();
    let debug = format!("{plan:?} {plan:#?}");
    assert!(!debug.contains("plan-secret-93a0"), "{debug}");
    assert!(debug.contains("[secret]"), "{debug}");
    let TargetKind::Remote(remote) = &plan.target else {
        panic!("not remote");
    };
    assert_eq!(remote.secret.to_string(), "[secret]");
    assert_eq!(remote.secret.expose(), "plan-secret-93a0");
}

#[test]
fn destructive_clauses_need_the_embedded_server_or_the_flag() {
    use Destructive::*;
    assert!(destructive_allowed(EmbeddedOnly, true));
    // A server on loopback the suite did not start is someone else's (a vendor's
    // localhost, a port-forward to staging): not without the flag.
    assert!(!destructive_allowed(EmbeddedOnly, false));
    assert!(destructive_allowed(Allow, false));
    assert!(!destructive_allowed(Forbid, true));
    assert!(!destructive_allowed(Forbid, false));
    let both = Inputs {
        destructive: true,
        no_destructive: true,
        ..Inputs::default()
    }
    .resolve()
    .unwrap();
    assert_eq!(both.destructive, Forbid);
}

#[test]
fn production_is_recognised() {
    assert!(is_production("https://site-api.datocms.com"));
    assert!(is_production("https://SITE-API.datocms.com/"));
    assert!(is_production("https://site-api.datocms.com./"));
    assert!(!is_production("https://staging.example.com"));
    assert!(production_guard("https://site-api.datocms.com", false).is_err());
    assert!(production_guard("https://site-api.datocms.com", true).is_ok());
    assert!(production_guard("https://staging.example.com", false).is_ok());
}

#[test]
fn deadlines_read_and_print_alike() {
    for (text, duration) in [
        ("15m", Duration::from_secs(900)),
        ("90s", Duration::from_secs(90)),
        ("90", Duration::from_secs(90)),
        ("500ms", Duration::from_millis(500)),
        ("1h", Duration::from_secs(3600)),
    ] {
        assert_eq!(parse_duration(text), Ok(duration), "{text}");
    }
    assert_eq!(format_duration(DEFAULT_DEADLINE), "15m");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
    assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
    for bad in ["", "0s", "soon", "5 days", "-1s", "99999999999999999h"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}
