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

/// Requests a staging run needs besides its generated cases (fixtures, tours, permission
/// probes), measured against the embedded server and rounded up. `update.isolation` takes
/// about 40 of them (its fixed check and its sequences, 2 cases of at most 3 steps, do not
/// scale with the cases), the forged-bearer check of `update.auth` about 25, the concurrent
/// histories of the four `update.effect.*` checks about 48.
pub const STAGING_FIXED_REQUESTS: u64 = 353;
/// Requests per generated case in a staging run (every property together), rounded up.
pub const STAGING_REQUESTS_PER_CASE: u64 = 18;
/// The request budget of the staging budget when `--max-requests` is not given.
pub const STAGING_DEFAULT_MAX_REQUESTS: u64 = 400;

/// The public production host: a run against it needs `--allow-production`.
pub const PRODUCTION_HOST: &str = "site-api.datocms.com";

/// Why flags and environment do not make a plan. Every one is a usage error (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
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

/// What the user gave, before resolution: flags, or the `CONFORMANCE_*` variables. `None`
/// (or blank text) is "not given".
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// `--base-url`.
    pub base_url: Option<String>,
    /// `--cda-url`.
    pub cda_url: Option<String>,
    /// `--environment`.
    pub environment: Option<String>,
    /// `CONFORMANCE_API_TOKEN` (never a flag).
    pub token: Option<String>,
    /// `--ca-cert`.
    pub ca_cert: Option<PathBuf>,
    /// `--target-name`.
    pub target_name: Option<String>,
    /// `--seed` (random when not given).
    pub seed: Option<u64>,
    /// `--cases`.
    pub cases: Option<u64>,
    /// `--profile`.
    pub profile: Option<Profile>,
    /// `--strict`.
    pub strict: bool,
    /// `--budget`.
    pub budget: Option<BudgetKind>,
    /// `--max-requests`.
    pub max_requests: Option<u64>,
    /// `--deadline` (`None`: [`DEFAULT_DEADLINE`]).
    pub deadline: Option<Duration>,
    /// `--filter`.
    pub filter: Option<String>,
    /// `--destructive`.
    pub destructive: bool,
    /// `--no-destructive`.
    pub no_destructive: bool,
    /// `--allow-production`.
    pub allow_production: bool,
    /// `--json`, `--junit`.
    pub reports: Reports,
}

fn given(text: Option<String>) -> Option<String> {
    text.filter(|t| !t.trim().is_empty())
}

impl Inputs {
    /// The inputs the `CONFORMANCE_*` variables give, read through `var` (the process
    /// environment, or a map in tests).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Inputs, PlanError> {
        let var = |name: &str| given(var(name));
        let number = |name: &'static str| -> Result<Option<u64>, PlanError> {
            var(name)
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|_| PlanError::Env {
                        name,
                        expected: "a whole number",
                        value: v.clone(),
                    })
                })
                .transpose()
        };
        let profile = match var("CONFORMANCE_PROFILE").as_deref().map(str::trim) {
            None => None,
            Some("documented") => Some(Profile::Documented),
            Some("strict") => Some(Profile::Strict),
            Some("staging") => Some(Profile::Staging),
            Some(other) => {
                return Err(PlanError::Env {
                    name: "CONFORMANCE_PROFILE",
                    expected: "documented, strict or staging",
                    value: other.to_owned(),
                });
            }
        };
        let budget = match var("CONFORMANCE_BUDGET").as_deref().map(str::trim) {
            None => None,
            Some("full") => Some(BudgetKind::Full),
            Some("staging") => Some(BudgetKind::Staging),
            Some(other) => {
                return Err(PlanError::Env {
                    name: "CONFORMANCE_BUDGET",
                    expected: "full or staging",
                    value: other.to_owned(),
                });
            }
        };
        let deadline = var("CONFORMANCE_DEADLINE")
            .map(|v| {
                parse_duration(&v).map_err(|_| PlanError::Env {
                    name: "CONFORMANCE_DEADLINE",
                    expected: "a duration (e.g. 90s, 15m, 1h, 500ms)",
                    value: v.clone(),
                })
            })
            .transpose()?;
        Ok(Inputs {
            base_url: var("CONFORMANCE_BASE_URL"),
            cda_url: var("CONFORMANCE_CDA_URL"),
            environment: var("CONFORMANCE_ENVIRONMENT"),
            token: var("CONFORMANCE_API_TOKEN"),
            ca_cert: var("CONFORMANCE_CA_CERT").map(PathBuf::from),
            seed: number("CONFORMANCE_SEED")?,
            cases: number("CONFORMANCE_CASES")?,
            profile,
            budget,
            max_requests: number("CONFORMANCE_MAX_REQUESTS")?,
            deadline,
            allow_production: var("CONFORMANCE_ALLOW_PRODUCTION").is_some(),
            ..Inputs::default()
        })
    }

    /// Resolve into a plan (the seed drawn at random when not given).
    pub fn resolve(self) -> Result<Plan, PlanError> {
        let strictness = if self.strict || self.profile == Some(Profile::Strict) {
            Strictness::Strict
        } else {
            Strictness::Documented
        };
        let budget = match (self.profile, self.budget) {
            (Some(Profile::Staging), Some(BudgetKind::Full)) => {
                return Err(PlanError::BudgetConflict);
            }
            (_, Some(budget)) => budget,
            (Some(Profile::Staging), None) => BudgetKind::Staging,
            _ => BudgetKind::Full,
        };
        let max_requests = match budget {
            BudgetKind::Staging => Some(self.max_requests.unwrap_or(STAGING_DEFAULT_MAX_REQUESTS)),
            BudgetKind::Full => self.max_requests,
        };
        let cases = match (self.cases, budget, max_requests) {
            (Some(cases), _, _) => check_cases(cases)?,
            (None, BudgetKind::Staging, Some(max)) => staging_cases(max)?,
            _ => DEFAULT_CASES,
        };
        let target = match given(self.base_url) {
            None => TargetKind::embedded(),
            Some(base_url) => TargetKind::Remote(remote(
                base_url,
                self.cda_url,
                self.environment,
                self.token,
                self.ca_cert,
            )?),
        };
        Ok(Plan {
            target,
            target_name: self.target_name,
            strictness,
            budget,
            destructive: match (self.no_destructive, self.destructive) {
                (true, _) => Destructive::Forbid,
                (false, true) => Destructive::Allow,
                (false, false) => Destructive::EmbeddedOnly,
            },
            allow_production: self.allow_production,
            limits: Limits {
                max_requests,
                deadline: Some(self.deadline.unwrap_or(DEFAULT_DEADLINE)),
            },
            filter: self.filter,
            seed: self.seed.unwrap_or_else(random_seed),
            cases,
            concurrency: DEFAULT_CONCURRENCY,
            record_requests: false,
            reports: self.reports,
        })
    }
}

