//! The engine both front ends drive: open a session on a target (starting the embedded
//! reference server when no base URL is given), check that it is the API, run checks with
//! their fixtures cleaned up whatever happens, and gather the results by clause.

use std::sync::Arc;
use std::time::Instant;

use reqwest::Method;

use crate::checks::{self, Budget, CheckDef, Cx, Profile, Settings};
use crate::fixtures::{Fixtures, NAME_PREFIX};
use crate::outcome::{Finding, Status};
use crate::reference::{ReferenceServer, ServerConfig};
use crate::report::{self, CheckReport, RunReport};
use crate::spec::Spec;
use crate::target::{Client, ClientError, Request, Target, TransportError, normalize_url};

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// CMA base URL; `None` starts the embedded reference server.
    pub base_url: Option<String>,
    /// CDA URL.
    pub cda_url: Option<String>,
    /// `X-Environment` to send.
    pub environment: Option<String>,
    /// The management token's secret (from `CONFORMANCE_API_TOKEN`).
    pub secret: Option<String>,
    /// The target's name in reports.
    pub target_name: Option<String>,
    /// Allow destructive clauses on a non-loopback target.
    pub destructive: bool,
    /// Forbid destructive clauses even on the embedded server and loopback targets.
    pub no_destructive: bool,
    /// Allow the public production host.
    pub allow_production: bool,
    /// A PEM file of extra trusted CA certificates (`--ca-cert`).
    pub ca_cert: Option<std::path::PathBuf>,
    /// Seed.
    pub seed: u64,
    /// Generated cases per property.
    pub cases: u32,
    /// Stop sending (the rest is inconclusive) after this many requests; cleanup is exempt.
    pub max_requests: Option<u64>,
    /// Which promises are hard checks.
    pub profile: Profile,
    /// Run only checks whose full name contains this.
    pub filter: Option<String>,
    /// How many checks run at once.
    pub concurrency: usize,
    /// How to start the embedded server when there is no base URL (rate limit off by
    /// default, so a run takes a second; `mutants` switches faults on here).
    pub embedded: ServerConfig,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            base_url: None,
            cda_url: None,
            environment: None,
            secret: None,
            target_name: None,
            destructive: false,
            no_destructive: false,
            allow_production: false,
            ca_cert: None,
            seed: 0,
            cases: DEFAULT_CASES,
            max_requests: None,
            profile: Profile::Documented,
            filter: None,
            concurrency: 8,
            embedded: ServerConfig {
                rate_limit: None,
                ..ServerConfig::default()
            },
        }
    }
}

impl RunOptions {
    /// The contents of `--ca-cert`, read now so that a bad path is a clear configuration error.
    fn ca_pem(&self) -> Result<Option<String>, RunError> {
        self.ca_cert
            .as_ref()
            .map(|path| {
                std::fs::read_to_string(path).map_err(|err| {
                    RunError::Config(format!(
                        "failed to read --ca-cert {}: {err}",
                        path.display()
                    ))
                })
            })
            .transpose()
    }
}

/// Generated cases per property by default.
pub const DEFAULT_CASES: u32 = 32;

/// Why a run could not start. Each maps to an exit code (see `--help`).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The settings are wrong.
    #[error("{0}")]
    Config(String),
    /// A URL is malformed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The embedded server could not start.
    #[error("failed to start the embedded reference server: {0}")]
    Server(#[from] crate::reference::ServerError),
    /// Nothing answered.
    #[error("the target could not be reached: {0}")]
    Unreachable(TransportError),
    /// Something answered, but not the API.
    #[error("the target at {url} does not answer like the API: {detail}")]
    NotTheApi {
        /// The URL probed.
        url: String,
        /// What came back.
        detail: String,
    },
    /// The API refused the management token.
    #[error("the target refused the management token ({detail}): check CONFORMANCE_API_TOKEN")]
    Credentials {
        /// Status and code.
        detail: String,
    },
}

