//! The command line: `run` (the default), `serve`, `clauses`.

use std::io::{IsTerminal, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::checks::{self, Profile};
use crate::console::{err, errln, out, outln};
use crate::engine::{self, DEFAULT_CASES, MAX_CASES, RunError, RunOptions, Session};
use crate::faults::{Fault, FaultSet};
use crate::outcome::Status;
use crate::reference::{RateLimit, ReferenceServer, ServerConfig};
use crate::spec::{SchemaId, Spec};

const EXIT_CODES: &str = "\
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
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the suite, clause by clause (the default command).
    #[command(after_help = EXIT_CODES)]
    Run(RunArgs),
    /// Run the embedded reference server until Ctrl-C.
    Serve(ServeArgs),
    /// Print the clause catalog with the checks that cover each clause.
    Clauses,
    /// Run the suite against several targets and write a compatibility table (clauses × targets).
    #[command(
        after_help = "Exit codes:\n  0  the table was written (failing targets are data, not errors)\n  2  bad usage, an invalid targets file, or a --markdown/--html path that cannot be written\n130  interrupted (SIGINT, SIGTERM, SIGHUP): the running target cleaned up, the table written"
    )]
    Matrix(MatrixArgs),
    /// Remove the roles and tokens a killed run left behind (names `conformance-<run id>-…` only).
    Sweep(SweepArgs),
    /// Print an OpenAPI 3.1 document of the access-token endpoints, generated from specs/.
    Openapi,
    /// Prove the suite's detection power: run it against the embedded server once per fault.
    #[command(
        after_help = "Exit codes:\n  0  every fault was detected by a clause it declares, and every check failed under some fault\n  1  a fault survived, was caught only by undeclared clauses, or a check never failed\n  2  bad usage"
    )]
    Mutants(MutantsArgs),
}

#[derive(Debug, Args)]
struct MatrixArgs {
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
    /// Generated cases per property (1 to 10000).
    #[arg(long, default_value_t = DEFAULT_CASES, value_parser = cases_in_range())]
    cases: u32,
}

