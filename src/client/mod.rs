//! The HTTP side of the suite: one keep-alive client for the whole run, the documented
//! headers on every request, pacing on the target's rate limit, and a transcript of every
//! exchange with secrets replaced, so that a failure can show what was sent and received.
//! The target is not trusted with the client's resources: answers are read up to
//! [`MAX_BODY_BYTES`] within [`REQUEST_TIMEOUT`], redirects are not followed, and a run that
//! stops (deadline, signal) ends its waiting and in-flight requests at once.

mod ids;
mod redact;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

pub use ids::{Action, Collection, IdForm, MAX_ID_LEN, ResourceId, UnsafeId, resource_path, shown};
pub use redact::{STRONG_MIN_DISTINCT, STRONG_MIN_LEN, Secrets, is_strong, safe_placeholder};

/// The header every request carries to pick the API version (documented: MUST).
pub const API_VERSION: &str = "3";
/// How long one request may take before it counts as timed out.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait on a 429 the client accepts before giving up on that request.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
/// How many times one request is sent again after a 429 or a transient failure.
pub const MAX_RETRIES: u32 = 4;
/// The largest answer body the client reads (4 MiB). Every documented answer of this API is a
/// small JSON document (one resource, a listing, an error envelope: kilobytes); a body past
/// this is the target breaking the contract, and reading on would let it exhaust memory.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Where the suite sends its requests.
#[derive(Clone)]
pub struct Target {
    /// The CMA base URL, without a trailing slash.
    pub base_url: String,
    /// The CDA GraphQL endpoint, when known.
    pub cda_url: Option<String>,
    /// The `X-Environment` to send, if any.
    pub environment: Option<String>,
    /// The management token's secret.
    pub secret: String,
    /// A name for reports (`reference` for the embedded server).
    pub name: String,
    /// Whether the run started its own embedded reference server.
    pub embedded: bool,
    /// Extra trusted CA certificates (PEM), for a target behind a private CA.
    pub ca_pem: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("cda_url", &self.cda_url)
            .field("environment", &self.environment)
            .field("secret", &"[redacted]")
            .field("embedded", &self.embedded)
            .field("ca_pem", &self.ca_pem.is_some())
            .finish()
    }
}

impl Target {
    /// Whether the CMA host is a loopback address (not enough for destructive clauses: a
    /// loopback server the suite did not start is someone else's).
    pub fn is_loopback(&self) -> bool {
        is_loopback_url(&self.base_url)
    }
}

/// Whether `url`'s host is `localhost` or a loopback IP address.
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else {
        return false;
    };
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// Which API a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// The Content Management API (`base_url`).
    Cma,
    /// The Content Delivery API (`cda_url`).
    Cda,
}

/// Who a request authenticates as.
#[derive(Clone)]
pub enum Auth {
    /// The user's management token.
    Management,
    /// A token the run created, or a factory token; `label` names it in transcripts.
    Token {
        /// The secret.
        secret: String,
        /// What transcripts show instead, e.g. `$FIXTURE_TOKEN_12`.
        label: String,
    },
    /// No `Authorization` header at all.
    None,
    /// This exact header value (a deliberately invalid credential).
    Raw(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::Management => f.write_str("Management"),
            Auth::Token { label, .. } => write!(f, "Token({label})"),
            Auth::None => f.write_str("None"),
            Auth::Raw(_) => f.write_str("Raw([redacted])"),
        }
    }
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Request {
    /// Which API.
    pub api: Api,
    /// HTTP method.
    pub method: reqwest::Method,
    /// Path below the base URL, starting with `/`.
    pub path: String,
    /// Credentials.
    pub auth: Auth,
    /// JSON body, if any.
    pub body: Option<Value>,
    /// Header overrides: `(name, Some(value))` replaces, `(name, None)` removes.
    pub headers: Vec<(String, Option<String>)>,
}

impl Request {
    /// A CMA request as the management token, with no body.
    pub fn cma(method: reqwest::Method, path: impl Into<String>) -> Request {
        Request {
            api: Api::Cma,
            method,
            path: path.into(),
            auth: Auth::Management,
            body: None,
            headers: Vec::new(),
        }
    }

    /// A CMA request to one resource (`/<collection>/<id>[/<action>]`), as the management
    /// token: the only way the suite builds a path from an id.
    pub fn cma_resource(
        method: reqwest::Method,
        collection: Collection,
        id: &ResourceId,
        action: Option<Action>,
    ) -> Request {
        Request::cma(method, resource_path(collection, id, action))
    }

    /// A CDA GraphQL query.
    pub fn cda(query: &str, auth: Auth) -> Request {
        Request {
            api: Api::Cda,
            method: reqwest::Method::POST,
            path: "/".to_owned(),
            auth,
            body: Some(serde_json::json!({ "query": query })),
            headers: Vec::new(),
        }
    }

    /// The same request with a JSON body.
    pub fn json(mut self, body: Value) -> Request {
        self.body = Some(body);
        self
    }

    /// The same request with other credentials.
    pub fn auth(mut self, auth: Auth) -> Request {
        self.auth = auth;
        self
    }

    /// The same request with a header set (or removed with `None`).
    pub fn header(mut self, name: &str, value: Option<&str>) -> Request {
        self.headers
            .push((name.to_owned(), value.map(str::to_owned)));
        self
    }
}

/// What was sent, with secrets replaced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SentRequest {
    /// Method.
    pub method: String,
    /// Full URL.
    pub url: String,
    /// Headers in the order sent, secrets replaced.
    pub headers: Vec<(String, String)>,
    /// Body text, if any: the JSON as sent (controls and bidi characters as `\uXXXX`), secrets
    /// replaced.
    pub body: Option<String>,
}

/// A request and the response it got.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// What was sent (redacted).
    pub request: SentRequest,
    /// Status code.
    pub status: u16,
    /// Response headers (names lower-case).
    pub headers: Vec<(String, String)>,
    /// The body as text, secrets replaced: a JSON body written back compact from its
    /// redacted value (controls and bidi characters as `\uXXXX`), any other as lossy UTF-8.
    pub body_text: String,
    /// The body parsed as JSON, if it is JSON. Not redacted: checks need real values.
    pub json: Option<Value>,
    /// How long the final attempt took.
    pub elapsed: Duration,
}

