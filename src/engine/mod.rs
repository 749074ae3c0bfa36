//! The engine both front ends drive: open a session on a target (starting the embedded
//! reference server when no base URL is given), check that it is the API, run checks with
//! their fixtures cleaned up whatever happens, and gather the results by clause. What to run
//! and the policy around it (production guard, destructive rule, budgets) come resolved in a
//! [`Plan`]; fixture naming and `sweep` live with the fixtures.
//!
//! About 600 lines: opening a session, running one check with its cleanup (and its clause's
//! request reservation, see `client::Ledger`) and running them all are one lifecycle; the
//! preflight lives in `preflight.rs`, the check of the staging plan against what a run
//! sent in `share.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod preflight;
mod share;

use crate::checks::{self, CheckDef, Cx, RunShared, Settings};
use crate::client::{Client, ClientError, StopLevel, Target, TransportError, normalize_url};
use crate::fixtures::Fixtures;
use crate::outcome::{Finding, Status};
use crate::plan::{
    MAX_CASES, Plan, PlanError, TargetKind, format_duration, host_of, production_guard,
};
use crate::reference::{ReferenceServer, ServerConfig};
use crate::report::{self, CheckReport, RunReport};
use crate::spec::Spec;

/// How long the checks' cleanup may take once the run stops (deadline or signal); what is
/// still there then is reported as left behind, for `sweep`.
pub const CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);
/// After cleanup is cut off too, how long the engine waits for the checks' tasks to notice.
const ABORT_GRACE: Duration = Duration::from_secs(5);

