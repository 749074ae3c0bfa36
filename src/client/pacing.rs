//! Pacing and retries: the client slows down on the target's rate limit, waits out 429s and
//! retries transient failures with backoff, within the run's retry budget.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{
    Api, Auth, Client, Exchange, MALFORMED_ATTEMPTS, MAX_RATE_LIMIT_WAIT, MAX_RETRIES, Request,
    TransportError,
};

/// What the client knows of one caller's rate limit.
#[derive(Debug, Clone, Copy)]
pub(super) struct Gate {
    remaining: u64,
    blocked_until: Instant,
    /// Requests of this caller sent and not answered yet: each will take one of `remaining`.
    in_flight: u64,
    /// 429s in a row for this caller (without an answer that was not one): a window the
    /// target does not announce (`X-RateLimit-Reset` missing) is waited out 1, 2, 4, 8 s.
    strikes: u32,
}

impl Gate {
    fn fresh() -> Gate {
        Gate {
            remaining: u64::MAX,
            blocked_until: Instant::now(),
            in_flight: 0,
            strikes: 0,
        }
    }
}

/// At or below this many remaining requests (less those in flight), the client holds a
/// request until the ones in flight are answered; with none in flight it lets one go, which
/// learns the window's reset from a 429 or sees a fresh window.
const PACE_LOW_WATER: u64 = 2;

/// How often a held request looks again.
const PACE_POLL: Duration = Duration::from_millis(20);

/// A request counted in flight for its caller until it is dropped (after its answer's
/// `X-RateLimit-Remaining` was recorded).
pub(super) struct InFlight {
    pacing: Arc<std::sync::Mutex<std::collections::HashMap<String, Gate>>>,
    key: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut gates) = self.pacing.lock()
            && let Some(gate) = gates.get_mut(&self.key)
        {
            gate.in_flight = gate.in_flight.saturating_sub(1);
        }
    }
}

/// What [`Client::pace`] decided for one request.
enum Pace {
    /// Send it now (it is counted in flight).
    Go,
    /// The caller is rate limited for this long.
    Blocked(Duration),
    /// Too few requests remain for those in flight: look again shortly.
    Hold,
}

/// Transient failures a run may retry in all, by default.
pub const DEFAULT_RETRY_BUDGET: u64 = 200;

/// A wait on a caller's rate limit: who waits (a label, never a secret) and until when.
#[derive(Debug, Clone)]
pub(super) struct Waiting {
    caller: String,
    until: Instant,
}

impl super::Stats {
    /// The rate-limit wait still running that ends last, as who waits (in words: "token
    /// $FIXTURE_TOKEN_3", "the management token") and how long it has left. Cheap enough to
    /// poll several times a second.
    pub fn current_wait(&self) -> Option<(String, Duration)> {
        let waiting = self.waiting.lock().ok()?.clone()?;
        let left = waiting.until.checked_duration_since(Instant::now())?;
        // The last tenth of a second would read "waiting 0.0 s".
        (left >= Duration::from_millis(100)).then(|| (caller_in_words(&waiting.caller), left))
    }

    fn note_wait(&self, caller: &str, wait: Duration) {
        let Some(until) = Instant::now().checked_add(wait) else {
            return;
        };
        if let Ok(mut slot) = self.waiting.lock() {
            // Several checks may wait at once: the one that ends last is what holds the run.
            if slot.as_ref().is_none_or(|w| w.until <= until) {
                *slot = Some(Waiting {
                    caller: caller.to_owned(),
                    until,
                });
            }
        }
    }
}

/// A pacing key for people: its label, which is never the secret.
fn caller_in_words(key: &str) -> String {
    match key {
        "management" => "the management token".to_owned(),
        "anonymous" => "requests without a token".to_owned(),
        key if key.starts_with("raw:") => "a raw Authorization value".to_owned(),
        label => format!("token {label}"),
    }
}