impl Exchange {
    /// The first value of a response header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the status is 4xx.
    pub fn is_client_error(&self) -> bool {
        (400..500).contains(&self.status)
    }

    /// The `code` of the first api_error, if the body is an error envelope.
    pub fn error_code(&self) -> Option<&str> {
        self.json
            .as_ref()?
            .pointer("/data/0/attributes/code")?
            .as_str()
    }

    /// `data` of the body, if any.
    pub fn data(&self) -> Option<&Value> {
        self.json.as_ref()?.get("data")
    }

    /// A short description: `PUT /access_tokens/12 → 422 INVALID_FORMAT`.
    pub fn summary(&self) -> String {
        let path = self
            .request
            .url
            .split_once("://")
            .map_or(self.request.url.as_str(), |(_, rest)| {
                rest.find('/').map_or("/", |i| &rest[i..])
            });
        let mut line = match self.error_code() {
            // Not cut: a cut secret would no longer be recognised by redaction. Documented
            // codes are short UPPER_SNAKE words.
            Some(code) if code.len() > MAX_SHOWN_CODE => format!(
                "{} {} → {} (a {}-byte error code, not shown)",
                self.request.method,
                path,
                self.status,
                code.len()
            ),
            Some(code) => format!("{} {} → {} {code}", self.request.method, path, self.status),
            None => format!("{} {} → {}", self.request.method, path, self.status),
        };
        if (300..400).contains(&self.status) {
            let to = self.header("location").map_or_else(
                || "no Location".to_owned(),
                |l| crate::text::truncate(l, 200),
            );
            line.push_str(&format!(" (redirect to {to}, redirects are not followed)"));
        }
        line
    }
}

/// Why a request got no usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransportError {
    /// Nothing accepted the connection.
    #[error("failed to connect to {url}: {message}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What the network stack said.
        message: String,
    },
    /// No answer within [`REQUEST_TIMEOUT`].
    #[error("no answer from {url} within {0:?}", REQUEST_TIMEOUT)]
    Timeout {
        /// The URL.
        url: String,
    },
    /// The connection broke or the answer could not be read.
    #[error("failed to read the answer of {url}: {message}")]
    Broken {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The request needs the CDA URL but none is configured.
    #[error("this check needs the CDA URL (--cda-url or CONFORMANCE_CDA_URL)")]
    NoCdaUrl,
    /// Still rate limited or failing transiently after every retry.
    #[error("gave up on {url} after {attempts} attempts: {last}")]
    GaveUp {
        /// The URL.
        url: String,
        /// How many times it was sent.
        attempts: u32,
        /// The last status line or error.
        last: String,
    },
    /// The request itself could not be built (a bad header value).
    #[error("failed to build the request: {0}")]
    Build(String),
    /// The run's request budget (`--max-requests`) is spent.
    #[error("the run's request budget of {0} requests is spent")]
    Budget(u64),
    /// A write the suite refused to send: it would reach the management token, or leave the
    /// base URL.
    #[error("refused to send {method} {url}: {why}")]
    Refused {
        /// The method.
        method: String,
        /// The URL (ids in it are escaped by the caller's validation; never sent).
        url: String,
        /// Why.
        why: String,
    },
    /// The answer's body was larger than [`MAX_BODY_BYTES`]; reading stopped there.
    #[error(
        "the answer of {url} exceeded the {cap}-byte cap (documented answers are small JSON documents); reading stopped there"
    )]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap, in bytes.
        cap: usize,
        /// The answer as far as it was read (its body cut short), as evidence.
        partial: Box<Exchange>,
    },
    /// The run is stopping (its deadline passed, or it was interrupted): nothing more is sent.
    #[error("{0}: no more requests are sent")]
    Stopped(String),
}

/// How far a run's stop goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopLevel {
    /// Running.
    Running,
    /// The checks send nothing more (deadline, first signal); cleanup still runs.
    Checks,
    /// Nothing is sent any more, cleanup included (cleanup out of time, second signal).
    All,
}

/// The run's stop state, shared by every clone of a client.
#[derive(Debug, Clone)]
pub struct StopState {
    /// How far the stop goes.
    pub level: StopLevel,
    /// Why it went this far, in words (`cleanup did not finish within 30s`).
    pub reason: String,
    /// Why the run stopped at all: the first reason given (`the run's deadline of 15m passed`).
    pub cause: String,
}

impl TransportError {
    /// The same error with every secret `secrets` knows replaced (the last answer of
    /// [`GaveUp`](Self::GaveUp) is the target's words).
    pub fn redacted(&self, secrets: &Secrets) -> TransportError {
        let r = |text: &str| secrets.redact(text);
        match self {
            TransportError::Unreachable { url, message } => TransportError::Unreachable {
                url: r(url),
                message: r(message),
            },
            TransportError::Timeout { url } => TransportError::Timeout { url: r(url) },
            TransportError::Broken { url, message } => TransportError::Broken {
                url: r(url),
                message: r(message),
            },
            TransportError::GaveUp {
                url,
                attempts,
                last,
            } => TransportError::GaveUp {
                url: r(url),
                attempts: *attempts,
                last: r(last),
            },
            other => other.clone(),
        }
    }
}

/// Counts of what the client did, shared by every clone.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests sent (every attempt counts).
    pub requests: AtomicU64,
    /// Milliseconds spent waiting on rate limits.
    pub rate_limit_wait_ms: AtomicU64,
    /// Retries after a 429 or a transient failure.
    pub retries: AtomicU64,
    /// Every request sent, redacted, in the order sent, but only while [`Stats::record`] is
    /// on (tests switch it on; a run keeps nothing per request that nobody reads).
    pub sent: std::sync::Mutex<Vec<SentRequest>>,
    /// Whether requests are recorded in [`Stats::sent`].
    pub record: std::sync::atomic::AtomicBool,
    /// The most requests the run may send (0: no cap). Cleanup is exempt.
    pub cap: AtomicU64,
    /// Transient failures the run may still retry.
    pub retry_budget: AtomicU64,
    /// Whether the run is stopping, and why.
    stop: StopSignal,
}

