//! Why a request got no usable answer ([`TransportError`]), and why a client could not be
//! built ([`ClientError`]).

use super::{Exchange, REQUEST_TIMEOUT, Secrets};

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
    /// The answer's body was larger than [`MAX_BODY_BYTES`](super::MAX_BODY_BYTES); reading stopped there.
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
    /// The target started to answer (bytes of a response arrived) but what it sent is not a
    /// valid HTTP/1.1 response: a head the parser refuses (too many or too large headers,
    /// a byte no header may hold, a bad status line), or a body whose framing breaks (shorter
    /// than its `Content-Length`, a bad chunk, the connection reset after the head). Sent
    /// again while it may be transient; malformed on every attempt, it is the target
    /// breaking the contract, not a network accident (a refused connection, a timeout
    /// before any byte, a name that does not resolve stay [`Unreachable`](Self::Unreachable)
    /// and [`Timeout`](Self::Timeout)).
    #[error(
        "the answer of {url} is not valid HTTP/1.1: {message} (on {})",
        attempts_in_words(*attempts)
    )]
    Malformed {
        /// The URL.
        url: String,
        /// What the HTTP parser said (the whole error chain).
        message: String,
        /// How many times the request was sent, every time answered malformed.
        attempts: u32,
        /// The request, and what was read of the answer: status 0 and no headers when the
        /// head itself did not parse.
        partial: Box<Exchange>,
    },
    /// The run is stopping (its deadline passed, or it was interrupted): nothing more is sent.
    #[error("{0}: no more requests are sent")]
    Stopped(String),
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
            TransportError::Malformed {
                url,
                message,
                attempts,
                partial,
            } => TransportError::Malformed {
                url: r(url),
                message: r(message),
                attempts: *attempts,
                partial: Box::new(secrets.redact_exchange(partial)),
            },
            other => other.clone(),
        }
    }
}

fn attempts_in_words(attempts: u32) -> String {
    if attempts == 1 {
        "its only attempt".to_owned()
    } else {
        format!("all {attempts} attempts")
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// reqwest refused the configuration.
    #[error("failed to build the HTTP client: {0}")]
    Build(#[from] reqwest::Error),
    /// rustls refused the TLS configuration.
    #[error("failed to set up TLS: {0}")]
    Tls(String),
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
