//! `replay`: one failure run again, by its replay id from a `--json` report or by
//! `--seed/--filter`, with every request it sends printed and its fixtures removed after.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::{CliError, Code, cases_in_range};
use crate::checks::Profile;
use crate::console::{errln, outln};
use crate::engine::Session;
use crate::faults::{Fault, FaultSet};
use crate::outcome::Status;
use crate::plan::{BudgetKind, Destructive, Limits, Plan, TargetKind, remote};
use crate::reference::ServerConfig;
use crate::replay::Case;

/// What `replay --help` says after the flags.
pub(crate) const AFTER_HELP: &str = "\
The target is the report's (a remote one needs CONFORMANCE_API_TOKEN, as for `run`), or
--base-url. A report of the embedded server names no faults: the replay then starts a clean
embedded server, unless --fault switches faults on.

Exit codes:
  0  the check passes now (or is skipped)
  1  the violation is shown again
  2  bad usage (no such id in the report, a missing CONFORMANCE_API_TOKEN)
  3  the check was inconclusive
  4  the target could not be tested at all";

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The failure's replay id, as the failure text and the JSON report's `replay_id` give it.
    #[arg(value_name = "ID", required_unless_present = "seed")]
    id: Option<String>,
    /// The `run --json` report that holds the failure.
    #[arg(long, value_name = "PATH", required_unless_present = "seed")]
    report: Option<PathBuf>,
    /// Without a report: the seed of the run.
    #[arg(long, requires = "filter", conflicts_with = "id")]
    seed: Option<u64>,
    /// Without a report: the check, `<clause id>::<check>` (exactly one must match).
    #[arg(long, value_name = "CHECK", requires = "seed")]
    filter: Option<String>,
    /// Without a report: generated cases per property of the run.
    #[arg(long, value_parser = cases_in_range(), requires = "seed")]
    cases: Option<u32>,
    /// Without a report: the run's profile.
    #[arg(long, value_enum, requires = "seed")]
    profile: Option<Profile>,
    /// Without a report: the run's budget, when it differs from what its profile means
    /// (`--profile strict --budget staging`).
    #[arg(long, value_enum, requires = "seed")]
    budget: Option<BudgetKind>,
    /// CMA base URL of the target (default: the report's; without either, the embedded server).
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,
    /// The target's CDA URL (default: the report's).
    #[arg(long, value_name = "URL")]
    cda_url: Option<String>,
    /// X-Environment (default: the report's).
    #[arg(long, value_name = "NAME")]
    environment: Option<String>,
    /// For the embedded server: switch a fault on (repeatable).
    #[arg(long = "fault", value_name = "NAME", conflicts_with = "base_url")]
    faults: Vec<Fault>,
    /// Allow a destructive check on a target the suite did not start itself.
    #[arg(long)]
    destructive: bool,
    /// Allow the public production host.
    #[arg(long)]
    allow_production: bool,
}

fn case_of(args: &ReplayArgs) -> Result<Case, CliError> {
    if let (Some(id), Some(path)) = (&args.id, &args.report) {
        return crate::replay::from_report(path, id).map_err(|e| CliError::Usage(e.to_string()));
    }
    let (Some(seed), Some(check)) = (args.seed, &args.filter) else {
        return Err(CliError::Usage(
            "replay needs an ID and --report PATH, or --seed and --filter".to_owned(),
        ));
    };
    let matching: Vec<String> = Session::selected(Some(check))
        .iter()
        .map(crate::checks::CheckDef::full_name)
        .collect();
    let exact = matching.iter().find(|name| *name == check);
    let check = match (exact, matching.as_slice()) {
        (Some(name), _) | (None, [name]) => name.clone(),
        (None, []) => {
            return Err(CliError::Usage(format!(
                "no check matches --filter {check:?} (see `token-conformance clauses`)"
            )));
        }
        (None, several) => {
            return Err(CliError::Usage(format!(
                "--filter {check:?} matches {} checks; replay runs one: {}",
                several.len(),
                several.join(", ")
            )));
        }
    };
    Ok(Case {
        check,
        seed,
        cases: args.cases.unwrap_or(crate::plan::DEFAULT_CASES),
        profile: args.profile.unwrap_or_default(),
        reported: String::new(),
        target: None,
    })
}

