//! `run`: the suite against one target, with its reports, snapshots and exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::output::{Live, ReportFile, Signals};
use super::{CliError, Code, cases_in_range};
use crate::checks::Profile;
use crate::console::{errln, out, outln};
use crate::engine::{self, Session};
use crate::outcome::Status;
use crate::plan::{BudgetKind, Inputs, Reports};
use crate::spec::{SchemaId, Spec};

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// CMA base URL of the target. Without it, the embedded reference server is started.
    /// The management token is read from CONFORMANCE_API_TOKEN, never from a flag.
    #[arg(long, env = "CONFORMANCE_BASE_URL", value_name = "URL")]
    base_url: Option<String>,
    /// The target's CDA (GraphQL) URL; CDA clauses are inconclusive without it.
    #[arg(long, env = "CONFORMANCE_CDA_URL", value_name = "URL")]
    cda_url: Option<String>,
    /// Sent as X-Environment on CMA calls (default: the primary environment).
    #[arg(long, env = "CONFORMANCE_ENVIRONMENT", value_name = "NAME")]
    environment: Option<String>,
    /// Seed of the generated requests: the same seed sends the same requests (the full profile's
    /// permission histories probe as often as their holds allow). Random by default (printed).
    #[arg(long, env = "CONFORMANCE_SEED")]
    seed: Option<u64>,
    /// Generated cases per property, 1 to 10000 [default: 32; with the staging budget, sized
    /// by --max-requests].
    #[arg(long, env = "CONFORMANCE_CASES", value_parser = cases_in_range())]
    cases: Option<u32>,
    /// Stop the run after this long (e.g. 90s, 15m, 1h): the checks still running are then
    /// inconclusive, their fixtures are removed and the reports written.
    #[arg(
        long,
        env = "CONFORMANCE_DEADLINE",
        value_name = "DURATION",
        default_value = "15m",
        value_parser = crate::plan::parse_duration
    )]
    deadline: Duration,
    /// Run only the checks whose name (`<clause id>::<check>`) contains this text.
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// documented: documented promises are hard checks, observed behaviour gives warnings.
    /// strict: observed behaviour is asserted too. staging: documented, with the staging
    /// budget (--budget staging: every clause covered in at most 400 requests, see
    /// --max-requests).
    #[arg(
        long,
        value_enum,
        env = "CONFORMANCE_PROFILE",
        default_value = "documented"
    )]
    profile: Profile,
    /// Assert observed behaviour too, whatever the budget (`--profile staging --strict`).
    #[arg(long)]
    strict: bool,
    /// full: every case and burst. staging: sized for a shared staging (what
    /// `--profile staging` selects) [default: full, or staging with --profile staging].
    #[arg(long, value_enum, env = "CONFORMANCE_BUDGET")]
    budget: Option<BudgetKind>,
    /// Also write the report as JSON (schema: specs/report.schema.json).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Also write the report as JUnit XML: one testcase per check, one testsuite per clause.
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Also write a Markdown summary for a CI job page: a table of clauses and each failure
    /// with its reproducer [default: appended to $GITHUB_STEP_SUMMARY when that is set].
    #[arg(long, value_name = "PATH")]
    summary: Option<PathBuf>,
    /// Allow destructive clauses (rotating and deleting a factory token) on a target the suite
    /// did not start itself (by default they run only on the embedded server, not on loopback).
    #[arg(long, conflicts_with = "no_destructive")]
    destructive: bool,
    /// Skip destructive clauses even on the embedded server.
    #[arg(long)]
    no_destructive: bool,
    /// Stop after this many requests (the rest is inconclusive; fixture cleanup is exempt).
    /// With the staging budget it also sizes the generated cases (default 400).
    #[arg(long, env = "CONFORMANCE_MAX_REQUESTS", value_name = "N")]
    max_requests: Option<u64>,
    /// Print the staging request plan (requests per clause, and why) and exit: nothing is
    /// sent.
    #[arg(long)]
    plan: bool,
    /// Allow the public production host (site-api.datocms.com); staging is the intended target.
    #[arg(long, env = "CONFORMANCE_ALLOW_PRODUCTION")]
    allow_production: bool,
    /// Also trust the CA certificates in this PEM file (a target behind a private CA).
    #[arg(long, env = "CONFORMANCE_CA_CERT", value_name = "PEM")]
    ca_cert: Option<PathBuf>,
    /// The target's name in reports (default: `reference`, or the host name).
    #[arg(long, value_name = "NAME")]
    target_name: Option<String>,
    /// Record (or update) this target's observation snapshots under --snapshot-dir/<target name>.
    /// Without it, existing snapshots are compared and changes reported.
    #[arg(long)]
    update_snapshots: bool,
    /// Where the snapshot folders are.
    #[arg(long, value_name = "DIR", default_value = "snapshots")]
    snapshot_dir: PathBuf,
    /// List every check, passing ones included.
    #[arg(long, short)]
    verbose: bool,
    /// No live progress on stderr (the report and messages are still printed).
    #[arg(long, short)]
    quiet: bool,
}