/// Why a run could not start. Each maps to an exit code (see `--help`).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The plan is wrong (production without the flag, cases out of range, a bad --ca-cert).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A URL is malformed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The embedded server could not start.
    #[error("failed to start the embedded reference server: {0}")]
    Server(#[from] crate::reference::ServerError),
    /// Nothing answered.
    #[error("the target could not be reached: {}", preflight::unreachable_text(.0))]
    Unreachable(TransportError),
    /// Something answered, but not the API.
    #[error(
        "the target at {url} does not answer like the API: {detail}. The suite calls these CMA endpoints: {}; `token-conformance openapi` describes them",
        crate::openapi::ENDPOINTS.join(", ")
    )]
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
    plan: Plan,
    /// The checks running now: their fixtures, and how to stop them (Ctrl-C).
    live: std::sync::Mutex<Vec<(usize, Arc<Fixtures>, tokio::task::AbortHandle)>>,
    /// What the checks of the current [`run_checks`](Self::run_checks) share (the tour).
    shared: std::sync::Mutex<Arc<RunShared>>,
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
    /// Start the embedded server if the plan says so, build the client and probe the
    /// target. The session keeps the plan: [`run_all`](Self::run_all) needs nothing more.
    pub async fn open(plan: &Plan) -> Result<Session, RunError> {
        let opened = Instant::now();
        if !(1..=MAX_CASES).contains(&plan.cases) {
            return Err(PlanError::Cases(u64::from(plan.cases)).into());
        }
        let (target, server) = match &plan.target {
            TargetKind::Embedded(config) => {
                let server = ReferenceServer::start((**config).clone()).await?;
                let target = Target {
                    base_url: server.cma_url(),
                    cda_url: Some(server.cda_url()),
                    environment: None,
                    secret: server.admin_secret().to_owned(),
                    name: plan
                        .target_name
                        .clone()
                        .unwrap_or_else(|| "reference".to_owned()),
                    embedded: true,
                    ca_pem: None,
                };
                (target, Some(server))
            }
            TargetKind::Remote(remote) => {
                let base_url = normalize_url("base", &remote.base_url)?;
                production_guard(&base_url, plan.allow_production)?;
                let cda_url = remote
                    .cda_url
                    .as_deref()
                    .map(|u| normalize_url("CDA", u))
                    .transpose()?;
                let name = plan
                    .target_name
                    .clone()
                    .unwrap_or_else(|| host_of(&base_url));
                let target = Target {
                    base_url,
                    cda_url,
                    environment: remote.environment.clone(),
                    secret: remote.secret.expose().to_owned(),
                    name,
                    embedded: false,
                    ca_pem: remote.ca_pem()?,
                };
                (target, None)
            }
        };
        let destructive = plan.destructive_allowed(target.embedded);
        let target_embedded = target.embedded;
        let client = Client::new(target)?;
        client.set_request_cap(plan.limits.max_requests);
        client.record_requests(plan.record_requests);
        let deadline = plan.limits.deadline.map(|limit| {
            let reason = format!("the run's deadline of {} passed", format_duration(limit));
            (opened + limit, reason)
        });
        match &deadline {
            Some((at, reason)) => {
                match tokio::time::timeout_at((*at).into(), preflight::preflight(&client)).await {
                    Ok(result) => result?,
                    Err(_) => {
                        return Err(RunError::Unreachable(TransportError::Stopped(
                            reason.clone(),
                        )));
                    }
                }
            }
            None => preflight::preflight(&client).await?,
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
            seed: plan.seed,
            budget: plan.check_budget(),
            profile: plan.profile(),
            destructive,
            run_id: run_id(),
            replay: checks::ReplayHint {
                report: plan.reports.json.clone(),
                base_url: (!target_embedded).then(|| client.target().base_url.clone()),
                cda_url: client.target().cda_url.clone().filter(|_| !target_embedded),
                environment: client.target().environment.clone(),
            },
        };
        Ok(Session {
            client,
            settings: Arc::new(settings),
            server,
            plan: plan.clone(),
            live: std::sync::Mutex::default(),
            shared: std::sync::Mutex::default(),
            deadline,
        })
    }

    /// The plan the session was opened with.
    pub fn plan(&self) -> &Plan {
        &self.plan
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
    /// Its requests take from its clause's reservation first (see [`Session::run_checks`]).
    pub async fn run_check(&self, def: &CheckDef) -> CheckReport {
        let started = Instant::now();
        let shared = Arc::clone(
            &self
                .shared
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        // However the check ends, its clause's reservation and the tour learn that it did.
        let _ended = CheckEnded {
            client: &self.client,
            shared: Arc::clone(&shared),
            clause: def.clause,
            reserved: def.skip_reason(&self.settings).is_none(),
        };
        // What a check declares (strict-only, destructive) is applied here, for every check;
        // before the stop, so that a check the run would not have run is shown skipped, not
        // "not run" after a deadline.
        if let Some(reason) = def.skip_reason(&self.settings) {
            return report::check_report(
                def,
                Err(Finding::Skipped(reason)),
                0,
                0,
                started.elapsed(),
                Vec::new(),
                &self.settings,
                self.client.secrets(),
            );
        }
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
            let config = match &self.plan.target {
                TargetKind::Embedded(config) => (**config).clone(),
                TargetKind::Remote(_) => ServerConfig::default(),
            };
            match ReferenceServer::start(config).await {
                Ok(server) => {
                    let mut target = self.client.target().clone();
                    target.base_url = server.cma_url();
                    target.cda_url = Some(server.cda_url());
                    target.secret = server.admin_secret().to_owned();
                    // The run's totals, cap and reservations, retry budget and stop: a
                    // private server's requests count like any other.
                    let client = self
                        .client
                        .for_target_in_run(target)
                        .map(|c| c.charged_to(def.clause.id()));
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
            self.client.charged_to(def.clause.id())
        };
        let cx = Cx::in_run(client, Arc::clone(&self.settings), shared, def, serial);
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
        let mut report = report::check_report(
            def,
            result,
            cx.cases(),
            requests,
            started.elapsed(),
            warnings,
            &self.settings,
            cx.client().secrets(),
        );
        report.resends = cx.client().local_resends();
        report
    }

    /// Under a request cap with the staging budget, each clause of `running` reserves its
    /// planned share ([`checks::staging::STAGING_PLAN`]), held until its last check ends; the
    /// rest of the cap is the pool every request falls back on. A capped full run reserves
    /// nothing: every request takes from the pool, as they come.
    fn reserve(&self, running: &[&CheckDef]) {
        let ledger = &self.client.stats().ledger;
        if ledger.cap().is_none() || !self.settings.budget.staging {
            return;
        }
        let cases = self.settings.budget.cases;
        for plan in checks::staging::STAGING_PLAN {
            let holders = running.iter().filter(|d| d.clause == plan.clause).count();
            ledger.reserve(plan.clause.id(), plan.requests(cases), holders);
        }
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

    /// Run every check the plan selects, as many at a time as it says, calling `progress`
    /// after each.
    /// Destructive checks run last, so that a factory token they delete on a shared target
    /// is not one another check is still looking at; under the staging budget's
    /// reservations, the strict-only checks with them.
    pub async fn run_all(
        self: &Arc<Self>,
        progress: impl FnMut(&CheckReport, usize, usize),
    ) -> RunReport {
        self.run_checks(Session::selected(self.plan.filter.as_deref()), progress)
            .await
    }

    /// [`run_all`](Self::run_all) over `defs` (`mutants` runs only a fault's declared clauses).
    pub async fn run_checks(
        self: &Arc<Self>,
        defs: Vec<CheckDef>,
        mut progress: impl FnMut(&CheckReport, usize, usize),
    ) -> RunReport {
        let started = Instant::now();
        let all_defs = defs.clone();
        let total = defs.len();
        let running: Vec<&CheckDef> = defs
            .iter()
            .filter(|def| def.skip_reason(&self.settings).is_none())
            .collect();
        self.reserve(&running);
        let shared = Arc::new(RunShared::for_run(running.iter().map(|def| def.clause)));
        *self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = shared;
        let catalog = Spec::embedded().catalog();
        // Under the staging budget's reservations the strict-only checks, which have no
        // reservation of their own (`checks::staging::STRICT_PLAN`), run last too: by then the
        // other clauses have given back what they did not spend, and a strict-only check can
        // no longer drain the pool that another clause's checks still count on.
        let capped = self.settings.budget.staging && self.client.stats().ledger.cap().is_some();
        let (last, first): (Vec<_>, Vec<_>) = defs.into_iter().enumerate().partition(|(_, def)| {
            catalog.clause(def.clause).is_some_and(|c| c.destructive) || (capped && def.strict_only)
        });
        let limit = Arc::new(tokio::sync::Semaphore::new(self.plan.concurrency.max(1)));
        let mut reports: Vec<(usize, CheckReport)> = Vec::with_capacity(total);
        let mut stop = self.client.stop_watch();
        // Once the run stops, its checks end at once (nothing more is sent) and clean up:
        // cleanup gets CLEANUP_TIMEOUT, then it is cut off too and the tasks get ABORT_GRACE.
        let (mut cut_cleanup_at, mut abort_at): (Option<Instant>, Option<Instant>) = (None, None);
        'phases: for phase in [first, last] {
            let mut tasks = tokio::task::JoinSet::new();
            // Checks start in catalog order: each takes its permit only once the one before
            // has taken its own (the tour's owner starts before the checks that wait for it).
            let mut before: Option<tokio::sync::oneshot::Receiver<()>> = None;
            for (index, def) in phase {
                let (session, limit) = (Arc::clone(self), Arc::clone(&limit));
                let (started_tx, started_rx) = tokio::sync::oneshot::channel();
                let previous = before.replace(started_rx);
                tasks.spawn(async move {
                    if let Some(previous) = previous {
                        // An error: the check before ended without a permit; go on all the same.
                        let _ = previous.await;
                    }
                    let _permit = limit.acquire_owned().await;
                    let _ = started_tx.send(());
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
        let mut report = report::run_report(
            report::RunFacts {
                target: self.client().target(),
                stats: self.client().stats(),
                seed: self.settings().seed,
                cases: self.settings().budget.cases,
                profile: self.settings().profile,
                duration: started.elapsed(),
            },
            checks,
        );
        // Under the staging budget's reservations, a clause that spent more than its share
        // says so: the plan is short for this target, and the pool paid.
        if self.settings.budget.staging && self.client.stats().ledger.cap().is_some() {
            let strict = self.settings.profile == checks::Profile::Strict;
            share::warn_over_share(&mut report.clauses, self.settings.budget.cases, strict);
        }
        report
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

/// Dropped when a check ends, however it ends: one holder of its clause's reservation lets
/// go, and the tour no longer waits for it.
struct CheckEnded<'a> {
    client: &'a Client,
    shared: Arc<RunShared>,
    clause: crate::spec::ClauseId,
    /// Whether the check counts as a holder of its clause's reservation (it is not skipped).
    reserved: bool,
}

impl Drop for CheckEnded<'_> {
    fn drop(&mut self) {
        if self.reserved {
            self.client.stats().ledger.release(self.clause.id());
        }
        self.shared.check_ended(self.clause);
    }
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

/// The status of a run, for the exit code.
pub fn overall(report: &RunReport) -> Status {
    Status::combine(report.clauses.iter().map(|c| c.status))
}

#[cfg(test)]
mod tests;
