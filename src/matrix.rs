//! `token-conformance matrix targets.toml`: the suite against several targets, and the result
//! as a table, clauses × targets, in Markdown and as one self-contained HTML page.
//!
//! The targets file:
//!
//! ```toml
//! [[target]]
//! name = "staging"
//! base_url = "https://staging.example/cma"
//! cda_url = "https://staging.example/cda"    # optional
//! environment = "main"                        # optional: X-Environment
//! token_env = "STAGING_TOKEN"                 # the environment variable holding its secret
//!
//! [[target]]
//! name = "reference"
//! embedded = true                             # the embedded reference server
//! faults = ["role-dropped-when-omitted"]      # optional: its faults
//! ```
//!
//! Secrets are never in the file, only the name of the variable that holds one, and never in
//! the output: the engine redacts every message, and this module shows no secret anywhere (the
//! [`Debug`] of a loaded file prints `[secret]`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::client::normalize_url;
use crate::engine::{RunOptions, Session};
use crate::faults::{Fault, FaultSet};
use crate::outcome::Status;
use crate::reference::ServerConfig;
use crate::report::junit::{escape_attr, escape_text};
use crate::report::{CheckReport, ClauseReport, RunReport};
use crate::spec::{Clause, Spec};

/// What is wrong with a targets file. Every message names the file, and the target (by name,
/// or by position when it has none) and the field concerned; a token's value is never shown.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    /// The file could not be read.
    #[error("{}: cannot read the targets file: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML at all.
    #[error("{}:{line}: not valid TOML: {message}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What the parser says.
        message: String,
    },
    /// A field is missing, unknown, of the wrong type, or has a bad value.
    #[error("{}:{line}: {target}: {message}", file.display())]
    Field {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// `target "name"`, `target #2` when it has no name, or `top level`.
        target: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// No `[[target]]` table.
    #[error("{}: no targets: the file needs at least one [[target]] table", file.display())]
    NoTargets {
        /// The file.
        file: PathBuf,
    },
    /// Two targets share a name.
    #[error("{}:{line}: target {name:?}: name is already used by the target at line {first}", file.display())]
    DuplicateName {
        /// The file.
        file: PathBuf,
        /// 1-based line of the second one.
        line: usize,
        /// The name.
        name: String,
        /// 1-based line of the first one.
        first: usize,
    },
    /// The variable `token_env` names is not set (its value is never shown).
    #[error(
        "{}:{line}: target {name:?}: token_env: the environment variable {variable} is not set or is empty; export the target's management token in it",
        file.display()
    )]
    MissingToken {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The target.
        name: String,
        /// The variable's name.
        variable: String,
    },
    /// Both `base_url` and `embedded = true`.
    #[error(
        "{}:{line}: target {name:?}: base_url and embedded = true are both set; a target is either a remote server (base_url) or the embedded reference server (embedded = true)",
        file.display()
    )]
    BothKinds {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The target.
        name: String,
    },
    /// Neither `base_url` nor `embedded = true`.
    #[error(
        "{}:{line}: target {name:?}: neither base_url nor embedded = true is set; give the server's base_url (and token_env), or embedded = true",
        file.display()
    )]
    NeitherKind {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The target.
        name: String,
    },
    /// A name in `faults` that is no fault.
    #[error(
        "{}:{line}: target {name:?}: faults: unknown fault {fault:?} (`token-conformance mutants --list` lists them)",
        file.display()
    )]
    UnknownFault {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The target.
        name: String,
        /// The unknown name.
        fault: String,
    },
}

/// A target's secret: shown by `Debug` as `[secret]`, never printed.
#[derive(Clone)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[secret]")
    }
}

/// Where a target is.
#[derive(Debug, Clone)]
pub enum TargetKind {
    /// A fresh embedded reference server, with these faults switched on.
    Embedded {
        /// Its faults (none: the conformant server).
        faults: Vec<Fault>,
    },
    /// A server somewhere else.
    Remote {
        /// CMA base URL.
        base_url: String,
        /// CDA URL.
        cda_url: Option<String>,
        /// `X-Environment`.
        environment: Option<String>,
        /// The variable the secret came from.
        token_env: String,
        /// The management token.
        secret: Secret,
    },
}

