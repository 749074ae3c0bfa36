//! The HTTP side of the suite: one keep-alive client for the whole run, the documented
//! headers on every request, pacing on the target's rate limit, and a transcript of every
//! exchange with secrets replaced when it is read, so that a failure can show what was sent
//! and received while a passing request costs no redaction. TLS is set up only for a target
//! with an `https://` URL.
//! The target is not trusted with the client's resources: answers are read up to
//! [`MAX_BODY_BYTES`] within [`REQUEST_TIMEOUT`], redirects are not followed, and a run that
//! stops (deadline, signal) ends its waiting and in-flight requests at once.
//!
//! This file holds the target, the client and its handles; the rest is one room each:
//! `request` (what is sent and received), `transport` (one request on the wire, the body
//! cap, the record), `pacing` (rate limits and retries), `stop` (the run's stop), `guard`
//! (what no write may reach), `ids` (ids safe to put in a path), `redact` (secrets), `error`.
//! It depends on nothing of the suite but `output` and `text`: checks, fixtures and the
//! engine are built on it, not the other way round.

mod error;
mod guard;
mod ids;
mod ledger;
mod pacing;
mod redact;
mod request;
mod stop;
#[cfg(test)]
mod tests;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::HeaderValue;

pub use error::{ClientError, TransportError};
use guard::Guard;
pub use ids::{Action, Collection, IdForm, MAX_ID_LEN, ResourceId, UnsafeId, resource_path, shown};
pub use ledger::{Ledger, Slot};
use pacing::Gate;
pub use pacing::{DEFAULT_RETRY_BUDGET, is_transient, is_transient_4xx};
pub use redact::{STRONG_MIN_DISTINCT, STRONG_MIN_LEN, Secrets, is_strong, safe_placeholder};
pub use request::{Api, Auth, BodyText, Exchange, Recorded, Request, SentRequest};
use stop::StopSignal;
pub use stop::{StopLevel, StopState};
use transport::error_chain;

/// The header every request carries to pick the API version (documented: MUST).
pub const API_VERSION: &str = "3";
/// How long one request may take before it counts as timed out.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait on a 429 the client accepts before giving up on that request.
pub const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
/// How many times one request is sent again after a 429 or a transient failure.
pub const MAX_RETRIES: u32 = 4;
/// How many times an answer that is not valid HTTP/1.1 is asked for before it is taken as the
/// target's answer (a failure): the first and one more.
pub const MALFORMED_ATTEMPTS: u32 = 2;
/// The largest answer body the client reads (4 MiB). Every documented answer of this API is a
/// small JSON document (one resource, a listing, an error envelope: kilobytes); a body past
/// this is the target breaking the contract, and reading on would let it exhaust memory.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The most objects and arrays (`{` and `[` bytes, those inside strings included) an answer's
/// body may hold to be parsed as JSON. A parsed value costs many times its text (a body of
/// `{"":0},` repeated, 4 MiB of it, would take gigabytes); a documented answer holds tens.
/// A body past it is not parsed: it is treated as a body that is not JSON, with a note.
pub const MAX_JSON_CONTAINERS: usize = 100_000;

/// `bytes` parsed as JSON if they are JSON with at most `cap` objects and arrays (counted by
/// a byte scan before anything is parsed); `Err(count)` when there are more.
pub fn json_within(bytes: &[u8], cap: usize) -> Result<Option<serde_json::Value>, usize> {
    let containers = bytes.iter().filter(|&&b| b == b'{' || b == b'[').count();
    if containers > cap {
        return Err(containers);
    }
    Ok(serde_json::from_slice(bytes).ok())
}

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

/// Counts of what the client did, shared by every clone.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests sent (every attempt counts).
    pub requests: AtomicU64,
    /// Milliseconds spent waiting on rate limits.
    pub rate_limit_wait_ms: AtomicU64,
    /// Retries after a 429 or a transient failure.
    pub retries: AtomicU64,
    /// Cleanup requests sent past the request cap (beyond what was held for them: a resend
    /// after a 429, the lookup of a create that got no answer).
    pub past_cap: AtomicU64,
    /// Every request sent, redacted, in the order sent, but only while [`Stats::record`] is
    /// on (tests switch it on; a run keeps nothing per request that nobody reads).
    pub sent: std::sync::Mutex<Vec<SentRequest>>,
    /// Whether requests are recorded in [`Stats::sent`].
    pub record: std::sync::atomic::AtomicBool,
    /// The run's request cap, with a reservation per clause (see [`Ledger`]). Cleanup is
    /// exempt.
    pub ledger: Ledger,
    /// Transient failures the run may still retry.
    pub retry_budget: AtomicU64,
    /// The first 429 the run's paced requests got (`headers.rate_limit` reads its headers).
    pub first_429: std::sync::OnceLock<Exchange>,
    /// Whether the run is stopping, and why.
    stop: StopSignal,
    /// The rate-limit wait in progress, for the live progress (see [`Stats::current_wait`]).
    waiting: std::sync::Mutex<Option<pacing::Waiting>>,
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
    /// Of those, resends after a 429 or a transient failure.
    local_resends: Arc<AtomicU64>,
    /// Per caller: what the target said of its rate limit.
    pacing: Arc<std::sync::Mutex<std::collections::HashMap<String, Gate>>>,
    /// Whether the run's request cap applies to this handle.
    capped: bool,
    /// The clause whose reservation this handle's requests take first (`None`: the pool).
    account: Option<Arc<str>>,
    /// Weak secrets (see [`is_strong`]) this handle's answers were the first to show.
    weak: Arc<AtomicU64>,
    /// What no write may reach, and the ids of the run's live fixtures.
    guard: Arc<Guard>,
    /// The management token's `Authorization` value, built once.
    bearer: HeaderValue,
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