/// A watch channel for the stop state (so that waiting requests wake up at once).
#[derive(Debug)]
struct StopSignal(tokio::sync::watch::Sender<StopState>);

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal(tokio::sync::watch::Sender::new(StopState {
            level: StopLevel::Running,
            reason: String::new(),
            cause: String::new(),
        }))
    }
}

/// The suite's HTTP client. Cheap to clone; every clone shares one connection pool.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    target: Arc<Target>,
    secrets: Secrets,
    stats: Arc<Stats>,
    /// Requests made through this handle (per check).
    local: Arc<AtomicU64>,
    /// Per caller: what the target said of its rate limit.
    pacing: Arc<std::sync::Mutex<std::collections::HashMap<String, Gate>>>,
    /// Whether the run's request cap applies to this handle.
    capped: bool,
    /// Weak secrets (see [`is_strong`]) this handle's answers were the first to show.
    weak: Arc<AtomicU64>,
    /// What no write may reach, and the ids of the run's live fixtures.
    guard: Arc<Guard>,
}

/// Shared by every clone of a client: the management token's id (learned at session start)
/// and the ids the run's fixtures hold now.
#[derive(Debug, Default)]
struct Guard {
    management: std::sync::Mutex<Option<ResourceId>>,
    live: std::sync::Mutex<std::collections::BTreeSet<(Collection, ResourceId)>>,
}

/// What the client knows of one caller's rate limit.
#[derive(Debug, Clone, Copy)]
struct Gate {
    remaining: u64,
    blocked_until: Instant,
}

/// Below this many remaining requests, the client slows down.
const PACE_LOW_WATER: u64 = 2;
/// How long it waits before each request then.
const PACE_DELAY: Duration = Duration::from_millis(250);
/// Transient failures a run may retry in all, by default.
pub const DEFAULT_RETRY_BUDGET: u64 = 200;

fn pace_key(auth: &Auth) -> String {
    match auth {
        Auth::Management => "management".to_owned(),
        Auth::Token { label, .. } => label.clone(),
        Auth::None => "anonymous".to_owned(),
        Auth::Raw(value) => format!("raw:{}", crate::text::fnv1a(value.as_bytes())),
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// reqwest refused the configuration.
    #[error("failed to build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
    /// The CA certificate file is unusable.
    #[error("failed to use the CA certificate: {0}")]
    CaCert(String),
    /// A URL is not a valid http(s) URL.
    #[error("invalid {which} URL {url:?}: {message}")]
    Url {
        /// `base` or `CDA`.
        which: &'static str,
        /// The URL as given.
        url: String,
        /// Why.
        message: String,
    },
    /// A URL carries credentials (`user:password@`); the password is never shown.
    #[error(
        "the {which} URL {url} carries credentials (user:password@host): they would be sent on every request, \
         the \"no credentials\" probes included, and shown in reports; give the URL without them and put the \
         management token in the environment variable CONFORMANCE_API_TOKEN"
    )]
    Userinfo {
        /// `base` or `CDA`.
        which: &'static str,
        /// The URL with its credentials replaced by `***`.
        url: String,
    },
    /// The management token cannot be sent as a header; its value is never shown.
    #[error(
        "CONFORMANCE_API_TOKEN is not a valid HTTP header value: it holds {0} \
         (a trailing newline from a file, say); the value is not shown"
    )]
    Secret(&'static str),
}

/// `url` for messages: credentials before an `@` in its authority become `***`.
fn mask_userinfo(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once(':')?;
    let rest = rest.trim_start_matches(['/', '\\']);
    let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let at = rest[..end].rfind('@')?;
    Some(format!("{scheme}://***@{}", &rest[at + 1..]))
}

/// What is wrong with a secret that is not a valid header value, in words (never the value).
fn header_problem(secret: &str) -> Option<&'static str> {
    if HeaderValue::from_str(&format!("Bearer {secret}")).is_ok() {
        return None;
    }
    Some(if secret.contains(['\n', '\r']) {
        "a line break"
    } else if secret.chars().any(char::is_control) {
        "a control character"
    } else {
        "a character outside visible ASCII"
    })
}

/// Check that `url` is an absolute http(s) URL and return it without a trailing slash.
pub fn normalize_url(which: &'static str, url: &str) -> Result<String, ClientError> {
    if let Some(masked) = mask_userinfo(url) {
        return Err(ClientError::Userinfo { which, url: masked });
    }
    let parsed = reqwest::Url::parse(url).map_err(|err| ClientError::Url {
        which,
        url: url.to_owned(),
        message: err.to_string(),
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ClientError::Userinfo {
            which,
            url: format!(
                "{}://***@{}",
                parsed.scheme(),
                parsed.host_str().unwrap_or("")
            ),
        });
    }
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(ClientError::Url {
            which,
            url: url.to_owned(),
            message: "must be an http:// or https:// URL with a host".to_owned(),
        });
    }
    Ok(url.trim_end_matches('/').to_owned())
}

impl Client {
    /// A client for `target`, with its secret registered for redaction.
    pub fn new(target: Target) -> Result<Client, ClientError> {
        Client::with_timeout(target, REQUEST_TIMEOUT)
    }

