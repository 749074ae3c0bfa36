//! `mutants`: the suite against the embedded server once per fault, to prove what it detects.

use std::path::PathBuf;

use clap::Args;

use super::output::{Progress, write_file};
use super::{CliError, Code, cases_in_range};
use crate::checks::Profile;
use crate::console::{out, outln};
use crate::faults::Fault;
use crate::plan::DEFAULT_CASES;

#[derive(Debug, Args)]
pub(crate) struct MutantsArgs {
    /// Seed of the generated requests.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Generated cases per property (1 to 10000).
    #[arg(long, default_value_t = DEFAULT_CASES, value_parser = cases_in_range())]
    cases: u32,
    /// Only these faults (repeatable; default: all).
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<Fault>,
    /// How many faulty servers run at once.
    #[arg(long, default_value_t = 8)]
    parallel: usize,
    /// `documented` (the default run, rate limit off) or `staging` (the staging profile
    /// against a server with the documented rate limit, 60 per 3 s, at most 400 requests
    /// each). Faults only `strict` sees run strict either way.
    #[arg(long, value_enum, default_value_t = Profile::Documented)]
    profile: Profile,
    /// Run the whole suite against each fault, not only the checks of its declared clauses
    /// (slower; a fault some other clause catches then shows as MISATTRIBUTED). `--profile
    /// staging` always runs the whole suite.
    #[arg(long)]
    all_checks: bool,
    /// Write the table as JSON.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Write the table as Markdown.
    #[arg(long, value_name = "PATH")]
    markdown: Option<PathBuf>,
    /// List the faults and exit.
    #[arg(long)]
    list: bool,
}

pub(crate) async fn mutants(args: MutantsArgs) -> Result<Code, CliError> {
    if args.list {
        for fault in Fault::ALL {
            let strict = if fault.strict_only() { " [strict]" } else { "" };
            outln!(
                "{:<32} {}{strict}: {}",
                fault.name(),
                fault
                    .clauses()
                    .iter()
                    .map(|c| c.id())
                    .collect::<Vec<_>>()
                    .join(", "),
                fault.description()
            );
        }
        return Ok(Code::Passed);
    }
    let faults: Vec<Fault> = if args.faults.is_empty() {
        Fault::ALL.to_vec()
    } else {
        args.faults.clone()
    };
    let started = std::time::Instant::now();
    let progress = Progress::everywhere();
    let suite = match args.profile {
        Profile::Staging => crate::mutants::Suite::Staging {
            max_requests: crate::plan::STAGING_DEFAULT_MAX_REQUESTS,
        },
        Profile::Documented | Profile::Strict => crate::mutants::Suite::Full { cases: args.cases },
    };
    let results = crate::mutants::run_all_under(
        &faults,
        args.seed,
        suite,
        args.parallel,
        args.all_checks,
        |r, done, total| {
            progress.show(&format!(
                "[{done}/{total}] {} {}",
                r.verdict.as_str(),
                r.fault
            ));
        },
    )
    .await;
    progress.clear();
    let table = crate::mutants::markdown(&results);
    out!("{table}");
    let never = if args.faults.is_empty() {
        crate::mutants::checks_never_failed(&results)
    } else {
        Vec::new()
    };
    // That every check can fail is the default run's proof (its generated cases reach every
    // check); under staging's one generated case a check some other clause beats to a fault
    // is shown, but the verdict there is each fault killed within the budget.
    let staging = args.profile == Profile::Staging;
    for check in &never {
        let note = if staging {
            " (noted; not a failure under --profile staging)"
        } else {
            ""
        };
        outln!("check never failed under any fault: {check}{note}");
    }
    for r in results.iter().filter(|r| !r.note.is_empty()) {
        outln!("note on {}: {}", r.fault, r.note);
    }
    outln!(
        "{} faults in {:.1} s (seed {}, {} cases per property)",
        results.len(),
        started.elapsed().as_secs_f64(),
        args.seed,
        args.cases
    );
    if let Some(path) = &args.json {
        let text =
            serde_json::to_string_pretty(&crate::mutants::to_json(&results, args.seed, args.cases))
                .unwrap_or_default();
        write_file("", path, &(text + "\n"))?;
    }
    if let Some(path) = &args.markdown {
        write_file("", path, &table)?;
    }
    let all_killed = results
        .iter()
        .all(|r| r.verdict == crate::mutants::Verdict::Killed);
    Ok(if all_killed && (never.is_empty() || staging) {
        Code::Passed
    } else {
        Code::Violated
    })
}
