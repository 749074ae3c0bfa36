//! `token-conformance mutants`: the suite against a fresh embedded server per fault.
//!
//! A fault is *killed* when a clause it declares fails, *survives* when no clause fails, and is
//! *misattributed* when only clauses it does not declare fail. The mutation score is killed
//! over all. Every check must also be failed by at least one fault: a check no fault can fail
//! proves nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::checks::{self, CheckDef, Profile};
use crate::engine::Session;
use crate::faults::{Fault, FaultSet, ServerSetting};
use crate::outcome::Status;
use crate::plan::{BudgetKind, Limits, Plan, Strictness, TargetKind};
use crate::reference::{RateLimit, ServerConfig};

/// What became of one fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A declared clause failed.
    Killed,
    /// Nothing failed.
    Survived,
    /// Only undeclared clauses failed.
    Misattributed,
    /// The run could not start or was inconclusive.
    Error,
}

impl Verdict {
    /// The word in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Killed => "killed",
            Verdict::Survived => "SURVIVED",
            Verdict::Misattributed => "MISATTRIBUTED",
            Verdict::Error => "ERROR",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct MutantResult {
    /// The fault.
    pub fault: Fault,
    /// The profile it ran under.
    pub profile: Profile,
    /// Clauses that failed.
    pub failed_clauses: Vec<String>,
    /// Checks that failed (`<clause>::<check>`).
    pub failed_checks: Vec<String>,
    /// Requests the run had sent (429s included) when a check of a declared clause ended
    /// failed: an upper bound on what detection took, since other checks run meanwhile.
    pub requests_to_detection: Option<u64>,
    /// Time until a declared clause failed.
    pub time_to_detection: Option<Duration>,
    /// Requests of the whole run.
    pub requests: u64,
    /// Of those, cleanup requests sent past the request cap (a resend after a 429).
    pub requests_past_cap: u64,
    /// What became of it.
    pub verdict: Verdict,
    /// Why, for an error.
    pub note: String,
}

/// The server configuration a fault runs with: rate limiting off (a run takes a second),
/// plus whatever setting the fault declares ([`Fault::server_setting`]).
pub fn server_config(fault: Option<Fault>) -> ServerConfig {
    // One arm per setting a fault can declare: a new setting does not compile until it is here.
    let rate_limit = fault
        .and_then(Fault::server_setting)
        .map(|setting| match setting {
            ServerSetting::RateLimit { requests, window } => RateLimit { requests, window },
        });
    ServerConfig {
        rate_limit,
        faults: FaultSet::of(fault),
        ..ServerConfig::default()
    }
}

/// The server configuration under `mutants --profile staging`: what a shared staging is,
/// the documented default rate limit (60 requests per 3 s) for every fault.
pub fn staging_server_config(fault: Option<Fault>) -> ServerConfig {
    ServerConfig {
        rate_limit: Some(RateLimit::DOCUMENTED_DEFAULT),
        ..server_config(fault)
    }
}

/// The profile a fault runs under: its own where only `--profile strict` sees it, else
/// `suite` (`documented`, or `staging` for `mutants --profile staging`).
pub fn profile_for(fault: Fault, suite: Profile) -> Profile {
    if fault.strict_only() {
        Profile::Strict
    } else {
        suite
    }
}

/// Run the suite against the embedded server with `fault` (or none).
///
/// With `all_checks` false a fault runs only the checks of the clauses it declares (the
/// verdict is about those); with it, the whole suite, which can also see misattribution. The
/// clean run (no fault) always runs the whole suite.
pub async fn run_one(
    fault: Option<Fault>,
    seed: u64,
    cases: u32,
    profile: Profile,
    all_checks: bool,
) -> MutantResult {
    let plan = Plan {
        target: TargetKind::Embedded(Box::new(server_config(fault))),
        seed,
        cases,
        strictness: if profile == Profile::Strict {
            Strictness::Strict
        } else {
            Strictness::Documented
        },
        concurrency: 8,
        ..Plan::default()
    };
    run_with(fault, profile, plan, all_checks).await
}

/// Run the suite as `--profile staging` would against a shared staging: the documented
/// rate limit on the server, the staging budget, and at most `max_requests` requests (a
/// fault only `--profile strict` sees runs strict, with the same budget and cap).
/// It is always the whole suite: requests to detection count what a user's staging run sends,
/// and a 429 some other check met is part of what `headers.rate_limit` sees.
pub async fn run_one_staging(fault: Option<Fault>, seed: u64, max_requests: u64) -> MutantResult {
    let profile = fault.map_or(Profile::Staging, |f| profile_for(f, Profile::Staging));
    let plan = Plan {
        target: TargetKind::Embedded(Box::new(staging_server_config(fault))),
        seed,
        cases: crate::plan::staging_cases(max_requests).unwrap_or(1),
        strictness: if profile == Profile::Strict {
            Strictness::Strict
        } else {
            Strictness::Documented
        },
        budget: BudgetKind::Staging,
        limits: Limits {
            max_requests: Some(max_requests),
            ..Limits::default()
        },
        concurrency: 8,
        ..Plan::default()
    };
    run_with(fault, profile, plan, true).await
}

/// The checks a run against `fault` makes: those of its declared clauses, or all.
fn checks_for(fault: Option<Fault>, all_checks: bool) -> Vec<CheckDef> {
    let all = Session::selected(None);
    match fault {
        Some(fault) if !all_checks => all
            .into_iter()
            .filter(|def| fault.clauses().contains(&def.clause))
            .collect(),
        _ => all,
    }
}

async fn run_with(
    fault: Option<Fault>,
    profile: Profile,
    plan: Plan,
    all_checks: bool,
) -> MutantResult {
    let started = Instant::now();
    let result = |verdict, note: String| MutantResult {
        fault: fault.unwrap_or(Fault::ALL[0]),
        profile,
        failed_clauses: Vec::new(),
        failed_checks: Vec::new(),
        requests_to_detection: None,
        time_to_detection: None,
        requests: 0,
        requests_past_cap: 0,
        verdict,
        note,
    };
    let session = match Session::open(&plan).await {
        Ok(session) => Arc::new(session),
        Err(err) => return result(Verdict::Error, err.to_string()),
    };
    let mut first: Option<(u64, Duration)> = None;
    let counter = Arc::clone(&session);
    let declared = fault.map_or(&[][..], Fault::clauses);
    let report = session
        .run_checks(checks_for(fault, all_checks), |check, _, _| {
            // Detection is the declared clause failing: requests until its check ended.
            let is_declared = declared.iter().any(|c| check.clause == c.id());
            if check.status == Status::Fail && is_declared && first.is_none() {
                let requests = counter
                    .client()
                    .stats()
                    .requests
                    .load(std::sync::atomic::Ordering::Relaxed);
                first = Some((requests, started.elapsed()));
            }
        })
        .await;
    drop(counter);
    if let Ok(session) = Arc::try_unwrap(session) {
        session.close().await;
    }
    let failed_clauses: Vec<String> = report
        .clauses
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.id.clone())
        .collect();
    let failed_checks: Vec<String> = report
        .clauses
        .iter()
        .flat_map(|c| c.checks.iter())
        .filter(|k| k.status == Status::Fail)
        .map(|k| k.full_name())
        .collect();
    let inconclusive: Vec<String> = report
        .clauses
        .iter()
        .flat_map(|c| c.checks.iter())
        .filter(|k| k.status == Status::Inconclusive)
        .map(|k| format!("{}: {}", k.full_name(), k.message))
        .collect();
    let verdict = if failed_clauses
        .iter()
        .any(|c| declared.iter().any(|d| d.id() == c))
    {
        Verdict::Killed
    } else if !failed_clauses.is_empty() {
        Verdict::Misattributed
    } else if !inconclusive.is_empty() {
        Verdict::Error
    } else {
        Verdict::Survived
    };
    MutantResult {
        fault: fault.unwrap_or(Fault::ALL[0]),
        profile,
        failed_clauses,
        failed_checks,
        requests_to_detection: first.map(|(r, _)| r),
        time_to_detection: first.map(|(_, t)| t),
        requests: report.requests,
        requests_past_cap: report.requests_past_cap,
        verdict,
        note: inconclusive.join("; "),
    }
}

