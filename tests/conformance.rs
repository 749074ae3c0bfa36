//! The suite under `cargo test` / `cargo nextest run`: one trial per check, named
//! `<clause id>::<check>`.
//!
//! The target comes from `CONFORMANCE_BASE_URL`, `CONFORMANCE_CDA_URL`,
//! `CONFORMANCE_ENVIRONMENT` and `CONFORMANCE_API_TOKEN`; without a base URL the embedded
//! reference server is started (once per process: nextest runs one process per trial).
//! `CONFORMANCE_SEED`, `CONFORMANCE_CASES`, `CONFORMANCE_PROFILE`, `CONFORMANCE_BUDGET`,
//! `CONFORMANCE_MAX_REQUESTS` and `CONFORMANCE_DEADLINE` tune the run, resolved by the same
//! plan as `token-conformance run` (`token_conformance::plan`).
//! Nothing is done before libtest-mimic has parsed its arguments, so `--list` stays clean.

use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use token_conformance::checks::{self, CheckDef};
use token_conformance::engine::Session;
use token_conformance::outcome::Status;
use token_conformance::plan::{Inputs, Plan};

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let trials = checks::all()
        .into_iter()
        .map(|def| Trial::ignorable_test(def.full_name(), move || run_trial(&def)))
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|err| panic!("failed to start the tokio runtime: {err}"))
    })
}

/// The plan from the `CONFORMANCE_*` variables, through the same resolver as `run`.
fn plan() -> Result<Plan, String> {
    Inputs::from_env(|name| std::env::var(name).ok())
        .and_then(Inputs::resolve)
        .map_err(|err| err.to_string())
}

fn session() -> Result<&'static Arc<Session>, Failed> {
    static SESSION: OnceLock<Result<Arc<Session>, String>> = OnceLock::new();
    SESSION
        .get_or_init(|| {
            let plan = plan()?;
            let session = runtime()
                .block_on(Session::open(&plan))
                .map_err(|err| err.to_string())?;
            eprintln!(
                "token-conformance: target {} · seed {} (CONFORMANCE_SEED={} replays it)",
                session.client().target().name,
                plan.seed,
                plan.seed
            );
            Ok(Arc::new(session))
        })
        .as_ref()
        .map_err(|err| Failed::from(format!("the suite could not start: {err}")))
}

fn run_trial(def: &CheckDef) -> Result<Completion, Failed> {
    let session = session()?;
    let report = runtime().block_on(session.run_check(def));
    for warning in &report.warnings {
        eprintln!("warning: {}: {warning}", report.full_name());
    }
    match report.status {
        Status::Pass => Ok(Completion::Completed),
        Status::Skipped => Ok(Completion::ignored_with(format!(
            "skipped: {}",
            report.message
        ))),
        // The embedded server cannot be "untestable": there, inconclusive is a bug.
        Status::Inconclusive if !session.client().target().embedded => Ok(
            Completion::ignored_with(format!("inconclusive: {}", report.message)),
        ),
        Status::Inconclusive => Err(format!(
            "inconclusive against the embedded server: {}",
            report.message
        )
        .into()),
        Status::Fail => Err(report.message.into()),
    }
}