/// An open connection to a target, shared by every check of a run.
#[derive(Debug)]
pub struct Session {
    client: Client,
    settings: Arc<Settings>,
    server: Option<ReferenceServer>,
    embedded: ServerConfig,
    /// The checks running now: their fixtures, and how to stop them (Ctrl-C).
    live: std::sync::Mutex<Vec<(usize, Arc<Fixtures>, tokio::task::AbortHandle)>>,
}

impl Session {
    /// Start the embedded server if needed, build the client and probe the target.
    pub async fn open(options: &RunOptions) -> Result<Session, RunError> {
        let (target, server) = match &options.base_url {
            None => {
                let server = ReferenceServer::start(options.embedded.clone()).await?;
                let target = Target {
                    base_url: server.cma_url(),
                    cda_url: Some(server.cda_url()),
                    environment: options.environment.clone(),
                    secret: server.admin_secret().to_owned(),
                    name: options
                        .target_name
                        .clone()
                        .unwrap_or_else(|| "reference".to_owned()),
                    embedded: true,
                    ca_pem: None,
                };
                (target, Some(server))
            }
            Some(base) => {
                let base_url = normalize_url("base", base)?;
                if is_production(&base_url) && !options.allow_production {
                    return Err(RunError::Config(format!(
                        "{base_url} is the production API: the suite is meant for staging; pass --allow-production to run against production anyway"
                    )));
                }
                let cda_url = options
                    .cda_url
                    .as_deref()
                    .map(|u| normalize_url("CDA", u))
                    .transpose()?;
                let secret = options.secret.clone().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                    RunError::Config(
                        "a --base-url needs the management token in the environment variable CONFORMANCE_API_TOKEN \
                         (never on the command line, where ps and shell history would show it)"
                            .to_owned(),
                    )
                })?;
                let name = options
                    .target_name
                    .clone()
                    .unwrap_or_else(|| host_of(&base_url));
                let target = Target {
                    base_url,
                    cda_url,
                    environment: options.environment.clone(),
                    secret,
                    name,
                    embedded: false,
                    ca_pem: options.ca_pem()?,
                };
                (target, None)
            }
        };
        let destructive = destructive_allowed(&target, options);
        let client = Client::new(target)?;
        client.set_request_cap(options.max_requests);
        preflight(&client).await?;
        let settings = Settings {
            seed: options.seed,
            budget: match options.profile {
                Profile::Staging => Budget::staging(options.cases),
                Profile::Documented | Profile::Strict => Budget::full(options.cases),
            },
            profile: options.profile,
            destructive,
            run_id: run_id(),
        };
        Ok(Session {
            client,
            settings: Arc::new(settings),
            server,
            embedded: options.embedded.clone(),
            live: std::sync::Mutex::default(),
        })
    }

    /// The client (totals, secrets).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The run's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Run one check with its own fixtures; they are removed when it ends, however it ends.
    pub async fn run_check(&self, def: &CheckDef) -> CheckReport {
        let started = Instant::now();
        // The check's place in the catalog, so that fixture names do not depend on scheduling.
        let serial = checks::all()
            .iter()
            .position(|d| d.full_name() == def.full_name())
            .unwrap_or(usize::MAX);
        let clause = Spec::embedded().catalog().clause(def.clause);
        let destructive = clause.is_some_and(|c| c.destructive);
        // Destructive checks on the embedded server get a server of their own, so that the
        // factory token they delete is not one another check is looking at.
        let mut private = None;
        let client = if destructive && self.server.is_some() {
            match ReferenceServer::start(self.embedded.clone()).await {
                Ok(server) => {
                    let mut target = self.client.target().clone();
                    target.base_url = server.cma_url();
                    target.cda_url = Some(server.cda_url());
                    target.secret = server.admin_secret().to_owned();
                    let client = Client::new(target);
                    private = Some(server);
                    match client {
                        Ok(client) => client,
                        Err(err) => {
                            return self.inconclusive(
                                def,
                                format!("failed to build a client: {err}"),
                                started,
                            );
                        }
                    }
                }
                Err(err) => {
                    return self.inconclusive(
                        def,
                        format!("failed to start a private server: {err}"),
                        started,
                    );
                }
            }
        } else {
            self.client.clone()
        };
        let cx = Cx::new(client, Arc::clone(&self.settings), def, serial);
        let task = tokio::spawn((def.run)(cx.clone()));
        let live_key = {
            let mut live = self
                .live
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            live.push((serial, Arc::clone(cx.fixtures()), task.abort_handle()));
            serial
        };
        let result = match task.await {
            Ok(result) => result,
            Err(err) => Err(Finding::inconclusive(format!(
                "the check panicked (a bug in token-conformance): {err}"
            ))),
        };
        let leftovers = cx.fixtures().cleanup().await;
        if let Ok(mut live) = self.live.lock() {
            live.retain(|(key, _, _)| *key != live_key);
        }
        let mut warnings = cx.warnings();
        let weak = cx.client().weak_secrets();
        if weak > 0 {
            warnings.push(format!(
                "the target issued {weak} token secret{} shorter than {} characters or with fewer than {} distinct \
                 characters: such a secret cannot be told apart from ordinary text, so it is hidden only where it \
                 stands (Authorization values, token attributes), not wherever it appears; a real API issues long random secrets",
                if weak == 1 { "" } else { "s" },
                crate::target::STRONG_MIN_LEN,
                crate::target::STRONG_MIN_DISTINCT,
            ));
        }
        warnings.extend(
            leftovers
                .into_iter()
                .map(|l| format!("fixture left behind: {l}")),
        );
        drop(private);
        let requests = cx.client().local_requests();
        report::check_report(
            def,
            result,
            cx.cases(),
            requests,
            started.elapsed(),
            warnings,
            &self.settings,
            cx.client().secrets(),
        )
    }

    fn inconclusive(&self, def: &CheckDef, reason: String, started: Instant) -> CheckReport {
        report::check_report(
            def,
            Err(Finding::Inconclusive(reason)),
            0,
            0,
            started.elapsed(),
            Vec::new(),
            &self.settings,
            self.client.secrets(),
        )
    }

    /// The checks this run selects, in catalog order.
    pub fn selected(filter: Option<&str>) -> Vec<CheckDef> {
        checks::all()
            .into_iter()
            .filter(|def| filter.is_none_or(|f| def.full_name().contains(f)))
            .collect()
    }

    /// Run every selected check, `concurrency` at a time, calling `progress` after each.
    /// Destructive checks run last, so that a factory token they delete on a loopback target
    /// is not one another check is still looking at.
    pub async fn run_all(
        self: &Arc<Self>,
        options: &RunOptions,
        mut progress: impl FnMut(&CheckReport, usize, usize),
    ) -> RunReport {
        let started = Instant::now();
        let defs = Session::selected(options.filter.as_deref());
        let all_defs = defs.clone();
        let total = defs.len();
        let catalog = Spec::embedded().catalog();
        let (last, first): (Vec<_>, Vec<_>) = defs
            .into_iter()
            .enumerate()
            .partition(|(_, def)| catalog.clause(def.clause).is_some_and(|c| c.destructive));
        let limit = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
        let mut reports: Vec<(usize, CheckReport)> = Vec::with_capacity(total);
        for phase in [first, last] {
            let mut tasks = tokio::task::JoinSet::new();
            for (index, def) in phase {
                let (session, limit) = (Arc::clone(self), Arc::clone(&limit));
                tasks.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    (index, session.run_check(&def).await)
                });
            }
            while let Some(joined) = tasks.join_next().await {
                if let Ok((index, report)) = joined {
                    progress(&report, reports.len() + 1, total);
                    reports.push((index, report));
                }
            }
        }
        // A task that died (a panic outside the check itself) still gets its row.
        for (index, def) in all_defs.iter().enumerate() {
            if !reports.iter().any(|(i, _)| *i == index) {
                let reason = "the check's task failed (a bug in token-conformance)".to_owned();
                reports.push((index, self.inconclusive(def, reason, started)));
            }
        }
        reports.sort_by_key(|(i, _)| *i);
        let checks: Vec<CheckReport> = reports.into_iter().map(|(_, r)| r).collect();
        report::run_report(self, options, checks, started.elapsed())
    }

    /// Stop every running check and remove the fixtures they created (Ctrl-C). Returns the
    /// fixtures that could not be removed.
    pub async fn abort_and_clean_up(&self) -> Vec<String> {
        let live: Vec<(usize, Arc<Fixtures>, tokio::task::AbortHandle)> = match self.live.lock() {
            Ok(mut live) => std::mem::take(&mut *live),
            Err(_) => Vec::new(),
        };
        for (_, _, task) in &live {
            task.abort();
        }
        let mut leftovers = Vec::new();
        for (_, fixtures, _) in live {
            leftovers.extend(fixtures.cleanup().await);
        }
        leftovers
    }

    /// Stop the embedded server, if any.
    pub async fn close(self) {
        if let Some(server) = self.server {
            server.shutdown().await;
        }
    }
}