/// One `[[target]]` of the file.
#[derive(Debug, Clone)]
pub struct MatrixTarget {
    /// Its name: a column of the matrix.
    pub name: String,
    /// The line of its `[[target]]` table.
    pub line: usize,
    /// Where it is.
    pub kind: TargetKind,
}

impl MatrixTarget {
    /// What it is, in words: `embedded reference server with fault `x``, or its base URL.
    pub fn description(&self) -> String {
        match &self.kind {
            TargetKind::Embedded { faults } if faults.is_empty() => {
                "embedded reference server".to_owned()
            }
            TargetKind::Embedded { faults } => format!(
                "embedded reference server with fault{} {}",
                if faults.len() == 1 { "" } else { "s" },
                faults
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            TargetKind::Remote { base_url, .. } => base_url.clone(),
        }
    }

    fn run_options(&self, seed: u64, cases: u32) -> RunOptions {
        let base = RunOptions {
            seed,
            cases,
            target_name: Some(self.name.clone()),
            ..RunOptions::default()
        };
        match &self.kind {
            TargetKind::Embedded { faults } => RunOptions {
                embedded: ServerConfig {
                    // Off, except for the fault that is about the 429 itself.
                    rate_limit: faults
                        .iter()
                        .find_map(|f| crate::mutants::server_config(Some(*f)).rate_limit),
                    faults: FaultSet::of(faults.iter().copied()),
                    ..ServerConfig::default()
                },
                ..base
            },
            TargetKind::Remote {
                base_url,
                cda_url,
                environment,
                secret,
                ..
            } => RunOptions {
                base_url: Some(base_url.clone()),
                cda_url: cda_url.clone(),
                environment: environment.clone(),
                secret: Some(secret.0.clone()),
                ..base
            },
        }
    }
}

/// A parsed targets file.
#[derive(Debug, Clone)]
pub struct MatrixFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its targets, in the file's order.
    pub targets: Vec<MatrixTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    target: Vec<Spanned<RawTarget>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: String,
    base_url: Option<String>,
    cda_url: Option<String>,
    environment: Option<String>,
    token_env: Option<String>,
    embedded: Option<bool>,
    faults: Option<Vec<String>>,
}