    /// [`Client::new`] with another request timeout (tests of slow targets).
    fn with_timeout(target: Target, timeout: Duration) -> Result<Client, ClientError> {
        // reqwest is built without a default crypto provider; install ring's once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        normalize_url("base", &target.base_url)?;
        if let Some(cda) = &target.cda_url {
            normalize_url("CDA", cda)?;
        }
        // Found before any request: a token that cannot be sent would fail every one.
        if let Some(problem) = header_problem(&target.secret) {
            return Err(ClientError::Secret(problem));
        }
        // The timeout is reqwest's total one: it runs until the body is read, so a body that
        // drips one byte at a time is cut off too. A 3xx is an answer like any other: following
        // it would send the management token wherever the target points.
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(pem) = &target.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|err| ClientError::CaCert(error_chain(&err)))?;
            if certs.is_empty() {
                return Err(ClientError::CaCert(
                    "no certificate in the PEM file".to_owned(),
                ));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder.build()?;
        let secrets = Secrets::default();
        secrets.register_always(&target.secret, "$CONFORMANCE_API_TOKEN");
        Ok(Client {
            http,
            target: Arc::new(target),
            secrets,
            stats: Arc::new(Stats {
                retry_budget: AtomicU64::new(DEFAULT_RETRY_BUDGET),
                ..Stats::default()
            }),
            local: Arc::new(AtomicU64::new(0)),
            pacing: Arc::default(),
            capped: true,
            guard: Arc::default(),
            weak: Arc::default(),
        })
    }

    /// A handle sharing the pool and totals, with its own request counter.
    pub fn scoped(&self) -> Client {
        Client {
            local: Arc::new(AtomicU64::new(0)),
            weak: Arc::default(),
            ..self.clone()
        }
    }

    /// The management token's id: no write will be sent to it from now on.
    pub fn set_management_id(&self, id: ResourceId) {
        if let Ok(mut slot) = self.guard.management.lock() {
            *slot = Some(id);
        }
    }

    /// The management token's id, if known.
    pub fn management_id(&self) -> Option<ResourceId> {
        self.guard.management.lock().ok().and_then(|m| m.clone())
    }

    /// Ask `GET /users/me` which token the run authenticates as, and guard it. A target that
    /// does not say, or names an unsafe id, leaves only the base-URL check; nothing fails here.
    pub async fn learn_management_id(&self) {
        // Through the checks' handle, not `uncapped()`: a deadline or a signal ends it, so a
        // target gone silent cannot hold the run here.
        let Ok(me) = self
            .send(&Request::cma(reqwest::Method::GET, "/users/me"))
            .await
        else {
            return;
        };
        if let Some(Ok(id)) = me
            .is_success()
            .then(|| me.data().map(ResourceId::of))
            .flatten()
        {
            self.set_management_id(id);
        }
    }

    /// Claim `id` for a new fixture of the run; `false` when another live fixture holds it.
    pub fn claim_fixture_id(&self, collection: Collection, id: &ResourceId) -> bool {
        self.guard
            .live
            .lock()
            .map(|mut live| live.insert((collection, id.clone())))
            .unwrap_or(false)
    }

    /// The fixture holding `id` is gone.
    pub fn release_fixture_id(&self, collection: Collection, id: &ResourceId) {
        if let Ok(mut live) = self.guard.live.lock() {
            live.remove(&(collection, id.clone()));
        }
    }

    /// Refuse a write whose resolved URL leaves the base URL or reaches the management
    /// token (however the path spells it: dot segments, percent-encoding, case).
    fn check_write(&self, req: &Request, url: &str) -> Result<(), TransportError> {
        use reqwest::Method;
        if req.api != Api::Cma || matches!(req.method, Method::GET | Method::HEAD | Method::OPTIONS)
        {
            return Ok(());
        }
        let refuse = |why: String| TransportError::Refused {
            method: req.method.to_string(),
            url: shown(url),
            why,
        };
        let below = ids::segments_below(&self.target.base_url, url).map_err(refuse)?;
        if let Some(id) = self.management_id()
            && below.len() >= 2
            && below[0] == "access_tokens"
            && below[1] == id.to_lowercase()
        {
            return Err(refuse(
                "it would reach the management token the run authenticates with".to_owned(),
            ));
        }
        Ok(())
    }

    /// The target.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The secrets to redact.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Totals for the whole run.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Requests made through this handle.
    pub fn local_requests(&self) -> u64 {
        self.local.load(Ordering::Relaxed)
    }

    /// Keep every request sent from now on in [`Stats::sent`] (for tests that read the
    /// transcript; off by default, so that a long run does not grow).
    pub fn record_requests(&self, on: bool) {
        self.stats.record.store(on, Ordering::Relaxed);
    }

    /// Stop the run at `level` (a higher level than the current one only): waiting and
    /// in-flight requests of the handles it covers end at once with
    /// [`TransportError::Stopped`]. The first reason given for a level stays, and the first of
    /// all is the stop's cause.
    pub fn stop(&self, level: StopLevel, reason: &str) {
        self.stats.stop.0.send_if_modified(|state| {
            if state.level >= level {
                return false;
            }
            if state.level == StopLevel::Running {
                state.cause = reason.to_owned();
            }
            state.level = level;
            state.reason = reason.to_owned();
            true
        });
    }

    /// The run's stop state now.
    pub fn stop_state(&self) -> StopState {
        self.stats.stop.0.borrow().clone()
    }

    /// A receiver that sees every change of the stop state.
    pub fn stop_watch(&self) -> tokio::sync::watch::Receiver<StopState> {
        self.stats.stop.0.subscribe()
    }

    /// The level from which this handle sends nothing: checks stop first, cleanup last.
    fn stop_level(&self) -> StopLevel {
        if self.capped {
            StopLevel::Checks
        } else {
            StopLevel::All
        }
    }

    /// Why this handle may not send now, if it may not.
    fn refusal(&self) -> Option<String> {
        let state = self.stats.stop.0.borrow();
        (state.level >= self.stop_level()).then(|| state.reason.clone())
    }

    /// Run `work` unless the run stops first (then it is dropped, and the request with it).
    async fn unless_stopped<F: std::future::Future>(
        &self,
        work: F,
    ) -> Result<F::Output, TransportError> {
        let level = self.stop_level();
        let mut watch = self.stats.stop.0.subscribe();
        tokio::pin!(work);
        tokio::select! {
            biased;
            reason = async { watch.wait_for(|s| s.level >= level).await.map(|s| s.reason.clone()) } => match reason {
                Ok(reason) => Err(TransportError::Stopped(reason)),
                // The sender lives as long as the stats: unreachable, but never stop for it.
                Err(_) => Ok(work.await),
            },
            out = &mut work => Ok(out),
        }
    }

