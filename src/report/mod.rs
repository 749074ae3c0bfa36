//! Reports: the human table, the failures in full with a `curl` reproducer, and the `--json`
//! document (its schema is `specs/report.schema.json`). Every text here has been through the
//! run's secret redaction and [`crate::output::terminal`], in that order; a reproducer is
//! built from the redacted request and shell-quoted last, and nothing is replaced in it
//! afterwards.
//!
//! The `--json` document also holds every failed and inconclusive check as structured data
//! (`findings`: the clause's promise, what was observed, the redacted exchanges with their
//! bodies as JSON, the reproducer and the [`replay_id`]), and the run's start (RFC 3339 UTC).
//!
//! This file holds the report types and how checks become them; `human` renders the terminal
//! report, [`junit`] the JUnit XML, [`summary`] the Markdown summary for CI job pages, `curl`
//! the reproducers, and [`matrix`] (with [`matrix_md`] and [`matrix_html`]) the
//! compatibility matrix. A report is built from plain
//! data ([`RunFacts`], the check reports), never from the engine's session.

mod curl;
mod human;
mod json;
pub mod junit;
pub mod matrix;
pub mod matrix_html;
pub mod matrix_md;
pub mod replay_id;
pub mod summary;

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::checks::{CheckDef, Profile, Settings};
use crate::client::{Exchange, Secrets, Stats, Target};
use crate::outcome::{CheckResult, Finding, Status};
use crate::spec::{Evidence, Spec};

pub use curl::curl_command;
pub use json::rfc3339;

/// How one check ended.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Clause id.
    pub clause: String,
    /// Check name.
    pub name: String,
    /// Outcome.
    pub status: Status,
    /// Empty on a plain pass; the failure in full, or the reason, otherwise.
    pub message: String,
    /// Generated cases run.
    pub cases: u64,
    /// Requests sent.
    pub requests: u64,
    /// Of those, resends after a 429 or a transient failure (the engine sets it).
    #[serde(skip)]
    pub resends: u64,
    /// Wall time.
    pub duration_ms: u64,
    /// Observed deviations outside strict, and fixtures that could not be removed.
    pub warnings: Vec<String>,
    /// A `curl` command for the smallest failing request.
    pub reproducer: Option<String>,
    /// What the clause promises (its quote), for a check that failed or was inconclusive.
    pub expected: Option<String>,
    /// What happened instead, in the check's words (redacted, without the evidence); the
    /// reason, for an inconclusive check.
    pub observed: Option<String>,
    /// The evidence of a failure, redacted, oldest first (the last is the failing request).
    #[serde(skip)]
    pub exchanges: Vec<Exchange>,
    /// The finding's stable id (`token-conformance replay ID`), for a failed or inconclusive
    /// check.
    pub replay_id: Option<String>,
    /// When the failing requests name the run's fixtures: a `sh` script that creates new
    /// ones like them, sends the requests against them and deletes them.
    pub script: Option<String>,
}

impl CheckReport {
    /// `<clause>::<check>`.
    pub fn full_name(&self) -> String {
        format!("{}::{}", self.clause, self.name)
    }
}

/// One clause with its checks.
#[derive(Debug, Clone, Serialize)]
pub struct ClauseReport {
    /// Clause id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Worst of its checks.
    pub status: Status,
    /// Evidence level.
    pub evidence: Evidence,
    /// Requests its checks sent.
    pub requests: u64,
    /// Its checks.
    pub checks: Vec<CheckReport>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Target name.
    pub target_name: String,
    /// CMA URL.
    pub base_url: String,
    /// CDA URL.
    pub cda_url: Option<String>,
    /// Environment.
    pub environment: Option<String>,
    /// Whether the run started its own server.
    pub embedded: bool,
    /// Seed.
    pub seed: u64,
    /// Cases per property.
    pub cases: u32,
    /// Profile.
    pub profile: Profile,
    /// Clauses in catalog order (only those with a selected check).
    pub clauses: Vec<ClauseReport>,
    /// Requests sent in all.
    pub requests: u64,
    /// Of those, cleanup requests sent past the request cap (see `client::ledger`).
    pub requests_past_cap: u64,
    /// Time spent waiting on rate limits.
    pub rate_limit_wait_ms: u64,
    /// Wall time.
    pub duration_ms: u64,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
}

/// The longest reason or warning a check report shows (the suite's own reasons are a few
/// lines; the rest would be the target's words).
const MAX_REASON_CHARS: usize = 2000;

