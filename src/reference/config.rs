//! How the reference server is configured: listen addresses, the rate limit, which factory
//! tokens exist, the management token's secret, and the bounds on connections.
//!
//! The CLI (`serve`) and the suite both build a [`ServerConfig`]; the defaults give a server on
//! two free loopback ports with the documented default rate limit and the default connection
//! bounds, so tests need no setup.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

/// Everything [`ReferenceServer::start`](super::ReferenceServer::start) and
/// [`routers`](super::routers) need.
#[derive(Clone)]
pub struct ServerConfig {
    /// Where the Content Management API listens. Port 0 picks a free port.
    pub cma_addr: SocketAddr,
    /// Where the Content Delivery API (GraphQL) listens. Port 0 picks a free port.
    pub cda_addr: SocketAddr,
    /// Requests allowed per token and window; `None` turns limiting off (the headers are
    /// still sent, with a limit no client reaches).
    pub rate_limit: Option<RateLimit>,
    /// Also seed the "Full-access API token" (`hardcoded_type: "admin"`) of older projects.
    pub legacy_factory_tokens: bool,
    /// The management token's secret; `None` generates a random one.
    pub admin_secret: Option<String>,
    /// Switchable bugs (see [`crate::faults`]); empty for the conformant server.
    pub faults: crate::faults::FaultSet,
    /// Network trouble, for testing clients: this fraction of requests (0.0 to 1.0) gets a
    /// transient 503 before it is handled, or its connection dropped after it was handled;
    /// every request gets up to 20 ms of added latency. `None`: a quiet network.
    pub flaky: Option<f64>,
    /// Serve both listeners over TLS with a freshly generated CA and certificate
    /// ([`ReferenceServer::tls_ca_pem`](super::ReferenceServer::tls_ca_pem)).
    pub tls: bool,
    /// How long a client may take to send a request: its head (request line and headers) must
    /// be complete this long after the connection opened (or, on a kept-alive connection, after
    /// the request's first byte arrived), and its body this long after the head. Otherwise the
    /// connection is closed without an answer. Must be longer than zero.
    pub header_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request before it is closed.
    /// Must be longer than zero.
    pub idle_timeout: Duration,
    /// Most connections open at once, per listener. At the cap, a new connection makes room by
    /// closing the open connection that has been idle or sending its head the longest; when
    /// every open connection is handling a request, the new one is closed at once. At least 1.
    pub max_connections: usize,
}

/// The default [`ServerConfig::header_timeout`]: 10 seconds.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The default [`ServerConfig::idle_timeout`]: 30 seconds.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The default [`ServerConfig::max_connections`]: 256 per listener, so that both listeners
/// together stay well under the common limit of 1,024 open descriptors.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        ServerConfig {
            cma_addr: loopback,
            cda_addr: loopback,
            rate_limit: Some(RateLimit::DOCUMENTED_DEFAULT),
            legacy_factory_tokens: false,
            admin_secret: None,
            faults: crate::faults::FaultSet::none(),
            flaky: None,
            tls: false,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

// Hand-written so that the secret never reaches logs or panic messages.
impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConfig")
            .field("cma_addr", &self.cma_addr)
            .field("cda_addr", &self.cda_addr)
            .field("rate_limit", &self.rate_limit)
            .field("legacy_factory_tokens", &self.legacy_factory_tokens)
            .field(
                "admin_secret",
                &self.admin_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("faults", &self.faults)
            .field("flaky", &self.flaky)
            .field("tls", &self.tls)
            .field("header_timeout", &self.header_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// A rate limit: at most `requests` per `window`, per token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Requests allowed in one window.
    pub requests: u32,
    /// Length of the window.
    pub window: Duration,
}

impl RateLimit {
    /// The CMA's documented default: 60 requests per 3 seconds.
    pub const DOCUMENTED_DEFAULT: RateLimit = RateLimit {
        requests: 60,
        window: Duration::from_secs(3),
    };
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.window.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}/{}s", self.requests, ms / 1000)
        } else {
            write!(f, "{}/{}ms", self.requests, ms)
        }
    }
}