fn pace_key(auth: &Auth) -> std::borrow::Cow<'_, str> {
    match auth {
        Auth::Management => "management".into(),
        Auth::Token { label, .. } => label.as_str().into(),
        Auth::None => "anonymous".into(),
        Auth::Raw(value) => format!("raw:{}", crate::text::fnv1a(value.as_bytes())).into(),
    }
}
impl Client {
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
    ///
    /// An answer that is not valid HTTP/1.1 ([`TransportError::Malformed`]) is sent again
    /// once, as a dropped connection is; malformed both times, that error is the result (with
    /// how many attempts), not a [`TransportError::GaveUp`]: the target started to answer,
    /// and what it sent breaks the contract.
    pub async fn send(&self, req: &Request) -> Result<Exchange, TransportError> {
        let idempotent = req.method != reqwest::Method::POST || req.api == Api::Cda;
        let pace_key = pace_key(&req.auth);
        let mut attempt = 0;
        // Attempts answered with something that is not valid HTTP/1.1.
        let mut malformed = 0;
        loop {
            attempt += 1;
            let in_flight = self.unless_stopped(self.pace(&pace_key)).await?;
            let mut result = self.send_once(req).await;
            if let Err(TransportError::Malformed { attempts, .. }) = &mut result {
                malformed += 1;
                *attempts = attempt;
            }
            if let Ok(ex) = &mut result {
                ex.attempts = attempt;
            }
            if let Ok(ex) = &result {
                self.record_pace(&pace_key, ex);
            }
            // Answered (its remaining count recorded), or never sent: no longer in flight.
            drop(in_flight);
            if let Ok(ex) = &result {
                if ex.status == 429 {
                    let _ = self.stats.first_429.set(ex.clone());
                }
                if is_transient_4xx(ex) {
                    if attempt > 1 || !idempotent || req.once || !self.take_retry() {
                        return result;
                    }
                    self.note_resend();
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
            }
            // Malformed twice in a row: the target's answer (a glitch of the network does not
            // write the same broken answer twice), and no reason to spend more time on it.
            if malformed >= MALFORMED_ATTEMPTS
                && malformed == attempt
                && matches!(result, Err(TransportError::Malformed { .. }))
            {
                return result;
            }
            let (wait, transient) = match &result {
                Ok(ex) if ex.status == 429 => (Some(rate_limit_wait(ex, attempt)), false),
                Ok(ex) if is_transient(ex) && idempotent => (Some(backoff(attempt)), true),
                Ok(_) => (None, false),
                Err(TransportError::Unreachable { .. }) if attempt == 1 => (None, false),
                Err(TransportError::Unreachable { .. }) => (Some(backoff(attempt)), true),
                Err(
                    TransportError::Timeout { .. }
                    | TransportError::Broken { .. }
                    | TransportError::Malformed { .. },
                ) if idempotent => (Some(backoff(attempt)), true),
                Err(_) => (None, false),
            };
            let Some(wait) = wait else { return result };
            if transient && req.once {
                return result;
            }
            let budget_left = !transient || self.take_retry();
            if attempt > MAX_RETRIES || wait > MAX_RATE_LIMIT_WAIT || !budget_left {
                // Malformed every time it was sent: the target's answer, not an accident.
                if malformed == attempt && matches!(result, Err(TransportError::Malformed { .. })) {
                    return result;
                }
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
            self.note_resend();
            if !transient {
                self.stats
                    .rate_limit_wait_ms
                    .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
                self.stats.note_wait(&pace_key, wait);
            }
            self.unless_stopped(tokio::time::sleep(wait)).await?;
        }
    }

    /// The run's totals, shared: what the live progress polls while requests wait.
    pub fn shared_stats(&self) -> Arc<super::Stats> {
        Arc::clone(&self.stats)
    }

    /// A request is about to be sent again (after a 429 or a transient failure).
    fn note_resend(&self) {
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        self.local_resends.fetch_add(1, Ordering::Relaxed);
    }

    /// Take one retry from the run's budget.
    pub(super) fn take_retry(&self) -> bool {
        self.stats
            .retry_budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(1)
            })
            .is_ok()
    }