/// Run every fault in `faults`, `parallel` at a time, calling `progress` after each.
/// Each fault runs only its declared clauses' checks; [`run_all_under`] with `all_checks`
/// runs the whole suite per fault.
pub async fn run_all(
    faults: &[Fault],
    seed: u64,
    cases: u32,
    parallel: usize,
    progress: impl FnMut(&MutantResult, usize, usize),
) -> Vec<MutantResult> {
    run_all_under(
        faults,
        seed,
        Suite::Full { cases },
        parallel,
        false,
        progress,
    )
    .await
}

/// How `mutants` runs the suite against each fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// The default run (`documented`, or `strict` for a fault only it sees), rate limit off.
    Full {
        /// Generated cases per property.
        cases: u32,
    },
    /// `--profile staging` under the documented rate limit, capped at `max_requests`.
    Staging {
        /// The request budget of each run.
        max_requests: u64,
    },
}

impl Suite {
    fn profile_of(self, fault: Fault) -> Profile {
        match self {
            Suite::Full { .. } => profile_for(fault, Profile::Documented),
            Suite::Staging { .. } => profile_for(fault, Profile::Staging),
        }
    }
}

/// [`run_all`] under either suite; `all_checks` runs the whole suite against each fault
/// under `Full` (slower; it can tell a kill from a misattribution). `Staging` always does.
pub async fn run_all_under(
    faults: &[Fault],
    seed: u64,
    suite: Suite,
    parallel: usize,
    all_checks: bool,
    mut progress: impl FnMut(&MutantResult, usize, usize),
) -> Vec<MutantResult> {
    let limit = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, fault) in faults.iter().copied().enumerate() {
        let limit = Arc::clone(&limit);
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let result = match suite {
                Suite::Full { cases } => {
                    run_one(
                        Some(fault),
                        seed,
                        cases,
                        suite.profile_of(fault),
                        all_checks,
                    )
                    .await
                }
                Suite::Staging { max_requests } => {
                    run_one_staging(Some(fault), seed, max_requests).await
                }
            };
            (index, result)
        });
    }
    let mut results = Vec::with_capacity(faults.len());
    while let Some(joined) = tasks.join_next().await {
        if let Ok((index, result)) = joined {
            progress(&result, results.len() + 1, faults.len());
            results.push((index, result));
        }
    }
    // A run whose task died still gets its row, as an error.
    for (index, fault) in faults.iter().copied().enumerate() {
        if !results.iter().any(|(i, _)| *i == index) {
            let profile = suite.profile_of(fault);
            results.push((
                index,
                MutantResult {
                    fault,
                    profile,
                    failed_clauses: Vec::new(),
                    failed_checks: Vec::new(),
                    requests_to_detection: None,
                    time_to_detection: None,
                    requests: 0,
                    requests_past_cap: 0,
                    verdict: Verdict::Error,
                    note: "the run's task failed (a bug in token-conformance)".to_owned(),
                },
            ));
        }
    }
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// Checks that no fault made fail. A check counts as failed only under a fault that
/// [`crate::coverage`] says proves it, so that what `clauses` shows is what was measured.
pub fn checks_never_failed(results: &[MutantResult]) -> Vec<String> {
    let coverage = crate::coverage::of_this_build();
    let proving = |def: &checks::CheckDef| -> Vec<String> {
        coverage
            .clauses
            .iter()
            .filter(|c| c.id == def.clause.id())
            .flat_map(|c| c.checks.iter().filter(|k| k.name == def.name))
            .flat_map(|k| k.faults.iter().cloned())
            .collect()
    };
    checks::all()
        .iter()
        .filter(|def| {
            let (name, proving) = (def.full_name(), proving(def));
            !results.iter().any(|r| {
                r.failed_checks.contains(&name) && proving.iter().any(|f| f == r.fault.name())
            })
        })
        .map(CheckDef::full_name)
        .collect()
}