fn plan_of(args: &ReplayArgs, case: &Case) -> Result<Plan, CliError> {
    let token = std::env::var("CONFORMANCE_API_TOKEN").ok();
    let from_report = case.target.as_ref().filter(|t| !t.embedded);
    let target = match (&args.base_url, from_report) {
        (Some(base_url), _) => TargetKind::Remote(remote(
            base_url.clone(),
            args.cda_url.clone(),
            args.environment.clone(),
            token,
            None,
        )?),
        (None, Some(t)) => TargetKind::Remote(remote(
            t.base_url.clone(),
            args.cda_url.clone().or_else(|| t.cda_url.clone()),
            args.environment.clone().or_else(|| t.environment.clone()),
            token,
            None,
        )?),
        (None, None) => TargetKind::Embedded(Box::new(ServerConfig {
            rate_limit: None,
            faults: FaultSet::of(args.faults.iter().copied()),
            ..ServerConfig::default()
        })),
    };
    if !args.faults.is_empty() && matches!(target, TargetKind::Remote(_)) {
        return Err(CliError::Usage(
            "--fault switches faults on in the embedded server, but this replay runs against a remote target"
                .to_owned(),
        ));
    }
    let (strictness, budget) = case.strictness_and_budget();
    let budget = args.budget.unwrap_or(budget);
    Ok(Plan {
        target,
        strictness,
        budget,
        destructive: if args.destructive {
            Destructive::Allow
        } else {
            Destructive::EmbeddedOnly
        },
        allow_production: args.allow_production,
        limits: Limits::default(),
        filter: Some(case.check.clone()),
        seed: case.seed,
        cases: case.cases,
        concurrency: 1,
        record_requests: true,
        ..Plan::default()
    })
}

pub(crate) async fn replay(args: ReplayArgs) -> Result<Code, CliError> {
    let case = case_of(&args)?;
    let plan = plan_of(&args, &case)?;
    if case.target.as_ref().is_some_and(|t| t.embedded) && args.faults.is_empty() {
        outln!(
            "note: the report's target was the embedded server, and a report names no faults: this replay runs against a clean embedded server (add --fault NAME to switch faults on, or --base-url for a `serve --fault` server)"
        );
    }
    let session = Arc::new(Session::open(&plan).await?);
    let target = session.client().target().clone();
    outln!(
        "replay {} · {} · seed {} · cases {} · profile {} · target {}",
        case.id(),
        case.check,
        case.seed,
        case.cases,
        case.profile.as_str(),
        if target.embedded {
            format!(
                "the embedded server{}",
                if args.faults.is_empty() {
                    String::new()
                } else {
                    format!(
                        " with {}",
                        args.faults
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            )
        } else {
            crate::output::terminal_line(&target.base_url)
        }
    );
    if let Some(first) = case.reported.lines().nth(1) {
        outln!("reported: {}", crate::output::terminal_line(first));
    }
    let report = session.run_all(|_, _, _| {}).await;
    let sent: Vec<crate::client::SentRequest> = session
        .client()
        .stats()
        .sent
        .lock()
        .map(|log| log.clone())
        .unwrap_or_default();
    // The fixtures it created and removed, in full; the generated cases and their shrinking
    // only counted (hundreds of requests): the failure below shows the shrunk case's exchanges.
    outln!("\nrequests sent: {}", sent.len());
    let mut skipped = 0;
    for request in &sent {
        let path = reqwest::Url::parse(&request.url)
            .map(|u| u.path().to_owned())
            .unwrap_or_default();
        let fixture = (request.method == "POST"
            && matches!(path.as_str(), "/roles" | "/access_tokens"))
            || request.method == "DELETE";
        if !fixture {
            skipped += 1;
            continue;
        }
        if skipped > 0 {
            outln!("  … {skipped} requests of the check");
            skipped = 0;
        }
        outln!(
            "  {} {} {}",
            if request.method == "DELETE" {
                "cleanup:"
            } else {
                "fixture:"
            },
            crate::output::terminal_line(&request.method),
            crate::output::terminal_line(&request.url)
        );
        if let Some(body) = &request.body {
            outln!(
                "    {}",
                crate::output::terminal_line(&crate::text::truncate(body, 300))
            );
        }
    }
    if skipped > 0 {
        outln!("  … {skipped} requests of the check");
    }
    let Some(check) = report.clauses.iter().flat_map(|c| &c.checks).next() else {
        return Err(CliError::Usage(format!(
            "the check {} did not run",
            case.check
        )));
    };
    outln!();
    let code = match check.status {
        Status::Fail => {
            outln!("the violation is shown again:\n{}", check.message);
            Code::Violated
        }
        Status::Pass => {
            outln!(
                "{} passes now: the violation is not shown again",
                case.check
            );
            Code::Passed
        }
        Status::Skipped => {
            outln!("{} was skipped: {}", case.check, check.message);
            Code::Passed
        }
        Status::Inconclusive => {
            outln!("{} is inconclusive: {}", case.check, check.message);
            Code::Inconclusive
        }
    };
    let leftovers: Vec<&String> = check
        .warnings
        .iter()
        .filter(|w| w.starts_with("fixture left behind"))
        .collect();
    if leftovers.is_empty() {
        outln!("fixtures: every one the replay created was removed");
    } else {
        for leftover in leftovers {
            errln!("{leftover}");
        }
    }
    if let Ok(session) = Arc::try_unwrap(session) {
        session.close().await;
    }
    Ok(code)
}
