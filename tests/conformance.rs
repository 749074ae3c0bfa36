//! The suite under `cargo test` / `cargo nextest run`: one trial per check, named
//! `<clause id>::<check>`.
//!
//! The target comes from `CONFORMANCE_BASE_URL`, `CONFORMANCE_CDA_URL`,
//! `CONFORMANCE_ENVIRONMENT` and `CONFORMANCE_API_TOKEN`; without a base URL the embedded
//! reference server is started (once per process: nextest runs one process per trial).
//! `CONFORMANCE_SEED`, `CONFORMANCE_CASES` and `CONFORMANCE_PROFILE` tune the run.
//! Nothing is done before libtest-mimic has parsed its arguments, so `--list` stays clean.

use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use token_conformance::checks::{self, CheckDef, Profile};
use token_conformance::engine::{self, DEFAULT_CASES, RunOptions, Session};
use token_conformance::outcome::Status;

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

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn options() -> Result<RunOptions, String> {
    let number = |name: &str| -> Result<Option<u64>, String> {
        env(name)
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("{name} must be a whole number, got {v:?}"))
            })
            .transpose()
    };
    let profile = match env("CONFORMANCE_PROFILE").as_deref() {
        None | Some("documented") => Profile::Documented,
        Some("strict") => Profile::Strict,
        Some("staging") => Profile::Staging,
        Some(other) => {
            return Err(format!(
                "CONFORMANCE_PROFILE must be documented or strict, got {other:?}"
            ));
        }
    };
    let max_requests = match (number("CONFORMANCE_MAX_REQUESTS")?, profile) {
        (Some(max), _) => Some(max),
        (None, Profile::Staging) => Some(engine::STAGING_DEFAULT_MAX_REQUESTS),
        (None, _) => None,
    };
    let cases = match (number("CONFORMANCE_CASES")?, profile, max_requests) {
        (Some(n), _, _) => n.min(u64::from(u32::MAX)) as u32,
        (None, Profile::Staging, Some(max)) => {
            engine::staging_cases(max).map_err(|e| e.to_string())?
        }
        _ => DEFAULT_CASES,
    };
    Ok(RunOptions {
        base_url: env("CONFORMANCE_BASE_URL"),
        cda_url: env("CONFORMANCE_CDA_URL"),
        environment: env("CONFORMANCE_ENVIRONMENT"),
        secret: env("CONFORMANCE_API_TOKEN"),
        seed: number("CONFORMANCE_SEED")?.unwrap_or_else(engine::random_seed),
        cases,
        max_requests,
        allow_production: env("CONFORMANCE_ALLOW_PRODUCTION").is_some(),
        ca_cert: env("CONFORMANCE_CA_CERT").map(std::path::PathBuf::from),
        profile,
        ..RunOptions::default()
    })
}

fn session() -> Result<&'static Arc<Session>, Failed> {
    static SESSION: OnceLock<Result<Arc<Session>, String>> = OnceLock::new();
    SESSION
        .get_or_init(|| {
            let options = options()?;
            let session = runtime()
                .block_on(Session::open(&options))
                .map_err(|err| err.to_string())?;
            eprintln!(
                "token-conformance: target {} · seed {} (CONFORMANCE_SEED={} replays it)",
                session.client().target().name,
                options.seed,
                options.seed
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