/// A remote target from what was given: the token is required, and a URL without a scheme
/// gets a suggestion instead of the URL parser's "relative URL without a base".
pub fn remote(
    base_url: String,
    cda_url: Option<String>,
    environment: Option<String>,
    token: Option<String>,
    ca_cert: Option<PathBuf>,
) -> Result<Remote, PlanError> {
    scheme_given("base", &base_url)?;
    let cda_url = given(cda_url);
    if let Some(cda) = &cda_url {
        scheme_given("CDA", cda)?;
    }
    let secret = given(token).ok_or(PlanError::NoToken)?;
    Ok(Remote {
        base_url,
        cda_url,
        environment: given(environment),
        secret: Secret::new(secret),
        ca_cert,
    })
}

/// `127.0.0.1:3000` or `localhost:3000`: something that would be a URL with `http://` before
/// it. Anything else is left to the client's URL check and its own message.
fn scheme_given(which: &'static str, url: &str) -> Result<(), PlanError> {
    let url = url.trim();
    let has_scheme = url
        .split_once("://")
        .is_some_and(|(scheme, _)| !scheme.is_empty());
    if !has_scheme
        && reqwest::Url::parse(&format!("http://{url}"))
            .is_ok_and(|u| u.host().is_some() && !url.contains(char::is_whitespace))
        && url.contains(':')
    {
        return Err(PlanError::NoScheme {
            which,
            url: url.to_owned(),
        });
    }
    Ok(())
}