/// Whether `target` has an `https://` URL (the CMA's or the CDA's).
fn needs_tls(target: &Target) -> bool {
    let https = |url: &str| {
        url.get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    };
    https(&target.base_url) || target.cda_url.as_deref().is_some_and(https)
}

/// A TLS configuration that trusts no certificate, for a client that only speaks plain HTTP.
fn untrusting_tls_config() -> Result<rustls::ClientConfig, ClientError> {
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| ClientError::Tls(err.to_string()))?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    Ok(config)
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
        if !needs_tls(&target) {
            // Only http:// URLs: the system's root certificates are never read (building
            // reqwest's default verifier loads and parses all of them, for every client). A
            // config that trusts no root is enough: nothing here ever starts a handshake,
            // since redirects are not followed.
            builder = builder.tls_backend_preconfigured(untrusting_tls_config()?);
        } else if let Some(pem) = &target.ca_pem {
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
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", target.secret))
            .map_err(|_| ClientError::Secret("a character outside visible ASCII"))?;
        // Never in a `Debug` text of the client.
        bearer.set_sensitive(true);
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
            local_resends: Arc::default(),
            pacing: Arc::default(),
            capped: true,
            account: None,
            guard: Arc::default(),
            weak: Arc::default(),
            bearer,
        })
    }

    /// A handle sharing the pool and totals, with its own request counter.
    pub fn scoped(&self) -> Client {
        Client {
            local: Arc::new(AtomicU64::new(0)),
            local_resends: Arc::default(),
            weak: Arc::default(),
            ..self.clone()
        }
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

    /// Of [`local_requests`](Self::local_requests), the resends after a 429 or a transient
    /// failure (what the staging plan cannot foresee).
    pub fn local_resends(&self) -> u64 {
        self.local_resends.load(Ordering::Relaxed)
    }

    /// Keep every request sent from now on in [`Stats::sent`] (for tests that read the
    /// transcript; off by default, so that a long run does not grow).
    pub fn record_requests(&self, on: bool) {
        self.stats.record.store(on, Ordering::Relaxed);
    }

    /// How many token secrets first seen in this handle's answers are too short or too
    /// regular to be redacted as substrings (a finding: they are hidden only by position).
    pub fn weak_secrets(&self) -> u64 {
        self.weak.load(Ordering::Relaxed)
    }

    /// Cap the run at `max` requests (cleanup is exempt); `None` removes the cap. What was
    /// sent already counts; reservations made before are dropped.
    pub fn set_request_cap(&self, max: Option<u64>) {
        let taken = self.stats.requests.load(Ordering::Relaxed);
        self.stats.ledger.set_cap(max, taken);
    }

    /// Before creating a fixture: set one slot aside for deleting it (see [`Ledger`]), taken
    /// from this handle's clause share or the pool. Under a cap with nothing left this is
    /// [`TransportError::Budget`], and the fixture must not be created.
    pub fn hold_cleanup_slot(&self) -> Result<(), TransportError> {
        if !self.capped {
            return Ok(());
        }
        self.stats
            .ledger
            .hold_for_cleanup(self.account.as_deref())
            .map_err(TransportError::Budget)
    }

    /// The create for which [`hold_cleanup_slot`](Self::hold_cleanup_slot) was called made
    /// nothing to delete: the slot goes back to the pool.
    pub fn unhold_cleanup_slot(&self) {
        if self.capped {
            self.stats.ledger.unhold_cleanup();
        }
    }

    /// A handle whose requests take from `clause`'s reservation first (see [`Ledger`]); its
    /// scoped and uncapped handles keep it.
    pub fn charged_to(&self, clause: &str) -> Client {
        Client {
            account: Some(Arc::from(clause)),
            ..self.clone()
        }
    }

    /// The clause this handle's requests are charged to, if any.
    pub fn account(&self) -> Option<&str> {
        self.account.as_deref()
    }

    /// A client for another target (a private embedded server) that shares this one's run:
    /// its totals, request cap and reservations, retry budget and stop. Its own connection
    /// pool, secrets and pacing.
    pub fn for_target_in_run(&self, target: Target) -> Result<Client, ClientError> {
        let fresh = Client::new(target)?;
        Ok(Client {
            stats: Arc::clone(&self.stats),
            ..fresh
        })
    }

    /// A handle that ignores the request cap: cleanup must always be able to run.
    pub fn uncapped(&self) -> Client {
        Client {
            capped: false,
            ..self.clone()
        }
    }
}
