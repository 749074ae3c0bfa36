//! `matrix`: the suite against several targets, as a compatibility table.

use std::path::PathBuf;

use clap::Args;

use super::output::{Live, ReportFile, Signals};
use super::{CliError, Code, cases_in_range};
use crate::console::{errln, out, outln};
use crate::plan::DEFAULT_CASES;

#[derive(Debug, Args)]
pub(crate) struct MatrixArgs {
    /// The targets file (TOML; see examples/matrix.toml).
    targets: PathBuf,
    /// Write the table as Markdown here (default: print it).
    #[arg(long, value_name = "PATH")]
    markdown: Option<PathBuf>,
    /// Write the table as one self-contained HTML page here.
    #[arg(long, value_name = "PATH")]
    html: Option<PathBuf>,
    /// Seed of the generated requests (random by default, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Generated cases per property (1 to 10000; a staging target runs no more than fit its
    /// 400-request budget).
    #[arg(long, default_value_t = DEFAULT_CASES, value_parser = cases_in_range())]
    cases: u32,
    /// The profile of every target without a `profile` key of its own (see `run --profile`).
    #[arg(long, value_enum, default_value_t = crate::checks::Profile::Documented)]
    profile: crate::checks::Profile,
    /// No live progress on stderr (the table and messages are still printed).
    #[arg(long, short)]
    quiet: bool,
}

pub(crate) async fn matrix(args: MatrixArgs) -> Result<Code, CliError> {
    let file = crate::matrix::MatrixFile::load(&args.targets)
        .map_err(|err| CliError::Usage(err.to_string()))?
        .with_profile(args.profile);
    // Opened before the run, like `run`'s reports: a bad path is known before any request.
    let mut tables = Vec::new();
    for (flag, path) in [("--markdown", &args.markdown), ("--html", &args.html)] {
        if let Some(path) = path {
            match ReportFile::open(flag, path) {
                Ok(file) => tables.push((flag, file)),
                Err(message) => {
                    tables.into_iter().for_each(|(_, f)| ReportFile::discard(f));
                    return Err(CliError::Usage(message));
                }
            }
        }
    }
    let seed = args.seed.unwrap_or_else(crate::plan::random_seed);
    errln!(
        "matrix: {} targets, seed {seed}, {} cases per property",
        file.targets.len(),
        args.cases
    );
    // Like `run`: a signal stops the target running (its checks clean up), the rest are not
    // run, and the table is still written.
    let mut signals = match Signals::listen() {
        Ok(signals) => signals,
        Err(error) => {
            return Err(CliError::Usage(format!(
                "failed to listen for signals: {error}"
            )));
        }
    };
    let (stop, stopped) = tokio::sync::watch::channel(Vec::<String>::new());
    let listener = tokio::spawn(async move {
        let signal = signals.next().await;
        errln!(
            "\ninterrupted ({signal}): stopping the checks and removing their fixtures (again to stop at once)…"
        );
        stop.send_modify(|r| r.push(format!("the run was interrupted ({signal})")));
        let again = signals.next().await;
        errln!("interrupted again ({again}): cleanup cut short");
        stop.send_modify(|r| r.push(format!("the run was interrupted twice ({again})")));
    });
    let progress = Live::start(args.quiet);
    let matrix = crate::matrix::run_matrix_live(
        &file,
        seed,
        args.cases,
        stopped.clone(),
        |target, session| {
            progress.target(
                Some(target),
                Some(session.client().shared_stats()),
                Some(crate::engine::Session::selected(None).len()),
            );
        },
        |_, check, done, total| progress.finished(check, done, total),
    )
    .await;
    let interrupted = !stopped.borrow().is_empty();
    listener.abort();
    let _ = listener.await;
    progress.finish(true);
    let markdown = crate::matrix::markdown(&matrix);
    if args.markdown.is_none() {
        out!("{markdown}");
    }
    let mut failed_to_write = false;
    for (flag, mut file) in tables {
        let text = if flag == "--html" {
            crate::matrix::html(&matrix)
        } else {
            markdown.clone()
        };
        match file.write(&text) {
            Ok(()) => outln!("wrote {}", file.path.display()),
            Err(_) => failed_to_write = true,
        }
    }
    if failed_to_write {
        return Err(CliError::Reported(Code::Usage));
    }
    if interrupted {
        return Ok(Code::Interrupted);
    }
    Ok(Code::Passed)
}
