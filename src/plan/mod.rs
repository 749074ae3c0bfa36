//! The plan of a run: flags and environment resolved once, in one place, into what to run
//! against (the embedded server or a remote target), how strictly, with what budget and
//! limits. `run`, `sweep`, `matrix`, `mutants` and the `cargo test` harness all go through
//! here; the engine opens a session from a plan and never sees a flag.
//!
//! Precedence, from strongest to weakest: a flag, then its `CONFORMANCE_*` variable (clap
//! reads those for the command line; [`Inputs::from_env`] for the harness), then a default.
//! An empty or blank value counts as not given. Strictness and budget are separate axes:
//! `--profile staging` means the staging budget with documented strictness, and `--strict`
//! (or `--profile strict`) adds strictness to any budget. With the staging budget
//! `--max-requests` defaults to [`STAGING_DEFAULT_MAX_REQUESTS`], and the generated cases,
//! unless `--cases` is given, are sized by it ([`staging_cases`]).
//!
//! The policy a plan carries lives here too: the production guard and the destructive rule.
//! The resolver itself is in `resolve`.

mod resolve;
#[cfg(test)]
mod tests;

pub use resolve::{Inputs, remote};

use std::path::PathBuf;
use std::time::Duration;

use crate::checks::{Budget, Profile};
use crate::reference::ServerConfig;

/// Generated cases per property by default.
pub const DEFAULT_CASES: u32 = 32;
/// The most generated cases per property a run accepts (`--cases`): about 18 requests per
/// case, so 10,000 is already some 180,000 requests.
pub const MAX_CASES: u32 = 10_000;
/// How long a run may take by default (`--deadline`). A staging run takes some 15 s and a
/// local one about a second: a run still going after this is stuck on a silent target.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// How many checks run at once by default.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// Requests a staging run needs besides its generated cases: the covering sets of every
/// clause ([`crate::checks::staging::STAGING_PLAN`], whose figures already hold the few 429s
/// a run at the documented rate limit meets), and a pool for what no clause plans: the
/// preflight and learning the management token's id (2 requests), listing what exists before
/// the run (2), a 429 past a clause's share (3).
pub const STAGING_FIXED_REQUESTS: u64 = crate::checks::staging::covering_total() + 7;
/// Requests per generated case in a staging run (every property together).
pub const STAGING_REQUESTS_PER_CASE: u64 = crate::checks::staging::per_case_total();
/// The request budget of the staging budget when `--max-requests` is not given.
pub const STAGING_DEFAULT_MAX_REQUESTS: u64 = 400;

/// The public production host: a run against it needs `--allow-production`.
pub const PRODUCTION_HOST: &str = "site-api.datocms.com";

/// Why flags and environment do not make a plan. Every one is a usage error (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A URL the client refuses, or a client that cannot be built.
    #[error("{0}")]
    Client(String),
    /// A remote target without its management token.
    #[error(
        "a --base-url needs the management token in the environment variable CONFORMANCE_API_TOKEN \
         (never on the command line, where ps and shell history would show it)"
    )]
    NoToken,
    /// `sweep` without a target.
    #[error("sweep needs --base-url (or CONFORMANCE_BASE_URL)")]
    NoBaseUrl,
    /// A URL with no scheme (`127.0.0.1:3000`).
    #[error("invalid {which} URL {url:?}: it has no scheme; did you mean http://{url} ?")]
    NoScheme {
        /// `base` or `CDA`.
        which: &'static str,
        /// What was given.
        url: String,
    },
    /// `--cases` out of range.
    #[error("{0} generated cases per property is out of range: 1 to {MAX_CASES}")]
    Cases(u64),
    /// A staging budget too small to cover every clause.
    #[error(
        "--max-requests {0} is too small: covering every clause takes about {min} requests",
        min = STAGING_FIXED_REQUESTS + STAGING_REQUESTS_PER_CASE
    )]
    StagingTooSmall(u64),
    /// `--profile staging` with `--budget full`.
    #[error("--profile staging means --budget staging; it cannot be combined with --budget full")]
    BudgetConflict,
    /// The production host without `--allow-production`.
    #[error(
        "{0} is the production API: the suite is meant for staging; pass --allow-production to run against production anyway"
    )]
    Production(String),
    /// `--ca-cert` cannot be read.
    #[error("failed to read --ca-cert {path}: {message}")]
    CaCert {
        /// The path given.
        path: String,
        /// Why.
        message: String,
    },
    /// A variable that does not hold what it should.
    #[error("{name} must be {expected}, got {value:?}")]
    Env {
        /// The variable.
        name: &'static str,
        /// What it may hold.
        expected: &'static str,
        /// What it holds.
        value: String,
    },
}