/// A finding on one line for a warning (the observations, say): its reason, or a failure's
/// message and its last answer's summary, redacted, cut short and terminal-safe. Never the
/// finding's `Debug`, which holds the exchanges' unredacted JSON and whole bodies.
pub fn finding_line(finding: &Finding, secrets: &Secrets) -> String {
    let text = match finding {
        Finding::Skipped(reason) | Finding::Inconclusive(reason) => reason.clone(),
        Finding::Fail(failure) => match failure.exchanges.last() {
            Some(ex) => format!("{} ({})", failure.message, ex.summary()),
            None => failure.message.clone(),
        },
    };
    crate::output::terminal_line(&crate::text::truncate(
        &secrets.redact(&text),
        MAX_REASON_CHARS,
    ))
}

/// Turn a check's result into its report, with the failure written out in full.
#[allow(clippy::too_many_arguments)]
pub fn check_report(
    def: &CheckDef,
    result: CheckResult,
    cases: u64,
    requests: u64,
    duration: Duration,
    warnings: Vec<String>,
    settings: &Settings,
    secrets: &Secrets,
) -> CheckReport {
    // Cut after redaction (a cut secret would no longer be recognised), escaped last: a
    // target can make a reason quote megabytes of its own words (an error code, a role id).
    let clean = |text: &str| {
        crate::output::terminal(&crate::text::truncate(
            &secrets.redact(text),
            MAX_REASON_CHARS,
        ))
    };
    let mut observed = None;
    let mut evidence = Vec::new();
    let (status, message, reproducer, script) = match result {
        Ok(()) => (Status::Pass, String::new(), None, None),
        Err(Finding::Skipped(reason)) => (Status::Skipped, clean(&reason), None, None),
        Err(Finding::Inconclusive(reason)) => {
            let reason = clean(&reason);
            observed = Some(reason.clone());
            (Status::Inconclusive, reason, None, None)
        }
        Err(Finding::Fail(failure)) => {
            // Redacted again with every secret known now, then quoted: the order that keeps
            // a secret matching part of a quoted name from breaking the quoting.
            let exchanges: Vec<Exchange> = failure
                .exchanges
                .iter()
                .map(|ex| secrets.redact_exchange(ex))
                .collect();
            let reproducer = exchanges.last().map(curl_command);
            let id = replay_id::replay_id(
                settings.seed,
                settings.budget.cases,
                settings.profile.as_str(),
                &def.full_name(),
            );
            let script = curl::script(
                &exchanges,
                &format!("{} (replay id {id})", def.full_name()),
                Spec::embedded().role_permissions(),
                &id[..8],
            );
            let said = clean(&failure.message);
            let message = failure_text(
                def,
                &said,
                &exchanges,
                settings,
                reproducer.as_deref(),
                script.as_deref(),
            );
            observed = Some(said);
            evidence = exchanges;
            // Escaping only turns characters into visible text that holds no quote, so it
            // cannot change how the shell reads the reproducer line (which has none anyway).
            (
                Status::Fail,
                crate::output::terminal(&message),
                reproducer,
                script,
            )
        }
    };
    let finding = matches!(status, Status::Fail | Status::Inconclusive);
    let expected = finding
        .then(|| Spec::embedded().catalog().clause(def.clause))
        .flatten()
        .map(|clause| clause.quote.clone());
    let replay_id = finding.then(|| {
        replay_id::replay_id(
            settings.seed,
            settings.budget.cases,
            settings.profile.as_str(),
            &def.full_name(),
        )
    });
    CheckReport {
        clause: def.clause.id().to_owned(),
        name: def.name.to_owned(),
        status,
        message,
        cases,
        requests,
        resends: 0,
        duration_ms: duration.as_millis() as u64,
        warnings: warnings.iter().map(|w| clean(w)).collect(),
        reproducer,
        expected,
        observed,
        exchanges: evidence,
        replay_id,
        script,
    }
}