/// The mutation score: killed over all, in percent.
pub fn score(results: &[MutantResult]) -> f64 {
    if results.is_empty() {
        return 0.0;
    }
    let killed = results
        .iter()
        .filter(|r| r.verdict == Verdict::Killed)
        .count();
    100.0 * killed as f64 / results.len() as f64
}

/// The table as Markdown (also what the README shows).
pub fn markdown(results: &[MutantResult]) -> String {
    let mut out = String::from(
        "| fault | declared clause | profile | detected | failing clauses | requests to detection | time to detection |\n|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            r.fault,
            r.fault
                .clauses()
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", "),
            r.profile.as_str(),
            r.verdict.as_str(),
            if r.failed_clauses.is_empty() {
                "—".to_owned()
            } else {
                r.failed_clauses.join(", ")
            },
            r.requests_to_detection
                .map_or("—".to_owned(), |n| n.to_string()),
            r.time_to_detection
                .map_or("—".to_owned(), |t| format!("{} ms", t.as_millis())),
        ));
    }
    let killed = results
        .iter()
        .filter(|r| r.verdict == Verdict::Killed)
        .count();
    out.push_str(&format!(
        "\nMutation score: {killed}/{} faults killed by their declared clause ({:.0}%).\n",
        results.len(),
        score(results)
    ));
    out
}

/// The table as JSON (`mutants --json PATH`).
pub fn to_json(results: &[MutantResult], seed: u64, cases: u32) -> Value {
    json!({
        "seed": seed,
        "cases": cases,
        "score_percent": score(results),
        "faults": results.iter().map(|r| json!({
            "fault": r.fault.name(),
            "description": r.fault.description(),
            "declared_clauses": r.fault.clauses(),
            "profile": r.profile,
            "verdict": r.verdict.as_str().to_ascii_lowercase(),
            "failed_clauses": r.failed_clauses,
            "failed_checks": r.failed_checks,
            "requests_to_detection": r.requests_to_detection,
            "requests_past_cap": r.requests_past_cap,
            "ms_to_detection": r.time_to_detection.map(|t| t.as_millis() as u64),
            "requests": r.requests,
            "note": r.note,
        })).collect::<Vec<_>>(),
        "checks_never_failed": checks_never_failed(results),
    })
}