/// Why a `--rate-limit` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid rate limit {input:?}: {reason}; expected REQUESTS/WINDOW such as 60/3s, 100/1s or 30/500ms"
)]
pub struct RateLimitParseError {
    input: String,
    reason: &'static str,
}

impl FromStr for RateLimit {
    type Err = RateLimitParseError;

    /// Reads `REQUESTS/WINDOW`, the window being a whole number of `ms`, `s` or `m`.
    fn from_str(input: &str) -> Result<RateLimit, RateLimitParseError> {
        let fail = |reason| RateLimitParseError {
            input: input.to_owned(),
            reason,
        };
        let (requests, window) = input.trim().split_once('/').ok_or_else(|| fail("no '/'"))?;
        let requests: u32 = requests
            .trim()
            .parse()
            .map_err(|_| fail("the request count is not a number"))?;
        if requests == 0 {
            return Err(fail("the request count must be at least 1"));
        }
        let window = parse_duration(window).map_err(|err| {
            fail(match err {
                DurationError::NoNumber => "the window has no number",
                DurationError::Unit => "the window unit must be ms, s or m",
                DurationError::Zero => "the window must be longer than zero",
            })
        })?;
        Ok(RateLimit { requests, window })
    }
}

/// Why a duration could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// It does not start with a whole number.
    #[error("no whole number")]
    NoNumber,
    /// The unit is not `ms`, `s` or `m`.
    #[error("the unit must be ms, s or m")]
    Unit,
    /// It is zero.
    #[error("it must be longer than zero")]
    Zero,
}

/// Reads a whole number of `ms`, `s` or `m`, longer than zero: `500ms`, `10s`, `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (amount, unit) = text.split_at(digits_end);
    let amount: u64 = amount.parse().map_err(|_| DurationError::NoNumber)?;
    let duration = match unit {
        "ms" => Duration::from_millis(amount),
        "s" => Duration::from_secs(amount),
        "m" => Duration::from_secs(amount.saturating_mul(60)),
        _ => return Err(DurationError::Unit),
    };
    if duration.is_zero() {
        return Err(DurationError::Zero);
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_forms() {
        assert_eq!("60/3s".parse(), Ok(RateLimit::DOCUMENTED_DEFAULT));
        assert_eq!(
            "100/1s".parse(),
            Ok(RateLimit {
                requests: 100,
                window: Duration::from_secs(1)
            })
        );
        assert_eq!(
            "30/500ms".parse(),
            Ok(RateLimit {
                requests: 30,
                window: Duration::from_millis(500)
            })
        );
        assert_eq!(
            "1000/1m".parse(),
            Ok(RateLimit {
                requests: 1000,
                window: Duration::from_secs(60)
            })
        );
    }

    #[test]
    fn refuses_garbage_with_a_clear_message() {
        for bad in [
            "", "60", "60/", "/3s", "0/3s", "60/0s", "60/3", "60/3h", "x/3s", "60/s",
        ] {
            let err = bad.parse::<RateLimit>().expect_err(bad).to_string();
            assert!(err.starts_with("invalid rate limit"), "{bad}: {err}");
            assert!(err.contains("60/3s"), "{bad}: {err}");
        }
    }

    #[test]
    fn displays_in_the_form_it_reads() {
        for text in ["60/3s", "30/500ms"] {
            let limit: RateLimit = text.parse().expect("valid");
            assert_eq!(limit.to_string(), text);
        }
    }

    #[test]
    fn durations_read_like_rate_limit_windows() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration(" 250ms "), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("0s"), Err(DurationError::Zero));
        assert_eq!(parse_duration("10"), Err(DurationError::Unit));
        assert_eq!(parse_duration("10h"), Err(DurationError::Unit));
        assert_eq!(parse_duration("s"), Err(DurationError::NoNumber));
        assert_eq!(parse_duration("-1s"), Err(DurationError::NoNumber));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let config = ServerConfig {
            admin_secret: Some("supersecret".to_owned()),
            ..ServerConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(!shown.contains("supersecret"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