#[derive(Debug, Args)]
struct SweepArgs {
    /// CMA base URL of the target (the management token comes from CONFORMANCE_API_TOKEN).
    #[arg(long, env = "CONFORMANCE_BASE_URL", value_name = "URL")]
    base_url: Option<String>,
    /// Sent as X-Environment.
    #[arg(long, env = "CONFORMANCE_ENVIRONMENT", value_name = "NAME")]
    environment: Option<String>,
    /// Allow the public production host.
    #[arg(long)]
    allow_production: bool,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long, env = "CONFORMANCE_CA_CERT", value_name = "PEM")]
    ca_cert: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct MutantsArgs {
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

#[derive(Debug, Args)]
struct RunArgs {
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
    /// Seed of the generated requests: the same seed sends the same requests. Random by default (printed).
    #[arg(long, env = "CONFORMANCE_SEED")]
    seed: Option<u64>,
    /// Generated cases per property, 1 to 10000 [default: 32; with --profile staging, sized by
    /// --max-requests].
    #[arg(long, env = "CONFORMANCE_CASES", value_parser = cases_in_range())]
    cases: Option<u32>,
    /// Stop the run after this long (e.g. 90s, 15m, 1h): the checks still running are then
    /// inconclusive, their fixtures are removed and the reports written.
    #[arg(
        long,
        env = "CONFORMANCE_DEADLINE",
        value_name = "DURATION",
        default_value = "15m",
        value_parser = engine::parse_duration
    )]
    deadline: Duration,
    /// Run only the checks whose name (`<clause id>::<check>`) contains this text.
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
    /// documented: documented promises are hard checks, observed behaviour gives warnings.
    /// strict: observed behaviour is asserted too.
    #[arg(
        long,
        value_enum,
        env = "CONFORMANCE_PROFILE",
        default_value = "documented"
    )]
    profile: Profile,
    /// Also write the report as JSON (schema: specs/report.schema.json).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Also write the report as JUnit XML: one testcase per check, one testsuite per clause.
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Allow destructive clauses (rotating and deleting a factory token) on a target the suite
    /// did not start itself (by default they run only on the embedded server, not on loopback).
    #[arg(long, conflicts_with = "no_destructive")]
    destructive: bool,
    /// Skip destructive clauses even on the embedded server.
    #[arg(long)]
    no_destructive: bool,
    /// Stop after this many requests (the rest is inconclusive; fixture cleanup is exempt).
    /// With --profile staging it also sizes the generated cases (default 400).
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
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address of the CMA listener.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: std::net::SocketAddr,
    /// Address of the CDA (GraphQL) listener.
    #[arg(long, default_value = "127.0.0.1:3001")]
    cda_addr: std::net::SocketAddr,
    /// Per-token rate limit, `REQUESTS/WINDOW` (e.g. `60/3s`, `100/500ms`) or `off`.
    #[arg(long, default_value = "60/3s", value_parser = parse_rate_limit)]
    rate_limit: RateLimitArg,
    /// Also seed the legacy "Full-access API token" (hardcoded_type "admin").
    #[arg(long)]
    legacy_factory_tokens: bool,
    /// Switch a fault on (repeatable; `token-conformance mutants --list` lists them).
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<Fault>,
    /// Simulate network trouble: this fraction of requests (0.0-1.0) gets a transient 503 or a
    /// dropped connection, and every request up to 20 ms of latency.
    #[arg(long, value_name = "FRACTION", value_parser = parse_fraction)]
    flaky: Option<f64>,
    /// Serve over TLS with a generated CA and certificate; the CA is written to this PEM file
    /// (pass it to `run --ca-cert`).
    #[arg(long, value_name = "PEM")]
    tls_ca_out: Option<PathBuf>,
    /// How long a client may take to send a request (`500ms`, `10s`, `1m`): its head (request
    /// line and headers) must be complete this long after the connection opened, or after the
    /// first byte of a request on a kept-alive connection; its body this long after the head.
    /// Otherwise the connection is closed without an answer.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout)]
    header_timeout: std::time::Duration,
    /// How long a kept-alive connection may wait for its next request before it is closed.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    idle_timeout: std::time::Duration,
    /// Most connections open at once, per listener (CMA and CDA each). At the limit a new
    /// connection is let in by closing the open connection that has been idle or sending its
    /// request head the longest; a connection with a request in progress is never closed, and
    /// when every open connection has one, the new connection is closed at once.
    #[arg(long, value_name = "N", default_value = "256", value_parser = parse_max_connections)]
    max_connections: usize,
}

fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    crate::reference::parse_duration(text)
        .map_err(|err| format!("invalid duration {text:?}: {err}; expected e.g. 500ms, 10s or 1m"))
}

fn parse_max_connections(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{text:?} is not a whole number of at least 1")),
    }
}

fn cases_in_range() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..=i64::from(MAX_CASES))
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{text:?} is not a fraction between 0 and 1")),
    }
}

#[derive(Debug, Clone)]
struct RateLimitArg(Option<RateLimit>);

fn parse_rate_limit(text: &str) -> Result<RateLimitArg, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(RateLimitArg(None));
    }
    text.parse::<RateLimit>()
        .map(|r| RateLimitArg(Some(r)))
        .map_err(|e| e.to_string())
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { 2 } else { 0 });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            errln!("error: failed to start the async runtime: {err}");
            return ExitCode::from(2);
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
            Ok(Cli { command: None }) => return ExitCode::from(2),
            Err(err) => {
                let _ = err.print();
                return ExitCode::from(2);
            }
        },
    };
    let code = match command {
        Command::Run(args) => runtime.block_on(run(args)),
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Clauses => clauses(),
        Command::Sweep(args) => runtime.block_on(sweep(args)),
        Command::Matrix(args) => runtime.block_on(matrix(args)),
        Command::Openapi => openapi(),
        Command::Mutants(args) => runtime.block_on(mutants(args)),
    };
    // Dropping a runtime waits for every blocking thread without limit; a stopped run has
    // already waited for its own, so this only bounds the exit.
    runtime.shutdown_timeout(Duration::from_secs(2));
    code
}