fn failure_text(
    def: &CheckDef,
    message: &str,
    exchanges: &[Exchange],
    settings: &Settings,
    curl: Option<&str>,
    script: Option<&str>,
) -> String {
    let mut out = String::new();
    if let Some(clause) = Spec::embedded().catalog().clause(def.clause) {
        let _ = writeln!(
            out,
            "clause {} ({}): \"{}\"",
            clause.id, clause.evidence, clause.quote
        );
    }
    let _ = writeln!(out, "{message}");
    for ex in exchanges {
        let _ = writeln!(out, "\n  → {} {}", ex.request.method, ex.request.url);
        for (name, value) in &ex.request.headers {
            let _ = writeln!(out, "    {name}: {value}");
        }
        if let Some(body) = &ex.request.body {
            let _ = writeln!(out, "    {}", crate::text::truncate(body, 2000));
        }
        let _ = writeln!(out, "  ← {}", ex.status);
        for (name, value) in &ex.headers {
            if name == "content-type" || name.starts_with("x-ratelimit") {
                let _ = writeln!(out, "    {name}: {value}");
            }
        }
        let _ = writeln!(out, "    {}", crate::text::truncate(&ex.body_text, 2000));
    }
    let _ = writeln!(out, "\nreplay: {}", replay_line(def, settings));
    if let Some(curl) = curl {
        let _ = writeln!(out, "reproduce: {curl}");
    }
    if let Some(script) = script {
        let _ = writeln!(
            out,
            "that request names the run's fixtures, which were removed; this sh script creates new ones, sends it against them and deletes them:"
        );
        for line in script.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// How to replay a failure of `def` after the run: by its id from the JSON report when one
/// is written, else a `replay` command line with the run's seed, cases and profile and the
/// target's options spelled out (the token only as a placeholder, never its value).
fn replay_line(def: &CheckDef, settings: &Settings) -> String {
    let id = replay_id::replay_id(
        settings.seed,
        settings.budget.cases,
        settings.profile.as_str(),
        &def.full_name(),
    );
    let hint = &settings.replay;
    if let Some(report) = &hint.report {
        return format!(
            "token-conformance replay {id} --report {}",
            curl::shell_quote(&report.display().to_string())
        );
    }
    let mut line = String::new();
    if hint.base_url.is_some() {
        line.push_str("CONFORMANCE_API_TOKEN=… ");
    }
    let _ = write!(
        line,
        "token-conformance replay --seed {} --cases {} --profile {}{} --filter {}",
        settings.seed,
        settings.budget.cases,
        settings.profile.as_str(),
        if settings.budget.staging && settings.profile != Profile::Staging {
            " --budget staging"
        } else {
            ""
        },
        def.full_name()
    );
    for (flag, value) in [
        ("--base-url", &hint.base_url),
        ("--cda-url", &hint.cda_url),
        ("--environment", &hint.environment),
    ] {
        if let Some(value) = value {
            let _ = write!(line, " {flag} {}", curl::shell_quote(value));
        }
    }
    // A shell comment, so that the line still runs as it is pasted.
    let _ = write!(line, "  # replay id {id}");
    line
}

/// What a run was, apart from its checks: the plain facts a report needs from the engine,
/// so that the report does not depend on the engine's session.
#[derive(Debug, Clone, Copy)]
pub struct RunFacts<'a> {
    /// The target it ran against.
    pub target: &'a Target,
    /// The client's request counts.
    pub stats: &'a Stats,
    /// Seed.
    pub seed: u64,
    /// Cases per property, after the budget.
    pub cases: u32,
    /// Profile.
    pub profile: Profile,
    /// Wall time.
    pub duration: Duration,
}

/// The cases column: empty for a check (or clause) that generates no cases, rather than a
/// `0` that reads like "none of its cases ran".
pub(crate) fn cases_column(cases: u64) -> String {
    if cases == 0 {
        String::new()
    } else {
        cases.to_string()
    }
}

/// Gather check reports by clause.
pub fn run_report(facts: RunFacts<'_>, checks: Vec<CheckReport>) -> RunReport {
    let RunFacts {
        target,
        stats,
        seed,
        cases,
        profile,
        duration,
    } = facts;
    let mut clauses = Vec::new();
    for clause in Spec::embedded().catalog().clauses() {
        let mine: Vec<CheckReport> = checks
            .iter()
            .filter(|c| c.clause == clause.id)
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        clauses.push(ClauseReport {
            id: clause.id.clone(),
            title: clause.title.clone(),
            status: Status::combine(mine.iter().map(|c| c.status)),
            evidence: clause.evidence,
            requests: mine.iter().map(|c| c.requests).sum(),
            checks: mine,
        });
    }
    RunReport {
        target_name: target.name.clone(),
        base_url: target.base_url.clone(),
        cda_url: target.cda_url.clone(),
        environment: target.environment.clone(),
        embedded: target.embedded,
        seed,
        cases,
        profile,
        clauses,
        requests: stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        requests_past_cap: stats.past_cap.load(std::sync::atomic::Ordering::Relaxed),
        rate_limit_wait_ms: stats
            .rate_limit_wait_ms
            .load(std::sync::atomic::Ordering::Relaxed),
        duration_ms: duration.as_millis() as u64,
        // The run started `duration` ago: the engine's facts need no clock of their own.
        started_at: rfc3339(
            std::time::SystemTime::now()
                .checked_sub(duration)
                .unwrap_or(std::time::UNIX_EPOCH),
        ),
    }
}

#[cfg(test)]
mod tests;