/// The same file without the field rules: only to name the target an error is in.
#[derive(Deserialize)]
struct LooseFile {
    #[serde(default)]
    target: Vec<Spanned<toml::Table>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Which target of the file `span` falls in, as `target "name"` or `target #n`: the last
/// `[[target]]` header at or before it, unless the header of another table comes in between.
fn target_at(text: &str, span: &Range<usize>) -> Option<String> {
    let loose: LooseFile = toml::from_str(text).ok()?;
    let (index, table) = loose
        .target
        .iter()
        .enumerate()
        .rfind(|(_, t)| t.span().start <= span.start)?;
    let between = text
        .get(table.span().end..span.start.min(text.len()))
        .unwrap_or("");
    let other_table = between.lines().skip(1).any(|line| {
        let line = line.trim_start();
        line.starts_with('[') && !line.starts_with("[target.") && !line.starts_with("[[target.")
    });
    if other_table {
        return None;
    }
    Some(
        match table.get_ref().get("name").and_then(toml::Value::as_str) {
            Some(name) => format!("target {name:?}"),
            None => format!("target #{}", index + 1),
        },
    )
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl MatrixFile {
    /// Read and check `path`; token secrets come from the process environment.
    pub fn load(path: &Path) -> Result<MatrixFile, MatrixError> {
        let text = std::fs::read_to_string(path).map_err(|source| MatrixError::Read {
            file: path.to_owned(),
            source,
        })?;
        MatrixFile::parse(&text, path, &|name| std::env::var(name).ok())
    }

    /// Check the text of a targets file read from `path` (used in messages only); `env`
    /// looks up the variables that `token_env` names.
    pub fn parse(
        text: &str,
        path: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<MatrixFile, MatrixError> {
        let file = path.to_owned();
        // Syntax first, so that a broken file is reported as such, not as a missing field.
        if let Err(err) = text.parse::<toml::Table>() {
            return Err(MatrixError::Syntax {
                line: err.span().map_or(1, |s| line_of(text, s.start)),
                message: err.message().trim().to_owned(),
                file,
            });
        }
        let raw: RawFile = toml::from_str(text).map_err(|err| {
            let span = err.span().unwrap_or(0..0);
            MatrixError::Field {
                line: line_of(text, span.start),
                target: target_at(text, &span).unwrap_or_else(|| "top level".to_owned()),
                message: err.message().trim().to_owned(),
                file: file.clone(),
            }
        })?;
        if raw.target.is_empty() {
            return Err(MatrixError::NoTargets { file });
        }
        let mut targets: Vec<MatrixTarget> = Vec::with_capacity(raw.target.len());
        for spanned in raw.target {
            let line = line_of(text, spanned.span().start);
            let raw = spanned.into_inner();
            let name = raw.name;
            let field = |message: String| MatrixError::Field {
                file: file.clone(),
                line,
                target: format!("target {name:?}"),
                message,
            };
            if !valid_name(&name) {
                return Err(field(
                    "name: must be 1 to 64 ASCII letters, digits, '-', '_' or '.' (it names a column and an anchor of the report)".to_owned(),
                ));
            }
            if let Some(first) = targets.iter().find(|t| t.name == name) {
                return Err(MatrixError::DuplicateName {
                    file,
                    line,
                    name,
                    first: first.line,
                });
            }
            let embedded = raw.embedded.unwrap_or(false);
            let kind = match (embedded, raw.base_url) {
                (true, Some(_)) => return Err(MatrixError::BothKinds { file, line, name }),
                (false, None) => return Err(MatrixError::NeitherKind { file, line, name }),
                (true, None) => {
                    for (key, set) in [
                        ("cda_url", raw.cda_url.is_some()),
                        ("token_env", raw.token_env.is_some()),
                        ("environment", raw.environment.is_some()),
                    ] {
                        if set {
                            return Err(field(format!(
                                "{key}: applies only to a remote target (base_url); the embedded server has its own"
                            )));
                        }
                    }
                    let mut faults = Vec::new();
                    for fault in raw.faults.unwrap_or_default() {
                        match fault.parse::<Fault>() {
                            Ok(f) if !faults.contains(&f) => faults.push(f),
                            Ok(_) => {}
                            Err(_) => {
                                return Err(MatrixError::UnknownFault {
                                    file,
                                    line,
                                    name,
                                    fault,
                                });
                            }
                        }
                    }
                    TargetKind::Embedded { faults }
                }
                (false, Some(base_url)) => {
                    if raw.faults.is_some() {
                        return Err(field(
                            "faults: apply only to the embedded reference server (embedded = true)"
                                .to_owned(),
                        ));
                    }
                    let base_url = normalize_url("base", &base_url)
                        .map_err(|err| field(format!("base_url: {err}")))?;
                    let cda_url = raw
                        .cda_url
                        .map(|u| normalize_url("CDA", &u))
                        .transpose()
                        .map_err(|err| field(format!("cda_url: {err}")))?;
                    let Some(token_env) = raw.token_env else {
                        return Err(field(
                            "missing field `token_env`: the name of the environment variable that holds the target's management token".to_owned(),
                        ));
                    };
                    if token_env.trim().is_empty() {
                        return Err(field(
                            "token_env: must name an environment variable".to_owned(),
                        ));
                    }
                    let Some(secret) = env(&token_env).filter(|s| !s.trim().is_empty()) else {
                        return Err(MatrixError::MissingToken {
                            file,
                            line,
                            name,
                            variable: token_env,
                        });
                    };
                    if reqwest::header::HeaderValue::from_str(&format!("Bearer {secret}")).is_err()
                    {
                        return Err(field(format!(
                            "token_env: the value of {token_env} is not a valid HTTP header value (a control character, \
                             a line break or a character outside visible ASCII; a trailing newline from a file, say); \
                             the value is not shown"
                        )));
                    }
                    TargetKind::Remote {
                        base_url,
                        cda_url,
                        environment: raw.environment,
                        token_env,
                        secret: Secret(secret),
                    }
                }
            };
            targets.push(MatrixTarget { name, line, kind });
        }
        Ok(MatrixFile {
            path: path.to_owned(),
            targets,
        })
    }
}

/// One target's column: its report, or why it could not be tested at all.
#[derive(Debug, Clone)]
pub struct TargetResult {
    /// Its name.
    pub name: String,
    /// What it is (see [`MatrixTarget::description`]).
    pub description: String,
    /// The run, or the error that stopped it before any check (every clause is then shown as
    /// inconclusive with this reason).
    pub outcome: Result<RunReport, String>,
}

/// The suite's results against every target of a file.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Seed of every run.
    pub seed: u64,
    /// Generated cases per property.
    pub cases: u32,
    /// One per target, in the file's order.
    pub targets: Vec<TargetResult>,
}

/// Run the suite against every target of `file`, one after the other.
pub async fn run_matrix(file: &MatrixFile, seed: u64, cases: u32) -> Matrix {
    run_matrix_with(file, seed, cases, |_, _, _, _| {}).await
}

/// [`run_matrix`], calling `progress(target, check, done, total)` after each check.
pub async fn run_matrix_with(
    file: &MatrixFile,
    seed: u64,
    cases: u32,
    progress: impl FnMut(&str, &CheckReport, usize, usize),
) -> Matrix {
    let (_keep, stop) = tokio::sync::watch::channel(Vec::new());
    run_matrix_until(file, seed, cases, stop, progress).await
}

/// [`run_matrix_with`], stopped from outside (a signal): `stop` holds the reasons given so
/// far. At the first, the target running is interrupted as `run` would be (its checks end
/// inconclusive and remove their fixtures) and the targets after it are not run; at the
/// second, that cleanup is cut short too. The table is still complete.
pub async fn run_matrix_until(
    file: &MatrixFile,
    seed: u64,
    cases: u32,
    mut stop: tokio::sync::watch::Receiver<Vec<String>>,
    mut progress: impl FnMut(&str, &CheckReport, usize, usize),
) -> Matrix {
    let mut targets = Vec::with_capacity(file.targets.len());
    for target in &file.targets {
        let options = target.run_options(seed, cases);
        let stopped = stop.borrow().first().cloned();
        let outcome = if let Some(reason) = stopped {
            Err(crate::output::terminal(&format!("not run: {reason}")))
        } else {
            let opened = tokio::select! {
                opened = Session::open(&options) => Some(opened),
                _ = stop.wait_for(|reasons| !reasons.is_empty()) => None,
            };
            match opened {
                None => Err(crate::output::terminal(&format!(
                    "not run: {}",
                    stop.borrow().first().cloned().unwrap_or_default()
                ))),
                // Redacted by the engine; made terminal-safe for the Markdown and the page.
                Some(Err(err)) => Err(crate::output::terminal(&err.to_string())),
                Some(Ok(session)) => {
                    let session = Arc::new(session);
                    let watcher = {
                        let (session, mut stop) = (Arc::clone(&session), stop.clone());
                        tokio::spawn(async move {
                            if let Ok(reasons) = stop.wait_for(|r| !r.is_empty()).await {
                                let first = reasons.first().cloned().unwrap_or_default();
                                drop(reasons);
                                session.interrupt(&first);
                            }
                            if let Ok(reasons) = stop.wait_for(|r| r.len() > 1).await {
                                let second = reasons.get(1).cloned().unwrap_or_default();
                                drop(reasons);
                                session.stop_now(&second);
                            }
                        })
                    };
                    let report = session
                        .run_all(&options, |check, done, total| {
                            progress(&target.name, check, done, total);
                        })
                        .await;
                    watcher.abort();
                    let _ = watcher.await;
                    if let Ok(session) = Arc::try_unwrap(session) {
                        session.close().await;
                    }
                    Ok(report)
                }
            }
        };
        targets.push(TargetResult {
            name: target.name.clone(),
            description: target.description(),
            outcome,
        });
    }
    Matrix {
        seed,
        cases,
        targets,
    }
}

/// One cell: a clause on a target.
#[derive(Debug, Clone, Copy)]
pub struct Cell<'a> {
    /// Its status; `None` when the run selected no check of the clause.
    pub status: Option<Status>,
    /// The clause's report, when the target ran.
    pub clause: Option<&'a ClauseReport>,
    /// Why the target could not be tested at all.
    pub error: Option<&'a str>,
}

impl TargetResult {
    /// The cell of `clause` in this column.
    pub fn cell(&self, clause: &str) -> Cell<'_> {
        match &self.outcome {
            Ok(report) => {
                let found = report.clauses.iter().find(|c| c.id == clause);
                Cell {
                    status: found.map(|c| c.status),
                    clause: found,
                    error: None,
                }
            }
            Err(reason) => Cell {
                status: Some(Status::Inconclusive),
                clause: None,
                error: Some(reason),
            },
        }
    }