impl RunArgs {
    /// What the flags (and clap's `CONFORMANCE_*` variables) give, plus the token.
    fn inputs(&self) -> Inputs {
        Inputs {
            base_url: self.base_url.clone(),
            cda_url: self.cda_url.clone(),
            environment: self.environment.clone(),
            token: std::env::var("CONFORMANCE_API_TOKEN").ok(),
            ca_cert: self.ca_cert.clone(),
            target_name: self.target_name.clone(),
            seed: self.seed,
            cases: self.cases.map(u64::from),
            profile: Some(self.profile),
            strict: self.strict,
            budget: self.budget,
            max_requests: self.max_requests,
            deadline: Some(self.deadline),
            filter: self.filter.clone(),
            destructive: self.destructive,
            no_destructive: self.no_destructive,
            allow_production: self.allow_production,
            reports: Reports {
                json: self.json.clone(),
                junit: self.junit.clone(),
            },
        }
    }
}

impl RunArgs {
    /// Where the Markdown summary goes, and whether it is appended: `--summary` is written
    /// whole; without it, `$GITHUB_STEP_SUMMARY` (when set) is appended to, as GitHub
    /// expects of every step.
    fn summary_target(&self) -> Option<(PathBuf, bool)> {
        if let Some(path) = &self.summary {
            return Some((path.clone(), false));
        }
        std::env::var_os("GITHUB_STEP_SUMMARY")
            .filter(|v| !v.is_empty())
            .map(|v| (PathBuf::from(v), true))
    }
}

fn write_summary(path: &std::path::Path, append: bool, text: &str) -> Result<(), CliError> {
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .map_err(|source| CliError::Write {
            what: "the summary to ",
            path: path.to_owned(),
            source,
        })
}