    /// How many token secrets first seen in this handle's answers are too short or too
    /// regular to be redacted as substrings (a finding: they are hidden only by position).
    pub fn weak_secrets(&self) -> u64 {
        self.weak.load(Ordering::Relaxed)
    }

    /// Send `req`, pacing on the target's rate limit, waiting out 429s, and retrying
    /// transient failures (`transient: true`, 502/503/504, timeouts, dropped connections)
    /// with backoff, within the run's retry budget.
    ///
    /// A request that is not idempotent (a CMA `POST`: create, rotate) is retried only when
    /// the answer shows it was not processed (429, or no connection at all): sending it again
    /// after a timeout or a 503 could apply it twice. Its caller sorts out what happened.
    ///
    /// A 4xx marked `transient: true` (a refusal, whatever the flag says) is sent again at
    /// most once, then taken as the answer: a target must not turn a deserved failure into
    /// "inconclusive" by calling its refusals transient. See [`is_transient_4xx`].
    pub async fn send(&self, req: &Request) -> Result<Exchange, TransportError> {
        let idempotent = req.method != reqwest::Method::POST || req.api == Api::Cda;
        let pace_key = pace_key(&req.auth);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.unless_stopped(self.pace(&pace_key)).await?;
            let result = self.send_once(req).await;
            if let Ok(ex) = &result {
                self.record_pace(&pace_key, ex);
                if is_transient_4xx(ex) {
                    if attempt > 1 || !idempotent || !self.take_retry() {
                        return result;
                    }
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
            }
            let (wait, transient) = match &result {
                Ok(ex) if ex.status == 429 => (Some(rate_limit_wait(ex)), false),
                Ok(ex) if is_transient(ex) && idempotent => (Some(backoff(attempt)), true),
                Ok(_) => (None, false),
                Err(TransportError::Unreachable { .. }) if attempt == 1 => (None, false),
                Err(TransportError::Unreachable { .. }) => (Some(backoff(attempt)), true),
                Err(TransportError::Timeout { .. } | TransportError::Broken { .. })
                    if idempotent =>
                {
                    (Some(backoff(attempt)), true)
                }
                Err(_) => (None, false),
            };
            let Some(wait) = wait else { return result };
            let budget_left = !transient || self.take_retry();
            if attempt > MAX_RETRIES || wait > MAX_RATE_LIMIT_WAIT || !budget_left {
                let last = match &result {
                    Ok(ex) => ex.summary(),
                    Err(err) => err.to_string(),
                };
                let last = if budget_left {
                    last
                } else {
                    format!("{last} (the run's retry budget is spent)")
                };
                return Err(TransportError::GaveUp {
                    url: self.url_of(req)?,
                    attempts: attempt,
                    last,
                });
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            if !transient {
                self.stats
                    .rate_limit_wait_ms
                    .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
            }
            self.unless_stopped(tokio::time::sleep(wait)).await?;
        }
    }

    /// Take one retry from the run's budget.
    fn take_retry(&self) -> bool {
        self.stats
            .retry_budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }

    /// Wait while this caller is rate limited, and slow down when its remaining budget is low.
    async fn pace(&self, key: &str) {
        let wait = {
            let Ok(gates) = self.pacing.lock() else {
                return;
            };
            gates.get(key).map(|gate| {
                let now = Instant::now();
                if gate.blocked_until > now {
                    (gate.blocked_until - now).min(MAX_RATE_LIMIT_WAIT)
                } else if gate.remaining <= PACE_LOW_WATER {
                    PACE_DELAY
                } else {
                    Duration::ZERO
                }
            })
        };
        if let Some(wait) = wait.filter(|w| !w.is_zero()) {
            self.stats
                .rate_limit_wait_ms
                .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
            tokio::time::sleep(wait).await;
        }
    }

    fn record_pace(&self, key: &str, ex: &Exchange) {
        let remaining = ex
            .header("x-ratelimit-remaining")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let Ok(mut gates) = self.pacing.lock() else {
            return;
        };
        let gate = gates.entry(key.to_owned()).or_insert(Gate {
            remaining: u64::MAX,
            blocked_until: Instant::now(),
        });
        if let Some(remaining) = remaining {
            gate.remaining = remaining;
        }
        if ex.status == 429 {
            // Everyone calling as this token holds back until the window resets.
            let until = Instant::now()
                .checked_add(rate_limit_wait(ex))
                .unwrap_or_else(Instant::now);
            gate.blocked_until = gate.blocked_until.max(until);
            gate.remaining = u64::MAX;
        }
    }

    /// Cap the run at `max` requests (cleanup is exempt); `None` removes the cap.
    pub fn set_request_cap(&self, max: Option<u64>) {
        self.stats.cap.store(max.unwrap_or(0), Ordering::Relaxed);
    }

    /// A handle that ignores the request cap: cleanup must always be able to run.
    pub fn uncapped(&self) -> Client {
        Client {
            capped: false,
            ..self.clone()
        }
    }

    fn url_of(&self, req: &Request) -> Result<String, TransportError> {
        let base = match req.api {
            Api::Cma => self.target.base_url.as_str(),
            Api::Cda => self
                .target
                .cda_url
                .as_deref()
                .ok_or(TransportError::NoCdaUrl)?,
        };
        Ok(format!("{}{}", base.trim_end_matches('/'), req.path))
    }

    /// The headers every request carries, before overrides.
    fn default_headers(&self, req: &Request) -> Vec<(String, String)> {
        let mut headers = vec![("Accept".to_owned(), "application/json".to_owned())];
        if req.api == Api::Cma {
            headers.push(("X-Api-Version".to_owned(), API_VERSION.to_owned()));
            if let Some(env) = &self.target.environment {
                headers.push(("X-Environment".to_owned(), env.clone()));
            }
        }
        if req.body.is_some() {
            let ct = if req.api == Api::Cma {
                "application/vnd.api+json"
            } else {
                "application/json"
            };
            headers.push(("Content-Type".to_owned(), ct.to_owned()));
        }
        match &req.auth {
            Auth::Management => {
                headers.push((
                    "Authorization".to_owned(),
                    format!("Bearer {}", self.target.secret),
                ));
            }
            Auth::Token { secret, .. } => {
                headers.push(("Authorization".to_owned(), format!("Bearer {secret}")));
            }
            Auth::Raw(value) => headers.push(("Authorization".to_owned(), value.clone())),
            Auth::None => {}
        }
        for (name, value) in &req.headers {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            if let Some(value) = value {
                headers.push((name.clone(), value.clone()));
            }
        }
        headers
    }

    /// Send `req` once: no waiting on 429s, no retries.
    pub async fn send_once(&self, req: &Request) -> Result<Exchange, TransportError> {
        let (parsed, headers, map, body_text) = self.prepare(req)?;
        let url = parsed.as_str().to_owned();
        let mut builder = self.http.request(req.method.clone(), parsed).headers(map);
        self.check_write(req, &url)?;
        if let Some(text) = &body_text {
            builder = builder.body(text.clone());
        }
        if let Some(reason) = self.refusal() {
            return Err(TransportError::Stopped(reason));
        }
        let cap = self.stats.cap.load(Ordering::Relaxed);
        // Take a slot atomically, so that concurrent checks cannot overshoot the cap.
        let took = self
            .stats
            .requests
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |sent| {
                (!self.capped || cap == 0 || sent < cap).then_some(sent + 1)
            });
        if took.is_err() {
            return Err(TransportError::Budget(cap));
        }
        self.local.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let answer = self.unless_stopped(read_answer(builder, &url)).await??;
        let elapsed = started.elapsed();
        let json: Option<Value> = if answer.cut_short {
            None
        } else {
            serde_json::from_slice(&answer.body).ok()
        };
        if let Some(json) = &json {
            // Learned before anything is recorded, so this very answer is redacted too.
            let weak = self.secrets.learn_from(json);
            self.weak.fetch_add(weak as u64, Ordering::Relaxed);
        }
        let sent = self.record(req, &url, &headers, req.body.as_ref());
        if self.stats.record.load(Ordering::Relaxed)
            && let Ok(mut log) = self.stats.sent.lock()
        {
            log.push(sent.clone());
        }
        let body_text = match &json {
            // Member by member, so that no escape hides a secret; written back terminal-safe.
            Some(json) => crate::output::json_text(&self.secrets.redact_json(json)),
            None => {
                let shown = if answer.cut_short {
                    &answer.body[..answer.body.len().min(EVIDENCE_BYTES)]
                } else {
                    &answer.body[..]
                };
                self.secrets.redact(&String::from_utf8_lossy(shown))
            }
        };
        let exchange = Exchange {
            request: sent,
            status: answer.status,
            headers: answer.headers,
            body_text,
            json,
            elapsed,
        };
        if answer.cut_short {
            return Err(TransportError::TooLarge {
                url,
                cap: MAX_BODY_BYTES,
                partial: Box::new(exchange),
            });
        }
        Ok(exchange)
    }