    /// Wait while this caller is rate limited, and hold a request while the requests it has
    /// in flight would use up what remains of its window (down to [`PACE_LOW_WATER`]): so
    /// that concurrent checks calling as one token do not all see "enough left" and overshoot
    /// it into 429s. With nothing in flight one request always goes. The request is counted
    /// in flight until the returned guard drops.
    pub(super) async fn pace(&self, key: &str) -> InFlight {
        let mut held: Option<Instant> = None;
        loop {
            let decision = match self.pacing.lock() {
                Ok(mut gates) => {
                    let gate = gates.entry(key.to_owned()).or_insert_with(Gate::fresh);
                    decide(gate, Instant::now())
                }
                Err(_) => Pace::Go,
            };
            match decision {
                Pace::Go => break,
                Pace::Blocked(wait) => {
                    self.stats
                        .rate_limit_wait_ms
                        .fetch_add(wait.as_millis() as u64, Ordering::Relaxed);
                    self.stats.note_wait(key, wait);
                    tokio::time::sleep(wait).await;
                }
                Pace::Hold => {
                    held.get_or_insert_with(Instant::now);
                    tokio::time::sleep(PACE_POLL).await;
                }
            }
        }
        if let Some(since) = held {
            self.stats
                .rate_limit_wait_ms
                .fetch_add(since.elapsed().as_millis() as u64, Ordering::Relaxed);
        }
        InFlight {
            pacing: Arc::clone(&self.pacing),
            key: key.to_owned(),
        }
    }

    pub(super) fn record_pace(&self, key: &str, ex: &Exchange) {
        let remaining = ex
            .header("x-ratelimit-remaining")
            .and_then(|v| v.trim().parse::<u64>().ok());
        let Ok(mut gates) = self.pacing.lock() else {
            return;
        };
        let gate = gates.entry(key.to_owned()).or_insert_with(Gate::fresh);
        // Only a 429 needs its wait worked out.
        let refused = (ex.status == 429).then(|| rate_limit_wait(ex, gate.strikes + 1));
        note_answer(gate, remaining, refused);
    }
}

/// What one answer (its `X-RateLimit-Remaining`; `refused`: a 429, and how long to wait) tells
/// `gate`. After a 429 the caller waits (the window's reset, or 1, 2, 4, 8 s for 429s in a
/// row without one),
/// then sends one request alone: the others hold until its answer shows a fresh window.
/// Were they all let go at once, a window that had not reset yet would refuse every one of
/// them, each a request of the run's budget spent on nothing.
fn note_answer(gate: &mut Gate, remaining: Option<u64>, refused: Option<Duration>) {
    if let Some(wait) = refused {
        gate.strikes = gate.strikes.saturating_add(1);
        let until = Instant::now()
            .checked_add(wait)
            .unwrap_or_else(Instant::now);
        gate.blocked_until = gate.blocked_until.max(until);
        gate.remaining = 0;
        return;
    }
    gate.strikes = 0;
    // No count given: nothing to pace on (a target without the headers is not held back).
    gate.remaining = remaining.unwrap_or(u64::MAX);
}