/// Does the target answer like the API? One `GET /site` as the management token. What the
/// target said is redacted before it is part of an error (its error code may echo the token).
async fn preflight(client: &Client) -> Result<(), RunError> {
    preflight_raw(client)
        .await
        .map_err(|err| redact_error(client, err))
}

/// `err` with every secret `client` knows replaced in the target's words.
fn redact_error(client: &Client, err: RunError) -> RunError {
    let secrets = client.secrets();
    match err {
        RunError::NotTheApi { url, detail } => RunError::NotTheApi {
            url: secrets.redact(&url),
            detail: secrets.redact(&detail),
        },
        RunError::Credentials { detail } => RunError::Credentials {
            detail: secrets.redact(&detail),
        },
        RunError::Unreachable(err) => RunError::Unreachable(err.redacted(secrets)),
        other => other,
    }
}

async fn preflight_raw(client: &Client) -> Result<(), RunError> {
    let req = Request::cma(Method::GET, "/site");
    let ex = client.send(&req).await.map_err(RunError::Unreachable)?;
    let url = ex.request.url.clone();
    if ex.json.is_none() {
        let content_type = ex.header("content-type").unwrap_or("(none)").to_owned();
        let start: String = ex.body_text.chars().take(120).collect();
        return Err(RunError::NotTheApi {
            url,
            detail: format!(
                "status {}, Content-Type {content_type}, a body that is not JSON: {start:?}",
                ex.status
            ),
        });
    }
    if ex.status == 401 || ex.status == 403 {
        return Err(RunError::Credentials {
            detail: ex.summary(),
        });
    }
    if !ex.is_success() && ex.status < 500 && ex.error_code().is_none() {
        return Err(RunError::NotTheApi {
            url,
            detail: format!("{} with no api_error code", ex.summary()),
        });
    }
    Ok(())
}

fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| url.to_owned())
}

/// 8 hex digits, unique enough per run (wall clock and process id; not the seed, so that two
/// runs with one seed against one staging never share fixture names).
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mixed = checks::fnv1a(format!("{nanos}-{}", std::process::id()).as_bytes());
    format!("{:08x}", mixed & 0xffff_ffff)
}

/// A random seed, when the user gives none (printed, so the run can be replayed).
pub fn random_seed() -> u64 {
    rand::random::<u64>() % 1_000_000_000
}

/// The status of a run, for the exit code.
pub fn overall(report: &RunReport) -> Status {
    Status::combine(report.clauses.iter().map(|c| c.status))
}

/// Whether destructive clauses may run: on the embedded server and loopback targets, on any
/// other host only with `--destructive`, and nowhere with `--no-destructive`.
pub fn destructive_allowed(target: &Target, options: &RunOptions) -> bool {
    !options.no_destructive && (target.embedded || target.is_loopback() || options.destructive)
}

/// Requests a staging run needs besides its generated cases (fixtures, tours, permission
/// probes), measured against the embedded server and rounded up.
pub const STAGING_FIXED_REQUESTS: u64 = 230;
/// Requests per generated case in a staging run (every property together), rounded up.
pub const STAGING_REQUESTS_PER_CASE: u64 = 18;
/// The request budget of `--profile staging` when `--max-requests` is not given.
pub const STAGING_DEFAULT_MAX_REQUESTS: u64 = 400;