    /// The URL, headers and body text `req` is sent with, checked: nothing is sent that
    /// could not be recorded as it was sent.
    #[allow(clippy::type_complexity)]
    fn prepare(
        &self,
        req: &Request,
    ) -> Result<
        (
            reqwest::Url,
            Vec<(String, String)>,
            HeaderMap,
            Option<String>,
        ),
        TransportError,
    > {
        let url = self.url_of(req)?;
        let parsed =
            reqwest::Url::parse(&url).map_err(|err| TransportError::Build(err.to_string()))?;
        let headers = self.default_headers(req);
        let mut map = HeaderMap::new();
        for (name, value) in &headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|err| TransportError::Build(err.to_string()))?;
            let value = HeaderValue::from_str(value)
                .map_err(|err| TransportError::Build(err.to_string()))?;
            map.append(name, value);
        }
        // Controls and bidi characters escaped: the same JSON, and what is recorded (and
        // replayed by the reproducer) is exactly what was sent.
        let body_text = req.body.as_ref().map(crate::output::json_text);
        Ok((parsed, headers, map, body_text))
    }

    /// What `req` looks like once recorded, redacted, without sending it: what a failure
    /// report and its `curl` reproducer are built from.
    pub fn recorded(&self, req: &Request) -> Result<SentRequest, TransportError> {
        let (parsed, headers, _, _) = self.prepare(req)?;
        Ok(self.record(req, parsed.as_str(), &headers, req.body.as_ref()))
    }

    fn record(
        &self,
        req: &Request,
        url: &str,
        headers: &[(String, String)],
        body: Option<&Value>,
    ) -> SentRequest {
        SentRequest {
            method: req.method.to_string(),
            url: self.secrets.redact(url),
            headers: headers
                .iter()
                .map(|(n, v)| (n.clone(), self.redact_header(n, v, &req.auth)))
                .collect(),
            body: body.map(|b| crate::output::json_text(&self.secrets.redact_json(b))),
        }
    }

    /// An `Authorization` value by position: the credential's name, never its value.
    fn redact_header(&self, name: &str, value: &str, auth: &Auth) -> String {
        if !name.eq_ignore_ascii_case("authorization") {
            return self.secrets.redact(value);
        }
        match auth {
            Auth::Management => "Bearer $CONFORMANCE_API_TOKEN".to_owned(),
            Auth::Token { label, .. } => format!("Bearer {}", safe_placeholder(label)),
            // A deliberately invalid credential of the suite's own: shown, so that a failure
            // says what was sent.
            Auth::Raw(_) | Auth::None => self.secrets.redact(value),
        }
    }
}