/// Whether a request of a caller whose gate is `gate` goes now; when it does, it is counted
/// in flight.
fn decide(gate: &mut Gate, now: Instant) -> Pace {
    if gate.blocked_until > now {
        return Pace::Blocked((gate.blocked_until - now).min(MAX_RATE_LIMIT_WAIT));
    }
    let left = gate.remaining.saturating_sub(gate.in_flight);
    if gate.in_flight > 0 && left <= PACE_LOW_WATER {
        return Pace::Hold;
    }
    gate.in_flight += 1;
    Pace::Go
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

fn rate_limit_wait(ex: &Exchange, attempt: u32) -> Duration {
    // Without X-RateLimit-Reset the window is unknown: wait 1, 2, 4, 8 s, so that a limit
    // longer than a second does not turn one request into several refused ones.
    let secs = ex
        .header("x-ratelimit-reset")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1u64 << attempt.saturating_sub(1).min(3));
    // A target may send anything here (an epoch timestamp, u64::MAX): never wait longer than
    // the client would accept anyway, so one bad header cannot stall the run or its cleanup.
    Duration::from_secs(secs.clamp(1, MAX_RATE_LIMIT_WAIT.as_secs() + 1))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_in_flight_count_against_what_remains() {
        let mut gate = Gate::fresh();
        let now = Instant::now();
        gate.remaining = 5;
        // 5 remain: 3 may be in flight before the low water mark (2) holds the next.
        for _ in 0..3 {
            assert!(matches!(decide(&mut gate, now), Pace::Go));
        }
        assert_eq!(gate.in_flight, 3);
        assert!(matches!(decide(&mut gate, now), Pace::Hold));
        // Answers come in: in flight drops, remaining with it.
        gate.in_flight = 0;
        gate.remaining = 2;
        // Nothing in flight: one goes even at the low water mark, and only one.
        assert!(matches!(decide(&mut gate, now), Pace::Go));
        assert!(matches!(decide(&mut gate, now), Pace::Hold));
        gate.in_flight = 0;
        gate.blocked_until = now + Duration::from_secs(2);
        assert!(matches!(decide(&mut gate, now), Pace::Blocked(w) if w <= Duration::from_secs(2)));
        assert_eq!(gate.in_flight, 0, "a blocked request is not in flight");
    }

    #[test]
    fn after_a_429_one_request_goes_alone_and_429s_in_a_row_wait_longer() {
        let mut gate = Gate::fresh();
        gate.remaining = 40;
        note_answer(&mut gate, Some(0), Some(Duration::ZERO));
        assert_eq!(gate.strikes, 1);
        let now = Instant::now();
        // The wait is over: one request finds out whether the window reset; the rest hold.
        assert!(matches!(decide(&mut gate, now), Pace::Go));
        assert!(matches!(decide(&mut gate, now), Pace::Hold));
        assert!(matches!(decide(&mut gate, now), Pace::Hold));
        // Refused again: the strikes count (the next wait, without X-RateLimit-Reset, is
        // `rate_limit_wait` of strikes + 1: 2 s).
        gate.in_flight = 0;
        note_answer(&mut gate, Some(0), Some(Duration::from_secs(2)));
        assert_eq!(gate.strikes, 2);
        assert!(matches!(
            decide(&mut gate, Instant::now()),
            Pace::Blocked(_)
        ));
        // A fresh window: its count is what paces, and the strikes are forgotten.
        gate.blocked_until = Instant::now();
        note_answer(&mut gate, Some(59), None);
        assert_eq!((gate.strikes, gate.remaining), (0, 59));
        for _ in 0..8 {
            assert!(matches!(decide(&mut gate, Instant::now()), Pace::Go));
        }
        // An answer without the header leaves nothing to pace on.
        note_answer(&mut gate, None, None);
        assert_eq!(gate.remaining, u64::MAX);
    }

    #[test]
    fn the_current_wait_names_the_caller_in_words_and_the_longest_wins() {
        let stats = super::super::Stats::default();
        assert!(stats.current_wait().is_none());
        stats.note_wait("$FIXTURE_TOKEN_3", Duration::from_secs(30));
        stats.note_wait("management", Duration::from_secs(2));
        let (caller, left) = stats.current_wait().unwrap();
        assert_eq!(caller, "token $FIXTURE_TOKEN_3");
        assert!(left <= Duration::from_secs(30) && left > Duration::from_secs(20));
        let stats = super::super::Stats::default();
        stats.note_wait("raw:12345", Duration::from_secs(5));
        assert_eq!(stats.current_wait().unwrap().0, "a raw Authorization value");
        let stats = super::super::Stats::default();
        stats.note_wait("management", Duration::from_millis(50));
        assert!(
            stats.current_wait().is_none(),
            "a wait about to end is not shown"
        );
    }
}