/// The most generated cases per property that keep a staging run within `max_requests`.
pub fn staging_cases(max_requests: u64) -> Result<u32, RunError> {
    let room = max_requests.saturating_sub(STAGING_FIXED_REQUESTS) / STAGING_REQUESTS_PER_CASE;
    if room == 0 {
        return Err(RunError::Config(format!(
            "--max-requests {max_requests} is too small: covering every clause takes about {} requests",
            STAGING_FIXED_REQUESTS + STAGING_REQUESTS_PER_CASE
        )));
    }
    Ok(room.min(u64::from(DEFAULT_CASES)) as u32)
}

/// The public production host: a run against it needs `--allow-production`.
pub const PRODUCTION_HOST: &str = "site-api.datocms.com";

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

/// Whether `name` is a fixture of some run: it contains `conformance-<8 hex>-`.
pub fn is_fixture_name(name: &str) -> bool {
    name.match_indices(NAME_PREFIX).any(|(at, _)| {
        let rest = &name[at + NAME_PREFIX.len()..];
        let bytes = rest.as_bytes();
        bytes.len() > 8 && bytes[..8].iter().all(u8::is_ascii_hexdigit) && bytes[8] == b'-'
    })
}

/// What `sweep` removed, and what it could not.
#[derive(Debug, Default)]
pub struct SweepReport {
    /// `token <id> <name>` / `role <id> <name>` of each fixture removed.
    pub removed: Vec<String>,
    /// The same, with the reason, for each that could not be removed.
    pub failed: Vec<String>,
}

/// Remove every token and role a run left behind: only names of the fixture form, never
/// the token the sweep authenticates with. Tokens first (a role in use cannot be deleted).
/// Every line is redacted (names and answers are the target's words).
pub async fn sweep(client: &Client) -> Result<SweepReport, RunError> {
    let secrets = client.secrets();
    let clean = |lines: Vec<String>| lines.iter().map(|l| secrets.redact(l)).collect();
    match sweep_unredacted(client).await {
        Ok(report) => Ok(SweepReport {
            removed: clean(report.removed),
            failed: clean(report.failed),
        }),
        Err(err) => Err(redact_error(client, err)),
    }
}