/// A management token's secret. `Debug` and `Display` show `[secret]`; the value itself only
/// comes out through [`Secret::expose`], where the client needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself, for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[secret]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[secret]")
    }
}

/// A target the suite did not start.
#[derive(Debug, Clone)]
pub struct Remote {
    /// CMA base URL, as given (the client normalises it).
    pub base_url: String,
    /// CDA URL.
    pub cda_url: Option<String>,
    /// `X-Environment` to send.
    pub environment: Option<String>,
    /// The management token.
    pub secret: Secret,
    /// A PEM file of extra trusted CA certificates (`--ca-cert`).
    pub ca_cert: Option<PathBuf>,
}

impl Remote {
    /// A remote target at `base_url` with the management token `secret`, nothing else set.
    pub fn new(base_url: impl Into<String>, secret: impl Into<String>) -> Remote {
        Remote {
            base_url: base_url.into(),
            cda_url: None,
            environment: None,
            secret: Secret::new(secret),
            ca_cert: None,
        }
    }

    /// The contents of `--ca-cert`, read when the session opens, so that a bad path is a
    /// clear configuration error.
    pub fn ca_pem(&self) -> Result<Option<String>, PlanError> {
        self.ca_cert
            .as_ref()
            .map(|path| {
                std::fs::read_to_string(path).map_err(|err| PlanError::CaCert {
                    path: path.display().to_string(),
                    message: err.to_string(),
                })
            })
            .transpose()
    }
    /// A client for this target alone, no embedded server (what `sweep` talks to).
    pub fn client(&self) -> Result<crate::client::Client, PlanError> {
        let client_error = |err: crate::client::ClientError| PlanError::Client(err.to_string());
        let base_url =
            crate::client::normalize_url("base", &self.base_url).map_err(client_error)?;
        let target = crate::client::Target {
            name: host_of(&base_url),
            base_url,
            cda_url: None,
            environment: self.environment.clone(),
            secret: self.secret.expose().to_owned(),
            embedded: false,
            ca_pem: self.ca_pem()?,
        };
        crate::client::Client::new(target).map_err(client_error)
    }

    /// The same, with a CDA URL.
    pub fn with_cda(mut self, cda_url: impl Into<String>) -> Remote {
        self.cda_url = Some(cda_url.into());
        self
    }
}

/// What a run is against.
#[derive(Debug, Clone)]
pub enum TargetKind {
    /// The embedded reference server, started with this configuration (rate limit off by
    /// default, so a run takes a second; `mutants` switches faults on here).
    Embedded(Box<ServerConfig>),
    /// Someone else's server.
    Remote(Remote),
}

impl TargetKind {
    /// The embedded server as `run` starts it: the rate limit off.
    pub fn embedded() -> TargetKind {
        TargetKind::Embedded(Box::new(ServerConfig {
            rate_limit: None,
            ..ServerConfig::default()
        }))
    }
}

/// Which promises are hard checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Strictness {
    /// Documented promises fail the run; observed behaviour gives warnings.
    #[default]
    Documented,
    /// Observed behaviour is asserted too.
    Strict,
}

/// How much of the target a run may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BudgetKind {
    /// Every case and burst (the embedded server, a vendor's own server).
    #[default]
    Full,
    /// Sized for a shared staging: every clause covered in few requests.
    Staging,
}

/// Whether destructive clauses run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Destructive {
    /// Only on the embedded server the suite starts itself.
    #[default]
    EmbeddedOnly,
    /// On any target (`--destructive`).
    Allow,
    /// Nowhere (`--no-destructive`).
    Forbid,
}

/// Limits on a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Stop sending (the rest is inconclusive) after this many requests; cleanup is exempt.
    pub max_requests: Option<u64>,
    /// How long the run may take from the session's opening (`None`: no limit).
    pub deadline: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_requests: None,
            deadline: Some(DEFAULT_DEADLINE),
        }
    }
}

/// Report files a run writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reports {
    /// `--json`.
    pub json: Option<PathBuf>,
    /// `--junit`.
    pub junit: Option<PathBuf>,
}