/// A report file given on the command line, opened (created) before the run sends anything,
/// so that a bad path is a configuration error and not the loss of a finished run.
#[derive(Debug)]
struct ReportFile {
    path: PathBuf,
    file: std::fs::File,
    /// Whether the file did not exist before: a run that cannot start removes it again.
    created: bool,
}

impl ReportFile {
    fn open(flag: &str, path: &Path) -> Result<ReportFile, String> {
        let created = !path.exists();
        // Not truncated yet: a run that cannot start leaves a previous report as it was.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map(|file| ReportFile {
                path: path.to_owned(),
                file,
                created,
            })
            .map_err(|err| format!("cannot write {flag} {}: {err}", path.display()))
    }

    fn write(&mut self, text: &str) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(text.as_bytes())?;
        self.file.sync_all()
    }

    /// The run did not start: remove what `open` created.
    fn discard(self) {
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP. Listening replaces their default action (death, with no
/// cleanup and no report) for the rest of the process.
#[derive(Debug)]
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// The name of the next signal.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                Some(()) = self.int.recv() => "SIGINT",
                Some(()) = self.term.recv() => "SIGTERM",
                Some(()) = self.hup.recv() => "SIGHUP",
                else => std::future::pending().await,
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(_) => std::future::pending().await,
            }
        }
    }
}

