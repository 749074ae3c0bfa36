//! The command line: one module per command (`run`, the default, `serve`, `clauses`,
//! `matrix`, `sweep`, `openapi`, `mutants`, `replay`), one error type that maps to the documented exit
//! codes ([`Code`], [`CliError`]), and one output helper ([`output`]). The commands turn
//! their flags into a [`Plan`](crate::plan::Plan) and leave the rest to the library.

mod clauses;
mod export;
mod matrix;
mod mutants;
pub mod output;
mod replay;
mod run;
mod serve;
mod sweep;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::console::errln;
use crate::engine::RunError;
use crate::fixtures::sweep::SweepError;
use crate::plan::{MAX_CASES, PlanError};

pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0  every clause passed or was skipped
  1  a clause was violated
  2  bad usage or configuration (flags, URLs, missing or refused CONFORMANCE_API_TOKEN)
  3  nothing failed, but something was inconclusive
  4  the target could not be tested at all (nothing listens, or it does not answer like the API)
130  interrupted (Ctrl-C, SIGTERM or SIGHUP): the checks stopped, their fixtures were removed
     (for at most 30 s; what is left is listed, for `sweep`) and the reports were written";

/// A conformance suite for the DatoCMS CMA endpoint "Update an API token"
/// (PUT /access_tokens/:id), with an embedded reference server.
///
/// With no arguments it runs the whole suite against its own embedded reference server.
#[derive(Debug, Parser)]
#[command(name = "token-conformance", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the suite, clause by clause (the default command).
    #[command(after_help = EXIT_CODES)]
    Run(run::RunArgs),
    /// Run the embedded reference server until Ctrl-C.
    #[command(after_help = serve::AFTER_HELP)]
    Serve(serve::ServeArgs),
    /// Print the clause catalog: each clause, its checks and the faults that prove them.
    Clauses {
        /// Print JSON (for tools) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run the suite against several targets and write a compatibility table (clauses × targets).
    #[command(
        after_help = "Exit codes:\n  0  the table was written (failing targets are data, not errors)\n  2  bad usage, an invalid targets file, or a --markdown/--html path that cannot be written\n130  interrupted (SIGINT, SIGTERM, SIGHUP): the running target cleaned up, the table written"
    )]
    Matrix(matrix::MatrixArgs),
    /// Remove the roles and tokens a killed run left behind (names `conformance-<run id>-…` only).
    Sweep(sweep::SweepArgs),
    /// Print an OpenAPI 3.1 document of the endpoints the suite calls (access tokens, roles, /site, /users/me), generated from specs/.
    Openapi,
    /// Prove the suite's detection power: run it against the embedded server once per fault.
    #[command(
        after_help = "Exit codes:\n  0  every fault was detected by a clause it declares, and every check failed under some fault\n  1  a fault survived, was caught only by undeclared clauses, or a check never failed\n  2  bad usage"
    )]
    Mutants(mutants::MutantsArgs),
    /// Run one failure again after the run: by its replay id from a `--json` report, or by
    /// `--seed` and `--filter`; prints every request and removes its fixtures.
    #[command(after_help = replay::AFTER_HELP)]
    Replay(replay::ReplayArgs),
}

/// The exit codes, as `--help` documents them ([`EXIT_CODES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Every clause passed or was skipped (or the command did what it was asked).
    Passed = 0,
    /// A clause was violated (`mutants`: a fault survived; `sweep`: something stayed).
    Violated = 1,
    /// Bad usage or configuration.
    Usage = 2,
    /// Nothing failed, but something was inconclusive.
    Inconclusive = 3,
    /// The target could not be tested at all.
    Untestable = 4,
    /// Interrupted by a signal.
    Interrupted = 130,
}

impl From<Code> for ExitCode {
    fn from(code: Code) -> ExitCode {
        ExitCode::from(code as u8)
    }
}