/// A resolved run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// What to run against.
    pub target: TargetKind,
    /// The target's name in reports (default: `reference`, or the host name).
    pub target_name: Option<String>,
    /// Which promises are hard checks.
    pub strictness: Strictness,
    /// Cases and bursts.
    pub budget: BudgetKind,
    /// Whether destructive clauses run.
    pub destructive: Destructive,
    /// Allow the public production host.
    pub allow_production: bool,
    /// Request and time limits.
    pub limits: Limits,
    /// Run only checks whose full name contains this.
    pub filter: Option<String>,
    /// Seed.
    pub seed: u64,
    /// Generated cases per property.
    pub cases: u32,
    /// How many checks run at once.
    pub concurrency: usize,
    /// Keep every request sent in `Stats::sent` (tests that read the transcript).
    pub record_requests: bool,
    /// Report files.
    pub reports: Reports,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            target: TargetKind::embedded(),
            target_name: None,
            strictness: Strictness::Documented,
            budget: BudgetKind::Full,
            destructive: Destructive::EmbeddedOnly,
            allow_production: false,
            limits: Limits::default(),
            filter: None,
            seed: 0,
            cases: DEFAULT_CASES,
            concurrency: DEFAULT_CONCURRENCY,
            record_requests: false,
            reports: Reports::default(),
        }
    }
}

impl Plan {
    /// The profile the checks and the reports see: `strict` when strict, else `staging` with
    /// the staging budget, else `documented`.
    pub fn profile(&self) -> Profile {
        match (self.strictness, self.budget) {
            (Strictness::Strict, _) => Profile::Strict,
            (Strictness::Documented, BudgetKind::Staging) => Profile::Staging,
            (Strictness::Documented, BudgetKind::Full) => Profile::Documented,
        }
    }

    /// The checks' budget of cases and bursts.
    pub fn check_budget(&self) -> Budget {
        match self.budget {
            BudgetKind::Full => Budget::full(self.cases),
            BudgetKind::Staging => Budget::staging(self.cases),
        }
    }

    /// Whether destructive clauses may run on a target (`embedded`: the suite started it).
    pub fn destructive_allowed(&self, embedded: bool) -> bool {
        destructive_allowed(self.destructive, embedded)
    }
}

/// The most generated cases per property that keep a staging run within `max_requests`.
pub fn staging_cases(max_requests: u64) -> Result<u32, PlanError> {
    let room = max_requests.saturating_sub(STAGING_FIXED_REQUESTS) / STAGING_REQUESTS_PER_CASE;
    if room == 0 {
        return Err(PlanError::StagingTooSmall(max_requests));
    }
    Ok(room.min(u64::from(DEFAULT_CASES)) as u32)
}

/// Whether `url` points at the production API.
pub fn is_production(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| {
                h.trim_end_matches('.')
                    .eq_ignore_ascii_case(PRODUCTION_HOST)
            })
        })
        .unwrap_or(false)
}

/// The production guard: `url` (normalised) may be used unless it is production and the
/// plan does not allow it.
pub fn production_guard(url: &str, allow_production: bool) -> Result<(), PlanError> {
    if is_production(url) && !allow_production {
        return Err(PlanError::Production(url.to_owned()));
    }
    Ok(())
}

/// Whether destructive clauses may run: on the embedded server the suite starts itself, on
/// any other target only with `--destructive`, and nowhere with `--no-destructive`. A loopback
/// address is not enough: a vendor's server on `localhost`, or a staging behind
/// `kubectl port-forward`, is someone else's data.
pub fn destructive_allowed(rule: Destructive, embedded: bool) -> bool {
    match rule {
        Destructive::Forbid => false,
        Destructive::Allow => true,
        Destructive::EmbeddedOnly => embedded,
    }
}

/// The host of `url`, the default name of a remote target in reports.
pub fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| url.to_owned())
}

/// A random seed, when the user gives none (printed, so the run can be replayed).
pub fn random_seed() -> u64 {
    rand::random::<u64>() % 1_000_000_000
}

/// A duration as written on the command line: `90s`, `15m`, `1h`, `500ms`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 90s, 15m, 1h, 500ms)"))?;
    let millis = match unit.trim() {
        "ms" => Some(number),
        "" | "s" => number.checked_mul(1000),
        "m" | "min" => number.checked_mul(60_000),
        "h" => number.checked_mul(3_600_000),
        _ => {
            return Err(format!(
                "{text:?} is not a duration (e.g. 90s, 15m, 1h, 500ms)"
            ));
        }
    };
    match millis {
        Some(0) => Err("the deadline must be longer than 0".to_owned()),
        Some(millis) => Ok(Duration::from_millis(millis)),
        None => Err(format!("{text:?} is too long")),
    }
}

/// A duration the way [`parse_duration`] reads it back (`15m`, `90s`, `500ms`).
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis.is_multiple_of(3_600_000) {
        format!("{}h", millis / 3_600_000)
    } else if millis.is_multiple_of(60_000) {
        format!("{}m", millis / 60_000)
    } else if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}