/// Whether an answer says "try again later" (documented `transient`, or a gateway status).
/// A 4xx other than 429 never is, whatever it says: it is a refusal (see [`is_transient_4xx`]).
pub fn is_transient(ex: &Exchange) -> bool {
    matches!(ex.status, 502..=504) || (marked_transient(ex) && !refusal(ex))
}

/// Whether a 4xx (not a 429) carries `transient: true`: a deviation. The client sends such a
/// request again at most once, then the answer stands.
pub fn is_transient_4xx(ex: &Exchange) -> bool {
    refusal(ex) && marked_transient(ex)
}

fn refusal(ex: &Exchange) -> bool {
    ex.is_client_error() && ex.status != 429
}

fn marked_transient(ex: &Exchange) -> bool {
    ex.json
        .as_ref()
        .and_then(|j| j.pointer("/data/0/attributes/transient"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// How much of a body cut short at [`MAX_BODY_BYTES`] is kept as evidence.
const EVIDENCE_BYTES: usize = 2048;

/// The longest error code a summary quotes whole (documented codes are short words; a code
/// echoing a request may be a few hundred bytes).
const MAX_SHOWN_CODE: usize = 512;

/// An answer as read off the wire.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The body was longer than [`MAX_BODY_BYTES`]; `body` holds what was read.
    cut_short: bool,
}

/// Send and read the answer, at most [`MAX_BODY_BYTES`] of its body: chunk by chunk, so that
/// an endless body is stopped at the cap instead of being gathered first.
async fn read_answer(
    builder: reqwest::RequestBuilder,
    url: &str,
) -> Result<Answer, TransportError> {
    let mut response = builder.send().await.map_err(|err| classify(url, &err))?;
    let status = response.status().as_u16();
    let headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut answer = Answer {
        status,
        headers,
        body: Vec::new(),
        cut_short: false,
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY_BYTES as u64)
    {
        answer.cut_short = true;
        return Ok(answer);
    }
    while let Some(chunk) = response.chunk().await.map_err(|err| classify(url, &err))? {
        let room = MAX_BODY_BYTES - answer.body.len();
        if chunk.len() > room {
            answer.body.extend_from_slice(&chunk[..room]);
            answer.cut_short = true;
            return Ok(answer);
        }
        answer.body.extend_from_slice(&chunk);
    }
    Ok(answer)
}

fn rate_limit_wait(ex: &Exchange) -> Duration {
    let secs = ex
        .header("x-ratelimit-reset")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    // A target may send anything here (an epoch timestamp, u64::MAX): never wait longer than
    // the client would accept anyway, so one bad header cannot stall the run or its cleanup.
    Duration::from_secs(secs.clamp(1, MAX_RATE_LIMIT_WAIT.as_secs() + 1))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6)))
}