    /// Clause counts (pass, fail, inconclusive, skipped) over `clauses`.
    fn counts(&self, clauses: &[Clause]) -> [(Status, usize); 4] {
        let mut counts = [
            (Status::Pass, 0),
            (Status::Fail, 0),
            (Status::Inconclusive, 0),
            (Status::Skipped, 0),
        ];
        for clause in clauses {
            if let Some(status) = self.cell(&clause.id).status {
                for (s, n) in &mut counts {
                    if *s == status {
                        *n += 1;
                    }
                }
            }
        }
        counts
    }

    fn summary(&self, clauses: &[Clause]) -> String {
        let parts: Vec<String> = self
            .counts(clauses)
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        if parts.is_empty() {
            "—".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

impl Matrix {
    /// The worst cell of the whole matrix.
    pub fn overall(&self) -> Status {
        let clauses = Spec::embedded().catalog().clauses();
        Status::combine(
            self.targets
                .iter()
                .flat_map(|t| clauses.iter().filter_map(|c| t.cell(&c.id).status)),
        )
    }
}

fn tool_line(matrix: &Matrix) -> String {
    format!(
        "`PUT /access_tokens/:id` · token-conformance {} · seed {} · {} generated cases per property",
        env!("CARGO_PKG_VERSION"),
        matrix.seed,
        matrix.cases
    )
}

/// Markdown cells must not break the table, nor hold a character that drives a terminal.
fn md_cell(text: &str) -> String {
    crate::output::terminal_line(
        &text
            .replace('\\', "\\\\")
            .replace('|', "\\|")
            .replace(['\n', '\r'], " "),
    )
}

/// The matrix as Markdown: a row per clause with its evidence level, a column per target, a
/// summary row, then the checks behind each fail and inconclusive cell. It holds no timings,
/// ports or run ids, so the same seed gives the same text.
pub fn markdown(matrix: &Matrix) -> String {
    let clauses = Spec::embedded().catalog().clauses();
    let mut out = String::from("# Compatibility matrix\n\n");
    let _ = writeln!(out, "{}\n", tool_line(matrix));
    out.push_str("| target | what it is |\n|---|---|\n");
    for target in &matrix.targets {
        let _ = writeln!(
            out,
            "| `{}` | {} |",
            target.name,
            md_cell(&target.description)
        );
    }
    out.push_str("\n| clause | evidence |");
    for target in &matrix.targets {
        let _ = write!(out, " `{}` |", target.name);
    }
    out.push_str("\n|---|---|");
    for _ in &matrix.targets {
        out.push_str("---|");
    }
    out.push('\n');
    for clause in clauses {
        let _ = write!(out, "| `{}` | {} |", clause.id, clause.evidence);
        for target in &matrix.targets {
            let word = match target.cell(&clause.id).status {
                None => "—".to_owned(),
                Some(Status::Fail) => "**fail**".to_owned(),
                Some(status) => status.as_str().to_owned(),
            };
            let _ = write!(out, " {word} |");
        }
        out.push('\n');
    }
    out.push_str("| **summary** | |");
    for target in &matrix.targets {
        let _ = write!(out, " {} |", target.summary(clauses));
    }
    out.push('\n');
    let mut notes = String::new();
    for target in &matrix.targets {
        match &target.outcome {
            Err(reason) => {
                let _ = writeln!(
                    notes,
                    "- `{}`: could not be tested: {}",
                    target.name,
                    md_cell(reason)
                );
            }
            Ok(report) => {
                for clause in &report.clauses {
                    for check in &clause.checks {
                        match check.status {
                            Status::Fail => {
                                let _ = writeln!(
                                    notes,
                                    "- `{}` · **fail** · `{}`",
                                    target.name,
                                    check.full_name()
                                );
                            }
                            Status::Inconclusive => {
                                let _ = writeln!(
                                    notes,
                                    "- `{}` · inconclusive · `{}`: {}",
                                    target.name,
                                    check.full_name(),
                                    md_cell(check.message.lines().next().unwrap_or(""))
                                );
                            }
                            Status::Pass | Status::Skipped => {}
                        }
                    }
                }
            }
        }
    }
    if !notes.is_empty() {
        out.push_str("\n## Not passing\n\n");
        let _ = writeln!(
            out,
            "The HTML report has each failure in full. A failure replays with `token-conformance run --seed {} --filter <clause>::<check>` against its target (an embedded target with a fault: against `token-conformance serve --fault <name>`).\n",
            matrix.seed
        );
        out.push_str(&notes);
    }
    out
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2em; color: #1b1b1b; background: #fff; }
h1 { font-size: 1.5em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #c8c8c8; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
thead th { background: #f0f0f0; }
td.status { text-align: center; font-weight: 600; }
td.pass { background: #d9f2d9; color: #14521b; }
td.fail { background: #f8d0d0; color: #8a1010; }
td.inconclusive { background: #fbe7b5; color: #6b4a00; }
td.skipped { background: #e6e6e6; color: #555; }
td.none { background: #fff; color: #999; }
td a { color: inherit; }
.title { font-weight: normal; color: #555; font-size: 0.9em; }
tfoot td, tfoot th { font-weight: 600; background: #f7f7f7; }
section.detail { border-left: 4px solid #c8c8c8; padding: 0.2em 1em; margin: 1.5em 0; }
section.detail.fail { border-color: #c62828; }
section.detail.inconclusive { border-color: #e0a800; }
blockquote { margin: 0.5em 0; padding-left: 1em; border-left: 2px solid #ddd; color: #444; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
";

fn anchor(target: &str, clause: &str) -> String {
    format!("t-{target}-{clause}")
}

fn error_anchor(target: &str) -> String {
    format!("e-{target}")
}

/// The matrix as one self-contained XHTML page: inline CSS, no script, no external resource.
/// Cells are coloured by status; each fail and inconclusive cell links to a details section
/// further down with the clause's quote and each check's full text.
pub fn html(matrix: &Matrix) -> String {
    let clauses = Spec::embedded().catalog().clauses();
    let mut out = String::from(
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>token-conformance compatibility matrix</title>\n<style>",
    );
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n<h1>Compatibility matrix</h1>\n");
    let _ = writeln!(
        out,
        "<p>{}</p>",
        escape_text(&tool_line(matrix).replace('`', ""))
    );
    out.push_str("<table class=\"targets\">\n<thead><tr><th>target</th><th>what it is</th><th>clauses</th></tr></thead>\n<tbody>\n");
    for target in &matrix.targets {
        let summary = match &target.outcome {
            Ok(_) => escape_text(&target.summary(clauses)),
            Err(_) => format!(
                "<a href=\"#{}\">could not be tested</a>",
                escape_attr(&error_anchor(&target.name))
            ),
        };
        let _ = writeln!(
            out,
            "<tr><th scope=\"row\"><code>{}</code></th><td>{}</td><td>{summary}</td></tr>",
            escape_text(&target.name),
            escape_text(&target.description.replace('`', "")),
        );
    }
    out.push_str("</tbody>\n</table>\n");

    out.push_str("<table class=\"matrix\">\n<thead><tr><th scope=\"col\">clause</th><th scope=\"col\">evidence</th>");
    for target in &matrix.targets {
        let _ = write!(
            out,
            "<th scope=\"col\" data-target=\"{}\"><code>{}</code></th>",
            escape_attr(&target.name),
            escape_text(&target.name)
        );
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for clause in clauses {
        let _ = write!(
            out,
            "<tr id=\"c-{}\"><th scope=\"row\"><code>{}</code><br/><span class=\"title\">{}</span></th><td>{}</td>",
            escape_attr(&clause.id),
            escape_text(&clause.id),
            escape_text(&clause.title),
            clause.evidence
        );
        for target in &matrix.targets {
            let cell = target.cell(&clause.id);
            let data = format!(
                " data-target=\"{}\" data-clause=\"{}\"",
                escape_attr(&target.name),
                escape_attr(&clause.id)
            );
            match cell.status {
                None => {
                    let _ = write!(
                        out,
                        "<td class=\"status none\"{data} title=\"no check of this clause was selected\">—</td>"
                    );
                }
                Some(status @ (Status::Fail | Status::Inconclusive)) => {
                    let href = if cell.error.is_some() {
                        error_anchor(&target.name)
                    } else {
                        anchor(&target.name, &clause.id)
                    };
                    let _ = write!(
                        out,
                        "<td class=\"status {status}\"{data}><a href=\"#{}\">{status}</a></td>",
                        escape_attr(&href)
                    );
                }
                Some(status) => {
                    let reasons: Vec<String> = cell
                        .clause
                        .map(|c| {
                            c.checks
                                .iter()
                                .filter(|k| k.status == Status::Skipped)
                                .map(|k| {
                                    format!(
                                        "{}: {}",
                                        k.name,
                                        k.message.lines().next().unwrap_or("")
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let title = if reasons.is_empty() {
                        String::new()
                    } else {
                        format!(" title=\"{}\"", escape_attr(&reasons.join("\n")))
                    };
                    let _ = write!(
                        out,
                        "<td class=\"status {status}\"{data}{title}>{status}</td>"
                    );
                }
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n<tfoot><tr><th scope=\"row\">summary</th><td></td>");
    for target in &matrix.targets {
        let _ = write!(
            out,
            "<td data-target=\"{}\">{}</td>",
            escape_attr(&target.name),
            escape_text(&target.summary(clauses))
        );
    }
    out.push_str("</tr></tfoot>\n</table>\n");

    let quotes: BTreeMap<&str, &Clause> = clauses.iter().map(|c| (c.id.as_str(), c)).collect();
    let mut details = String::new();
    for target in &matrix.targets {
        match &target.outcome {
            Err(reason) => {
                let _ = writeln!(
                    details,
                    "<section id=\"{}\" class=\"detail inconclusive\">\n<h3><code>{}</code>: could not be tested</h3>\n<p>Every clause is inconclusive on this target.</p>\n<pre>{}</pre>\n</section>",
                    escape_attr(&error_anchor(&target.name)),
                    escape_text(&target.name),
                    escape_text(reason)
                );
            }
            Ok(report) => {
                for clause in report
                    .clauses
                    .iter()
                    .filter(|c| matches!(c.status, Status::Fail | Status::Inconclusive))
                {
                    let id = anchor(&target.name, &clause.id);
                    let _ = writeln!(
                        details,
                        "<section id=\"{}\" class=\"detail {}\">\n<h3><code>{}</code> · <code>{}</code>: {}</h3>",
                        escape_attr(&id),
                        clause.status,
                        escape_text(&target.name),
                        escape_text(&clause.id),
                        clause.status
                    );
                    if let Some(spec) = quotes.get(clause.id.as_str()) {
                        let _ = writeln!(
                            details,
                            "<blockquote>{}</blockquote>\n<p>evidence: {}</p>",
                            escape_text(&spec.quote),
                            spec.evidence
                        );
                    }
                    for check in clause
                        .checks
                        .iter()
                        .filter(|k| matches!(k.status, Status::Fail | Status::Inconclusive))
                    {
                        let _ = writeln!(
                            details,
                            "<div class=\"check\" id=\"{}\">\n<h4><code>{}</code>: {}</h4>\n<pre>{}</pre>\n</div>",
                            escape_attr(&format!("{id}-{}", check.name)),
                            escape_text(&check.name),
                            check.status,
                            escape_text(&check.message)
                        );
                    }
                    let _ = writeln!(
                        details,
                        "<p><a href=\"#c-{}\">back to the table</a></p>\n</section>",
                        escape_attr(&clause.id)
                    );
                }
            }
        }
    }
    if !details.is_empty() {
        out.push_str("<h2>Details</h2>\n");
        out.push_str(&details);
    }
    out.push_str("</body>\n</html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_shows_in_debug() {
        let target = MatrixTarget {
            name: "staging".to_owned(),
            line: 1,
            kind: TargetKind::Remote {
                base_url: "https://staging.example".to_owned(),
                cda_url: None,
                environment: None,
                token_env: "STAGING_TOKEN".to_owned(),
                secret: Secret("s3cr3t-value".to_owned()),
            },
        };
        let debug = format!("{target:?}");
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
        assert!(debug.contains("[secret]"));
        assert_eq!(
            target.run_options(1, 2).secret.as_deref(),
            Some("s3cr3t-value")
        );
    }

    #[test]
    fn lines_are_one_based() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
