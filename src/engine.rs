//! The engine both front ends drive: open a session on a target (starting the embedded
//! reference server when no base URL is given), check that it is the API, run checks with
//! their fixtures cleaned up whatever happens, and gather the results by clause.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;

use crate::checks::{self, Budget, CheckDef, Cx, Profile, Settings};
use crate::fixtures::{Fixtures, NAME_PREFIX};
use crate::outcome::{Finding, Status};
use crate::reference::{ReferenceServer, ServerConfig};
use crate::report::{self, CheckReport, RunReport};
use crate::spec::Spec;
use crate::client::{
    Client, ClientError, Collection, Request, ResourceId, StopLevel, Target, TransportError,
    normalize_url, shown,
};

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
    /// Allow destructive clauses on a target the suite did not start (loopback or not).
    pub destructive: bool,
    /// Forbid destructive clauses even on the embedded server.
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
    /// How long the run may take from [`Session::open`] on (`None`: no limit). When it
    /// passes, the checks still running stop and are inconclusive; cleanup still runs.
    pub deadline: Option<Duration>,
    /// Keep every request sent in `Stats::sent` (tests that read the transcript).
    pub record_requests: bool,
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
            deadline: Some(DEFAULT_DEADLINE),
            record_requests: false,
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
/// The most generated cases per property a run accepts (`--cases`): about 18 requests per
/// case, so 10,000 is already some 180,000 requests.
pub const MAX_CASES: u32 = 10_000;
/// How long a run may take by default (`--deadline`). A staging run takes some 15 s and a
/// local one about a second: a run still going after this is stuck on a silent target.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// How long the checks' cleanup may take once the run stops (deadline or signal); what is
/// still there then is reported as left behind, for `sweep`.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);
/// After cleanup is cut off too, how long the engine waits for the checks' tasks to notice.
const ABORT_GRACE: Duration = Duration::from_secs(5);

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
    /// The timer that stops the run at its deadline.
    deadline: Option<tokio::task::AbortHandle>,
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(timer) = &self.deadline {
            timer.abort();
        }
    }
}

