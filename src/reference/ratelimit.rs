//! The per-token rate limit, decided before anything else for every request.
//!
//! A **fixed window** per caller: the first request of a caller opens a window of the
//! configured length; up to `requests` requests are answered in it; later ones get 429
//! `RATE_LIMIT_EXCEEDED` with `X-RateLimit-Reset` (whole seconds until the window closes, at
//! least 1). Refused requests do not count. The caller is the raw `Authorization` header value
//! (hashed), so every anonymous caller shares one bucket, as does every malformed credential
//! with the same bytes. Every response carries `X-RateLimit-Limit` and `X-RateLimit-Remaining`,
//! 404s and 429s included; with the limit off they are still sent, with a limit no client
//! reaches. Each listener has its own limiter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::config::RateLimit;
use super::errors::ApiError;
use crate::faults::{Fault, FaultSet};

/// What `--rate-limit off` still announces in the headers.
const OFF: RateLimit = RateLimit {
    requests: 1_000_000,
    window: Duration::from_secs(1),
};

/// Windows are swept for expiry once there are this many callers, so random credentials
/// cannot grow the map without bound.
const SWEEP_AT: usize = 4096;

/// One listener's limiter.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    enforced: bool,
    windows: Mutex<HashMap<[u8; 16], Window>>,
    /// Fault no-rate-limit-headers: successes go out without the headers.
    no_headers_on_success: bool,
    /// Fault rate-limit-without-reset: a 429 goes out without `X-RateLimit-Reset`.
    no_reset: bool,
    /// Fault rate-limit-remaining-frozen: `X-RateLimit-Remaining` is always the limit less one.
    frozen_remaining: bool,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    opened: Instant,
    used: u32,
}

/// The decision on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Allowed { limit: u32, remaining: u32 },
    Limited { limit: u32, reset_secs: u64 },
}

impl RateLimiter {
    pub(crate) fn new(limit: Option<RateLimit>, faults: &FaultSet) -> RateLimiter {
        RateLimiter {
            limit: limit.unwrap_or(OFF),
            enforced: limit.is_some(),
            windows: Mutex::new(HashMap::new()),
            no_headers_on_success: faults.has(Fault::NoRateLimitHeaders),
            no_reset: faults.has(Fault::RateLimitWithoutReset),
            frozen_remaining: faults.has(Fault::RateLimitRemainingFrozen),
        }
    }

    /// Count a request of `caller` at `now`.
    pub(crate) fn decide(&self, caller: &[u8], now: Instant) -> Decision {
        let key = md5::compute(caller).0;
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let window_len = self.limit.window;
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, w| now.saturating_duration_since(w.opened) < window_len);
        }
        let window = windows.entry(key).or_insert(Window {
            opened: now,
            used: 0,
        });
        let elapsed = now.saturating_duration_since(window.opened);
        if elapsed >= window_len {
            *window = Window {
                opened: now,
                used: 0,
            };
        }
        let limit = self.limit.requests;
        if window.used >= limit && self.enforced {
            let left = window_len.saturating_sub(now.saturating_duration_since(window.opened));
            let reset_secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Decision::Limited {
                limit,
                reset_secs: reset_secs.max(1),
            };
        }
        window.used = window.used.saturating_add(1);
        Decision::Allowed {
            limit,
            remaining: limit.saturating_sub(window.used),
        }
    }
}

/// The middleware: decide, answer 429 or run the request, and put the headers on the answer.
pub(crate) async fn enforce(
    State(limiter): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    let caller = caller_key(request.headers());
    match limiter.decide(&caller, Instant::now()) {
        Decision::Allowed { limit, remaining } => {
            let mut response = next.run(request).await;
            // Fault no-rate-limit-headers: the headers are added by the error path only.
            if limiter.no_headers_on_success && response.status().is_success() {
                return response;
            }
            set_header(
                response.headers_mut(),
                "x-ratelimit-limit",
                u64::from(limit),
            );
            // Fault rate-limit-remaining-frozen: the header is computed from a fresh counter
            // of this request alone, not from the window's.
            let shown = if limiter.frozen_remaining {
                limit.saturating_sub(1)
            } else {
                remaining
            };
            set_header(
                response.headers_mut(),
                "x-ratelimit-remaining",
                u64::from(shown),
            );
            response
        }
        Decision::Limited { limit, reset_secs } => {
            let mut response = ApiError::rate_limit_exceeded(limit).into_response();
            set_header(
                response.headers_mut(),
                "x-ratelimit-limit",
                u64::from(limit),
            );
            set_header(response.headers_mut(), "x-ratelimit-remaining", 0);
            // Fault rate-limit-without-reset: the 429 forgets to say when to come back.
            if !limiter.no_reset {
                set_header(response.headers_mut(), "x-ratelimit-reset", reset_secs);
            }
            response
        }
    }
}

/// Every `Authorization` value's raw bytes, so that odd or repeated headers still key a bucket.
fn caller_key(headers: &HeaderMap) -> Vec<u8> {
    let mut key = Vec::new();
    for value in headers.get_all(AUTHORIZATION) {
        key.extend_from_slice(value.as_bytes());
        key.push(b'\n');
    }
    key
}

fn set_header(headers: &mut HeaderMap, name: &'static str, value: u64) {
    headers.insert(name, HeaderValue::from(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_the_limit_then_refuses_until_it_closes() {
        let limiter = RateLimiter::new(
            Some(RateLimit {
                requests: 2,
                window: Duration::from_secs(3),
            }),
            &FaultSet::none(),
        );
        let t0 = Instant::now();
        assert_eq!(
            limiter.decide(b"a", t0),
            Decision::Allowed {
                limit: 2,
                remaining: 1
            }
        );
        assert_eq!(
            limiter.decide(b"a", t0),
            Decision::Allowed {
                limit: 2,
                remaining: 0
            }
        );
        assert_eq!(
            limiter.decide(b"a", t0),
            Decision::Limited {
                limit: 2,
                reset_secs: 3
            }
        );
        let later = t0 + Duration::from_millis(2500);
        assert_eq!(
            limiter.decide(b"a", later),
            Decision::Limited {
                limit: 2,
                reset_secs: 1
            }
        );
        // Another caller has its own window.
        assert_eq!(
            limiter.decide(b"b", later),
            Decision::Allowed {
                limit: 2,
                remaining: 1
            }
        );
        let next_window = t0 + Duration::from_secs(3);
        assert_eq!(
            limiter.decide(b"a", next_window),
            Decision::Allowed {
                limit: 2,
                remaining: 1
            }
        );
    }

    #[test]
    fn off_never_refuses_but_still_counts() {
        let limiter = RateLimiter::new(None, &FaultSet::none());
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(matches!(limiter.decide(b"", t0), Decision::Allowed { .. }));
        }
        assert_eq!(
            limiter.decide(b"", t0),
            Decision::Allowed {
                limit: OFF.requests,
                remaining: OFF.requests - 11
            }
        );
    }

    #[test]
    fn expired_windows_are_swept() {
        let limiter = RateLimiter::new(
            Some(RateLimit {
                requests: 1,
                window: Duration::from_secs(1),
            }),
            &FaultSet::none(),
        );
        let t0 = Instant::now();
        for i in 0..SWEEP_AT {
            limiter.decide(&i.to_le_bytes(), t0);
        }
        limiter.decide(b"late", t0 + Duration::from_secs(2));
        let windows = limiter
            .windows
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        assert_eq!(windows.len(), 1);
    }
}
