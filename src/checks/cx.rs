//! [`Cx`]: a check's view of the run (its client, fixtures, seed and warnings) and the helpers
//! every check uses to assert (`ensure`, `observed`), to send (`send_settled`,
//! `expect_success`) and to run properties over generated inputs.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

use super::{CheckDef, Profile, RunShared, Settings, fnv1a};
use crate::client::{Auth, Client, Collection, Exchange, Request, ResourceId};
use crate::fixtures::{Fixtures, Flags, RoleFx, TokenFx, truncate};
use crate::outcome::{CheckResult, Failure, Finding};
use crate::spec::{ClauseId, Spec};

/// A check's view of the run: its client, its fixtures, its seed.
#[derive(Clone, Debug)]
pub struct Cx {
    client: Client,
    settings: Arc<Settings>,
    fixtures: Arc<Fixtures>,
    warnings: Arc<Mutex<Vec<String>>>,
    cases: Arc<AtomicU64>,
    pub(super) seed: u64,
    clause: ClauseId,
    shared: Arc<RunShared>,
}

impl Cx {
    /// The context of one check run on its own (nothing shared with other checks).
    pub fn new(client: Client, settings: Arc<Settings>, def: &CheckDef, serial: usize) -> Cx {
        Cx::in_run(client, settings, Arc::default(), def, serial)
    }

    /// The context of one check of a run whose checks share `shared` (the tour).
    pub fn in_run(
        client: Client,
        settings: Arc<Settings>,
        shared: Arc<RunShared>,
        def: &CheckDef,
        serial: usize,
    ) -> Cx {
        let client = client.scoped();
        let fixtures = Arc::new(
            Fixtures::new(client.clone(), &settings.run_id, serial).for_clause(def.clause.id()),
        );
        // Each check draws from its own stream, fixed by the run's seed and the check's name.
        let seed = settings.seed ^ fnv1a(def.full_name().as_bytes());
        Cx {
            client,
            settings,
            fixtures,
            warnings: Arc::default(),
            cases: Arc::default(),
            seed,
            clause: def.clause,
            shared,
        }
    }

    /// The clause this check verifies.
    pub fn clause(&self) -> ClauseId {
        self.clause
    }

    /// What the checks of the run share.
    pub fn shared(&self) -> &RunShared {
        &self.shared
    }

