//! From what the user gave to a [`Plan`]: the precedence and sizing rules of the module doc.

use std::path::PathBuf;
use std::time::Duration;

use super::{
    BudgetKind, DEFAULT_CASES, DEFAULT_CONCURRENCY, DEFAULT_DEADLINE, Destructive, Limits,
    MAX_CASES, Plan, PlanError, Remote, Reports, STAGING_DEFAULT_MAX_REQUESTS, Secret, Strictness,
    TargetKind, parse_duration, random_seed, staging_cases,
};
use crate::checks::Profile;

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