/// Why a command stopped; each maps to one exit code ([`CliError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage the flags' parser could not see.
    #[error("{0}")]
    Usage(String),
    /// Flags and environment do not make a plan.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A file could not be written.
    #[error("failed to write {what}{}: {source}", path.display())]
    Write {
        /// What the file is, with a trailing space and preposition ("the CA certificate to "),
        /// or empty.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The run could not start.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The sweep could not be done.
    #[error(transparent)]
    Sweep(#[from] SweepError),
    /// A signal came before the command started anything (the message says what was done).
    #[error("{0}")]
    Interrupted(String),
    /// Already reported to the user (one line per problem); only the code is left.
    #[error("")]
    Reported(Code),
}

impl CliError {
    /// The exit code.
    pub fn code(&self) -> Code {
        match self {
            CliError::Usage(_) | CliError::Plan(_) | CliError::Write { .. } => Code::Usage,
            CliError::Run(err) => match err {
                RunError::Plan(_)
                | RunError::Client(_)
                | RunError::Credentials { .. }
                | RunError::Server(_) => Code::Usage,
                RunError::Unreachable(_) | RunError::NotTheApi { .. } => Code::Untestable,
            },
            CliError::Sweep(err) if err.untestable() => Code::Untestable,
            CliError::Sweep(_) => Code::Usage,
            CliError::Interrupted(_) => Code::Interrupted,
            CliError::Reported(code) => *code,
        }
    }

    /// Tell the user, on stderr: `error: ` and the message (made terminal-safe: it can hold
    /// the target's words, redacted already).
    pub fn report(&self) {
        match self {
            CliError::Reported(_) => {}
            CliError::Interrupted(message) => errln!("{message}"),
            other => errln!("error: {}", crate::output::terminal(&other.to_string())),
        }
    }
}

fn cases_in_range() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=i64::from(MAX_CASES))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                Code::Usage
            } else {
                Code::Passed
            }
            .into();
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            errln!("error: failed to start the async runtime: {err}");
            return Code::Usage.into();
        }
    };
    // No subcommand means `run`, parsed as such so that its defaults and CONFORMANCE_*
    // variables apply.
    let command = match cli.command {
        Some(command) => command,
        None => match Cli::try_parse_from(
            std::env::args_os()
                .take(1)
                .chain([std::ffi::OsString::from("run")]),
        ) {
            Ok(Cli {
                command: Some(command),
            }) => command,
            Ok(Cli { command: None }) => return Code::Usage.into(),
            Err(err) => {
                let _ = err.print();
                return Code::Usage.into();
            }
        },
    };
    let result = match command {
        Command::Run(args) => runtime.block_on(run::run(args)),
        Command::Serve(args) => runtime.block_on(serve::serve(args)),
        Command::Clauses { json } => Ok(clauses::clauses(json)),
        Command::Sweep(args) => runtime.block_on(sweep::sweep(args)),
        Command::Matrix(args) => runtime.block_on(matrix::matrix(args)),
        Command::Openapi => export::openapi(),
        Command::Mutants(args) => runtime.block_on(mutants::mutants(args)),
        Command::Replay(args) => runtime.block_on(replay::replay(args)),
    };
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            err.report();
            err.code()
        }
    };
    // Dropping a runtime waits for every blocking thread without limit; a stopped run has
    // already waited for its own, so this only bounds the exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    code.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_exit_code_has_its_variant() {
        for (code, number) in [
            (Code::Passed, 0),
            (Code::Violated, 1),
            (Code::Usage, 2),
            (Code::Inconclusive, 3),
            (Code::Untestable, 4),
            (Code::Interrupted, 130),
        ] {
            assert_eq!(code as u8, number);
            assert!(EXIT_CODES.contains(&format!("{number:>3}  ")), "{number}");
        }
        assert_eq!(
            CliError::Plan(PlanError::NoToken).code(),
            Code::Usage,
            "a missing token is usage"
        );
        assert_eq!(
            CliError::Run(RunError::Unreachable(
                crate::client::TransportError::NoCdaUrl
            ))
            .code(),
            Code::Untestable
        );
    }
}