fn check_cases(cases: u64) -> Result<u32, PlanError> {
    match u32::try_from(cases) {
        Ok(n) if (1..=MAX_CASES).contains(&n) => Ok(n),
        _ => Err(PlanError::Cases(cases)),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn nothing_given_is_the_embedded_server_documented_and_full() {
        let plan = Inputs::default().resolve().unwrap();
        assert!(matches!(plan.target, TargetKind::Embedded(ref c) if c.rate_limit.is_none()));
        assert_eq!(plan.strictness, Strictness::Documented);
        assert_eq!(plan.budget, BudgetKind::Full);
        assert_eq!(plan.profile(), Profile::Documented);
        assert_eq!(plan.cases, DEFAULT_CASES);
        assert_eq!(plan.limits.max_requests, None);
        assert_eq!(plan.limits.deadline, Some(DEFAULT_DEADLINE));
        assert!(plan.seed < 1_000_000_000);
    }

    #[test]
    fn the_staging_budget_sizes_requests_and_cases_in_one_place() {
        let plan = Inputs {
            profile: Some(Profile::Staging),
            ..Inputs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(plan.budget, BudgetKind::Staging);
        assert_eq!(plan.strictness, Strictness::Documented);
        assert_eq!(plan.profile(), Profile::Staging);
        assert_eq!(plan.limits.max_requests, Some(STAGING_DEFAULT_MAX_REQUESTS));
        assert_eq!(
            plan.cases,
            staging_cases(STAGING_DEFAULT_MAX_REQUESTS).unwrap()
        );
        assert_eq!(plan.check_budget(), Budget::staging(plan.cases));
        // More requests, more cases; explicit cases win over the sizing.
        let bigger = Inputs {
            budget: Some(BudgetKind::Staging),
            max_requests: Some(1000),
            ..Inputs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(bigger.cases, staging_cases(1000).unwrap());
        assert!(bigger.cases > plan.cases);
        let explicit = Inputs {
            profile: Some(Profile::Staging),
            cases: Some(7),
            ..Inputs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(explicit.cases, 7);
        assert_eq!(
            explicit.limits.max_requests,
            Some(STAGING_DEFAULT_MAX_REQUESTS)
        );
    }

    #[test]
    fn the_staging_budget_covers_every_clause_in_400_requests() {
        let cases = staging_cases(STAGING_DEFAULT_MAX_REQUESTS).unwrap_or(0);
        assert!(cases >= 1);
        assert!(STAGING_FIXED_REQUESTS + STAGING_REQUESTS_PER_CASE * u64::from(cases) <= 400);
        assert_eq!(staging_cases(100), Err(PlanError::StagingTooSmall(100)));
    }

    #[test]
    fn strictness_and_budget_are_separate_axes() {
        for inputs in [
            Inputs {
                profile: Some(Profile::Staging),
                strict: true,
                ..Inputs::default()
            },
            Inputs {
                profile: Some(Profile::Strict),
                budget: Some(BudgetKind::Staging),
                ..Inputs::default()
            },
            Inputs {
                strict: true,
                budget: Some(BudgetKind::Staging),
                ..Inputs::default()
            },
        ] {
            let plan = inputs.resolve().unwrap();
            assert_eq!(plan.strictness, Strictness::Strict);
            assert_eq!(plan.budget, BudgetKind::Staging);
            assert_eq!(plan.profile(), Profile::Strict);
            assert_eq!(plan.check_budget(), Budget::staging(plan.cases));
            assert_eq!(plan.limits.max_requests, Some(STAGING_DEFAULT_MAX_REQUESTS));
        }
        let strict_full = Inputs {
            strict: true,
            ..Inputs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(strict_full.budget, BudgetKind::Full);
        assert_eq!(strict_full.check_budget(), Budget::full(DEFAULT_CASES));
    }

    #[test]
    fn bad_input_is_an_error() {
        let resolve = |inputs: Inputs| inputs.resolve().unwrap_err();
        assert_eq!(
            resolve(Inputs {
                base_url: Some("http://127.0.0.1:9".into()),
                ..Inputs::default()
            }),
            PlanError::NoToken
        );
        assert_eq!(
            resolve(Inputs {
                base_url: Some("http://127.0.0.1:9".into()),
                token: Some("   ".into()),
                ..Inputs::default()
            }),
            PlanError::NoToken
        );
        for cases in [0, u64::from(MAX_CASES) + 1, u64::MAX] {
            assert_eq!(
                resolve(Inputs {
                    cases: Some(cases),
                    ..Inputs::default()
                }),
                PlanError::Cases(cases)
            );
        }
        assert_eq!(
            resolve(Inputs {
                profile: Some(Profile::Staging),
                max_requests: Some(100),
                ..Inputs::default()
            }),
            PlanError::StagingTooSmall(100)
        );
        assert_eq!(
            resolve(Inputs {
                profile: Some(Profile::Staging),
                budget: Some(BudgetKind::Full),
                ..Inputs::default()
            }),
            PlanError::BudgetConflict
        );
        let no_scheme = resolve(Inputs {
            base_url: Some("127.0.0.1:3000".into()),
            token: Some("t".into()),
            ..Inputs::default()
        });
        assert!(
            no_scheme
                .to_string()
                .contains("did you mean http://127.0.0.1:3000"),
            "{no_scheme}"
        );
        // Not host:port: left to the client's URL check.
        assert!(
            Inputs {
                base_url: Some("not a url".into()),
                token: Some("t".into()),
                ..Inputs::default()
            }
            .resolve()
            .is_ok()
        );
    }

    #[test]
    fn the_environment_is_read_and_checked() {
        let inputs = Inputs::from_env(env(&[
            ("CONFORMANCE_BASE_URL", "http://127.0.0.1:3000"),
            ("CONFORMANCE_CDA_URL", " "),
            ("CONFORMANCE_API_TOKEN", "env-secret-6d1f"),
            ("CONFORMANCE_SEED", "42"),
            ("CONFORMANCE_PROFILE", "staging"),
            ("CONFORMANCE_BUDGET", "staging"),
            ("CONFORMANCE_MAX_REQUESTS", "1000"),
            ("CONFORMANCE_DEADLINE", "90s"),
        ]))
        .unwrap();
        let plan = inputs.resolve().unwrap();
        let TargetKind::Remote(remote) = &plan.target else {
            panic!("not remote: {plan:?}");
        };
        assert_eq!(remote.base_url, "http://127.0.0.1:3000");
        assert_eq!(remote.cda_url, None, "a blank variable is not given");
        assert_eq!(remote.secret.expose(), "env-secret-6d1f");
        assert_eq!(plan.seed, 42);
        assert_eq!(plan.limits.max_requests, Some(1000));
        assert_eq!(plan.cases, staging_cases(1000).unwrap());
        assert_eq!(plan.limits.deadline, Some(Duration::from_secs(90)));
        for (name, value) in [
            ("CONFORMANCE_SEED", "soon"),
            ("CONFORMANCE_CASES", "-1"),
            ("CONFORMANCE_PROFILE", "lenient"),
            ("CONFORMANCE_BUDGET", "tiny"),
            ("CONFORMANCE_DEADLINE", "forever"),
        ] {
            let err = Inputs::from_env(env(&[(name, value)])).unwrap_err();
            assert!(
                matches!(&err, PlanError::Env { name: n, .. } if *n == name),
                "{err}"
            );
        }
    }

    #[test]
    fn a_flag_wins_over_the_environment() {
        // The command line fills `Inputs` from its flags and clap's `env`; what the harness
        // reads from the environment is overridden the same way, field by field.
        let from_env = Inputs::from_env(env(&[("CONFORMANCE_SEED", "1")])).unwrap();
        let plan = Inputs {
            seed: Some(2),
            ..from_env
        }
        .resolve()
        .unwrap();
        assert_eq!(plan.seed, 2);
    }

    #[test]
    fn the_secret_never_shows_in_debug_or_display() {
        let plan = Inputs {
            base_url: Some("http://127.0.0.1:9".into()),
            token: Some("plan-secret-93a0".into()),
            ..Inputs::default()
        }
        .resolve()
        .unwrap();
        let debug = format!("{plan:?} {plan:#?}");
        assert!(!debug.contains("plan-secret-93a0"), "{debug}");
        assert!(debug.contains("[secret]"), "{debug}");
        let TargetKind::Remote(remote) = &plan.target else {
            panic!("not remote");
        };
        assert_eq!(remote.secret.to_string(), "[secret]");
        assert_eq!(remote.secret.expose(), "plan-secret-93a0");
    }

    #[test]
    fn destructive_clauses_need_the_embedded_server_or_the_flag() {
        use Destructive::*;
        assert!(destructive_allowed(EmbeddedOnly, true));
        // A server on loopback the suite did not start is someone else's (a vendor's
        // localhost, a port-forward to staging): not without the flag.
        assert!(!destructive_allowed(EmbeddedOnly, false));
        assert!(destructive_allowed(Allow, false));
        assert!(!destructive_allowed(Forbid, true));
        assert!(!destructive_allowed(Forbid, false));
        let both = Inputs {
            destructive: true,
            no_destructive: true,
            ..Inputs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(both.destructive, Forbid);
    }

    #[test]
    fn production_is_recognised() {
        assert!(is_production("https://site-api.datocms.com"));
        assert!(is_production("https://SITE-API.datocms.com/"));
        assert!(is_production("https://site-api.datocms.com./"));
        assert!(!is_production("https://staging.example.com"));
        assert!(production_guard("https://site-api.datocms.com", false).is_err());
        assert!(production_guard("https://site-api.datocms.com", true).is_ok());
        assert!(production_guard("https://staging.example.com", false).is_ok());
    }

    #[test]
    fn deadlines_read_and_print_alike() {
        for (text, duration) in [
            ("15m", Duration::from_secs(900)),
            ("90s", Duration::from_secs(90)),
            ("90", Duration::from_secs(90)),
            ("500ms", Duration::from_millis(500)),
            ("1h", Duration::from_secs(3600)),
        ] {
            assert_eq!(parse_duration(text), Ok(duration), "{text}");
        }
        assert_eq!(format_duration(DEFAULT_DEADLINE), "15m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
        for bad in ["", "0s", "soon", "5 days", "-1s", "99999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