fn classify(url: &str, err: &reqwest::Error) -> TransportError {
    let message = error_chain(err);
    if err.is_timeout() {
        TransportError::Timeout {
            url: url.to_owned(),
        }
    } else if err.is_connect() {
        TransportError::Unreachable {
            url: url.to_owned(),
            message,
        }
    } else {
        TransportError::Broken {
            url: url.to_owned(),
            message,
        }
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn a_huge_error_code_is_not_quoted_whole() {
        // Every message that names an answer quotes its summary: preflight errors too.
        let code = format!("{}$CAFE0123456789abcdef", " ".repeat(4 << 20));
        let ex = Exchange {
            request: SentRequest {
                method: "GET".to_owned(),
                url: "http://127.0.0.1:1/site".to_owned(),
                headers: Vec::new(),
                body: None,
            },
            status: 401,
            headers: Vec::new(),
            body_text: String::new(),
            json: Some(serde_json::json!({"data": [{"attributes": {"code": code}}]})),
            elapsed: Duration::ZERO,
        };
        let summary = ex.summary();
        assert!(summary.len() < 300, "{} bytes", summary.len());
        assert!(!summary.contains("CAFE"), "{summary}");
        let short = Exchange {
            json: Some(serde_json::json!({"data": [{"attributes": {"code": "INVALID_FORMAT"}}]})),
            ..ex
        };
        assert_eq!(short.summary(), "GET /site → 401 INVALID_FORMAT");
    }

    /// A one-trick server on 127.0.0.1: every connection gets `answer` written to it.
    async fn serve<F, Fut>(answer: F) -> String
    where
        F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let answer = Arc::clone(&answer);
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    answer(stream).await;
                });
            }
        });
        url
    }

    fn client(url: &str, timeout: Duration) -> Client {
        Client::with_timeout(
            Target {
                base_url: url.to_owned(),
                cda_url: None,
                environment: None,
                secret: "unit-test-secret-5f2c9a".to_owned(),
                name: "unit".to_owned(),
                embedded: false,
                ca_pem: None,
            },
            timeout,
        )
        .unwrap()
    }

    fn get() -> Request {
        Request::cma(reqwest::Method::GET, "/site")
    }

    #[tokio::test]
    async fn an_endless_body_stops_at_the_cap_and_is_a_failure() {
        let url = serve(|mut stream| async move {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = format!("10000\r\n{}\r\n", "[".repeat(0x10000));
            // Endless, but bounded here so a client that never stops cannot hang the test.
            for _ in 0..4096 {
                if stream.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
            }
        })
        .await;
        let started = Instant::now();
        let err = client(&url, Duration::from_secs(20))
            .send_once(&get())
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(15));
        let TransportError::TooLarge { cap, partial, .. } = &err else {
            panic!("not TooLarge: {err}");
        };
        assert_eq!(*cap, MAX_BODY_BYTES);
        assert_eq!(partial.status, 200);
        assert!(partial.body_text.len() <= EVIDENCE_BYTES);
        assert!(
            err.to_string()
                .contains(&format!("exceeded the {MAX_BODY_BYTES}-byte cap")),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_announced_huge_body_is_not_read_at_all() {
        let url = serve(|mut stream| async move {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{";
            let _ = stream.write_all(head.as_bytes()).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        })
        .await;
        let started = Instant::now();
        let err = client(&url, Duration::from_secs(20))
            .send_once(&get())
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::TooLarge { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_body_that_drips_is_cut_off_by_the_request_timeout() {
        let url = serve(|mut stream| async move {
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
            if stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for _ in 0..1000 {
                if stream.write_all(b" ").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        let started = Instant::now();
        let err = client(&url, Duration::from_secs(1))
            .send_once(&get())
            .await
            .unwrap_err();
        assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_redirect_is_the_answer_and_says_so() {
        let url = serve(|mut stream| async move {
            let answer = "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.2:9/elsewhere\r\nContent-Length: 0\r\n\r\n";
            let _ = stream.write_all(answer.as_bytes()).await;
        })
        .await;
        let ex = client(&url, Duration::from_secs(5))
            .send(&get())
            .await
            .unwrap();
        assert_eq!(ex.status, 307);
        assert!(
            ex.summary().ends_with(
                "→ 307 (redirect to http://127.0.0.2:9/elsewhere, redirects are not followed)"
            ),
            "{}",
            ex.summary()
        );
    }

    #[tokio::test]
    async fn a_stop_ends_waiting_requests_of_the_handles_it_covers() {
        let url = serve(|_stream| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
        })
        .await;
        let client = client(&url, Duration::from_secs(20));
        let cleanup = client.uncapped();
        let (check, cleaning) = (client.clone(), cleanup.clone());
        let in_check = tokio::spawn(async move { check.send(&get()).await });
        let in_cleanup = tokio::spawn(async move { cleaning.send(&get()).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        client.stop(StopLevel::Checks, "the run's deadline of 1s passed");
        let err = in_check.await.unwrap().unwrap_err();
        assert!(
            matches!(&err, TransportError::Stopped(r) if r == "the run's deadline of 1s passed"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !in_cleanup.is_finished(),
            "cleanup goes on at the first level"
        );
        assert!(matches!(
            client.send_once(&get()).await,
            Err(TransportError::Stopped(_))
        ));
        client.stop(StopLevel::All, "cleanup did not finish within 30s");
        let err = in_cleanup.await.unwrap().unwrap_err();
        assert!(matches!(err, TransportError::Stopped(_)), "{err}");
        let state = client.stop_state();
        assert_eq!(state.reason, "cleanup did not finish within 30s");
        assert_eq!(state.cause, "the run's deadline of 1s passed");
    }

    fn target(base_url: &str, secret: &str) -> Target {
        Target {
            base_url: base_url.to_owned(),
            cda_url: None,
            environment: None,
            secret: secret.to_owned(),
            name: "t".to_owned(),
            embedded: false,
            ca_pem: None,
        }
    }

    #[test]
    fn credentials_in_a_url_are_refused_and_never_shown() {
        for url in [
            "http://user:hunter2-pass@127.0.0.1:3000",
            "http://:hunter2-pass@127.0.0.1:3000/cma",
            "https://hunter2-pass@staging.example",
            "http:hunter2-pass@127.0.0.1",
            "http://user:hunter2 pass@host",
            "http://@127.0.0.1:3000",
        ] {
            let err = normalize_url("base", url).err();
            let text = err.as_ref().map(ToString::to_string).unwrap_or_default();
            assert!(
                matches!(err, Some(ClientError::Userinfo { .. })),
                "{url}: {text}"
            );
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("CONFORMANCE_API_TOKEN"), "{text}");
        }
        assert!(normalize_url("base", "http://127.0.0.1:3000/").is_ok());
        assert!(normalize_url("base", "http://127.0.0.1:3000/a@b").is_ok());
        let err = Client::new(Target {
            cda_url: Some("http://u:hunter2-pass@127.0.0.1:1".to_owned()),
            ..target("http://127.0.0.1:1", "secret")
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("CDA URL") && !err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_token_that_is_no_header_value_is_refused_before_any_request() {
        for (secret, words) in [
            ("abc\n", "a line break"),
            ("abc\r\ndef", "a line break"),
            ("ab\u{1b}c", "a control character"),
            ("ab\u{7f}c", "a control character"),
            ("ab\u{0}", "a control character"),
        ] {
            let err = Client::new(target("http://127.0.0.1:1", secret))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.contains("not a valid HTTP header value") && err.contains(words),
                "{secret:?}: {err}"
            );
            assert!(!err.contains("abc"), "{err}");
        }
        assert!(Client::new(target("http://127.0.0.1:1", "abc-DEF_123.~+/=")).is_ok());
    }

    #[test]
    fn recorded_requests_are_redacted_and_terminal_safe() {
        let client = Client::new(target("http://127.0.0.1:1", "mgmt-secret-0a1b2c3d4e5f")).ok();
        let Some(client) = client else {
            panic!("a client");
        };
        client
            .secrets()
            .register("fixture-secret-9f8e7d6c5b", "$FIXTURE_TOKEN_5");
        let req = Request::cma(reqwest::Method::PUT, "/access_tokens/5 x\u{1b}y")
            .json(serde_json::json!({"name": "a fixture-secret-9f8e7d6c5b \u{9b}\u{202e} mgmt-secret-0a1b2c3d4e5f"}))
            .auth(Auth::Token {
                secret: "fixture-secret-9f8e7d6c5b".to_owned(),
                label: "$FIXTURE_TOKEN_5".to_owned(),
            });
        let sent = client.recorded(&req).ok();
        let Some(sent) = sent else {
            panic!("recorded");
        };
        let all = format!("{sent:?}");
        assert!(
            !all.contains("fixture-secret") && !all.contains("mgmt-secret"),
            "{all}"
        );
        assert_eq!(sent.url, "http://127.0.0.1:1/access_tokens/5%20x%1By");
        assert_eq!(
            sent.body.as_deref(),
            Some(r#"{"name":"a $FIXTURE_TOKEN_5 \u009b\u202e $CONFORMANCE_API_TOKEN"}"#)
        );
        assert!(sent.headers.contains(&(
            "Authorization".to_owned(),
            "Bearer $FIXTURE_TOKEN_5".to_owned()
        )));
    }
}