async fn run(args: RunArgs) -> ExitCode {
    let seed = args.seed.unwrap_or_else(engine::random_seed);
    let max_requests = match args.profile {
        Profile::Staging => Some(
            args.max_requests
                .unwrap_or(engine::STAGING_DEFAULT_MAX_REQUESTS),
        ),
        _ => args.max_requests,
    };
    let cases = match (args.cases, args.profile, max_requests) {
        (Some(cases), _, _) => cases,
        (None, Profile::Staging, Some(max)) => match engine::staging_cases(max) {
            Ok(cases) => cases,
            Err(err) => {
                errln!("error: {err}");
                return ExitCode::from(2);
            }
        },
        _ => DEFAULT_CASES,
    };
    if args.plan {
        let cases = if args.profile == Profile::Staging {
            cases
        } else {
            engine::staging_cases(engine::STAGING_DEFAULT_MAX_REQUESTS).unwrap_or(1)
        };
        out!(
            "{}",
            checks::coverage::render(
                cases,
                max_requests.unwrap_or(engine::STAGING_DEFAULT_MAX_REQUESTS)
            )
        );
        return ExitCode::SUCCESS;
    }
    let options = RunOptions {
        base_url: args.base_url.filter(|u| !u.trim().is_empty()),
        cda_url: args.cda_url.filter(|u| !u.trim().is_empty()),
        environment: args.environment.filter(|e| !e.trim().is_empty()),
        secret: std::env::var("CONFORMANCE_API_TOKEN").ok(),
        target_name: args.target_name,
        destructive: args.destructive,
        no_destructive: args.no_destructive,
        allow_production: args.allow_production,
        ca_cert: args.ca_cert,
        seed,
        cases,
        max_requests,
        profile: args.profile,
        filter: args.filter,
        deadline: Some(args.deadline),
        ..RunOptions::default()
    };
    if Session::selected(options.filter.as_deref()).is_empty() {
        errln!(
            "error: no check matches --filter {:?} (see `token-conformance clauses`)",
            options.filter.unwrap_or_default()
        );
        return ExitCode::from(2);
    }
    let mut files = Vec::new();
    for (flag, path, junit) in [
        ("--json", &args.json, false),
        ("--junit", &args.junit, true),
    ] {
        if let Some(path) = path {
            match ReportFile::open(flag, path) {
                Ok(file) => files.push((file, junit)),
                Err(message) => {
                    errln!("error: {message}");
                    files.into_iter().for_each(|(f, _)| ReportFile::discard(f));
                    return ExitCode::from(2);
                }
            }
        }
    }
    let mut signals = match Signals::listen() {
        Ok(signals) => signals,
        Err(error) => {
            errln!("error: failed to listen for signals: {error}");
            files.into_iter().for_each(|(f, _)| f.discard());
            return ExitCode::from(2);
        }
    };
    let opened = tokio::select! {
        opened = Session::open(&options) => opened,
        signal = signals.next() => {
            errln!("\ninterrupted ({signal}) before the run started: nothing was created");
            files.into_iter().for_each(|(f, _)| f.discard());
            return ExitCode::from(130);
        }
    };
    let session = match opened {
        Ok(session) => Arc::new(session),
        Err(error) => {
            // The target's words are redacted already; here they are made terminal-safe.
            errln!("error: {}", crate::output::terminal(&error.to_string()));
            files.into_iter().for_each(|(f, _)| f.discard());
            return ExitCode::from(match error {
                RunError::Config(_) | RunError::Client(_) | RunError::Credentials { .. } => 2,
                RunError::Server(_) => 2,
                RunError::Unreachable(_) | RunError::NotTheApi { .. } => 4,
            });
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
    let tty = std::io::stderr().is_terminal();
    let report = session
        .run_all(&options, |check, done, total| {
            if tty {
                err!(
                    "\r\x1b[2K[{done}/{total}] {} {}",
                    check.status,
                    check.full_name()
                );
            }
        })
        .await;
    if tty {
        err!("\r\x1b[2K");
    }
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
        if let Err(error) = file.write(&text) {
            errln!("error: failed to write {}: {error}", file.path.display());
            failed_to_write = true;
        }
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
        return ExitCode::from(130);
    }
    if failed_to_write {
        return ExitCode::from(2);
    }
    ExitCode::from(match engine::overall(&report) {
        Status::Pass | Status::Skipped => 0,
        Status::Fail => 1,
        Status::Inconclusive => 3,
    })
}

async fn serve(args: ServeArgs) -> ExitCode {
    let from_env = std::env::var("CONFORMANCE_API_TOKEN")
        .ok()
        .filter(|s| !s.is_empty());
    let config = ServerConfig {
        cma_addr: args.addr,
        cda_addr: args.cda_addr,
        rate_limit: args.rate_limit.0,
        legacy_factory_tokens: args.legacy_factory_tokens,
        admin_secret: from_env,
        faults: FaultSet::of(args.faults.iter().copied()),
        flaky: args.flaky,
        tls: args.tls_ca_out.is_some(),
        header_timeout: args.header_timeout,
        idle_timeout: args.idle_timeout,
        max_connections: args.max_connections,
    };
    let server = match ReferenceServer::start(config).await {
        Ok(server) => server,
        Err(err) => {
            errln!("error: {err}");
            return ExitCode::from(2);
        }
    };
    if let (Some(path), Some(pem)) = (&args.tls_ca_out, server.tls_ca_pem()) {
        if let Err(err) = std::fs::write(path, pem) {
            errln!(
                "error: failed to write the CA certificate to {}: {err}",
                path.display()
            );
            return ExitCode::from(2);
        }
        outln!(
            "TLS: the CA certificate is in {} (run --ca-cert {})",
            path.display(),
            path.display()
        );
    }
    outln!("CMA: {}", server.cma_url());
    outln!("CDA: {}", server.cda_url());
    outln!(
        "connections: at most {} per listener; a request within {:?}, idle up to {:?}",
        args.max_connections,
        args.header_timeout,
        args.idle_timeout
    );
    if server.admin_secret_was_generated() {
        outln!(
            "management token (generated; set CONFORMANCE_API_TOKEN to choose one): {}",
            server.admin_secret()
        );
    } else {
        outln!("management token: the value of CONFORMANCE_API_TOKEN");
    }
    for fault in &args.faults {
        outln!("fault on: {fault} ({})", fault.description());
    }
    outln!("Ctrl-C stops the server.");
    if let Err(err) = tokio::signal::ctrl_c().await {
        errln!("error: failed to wait for Ctrl-C: {err}");
    }
    server.shutdown().await;
    ExitCode::SUCCESS
}

fn clauses() -> ExitCode {
    let catalog = Spec::embedded().catalog();
    let all = checks::all();
    let mut uncovered = 0;
    outln!("{}\n", catalog.source());
    for clause in catalog.clauses() {
        outln!(
            "{} [{}{}] {}",
            clause.id,
            clause.evidence,
            if clause.destructive {
                ", destructive"
            } else {
                ""
            },
            clause.title
        );
        outln!("    \"{}\"", clause.quote);
        for name in &clause.checks {
            let def = all.iter().find(|d| d.clause == clause.id && d.name == name);
            let note = match def {
                Some(d) if d.strict_only => "covered (strict profile)",
                Some(_) => "covered",
                None => {
                    uncovered += 1;
                    "UNCOVERED: no such check"
                }
            };
            outln!("    - {name}: {note}");
        }
    }
    for def in &all {
        if catalog
            .clause(def.clause)
            .is_none_or(|c| !c.checks.iter().any(|n| n == def.name))
        {
            outln!(
                "check {} is not listed in specs/clauses.json",
                def.full_name()
            );
            uncovered += 1;
        }
    }
    outln!(
        "\n{} clauses, {} checks, {uncovered} uncovered",
        catalog.clauses().len(),
        all.len()
    );
    ExitCode::from(if uncovered == 0 { 0 } else { 1 })
}

async fn mutants(args: MutantsArgs) -> ExitCode {
    if args.list {
        for fault in Fault::ALL {
            let strict = if fault.strict_only() { " [strict]" } else { "" };
            outln!(
                "{:<32} {}{strict}: {}",
                fault.name(),
                fault.clauses().join(", "),
                fault.description()
            );
        }
        return ExitCode::SUCCESS;
    }
    let faults: Vec<Fault> = if args.faults.is_empty() {
        Fault::ALL.to_vec()
    } else {
        args.faults.clone()
    };
    let started = std::time::Instant::now();
    let tty = std::io::stderr().is_terminal();
    let suite = match args.profile {
        Profile::Staging => crate::mutants::Suite::Staging {
            max_requests: engine::STAGING_DEFAULT_MAX_REQUESTS,
        },
        Profile::Documented | Profile::Strict => crate::mutants::Suite::Full { cases: args.cases },
    };
    let results = crate::mutants::run_all_under(
        &faults,
        args.seed,
        suite,
        args.parallel,
        |r, done, total| {
            if tty {
                err!(
                    "\r\x1b[2K[{done}/{total}] {} {}",
                    r.verdict.as_str(),
                    r.fault
                );
            } else {
                errln!("[{done}/{total}] {} {}", r.verdict.as_str(), r.fault);
            }
        },
    )
    .await;
    if tty {
        err!("\r\x1b[2K");
    }
    let table = crate::mutants::markdown(&results);
    out!("{table}");
    let never = if args.faults.is_empty() {
        crate::mutants::checks_never_failed(&results)
    } else {
        Vec::new()
    };
    for check in &never {
        outln!("check never failed under any fault: {check}");
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
        if let Err(err) = std::fs::write(path, text + "\n") {
            errln!("error: failed to write {}: {err}", path.display());
            return ExitCode::from(2);
        }
    }
    if let Some(path) = &args.markdown
        && let Err(err) = std::fs::write(path, &table)
    {
        errln!("error: failed to write {}: {err}", path.display());
        return ExitCode::from(2);
    }
    let all_killed = results
        .iter()
        .all(|r| r.verdict == crate::mutants::Verdict::Killed);
    ExitCode::from(if all_killed && never.is_empty() { 0 } else { 1 })
}

async fn sweep(args: SweepArgs) -> ExitCode {
    let options = RunOptions {
        base_url: args.base_url,
        environment: args.environment,
        secret: std::env::var("CONFORMANCE_API_TOKEN").ok(),
        ca_cert: args.ca_cert,
        ..RunOptions::default()
    };
    // The client first: it refuses a URL with credentials before the URL is shown anywhere.
    let client = match engine::sweep_client(&options) {
        Ok(client) => client,
        Err(err) => {
            errln!("error: {}", crate::output::terminal(&err.to_string()));
            return ExitCode::from(2);
        }
    };
    let base = &client.target().base_url;
    if engine::is_production(base) && !args.allow_production {
        eprintln!(
            "error: {} is the production API; pass --allow-production to sweep it",
            crate::output::terminal(base)
        );
        return ExitCode::from(2);
    }
    match engine::sweep(&client).await {
        Ok(report) => {
            for removed in &report.removed {
                outln!("removed {}", crate::output::terminal_line(removed));
            }
            for failed in &report.failed {
                errln!("could not remove {}", crate::output::terminal_line(failed));
            }
            outln!(
                "{} removed, {} could not be removed",
                report.removed.len(),
                report.failed.len()
            );
            ExitCode::from(if report.failed.is_empty() { 0 } else { 1 })
        }
        Err(err) => {
            errln!("error: {}", crate::output::terminal(&err.to_string()));
            ExitCode::from(4)
        }
    }
}

fn openapi() -> ExitCode {
    let doc = crate::openapi::document(Spec::embedded());
    match serde_json::to_string_pretty(&doc) {
        Ok(text) => {
            outln!("{text}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            errln!("error: {err}");
            ExitCode::from(2)
        }
    }
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
            Err(err) => errln!(
                "error: failed to write snapshots in {}: {err}",
                dir.display()
            ),
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

async fn matrix(args: MatrixArgs) -> ExitCode {
    let file = match crate::matrix::MatrixFile::load(&args.targets) {
        Ok(file) => file,
        Err(err) => {
            errln!("error: {}", crate::output::terminal(&err.to_string()));
            return ExitCode::from(2);
        }
    };
    // Opened before the run, like `run`'s reports: a bad path is known before any request.
    let mut tables = Vec::new();
    for (flag, path) in [("--markdown", &args.markdown), ("--html", &args.html)] {
        if let Some(path) = path {
            match ReportFile::open(flag, path) {
                Ok(file) => tables.push((flag, file)),
                Err(message) => {
                    errln!("error: {}", crate::output::terminal(&message));
                    tables.into_iter().for_each(|(_, f)| ReportFile::discard(f));
                    return ExitCode::from(2);
                }
            }
        }
    }
    let seed = args.seed.unwrap_or_else(engine::random_seed);
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
            errln!("error: failed to listen for signals: {error}");
            return ExitCode::from(2);
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
    let tty = std::io::stderr().is_terminal();
    let matrix = crate::matrix::run_matrix_until(
        &file,
        seed,
        args.cases,
        stopped.clone(),
        |target, check, done, total| {
            if tty {
                err!(
                    "\r\x1b[2K{target}: [{done}/{total}] {} {}",
                    check.status,
                    check.full_name()
                );
            }
        },
    )
    .await;
    let interrupted = !stopped.borrow().is_empty();
    listener.abort();
    let _ = listener.await;
    if tty {
        err!("\r\x1b[2K");
    }
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
            Err(err) => {
                errln!("error: failed to write {}: {err}", file.path.display());
                failed_to_write = true;
            }
        }
    }
    if failed_to_write {
        return ExitCode::from(2);
    }
    if interrupted {
        return ExitCode::from(130);
    }
    ExitCode::SUCCESS
}