pub(crate) async fn run(args: RunArgs) -> Result<Code, CliError> {
    let plan = args.inputs().resolve()?;
    if args.plan {
        let max_requests = plan
            .limits
            .max_requests
            .unwrap_or(crate::plan::STAGING_DEFAULT_MAX_REQUESTS);
        let cases = if plan.budget == crate::plan::BudgetKind::Staging {
            plan.cases
        } else {
            crate::plan::staging_cases(max_requests).unwrap_or(1)
        };
        let strict = plan.strictness == crate::plan::Strictness::Strict;
        out!(
            "{}",
            crate::checks::staging::render(cases, max_requests, strict)
        );
        return Ok(Code::Passed);
    }
    if Session::selected(plan.filter.as_deref()).is_empty() {
        return Err(CliError::Usage(format!(
            "no check matches --filter {:?} (see `token-conformance clauses`)",
            plan.filter.clone().unwrap_or_default()
        )));
    }
    let mut files = Vec::new();
    for (flag, path, junit) in [
        ("--json", &plan.reports.json, false),
        ("--junit", &plan.reports.junit, true),
    ] {
        if let Some(path) = path {
            match ReportFile::open(flag, path) {
                Ok(file) => files.push((file, junit)),
                Err(message) => {
                    files.into_iter().for_each(|(f, _)| ReportFile::discard(f));
                    return Err(CliError::Usage(message));
                }
            }
        }
    }
    let discard = |files: Vec<(ReportFile, bool)>| files.into_iter().for_each(|(f, _)| f.discard());
    let mut signals = match Signals::listen() {
        Ok(signals) => signals,
        Err(error) => {
            discard(files);
            return Err(CliError::Usage(format!(
                "failed to listen for signals: {error}"
            )));
        }
    };
    let opened = tokio::select! {
        opened = Session::open(&plan) => opened,
        signal = signals.next() => {
            discard(files);
            return Err(CliError::Interrupted(format!(
                "\ninterrupted ({signal}) before the run started: nothing was created"
            )));
        }
    };
    let session = match opened {
        Ok(session) => Arc::new(session),
        Err(error) => {
            discard(files);
            return Err(error.into());
        }
    };
    // The first signal stops the checks (they clean up, the reports are written); a second
    // one cuts the cleanup short too.
    let interrupted: Arc<std::sync::Mutex<Option<&'static str>>> = Arc::default();
    let listener = {
        let (session, interrupted) = (Arc::clone(&session), Arc::clone(&interrupted));
        tokio::spawn(async move {
            let signal = signals.next().await;
            if let Ok(mut slot) = interrupted.lock() {
                *slot = Some(signal);
            }
            errln!(
                "\ninterrupted ({signal}): stopping the checks and removing their fixtures (again to stop at once)…"
            );
            session.interrupt(&format!("the run was interrupted ({signal})"));
            let again = signals.next().await;
            errln!("interrupted again ({again}): cleanup cut short");
            session.stop_now(&format!("the run was interrupted twice ({again})"));
        })
    };
    let progress = Live::start(args.quiet);
    progress.target(
        None,
        Some(session.client().shared_stats()),
        Some(Session::selected(plan.filter.as_deref()).len()),
    );
    let report = session
        .run_all(|check, done, total| progress.finished(check, done, total))
        .await;
    progress.finish(false);
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    out!("{}", report.render_styled(args.verbose, color));
    let mut failed_to_write = false;
    for (mut file, junit) in files {
        let text = if junit {
            crate::report::junit::junit(&report)
        } else {
            let json = report.to_json();
            if let Err(violations) = Spec::embedded().schemas().validate(SchemaId::Report, &json) {
                errln!(
                    "warning: the JSON report does not match specs/report.schema.json (a bug): {}",
                    violations[0]
                );
            }
            crate::output::json_safe(&serde_json::to_string_pretty(&json).unwrap_or_default())
                + "\n"
        };
        if file.write(&text).is_err() {
            failed_to_write = true;
        }
    }
    if let Some((path, append)) = args.summary_target()
        && let Err(error) = write_summary(&path, append, &crate::report::summary::summary(&report))
    {
        error.report();
        failed_to_write = true;
    }
    let leftovers: Vec<&String> = report
        .clauses
        .iter()
        .flat_map(|c| &c.checks)
        .flat_map(|c| &c.warnings)
        .filter(|w| w.starts_with("fixture left behind"))
        .collect();
    if !leftovers.is_empty() && !report.embedded {
        errln!(
            "{} fixtures may be left on the target (see the warnings in the report): remove them with `token-conformance sweep` (same --base-url and CONFORMANCE_API_TOKEN)",
            leftovers.len()
        );
    }
    let dir = crate::observe::snapshot_dir(&args.snapshot_dir, &report.target_name);
    if session.stopped().is_none() && (args.update_snapshots || dir.is_dir()) {
        match crate::observe::observe(&session).await {
            Ok(observations) => report_snapshots(&dir, &observations, args.update_snapshots),
            Err(finding) => errln!(
                "warning: the observations could not be made: {}",
                crate::report::finding_line(&finding, session.client().secrets())
            ),
        }
    }
    let signal = interrupted.lock().ok().and_then(|slot| *slot);
    if let Some(reason) = session.stopped()
        && signal.is_none()
    {
        errln!("stopped: {reason}; the checks still running then are inconclusive");
    }
    listener.abort();
    let _ = listener.await;
    if let Ok(session) = Arc::try_unwrap(session) {
        session.close().await;
    }
    if signal.is_some() {
        return Ok(Code::Interrupted);
    }
    if failed_to_write {
        return Err(CliError::Reported(Code::Usage));
    }
    Ok(match engine::overall(&report) {
        Status::Pass | Status::Skipped => Code::Passed,
        Status::Fail => Code::Violated,
        Status::Inconclusive => Code::Inconclusive,
    })
}

/// Compare observations with the stored snapshots, or record them.
fn report_snapshots(
    dir: &std::path::Path,
    observations: &[crate::observe::Observation],
    update: bool,
) {
    if update {
        match crate::observe::write_snapshots(dir, observations) {
            Ok(()) => outln!(
                "recorded {} observation snapshots in {}",
                observations.len(),
                dir.display()
            ),
            Err(source) => CliError::Write {
                what: "snapshots in ",
                path: dir.to_owned(),
                source,
            }
            .report(),
        }
        return;
    }
    let (mut changed, mut new) = (Vec::new(), Vec::new());
    for observation in observations {
        match crate::observe::read_snapshot(dir, &observation.name) {
            None => new.push(observation.name.as_str()),
            Some(stored) if stored != observation.value => changed.push(observation.name.as_str()),
            Some(_) => {}
        }
    }
    outln!(
        "observations: {} unchanged, {} changed, {} new (snapshots in {})",
        observations.len() - changed.len() - new.len(),
        changed.len(),
        new.len(),
        dir.display()
    );
    for name in &changed {
        outln!(
            "  changed: {name} (review with --update-snapshots and git diff, or cargo insta review)"
        );
    }
    for name in &new {
        outln!("  new: {name} (record with --update-snapshots)");
    }
}