async fn sweep_unredacted(client: &Client) -> Result<SweepReport, RunError> {
    let me = client
        .send(&Request::cma(Method::GET, "/users/me"))
        .await
        .map_err(RunError::Unreachable)?;
    let my_id = me
        .json
        .as_ref()
        .and_then(|j| j.pointer("/data/id"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned);
    let mut report = SweepReport::default();
    for (kind, path) in [("token", "/access_tokens"), ("role", "/roles")] {
        let list = client
            .send(&Request::cma(Method::GET, path))
            .await
            .map_err(RunError::Unreachable)?;
        let Some(items) = list.data().and_then(serde_json::Value::as_array) else {
            return Err(RunError::NotTheApi {
                url: list.request.url.clone(),
                detail: format!("listing answered {}", list.summary()),
            });
        };
        for item in items {
            let id = item
                .get("id")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            let name = item
                .pointer("/attributes/name")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            if !is_fixture_name(name) || (kind == "token" && my_id.as_deref() == Some(id)) {
                continue;
            }
            let what = format!("{kind} {id} {name:?}");
            match client
                .send(&Request::cma(Method::DELETE, format!("{path}/{id}")))
                .await
            {
                Ok(ex) if ex.is_success() || ex.status == 404 => report.removed.push(what),
                Ok(ex) => report.failed.push(format!("{what}: {}", ex.summary())),
                Err(err) => report.failed.push(format!("{what}: {err}")),
            }
        }
    }
    Ok(report)
}

/// A client for `sweep`: the target from the same options as `run`, no embedded server.
pub fn sweep_client(options: &RunOptions) -> Result<Client, RunError> {
    let base = options.base_url.as_deref().ok_or_else(|| {
        RunError::Config("sweep needs --base-url (or CONFORMANCE_BASE_URL)".to_owned())
    })?;
    let base_url = normalize_url("base", base)?;
    let secret = options
        .secret
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            RunError::Config("sweep needs the management token in CONFORMANCE_API_TOKEN".to_owned())
        })?;
    let target = Target {
        name: host_of(&base_url),
        base_url,
        cda_url: None,
        environment: options.environment.clone(),
        secret,
        embedded: false,
        ca_pem: options.ca_pem()?,
    };
    Ok(Client::new(target)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_names_are_recognised_wherever_the_marker_stands() {
        assert!(is_fixture_name("conformance-0a1b2c3d-4-0-applies"));
        assert!(is_fixture_name(" 🦀 conformance-0a1b2c3d-4-1-n tail "));
        assert!(!is_fixture_name("conformance-notahex!-1"));
        assert!(!is_fixture_name("Read-only API token"));
        assert!(!is_fixture_name("conformance-0a1b2c3d"));
    }

    #[test]
    fn the_staging_budget_covers_every_clause_in_400_requests() {
        let cases = staging_cases(STAGING_DEFAULT_MAX_REQUESTS).unwrap_or(0);
        assert!(cases >= 1);
        assert!(STAGING_FIXED_REQUESTS + STAGING_REQUESTS_PER_CASE * u64::from(cases) <= 400);
        assert!(staging_cases(100).is_err());
    }

    #[test]
    fn destructive_clauses_need_loopback_or_the_flag() {
        let target = |url: &str, embedded| Target {
            base_url: url.to_owned(),
            cda_url: None,
            environment: None,
            secret: "x".to_owned(),
            name: "t".to_owned(),
            embedded,
            ca_pem: None,
        };
        let options = RunOptions::default();
        let forced = RunOptions {
            destructive: true,
            ..RunOptions::default()
        };
        let forbidden = RunOptions {
            no_destructive: true,
            ..RunOptions::default()
        };
        assert!(destructive_allowed(
            &target("http://127.0.0.1:1", true),
            &options
        ));
        assert!(destructive_allowed(
            &target("http://127.0.0.1:3000", false),
            &options
        ));
        assert!(destructive_allowed(
            &target("http://localhost:3000", false),
            &options
        ));
        assert!(destructive_allowed(
            &target("http://[::1]:3000", false),
            &options
        ));
        assert!(!destructive_allowed(
            &target("https://staging.example.com", false),
            &options
        ));
        assert!(!destructive_allowed(
            &target("http://10.0.0.7", false),
            &options
        ));
        assert!(destructive_allowed(
            &target("https://staging.example.com", false),
            &forced
        ));
        assert!(!destructive_allowed(
            &target("http://127.0.0.1:3000", false),
            &forbidden
        ));
    }

    #[test]
    fn production_is_recognised() {
        assert!(is_production("https://site-api.datocms.com"));
        assert!(is_production("https://SITE-API.datocms.com/"));
        assert!(is_production("https://site-api.datocms.com./"));
        assert!(is_production("https://site-api.datocms.com./"));
        assert!(!is_production("https://staging.example.com"));
    }
}