    /// The run's settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The specification.
    pub fn spec(&self) -> &'static Spec {
        Spec::embedded()
    }

    /// The client (for the engine's bookkeeping).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The fixtures (the engine cleans them up).
    pub fn fixtures(&self) -> &Arc<Fixtures> {
        &self.fixtures
    }

    /// Warnings recorded so far.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().map(|w| w.clone()).unwrap_or_default()
    }

    /// Generated cases run so far.
    pub fn cases(&self) -> u64 {
        self.cases.load(Ordering::Relaxed)
    }

    /// Whether observed behaviour is a hard check (`--profile strict`).
    pub fn strict(&self) -> bool {
        self.settings.profile == Profile::Strict
    }

    /// Send a request; no answer at all makes the check inconclusive. A 4xx marked
    /// `transient` is the answer all the same (the client tried it once more), and the
    /// deviation is a warning of the check.
    pub async fn send(&self, req: Request) -> Result<Exchange, Finding> {
        let ex = self.client.send(&req).await?;
        if crate::client::is_transient_4xx(&ex) {
            let code = ex.error_code().map(|c| format!(" {c}")).unwrap_or_default();
            self.warn(format!(
                "the target marked a {}{code} as transient (a refusal is taken as the answer after one retry)",
                ex.status
            ));
        }
        Ok(ex)
    }

    pub(super) fn warn(&self, message: String) {
        if let Ok(mut warnings) = self.warnings.lock()
            && !warnings.contains(&message)
        {
            warnings.push(message);
        }
    }

    /// A documented promise: a violation fails the check.
    pub fn ensure(
        &self,
        holds: bool,
        message: impl FnOnce() -> String,
        evidence: &[&Exchange],
    ) -> CheckResult {
        if holds {
            Ok(())
        } else {
            Err(Finding::fail(message(), evidence))
        }
    }

    /// Observed behaviour: a violation fails under `--profile strict`, else becomes a warning.
    pub fn observed(
        &self,
        holds: bool,
        message: impl FnOnce() -> String,
        evidence: &[&Exchange],
    ) -> CheckResult {
        if holds {
            return Ok(());
        }
        let message = message();
        if self.strict() {
            return Err(Finding::fail(message, evidence));
        }
        self.warn(message);
        Ok(())
    }

    /// A server error where the clause is not about the answer: the target could not be tested.
    pub fn answered(&self, ex: &Exchange) -> CheckResult {
        if ex.status >= 500 {
            return Err(Finding::inconclusive(format!(
                "the target failed: {}",
                ex.summary()
            )));
        }
        Ok(())
    }

    /// Send a request that the documentation says succeeds. A 4xx is a violation (also one
    /// marked `transient`); a transient failure is inconclusive; a non-transient 5xx is a violation only when it
    /// answers the same request the same way three times.
    pub async fn expect_success(&self, req: Request, what: &str) -> Result<Exchange, Finding> {
        let ex = self.send_settled(req, what).await?;
        if ex.is_success() {
            return Ok(ex);
        }
        let body = truncate(&ex.body_text, 300);
        let how = if ex.status >= 500 {
            "answered a valid request with a server error 3 times out of 3"
        } else {
            "refused a valid request"
        };
        Err(Finding::fail(
            format!("{what}: the target {how} ({}): {body}", ex.summary()),
            &[&ex],
        ))
    }

    /// Send a request whose answer the clause is about. A transient failure (left after the
    /// client's retries; never a 4xx other than 429) makes the check inconclusive; a non-transient 5xx is sent again, and
    /// stands only when the target answers it three times.
    pub async fn send_settled(&self, req: Request, what: &str) -> Result<Exchange, Finding> {
        // A request that is not idempotent (a CMA POST) is never sent twice.
        let repeatable = req.method != Method::POST || req.api == crate::client::Api::Cda;
        let mut ex = self.send(req.clone()).await?;
        for _ in 1..3 {
            if !repeatable || ex.status < 500 || crate::client::is_transient(&ex) {
                break;
            }
            ex = self.send(req.clone()).await?;
        }
        if crate::client::is_transient(&ex) {
            return Err(Finding::inconclusive(format!(
                "{what}: transient failure {}",
                ex.summary()
            )));
        }
        Ok(ex)
    }

    /// Run a property over generated valid update bodies for `token`, bound to its id, to
    /// `roles` and to a marker of the check's own (so generated names stay unique).
    pub async fn each_valid_update<F, Fut>(
        &self,
        token: &TokenFx,
        roles: &[RoleFx],
        test: F,
    ) -> CheckResult
    where
        F: Fn(Cx, Value) -> Fut + Send + 'static,
        Fut: Future<Output = CheckResult>,
    {
        let role_ids: Vec<String> = roles.iter().map(|r| r.id.to_string()).collect();
        let marker = self.fixture_name("n");
        let token_id = token.id.clone();
        let cx = self.clone();
        let strategy = || crate::generate::valid_update(Spec::embedded());
        self.property(strategy, move |template| {
            let binding = crate::generate::Binding {
                path_id: &token_id,
                roles: &role_ids,
                marker: &marker,
            };
            test(cx.clone(), template.bind(&binding))
        })
        .await
    }

    /// Create a role with these permissions.
    pub async fn role(&self, label: &str, grants: &[&str]) -> Result<RoleFx, Finding> {
        let role = self.fixtures.role(label, grants).await;
        self.note_fixture_shapes();
        role
    }

    /// Create a token with this role and flags.
    pub async fn token(
        &self,
        label: &str,
        role: &RoleFx,
        flags: Flags,
    ) -> Result<TokenFx, Finding> {
        let token = self.fixtures.token(label, role, flags).await;
        self.note_fixture_shapes();
        token
    }

    /// Broken shapes the fixtures met in create answers become warnings of this check.
    fn note_fixture_shapes(&self) {
        let notes = self.fixtures.take_notes();
        if let Ok(mut warnings) = self.warnings.lock() {
            for note in notes {
                if !warnings.contains(&note) {
                    warnings.push(note);
                }
            }
        }
    }

    /// A fresh fixture name (also the marker generated names carry).
    pub fn fixture_name(&self, label: &str) -> String {
        self.fixtures.name(label)
    }

    /// Credentials that are `token`'s secret with its last character changed: a bearer the
    /// target has never issued, and as close to a real one as a bearer can be. Registered for
    /// redaction like the secret itself, since it shows all of it but one character.
    pub fn forged_auth(&self, token: &TokenFx) -> Auth {
        let mut forged = token.secret.clone();
        let last = forged.pop();
        forged.push(if last == Some('x') { 'y' } else { 'x' });
        let label = format!("$FORGED_FIXTURE_TOKEN_{}", token.id);
        self.client.secrets().register(&forged, &label);
        Auth::Token {
            secret: forged,
            label,
        }
    }

    /// A precondition of every clause about secrets: the target checks them. `GET /site` with
    /// a forged bearer (see [`Cx::forged_auth`]) must be refused; a target that accepts it
    /// demonstrably lets anyone in, which no secret-keeping promise survives.
    pub async fn secret_is_checked(&self, token: &TokenFx, why: &str) -> CheckResult {
        let probe = self
            .send(Request::cma(Method::GET, "/site").auth(self.forged_auth(token)))
            .await?;
        self.answered(&probe)?;
        self.ensure(
            !probe.is_success(),
            || {
                format!(
                    "the target accepted a forged bearer (a fixture token's secret with its last character changed) on {}: it does not check secrets, so {why}",
                    probe.summary()
                )
            },
            &[&probe],
        )
    }

    /// A precondition of every check that tells fixtures apart by id: distinct resources
    /// have distinct ids. A target that gives two of them one id (a stateless mock gives
    /// every resource the same) cannot show the promise: the check is inconclusive, and says
    /// why (`consequence`).
    pub fn distinct_ids<'a>(
        &self,
        what: &str,
        ids: impl IntoIterator<Item = &'a str>,
        consequence: &str,
    ) -> CheckResult {
        let mut seen: Vec<&str> = Vec::new();
        for id in ids {
            if seen.contains(&id) {
                return Err(Finding::inconclusive(format!(
                    "the target gave two {what} the same id {}, so {consequence}",
                    crate::text::json_str(&truncate(id, 64))
                )));
            }
            seen.push(id);
        }
        Ok(())
    }

    /// Read a token as the management token: the exchange and `data`.
    pub async fn read_token(&self, id: &ResourceId) -> Result<(Exchange, Value), Finding> {
        let ex = self
            .send(Request::cma_resource(
                Method::GET,
                Collection::AccessTokens,
                id,
                None,
            ))
            .await?;
        self.answered(&ex)?;
        let data = ex
            .data()
            .cloned()
            .filter(|_| ex.is_success())
            .ok_or_else(|| {
                Finding::inconclusive(format!("failed to read token {id} back: {}", ex.summary()))
            })?;
        Ok((ex, data))
    }

    /// `PUT /access_tokens/{id}` with `body`, as `auth`.
    pub fn update_request(&self, id: &ResourceId, body: Value, auth: Auth) -> Request {
        Request::cma_resource(Method::PUT, Collection::AccessTokens, id, None)
            .json(body)
            .auth(auth)
    }

    /// Run a property: `cases` generated inputs (the run's `--cases`), shrunk to the smallest
    /// failing one. `strategy` builds the strategy on the property's own thread (proptest's
    /// boxed strategies are not `Send`); each case is an async closure run on the shared runtime.
    pub async fn property<M, S, F, Fut>(&self, strategy: M, test: F) -> CheckResult
    where
        M: FnOnce() -> S + Send + 'static,
        S: Strategy,
        S::Value: AsJson,
        F: Fn(S::Value) -> Fut + Send + 'static,
        Fut: Future<Output = CheckResult>,
    {
        self.property_cases(self.settings.budget.cases, strategy, test)
            .await
    }

    /// [`Cx::property`] with its own number of cases (a property whose cases cost many
    /// requests each sizes itself).
    pub async fn property_cases<M, S, F, Fut>(
        &self,
        cases: u32,
        strategy: M,
        test: F,
    ) -> CheckResult
    where
        M: FnOnce() -> S + Send + 'static,
        S: Strategy,
        S::Value: AsJson,
        F: Fn(S::Value) -> Fut + Send + 'static,
        Fut: Future<Output = CheckResult>,
    {
        let handle = tokio::runtime::Handle::current();
        let config = Config {
            cases: cases.max(1),
            rng_seed: RngSeed::Fixed(self.seed),
            failure_persistence: None,
            // The budget of shrinking steps is kept below (each step is a case sent again),
            // not by proptest: past its cap proptest writes a line to stderr of its own,
            // over the progress line. Its cap stays as a net for steps that send nothing.
            max_shrink_iters: u32::MAX,
            ..Config::default()
        };
        let shrink_budget = self.settings.budget.shrink_iters;
        let cases = Arc::clone(&self.cases);
        let live = LiveProperty::enter();
        let outcome = tokio::task::spawn_blocking(move || {
            let _live = live;
            let strategy = strategy();
            let mut runner = TestRunner::new(config);
            let last_failure: Mutex<Option<Failure>> = Mutex::new(None);
            let inconclusive: Mutex<Option<String>> = Mutex::new(None);
            // Steps taken since the first failure: past the budget a step passes unsent, so
            // that the smallest failure found so far stands.
            let shrinks = AtomicU64::new(0);
            let result = runner.run(&strategy, |value| {
                if inconclusive.lock().map(|i| i.is_some()).unwrap_or(true) {
                    return Ok(());
                }
                let failed = last_failure.lock().map(|f| f.is_some()).unwrap_or(true);
                if failed && shrinks.fetch_add(1, Ordering::Relaxed) >= u64::from(shrink_budget) {
                    return Ok(());
                }
                cases.fetch_add(1, Ordering::Relaxed);
                match handle.block_on(test(value)) {
                    Ok(()) => Ok(()),
                    Err(Finding::Fail(failure)) => {
                        let message = failure.message.clone();
                        if let Ok(mut last) = last_failure.lock() {
                            *last = Some(failure);
                        }
                        Err(TestCaseError::fail(message))
                    }
                    Err(Finding::Inconclusive(reason) | Finding::Skipped(reason)) => {
                        if let Ok(mut slot) = inconclusive.lock() {
                            *slot = Some(reason);
                        }
                        Ok(())
                    }
                }
            });
            let last_failure = last_failure.into_inner().ok().flatten();
            let inconclusive = inconclusive.into_inner().ok().flatten();
            match result {
                Err(TestError::Fail(_, minimal)) => {
                    let mut failure = last_failure.unwrap_or(Failure {
                        message: "a generated case failed".to_owned(),
                        exchanges: Vec::new(),
                    });
                    // The exchanges below show the minimal request itself; this is the generator's
                    // view of it, for whoever debugs the generator.
                    failure.message = format!(
                        "{}\n(shrunk to the smallest failing input; generator value: {})",
                        failure.message,
                        truncate(&minimal.as_json().to_string(), 240)
                    );
                    Err(Finding::Fail(failure))
                }
                Err(TestError::Abort(reason)) => {
                    Err(Finding::inconclusive(format!("property aborted: {reason}")))
                }
                Ok(()) => match inconclusive {
                    Some(reason) => Err(Finding::Inconclusive(reason)),
                    None => Ok(()),
                },
            }
        })
        .await;
        match outcome {
            Ok(result) => result,
            Err(join) => Err(Finding::inconclusive(format!(
                "the property's thread failed: {join}"
            ))),
        }
    }
}