impl Session {
    /// Start the embedded server if needed, build the client and probe the target.
    pub async fn open(options: &RunOptions) -> Result<Session, RunError> {
        let opened = Instant::now();
        if !(1..=MAX_CASES).contains(&options.cases) {
            return Err(RunError::Config(format!(
                "{} generated cases per property is out of range: 1 to {MAX_CASES}",
                options.cases
            )));
        }
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
        client.record_requests(options.record_requests);
        let deadline = options.deadline.map(|limit| {
            let reason = format!("the run's deadline of {} passed", format_duration(limit));
            (opened + limit, reason)
        });
        match &deadline {
            Some((at, reason)) => {
                match tokio::time::timeout_at((*at).into(), preflight(&client)).await {
                    Ok(result) => result?,
                    Err(_) => {
                        return Err(RunError::Unreachable(TransportError::Stopped(
                            reason.clone(),
                        )));
                    }
                }
            }
            None => preflight(&client).await?,
        }
        let deadline = deadline.map(|(at, reason)| {
            let client = client.clone();
            tokio::spawn(async move {
                tokio::time::sleep_until(at.into()).await;
                client.stop(StopLevel::Checks, &reason);
            })
            .abort_handle()
        });
        // From now on no write reaches the token the run authenticates with (after the
        // deadline is armed, so that a target gone silent cannot hold the run here).
        client.learn_management_id().await;
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
            deadline,
        })
    }

    /// Stop the run (a signal): the checks send nothing more and end inconclusive; their
    /// cleanup still runs, for at most [`CLEANUP_TIMEOUT`]. `run_all` then returns the report.
    pub fn interrupt(&self, reason: &str) {
        self.client.stop(StopLevel::Checks, reason);
    }

    /// Stop everything now, cleanup included (a second signal): what is left is reported.
    pub fn stop_now(&self, reason: &str) {
        self.client.stop(StopLevel::Checks, reason);
        self.client.stop(StopLevel::All, reason);
    }

    /// Why the run stopped (its deadline, a signal), if it did.
    pub fn stopped(&self) -> Option<String> {
        let state = self.client.stop_state();
        (state.level > StopLevel::Running).then_some(state.cause)
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
        if let Some(reason) = self.stopped() {
            return self.inconclusive(def, format!("not run: {reason}"), started);
        }
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
                        Ok(client) => {
                            client.learn_management_id().await;
                            client
                        }
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
        let mut result = match task.await {
            Ok(result) => result,
            Err(err) => Err(Finding::inconclusive(format!(
                "the check panicked (a bug in token-conformance): {err}"
            ))),
        };
        // A check cut short did not exercise its promise: whatever it concluded from the
        // requests it could not send, only a violation it saw before stands.
        if let Some(reason) = self.stopped()
            && !matches!(result, Err(Finding::Fail(_) | Finding::Skipped(_)))
        {
            result = Err(Finding::inconclusive(format!(
                "{reason} before this check finished"
            )));
        }
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
                crate::client::STRONG_MIN_LEN,
                crate::client::STRONG_MIN_DISTINCT,
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
    /// Destructive checks run last, so that a factory token they delete on a shared target
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
        let mut stop = self.client.stop_watch();
        // Once the run stops, its checks end at once (nothing more is sent) and clean up:
        // cleanup gets CLEANUP_TIMEOUT, then it is cut off too and the tasks get ABORT_GRACE.
        let (mut cut_cleanup_at, mut abort_at): (Option<Instant>, Option<Instant>) = (None, None);
        'phases: for phase in [first, last] {
            let mut tasks = tokio::task::JoinSet::new();
            for (index, def) in phase {
                let (session, limit) = (Arc::clone(self), Arc::clone(&limit));
                tasks.spawn(async move {
                    let _permit = limit.acquire_owned().await;
                    (index, session.run_check(&def).await)
                });
            }
            loop {
                let level = stop.borrow_and_update().level;
                if level >= StopLevel::Checks && cut_cleanup_at.is_none() {
                    cut_cleanup_at = Some(Instant::now() + CLEANUP_TIMEOUT);
                }
                if level >= StopLevel::All && abort_at.is_none() {
                    abort_at = Some(Instant::now() + ABORT_GRACE);
                }
                let far = Instant::now() + Duration::from_secs(86_400);
                tokio::select! {
                    joined = tasks.join_next() => match joined {
                        None => break,
                        Some(Ok((index, report))) => {
                            progress(&report, reports.len() + 1, total);
                            reports.push((index, report));
                        }
                        Some(Err(_)) => {}
                    },
                    changed = stop.changed() => {
                        if changed.is_err() {
                            // The stop state cannot change any more; no reason to watch it.
                            stop = tokio::sync::watch::channel(self.client.stop_state()).1;
                        }
                    }
                    () = tokio::time::sleep_until(cut_cleanup_at.unwrap_or(far).into()),
                        if cut_cleanup_at.is_some() && abort_at.is_none() =>
                    {
                        self.client.stop(
                            StopLevel::All,
                            &format!("cleanup did not finish within {}", format_duration(CLEANUP_TIMEOUT)),
                        );
                    }
                    () = tokio::time::sleep_until(abort_at.unwrap_or(far).into()), if abort_at.is_some() => {
                        let live: Vec<_> = match self.live.lock() {
                            Ok(mut live) => std::mem::take(&mut *live),
                            Err(_) => Vec::new(),
                        };
                        for (_, _, task) in &live {
                            task.abort();
                        }
                        tasks.abort_all();
                        break 'phases;
                    }
                }
            }
        }
        if self.stopped().is_some() {
            // A property thread still calling into the runtime when it shuts down would panic.
            let until = Instant::now() + ABORT_GRACE;
            while checks::live_properties() > 0 && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // A task that died (a panic outside the check itself) still gets its row.
        for (index, def) in all_defs.iter().enumerate() {
            if !reports.iter().any(|(i, _)| *i == index) {
                let reason = match self.stopped() {
                    Some(reason) => format!("{reason} before this check finished"),
                    None => "the check's task failed (a bug in token-conformance)".to_owned(),
                };
                reports.push((index, self.inconclusive(def, reason, started)));
            }
        }
        reports.sort_by_key(|(i, _)| *i);
        let checks: Vec<CheckReport> = reports.into_iter().map(|(_, r)| r).collect();
        report::run_report(
            report::RunFacts {
                target: self.client().target(),
                stats: self.client().stats(),
                seed: options.seed,
                cases: self.settings().budget.cases,
                profile: options.profile,
                duration: started.elapsed(),
            },
            checks,
        )
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
    pub async fn close(mut self) {
        if let Some(server) = self.server.take() {
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
    let ex = match client.send(&req).await {
        Ok(ex) => ex,
        Err(err @ TransportError::TooLarge { .. }) => {
            return Err(RunError::NotTheApi {
                url: client.target().base_url.clone(),
                detail: err.to_string(),
            });
        }
        Err(err) => return Err(RunError::Unreachable(err)),
    };
    let url = ex.request.url.clone();
    if (300..400).contains(&ex.status) {
        return Err(RunError::NotTheApi {
            url,
            detail: format!(
                "{}: give the URL the API answers at as --base-url",
                ex.summary()
            ),
        });
    }
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

/// Whether destructive clauses may run: on the embedded server the suite starts itself, on
/// any other target only with `--destructive`, and nowhere with `--no-destructive`. A loopback
/// address is not enough: a vendor's server on `localhost`, or a staging behind
/// `kubectl port-forward`, is someone else's data.
pub fn destructive_allowed(target: &Target, options: &RunOptions) -> bool {
    !options.no_destructive && (target.embedded || options.destructive)
}

/// Requests a staging run needs besides its generated cases (fixtures, tours, permission
/// probes), measured against the embedded server and rounded up. `update.isolation` takes
/// about 40 of them (its fixed check and its sequences, 2 cases of at most 3 steps, do not
/// scale with the cases), the forged-bearer check of `update.auth` about 25, the concurrent
/// histories of the four `update.effect.*` checks about 48.
pub const STAGING_FIXED_REQUESTS: u64 = 353;
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

/// Whether `name` is a fixture of some run: it contains the marker every fixture name and
/// every generated name carries, `conformance-<8 hex>-<check serial>-<n>-`.
pub fn is_fixture_name(name: &str) -> bool {
    name.match_indices(NAME_PREFIX).any(|(at, _)| {
        let rest = &name.as_bytes()[at + NAME_PREFIX.len()..];
        if rest.len() <= 8 || !rest[..8].iter().all(u8::is_ascii_hexdigit) || rest[8] != b'-' {
            return false;
        }
        // Two runs of digits, each ended by `-`.
        let mut rest = &rest[9..];
        for _ in 0..2 {
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 || rest.get(digits) != Some(&b'-') {
                return false;
            }
            rest = &rest[digits + 1..];
        }
        true
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

/// Remove every token and role a run left behind: only resources whose own listing entry
/// carries the fixture marker in its name and a safe id, that read back by that id with that
/// same name, never a factory token and never the token the sweep authenticates with.
/// Tokens first (a role in use cannot be deleted).
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
    let my_id = me.data().and_then(|d| ResourceId::of(d).ok());
    if let Some(id) = &my_id {
        client.set_management_id(id.clone());
    }
    let mut report = SweepReport::default();
    for collection in [Collection::AccessTokens, Collection::Roles] {
        let kind = collection.noun();
        let list = client
            .send(&Request::cma(Method::GET, collection.path()))
            .await
            .map_err(RunError::Unreachable)?;
        let Some(items) = list.data().and_then(serde_json::Value::as_array) else {
            return Err(RunError::NotTheApi {
                url: list.request.url.clone(),
                detail: format!("listing answered {}", list.summary()),
            });
        };
        let name_of = |item: &serde_json::Value| {
            item.pointer("/attributes/name")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        // Counted once: a hostile listing of many entries must not cost a comparison per pair.
        let mut listed_ids: std::collections::HashMap<&str, usize> =
            std::collections::HashMap::new();
        for item in items {
            if let Some(id) = item.get("id").and_then(serde_json::Value::as_str) {
                *listed_ids.entry(id).or_default() += 1;
            }
        }
        for item in items {
            let Some(name) = name_of(item).filter(|n| is_fixture_name(n)) else {
                continue;
            };
            let what = format!("{kind} {}", shown(&name));
            let id = match ResourceId::of(item) {
                Ok(id) => id,
                Err(err) => {
                    report.failed.push(format!(
                        "{what}: {}",
                        crate::fixtures::listed_unsafe(collection, &err)
                    ));
                    continue;
                }
            };
            let what = format!("{kind} {id} {}", shown(&name));
            if collection == Collection::AccessTokens && my_id.as_ref() == Some(&id) {
                report.failed.push(format!(
                    "{what}: the token this sweep authenticates with: not deleted"
                ));
                continue;
            }
            // Without its own id the client's guard cannot refuse a write to it, and a target
            // could list it under a fixture name.
            if collection == Collection::AccessTokens && my_id.is_none() {
                report.failed.push(format!(
                    "{what}: GET /users/me gave no usable id, so this sweep cannot tell its own token from it: not deleted"
                ));
                continue;
            }
            // One id listed under two names: the listing cannot say which resource it is.
            let same_id = listed_ids.get(&*id).copied().unwrap_or(0);
            if same_id > 1 {
                report.failed.push(format!(
                    "{what}: the listing shows this id {same_id} times: not deleted"
                ));
                continue;
            }
            if let Err(why) = confirm_fixture(client, collection, &id, &name).await {
                report.failed.push(format!("{what}: {why}: not deleted"));
                continue;
            }
            match client
                .send(&Request::cma_resource(
                    Method::DELETE,
                    collection,
                    &id,
                    None,
                ))
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

/// Read `id` back: it must be a resource with that id and exactly `name`, and not a factory
/// token (fixtures never are).
async fn confirm_fixture(
    client: &Client,
    collection: Collection,
    id: &ResourceId,
    name: &str,
) -> Result<(), String> {
    let read = client
        .send(&Request::cma_resource(Method::GET, collection, id, None))
        .await
        .map_err(|err| err.to_string())?;
    let data = read
        .data()
        .filter(|_| read.is_success())
        .ok_or_else(|| format!("reading it back answered {}", read.summary()))?;
    let str_at = |pointer: &str| data.pointer(pointer).and_then(serde_json::Value::as_str);
    if str_at("/id") != Some(&**id) || str_at("/attributes/name") != Some(name) {
        return Err("it reads back as another resource".to_owned());
    }
    if str_at("/attributes/hardcoded_type").is_some_and(|t| !t.is_empty()) {
        return Err("it is a factory token".to_owned());
    }
    Ok(())
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
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn fixture_names_are_recognised_wherever_the_marker_stands() {
        assert!(is_fixture_name("conformance-0a1b2c3d-4-0-applies"));
        assert!(is_fixture_name(" 🦀 conformance-0a1b2c3d-4-1-n tail "));
        assert!(!is_fixture_name("conformance-notahex!-1"));
        assert!(!is_fixture_name("Read-only API token"));
        assert!(!is_fixture_name("conformance-0a1b2c3d"));
        // The marker is the whole `<run>-<serial>-<n>-`, not just a hex word.
        assert!(!is_fixture_name("my conformance-deadbeef-notes"));
        assert!(!is_fixture_name("conformance-deadbeef-1-x"));
        assert!(!is_fixture_name("conformance-deadbeef--1-x"));
    }

    #[test]
    fn the_staging_budget_covers_every_clause_in_400_requests() {
        let cases = staging_cases(STAGING_DEFAULT_MAX_REQUESTS).unwrap_or(0);
        assert!(cases >= 1);
        assert!(STAGING_FIXED_REQUESTS + STAGING_REQUESTS_PER_CASE * u64::from(cases) <= 400);
        assert!(staging_cases(100).is_err());
    }

    #[test]
    fn destructive_clauses_need_the_embedded_server_or_the_flag() {
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
        // A server on loopback the suite did not start is someone else's (a vendor's
        // localhost, a port-forward to staging): not without the flag.
        assert!(!destructive_allowed(
            &target("http://127.0.0.1:3000", false),
            &options
        ));
        assert!(!destructive_allowed(
            &target("http://localhost:3000", false),
            &options
        ));
        assert!(!destructive_allowed(
            &target("http://[::1]:3000", false),
            &options
        ));
        assert!(destructive_allowed(
            &target("http://127.0.0.1:3000", false),
            &forced
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

    /// A target on 127.0.0.1 that writes `answer` on every connection.
    async fn raw_target(answer: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let _ = stream.write_all(answer.as_bytes()).await;
                    // A huge announced body that never comes: the client must not wait for it.
                    tokio::time::sleep(Duration::from_secs(20)).await;
                });
            }
        });
        url
    }

    #[tokio::test]
    async fn a_redirect_or_a_huge_answer_at_preflight_is_not_the_api() {
        for (answer, expected) in [
            (
                "HTTP/1.1 301 Moved Permanently\r\nLocation: https://127.0.0.1:9/v2\r\nContent-Length: 0\r\n\r\n",
                "301 (redirect to https://127.0.0.1:9/v2, redirects are not followed)",
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{",
                "-byte cap",
            ),
        ] {
            let options = RunOptions {
                base_url: Some(raw_target(answer).await),
                secret: Some("engine-test-secret-81c4".to_owned()),
                deadline: Some(Duration::from_secs(10)),
                ..RunOptions::default()
            };
            let Err(err) = Session::open(&options).await else {
                panic!("the session opened");
            };
            assert!(matches!(err, RunError::NotTheApi { .. }), "{err}");
            assert!(err.to_string().contains(expected), "{err}");
        }
    }

    #[tokio::test]
    async fn cases_beyond_the_bound_are_a_configuration_error() {
        for cases in [0, MAX_CASES + 1] {
            let options = RunOptions {
                cases,
                ..RunOptions::default()
            };
            let Err(err) = Session::open(&options).await else {
                panic!("the session opened with {cases} cases");
            };
            assert!(matches!(err, RunError::Config(_)), "{err}");
        }
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

    #[test]
    fn production_is_recognised() {
        assert!(is_production("https://site-api.datocms.com"));
        assert!(is_production("https://SITE-API.datocms.com/"));
        assert!(is_production("https://site-api.datocms.com./"));
        assert!(is_production("https://site-api.datocms.com./"));
        assert!(!is_production("https://staging.example.com"));
    }
}