/// A generated value as a failure shows it: JSON, never Rust's `Debug` text.
pub trait AsJson {
    /// The value as JSON.
    fn as_json(&self) -> Value;
}

impl AsJson for crate::generate::Template {
    fn as_json(&self) -> Value {
        self.0.clone()
    }
}

impl AsJson for crate::generate::Invalid {
    fn as_json(&self) -> Value {
        json!({ "body": self.template.0, "mutation": self.mutation.to_string() })
    }
}

impl AsJson for crate::model::machine::Step {
    fn as_json(&self) -> Value {
        json!(self.to_string())
    }
}

impl<T: AsJson> AsJson for Vec<T> {
    fn as_json(&self) -> Value {
        Value::Array(self.iter().map(AsJson::as_json).collect())
    }
}

/// A state machine's case (proptest-state-machine's value): its steps, since every case
/// starts from the same state.
impl<S, T: AsJson> AsJson for (S, Vec<T>, Option<Arc<AtomicUsize>>) {
    fn as_json(&self) -> Value {
        json!({ "steps": self.1.as_json() })
    }
}

/// Property threads running now. Aborting a check does not stop its property's thread, and
/// a thread still calling into the runtime while it shuts down panics: the engine waits for
/// this to reach zero before a stopped run returns.
static LIVE_PROPERTIES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many property threads are running.
pub fn live_properties() -> usize {
    LIVE_PROPERTIES.load(Ordering::SeqCst)
}

/// Counts one property thread from before it is spawned until it ends.
struct LiveProperty;

impl LiveProperty {
    fn enter() -> LiveProperty {
        LIVE_PROPERTIES.fetch_add(1, Ordering::SeqCst);
        LiveProperty
    }
}

impl Drop for LiveProperty {
    fn drop(&mut self) {
        LIVE_PROPERTIES.fetch_sub(1, Ordering::SeqCst);
    }
}
