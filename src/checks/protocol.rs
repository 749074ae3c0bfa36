//! `errors.envelope`, `headers.content_type`, `headers.rate_limit`: properties of every
//! answer, checked over a tour of requests that reaches each kind of answer.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;

use super::Cx;
use crate::client::{Auth, Collection, Exchange, Request, ResourceId};
use crate::fixtures::Flags;
use crate::outcome::{CheckResult, Finding};
use crate::spec::{ClauseId, SchemaId};

/// The clauses whose checks read the tour, in catalog order.
pub const TOUR_CLAUSES: [ClauseId; 3] = [
    ClauseId::ErrorsEnvelope,
    ClauseId::HeadersContentType,
    ClauseId::HeadersRateLimit,
];

/// What the checks of one run share: the tour, sent once and read by every check that needs
/// it. The tour is sent by its *owner*, the first clause of [`TOUR_CLAUSES`] that runs, so
/// that which clause pays for it does not depend on scheduling: the others wait until the
/// owner has tried (and send it themselves only if it could not). Without an owner (a check
/// run alone, a replay) the first check that needs the tour sends it.
#[derive(Debug)]
pub struct RunShared {
    tour: tokio::sync::OnceCell<Arc<Tour>>,
    /// The 429 a burst of a fixture token's own forced (`None`: the burst met no 429), once
    /// per run: `errors.envelope` holds its body to the envelope, `headers.rate_limit` its
    /// headers.
    forced_429: tokio::sync::OnceCell<Option<Exchange>>,
    /// The owner while it has not tried to send the tour yet; `None` after.
    owner: tokio::sync::watch::Sender<Option<ClauseId>>,
}

impl Default for RunShared {
    fn default() -> Self {
        RunShared::owned_by(None)
    }
}

impl RunShared {
    fn owned_by(owner: Option<ClauseId>) -> RunShared {
        RunShared {
            tour: tokio::sync::OnceCell::new(),
            forced_429: tokio::sync::OnceCell::new(),
            owner: tokio::sync::watch::Sender::new(owner),
        }
    }

    /// What a run of checks of `clauses` shares: the tour's owner is the first tour clause
    /// among them. The engine must start the owner's check before the other tour clauses'
    /// (it starts checks in catalog order), and call [`check_ended`](Self::check_ended)
    /// after each check.
    pub fn for_run(clauses: impl IntoIterator<Item = ClauseId>) -> RunShared {
        let clauses: Vec<ClauseId> = clauses.into_iter().collect();
        RunShared::owned_by(TOUR_CLAUSES.into_iter().find(|c| clauses.contains(c)))
    }

    /// The clause that sends the tour, while it has not tried yet.
    pub fn tour_owner(&self) -> Option<ClauseId> {
        *self.owner.borrow()
    }

    /// A check of `clause` ended: if it owned the tour and never tried it (stopped, a
    /// panic), the others no longer wait for it.
    pub fn check_ended(&self, clause: ClauseId) {
        self.owner.send_if_modified(|owner| {
            let mine = *owner == Some(clause);
            if mine {
                *owner = None;
            }
            mine
        });
    }

    /// The tour's exchanges, sent once per run (see [`RunShared`]).
    async fn tour(&self, cx: &Cx) -> Result<Arc<Tour>, Finding> {
        let clause = cx.clause();
        if self.tour_owner().is_some_and(|owner| owner != clause) {
            let mut watch = self.owner.subscribe();
            // The sender lives as long as `self`: an error cannot happen, and then nobody waits.
            let _ = watch.wait_for(Option::is_none).await;
        }
        let result = self
            .tour
            .get_or_try_init(|| async { send_tour(cx).await.map(Arc::new) })
            .await
            .cloned();
        self.check_ended(clause);
        result
    }

    /// A 429 forced once per run where the tour showed a limit small enough to exhaust
    /// (at most [`MAX_LIMIT_TO_EXHAUST`]) and the budget allows it; see [`force_429`].
    async fn forced_429(&self, cx: &Cx, tour: &Tour) -> Result<Option<Exchange>, Finding> {
        let limit = tour
            .iter()
            .filter_map(|ex| header_number(ex, "x-ratelimit-limit"))
            .last();
        let exhaust = cx.settings().budget.exhaust_rate_limit;
        let Some(limit) = limit.filter(|l| exhaust && *l <= MAX_LIMIT_TO_EXHAUST) else {
            return Ok(None);
        };
        self.forced_429
            .get_or_try_init(|| force_429(cx, limit))
            .await
            .cloned()
    }
}

/// The tour's exchanges in the order sent, and which of them were sent as the management
/// token (the one caller whose consecutive calls share a rate-limit window for sure).
#[derive(Debug)]
pub(super) struct Tour {
    exchanges: Vec<Exchange>,
    management: Vec<bool>,
}

impl std::ops::Deref for Tour {
    type Target = [Exchange];
    fn deref(&self) -> &[Exchange] {
        &self.exchanges
    }
}

impl Tour {
    /// The exchanges sent as the management token, in the order sent.
    fn as_management(&self) -> impl Iterator<Item = &Exchange> {
        self.exchanges
            .iter()
            .zip(&self.management)
            .filter(|(_, m)| **m)
            .map(|(ex, _)| ex)
    }
}

/// The tour: sent once per run and shared (see [`RunShared`]).
async fn tour(cx: &Cx) -> Result<Arc<Tour>, Finding> {
    cx.shared().tour(cx).await
}

/// The largest rate limit the rate-limit check will exhaust on purpose (with a fixture token
/// of its own, so the user's token keeps its budget).
const MAX_LIMIT_TO_EXHAUST: u64 = 120;

/// One request of each kind: successes, and each documented kind of error.
async fn send_tour(cx: &Cx) -> Result<Tour, Finding> {
    let role = cx.role("tour", &[]).await?;
    let token = cx.token("tour", &role, Flags::ALL).await?;
    let id = token.id.clone();
    let valid = json!({ "data": { "type": "access_token", "id": id, "attributes": {
        "name": token.name, "can_access_cda": true, "can_access_cda_preview": true, "can_access_cma": true } } });
    let unknown = ResourceId::parse("98000000001")
        .map_err(|err| Finding::inconclusive(format!("a bug in token-conformance: {err}")))?;
    let requests = vec![
        Request::cma(Method::GET, "/access_tokens"),
        Request::cma_resource(Method::GET, Collection::AccessTokens, &id, None),
        cx.update_request(&id, valid.clone(), Auth::Management),
        cx.update_request(
            &id,
            json!({ "data": { "type": "access_token", "id": id } }),
            Auth::Management,
        ),
        // A field the schema allows but the API refuses: 422 INVALID_FIELD.
        cx.update_request(
            &id,
            json!({ "data": { "type": "access_token", "id": id, "attributes": {
                "name": " ", "can_access_cda": true, "can_access_cda_preview": true, "can_access_cma": true } } }),
            Auth::Management,
        ),
        // A caller whose role may not manage tokens: refused (401 INSUFFICIENT_PERMISSIONS observed).
        cx.update_request(&id, valid.clone(), token.auth()),
        cx.update_request(&id, valid.clone(), Auth::None),
        cx.update_request(
            &id,
            valid.clone(),
            Auth::Raw("Bearer conformance-not-a-token-0000".to_owned()),
        ),
        cx.update_request(&unknown, valid.clone(), Auth::Management),
        Request::cma(Method::GET, "/conformance_no_such_endpoint"),
        cx.update_request(&id, valid.clone(), Auth::Management)
            .header("Content-Type", Some("text/plain")),
        cx.update_request(&id, valid, Auth::Management)
            .header("Accept", Some("text/html")),
    ];
    let mut exchanges = Vec::with_capacity(requests.len());
    let mut management = Vec::with_capacity(requests.len());
    for req in requests {
        management.push(matches!(req.auth, Auth::Management));
        exchanges.push(cx.send_settled(req, "the tour").await?);
    }
    Ok(Tour {
        exchanges,
        management,
    })
}

/// Every error answer is a non-empty `data` array of `api_error` objects with a `code`: the
/// tour's, the first 429 the run met so far, and where the limit is small (and the budget
/// allows), a 429 a fixture token of the run's own forces (a throttle answers from its own
/// middleware, which may render errors its own way).
pub(super) async fn every_error_uses_the_api_error_envelope(cx: Cx) -> CheckResult {
    let tour = tour(&cx).await?;
    for ex in tour.iter().filter(|ex| !ex.is_success()) {
        in_the_envelope(&cx, ex)?;
    }
    if let Some(ex) = cx.client().stats().first_429.get() {
        in_the_envelope(&cx, ex)?;
    }
    if let Some(ex) = cx.shared().forced_429(&cx, &tour).await? {
        in_the_envelope(&cx, &ex)?;
    }
    Ok(())
}

/// `ex`, an error answer, is in the `api_error` envelope.
fn in_the_envelope(cx: &Cx, ex: &Exchange) -> CheckResult {
    let Some(json) = &ex.json else {
        return Err(Finding::fail(
            format!("an error answer is not JSON: {}", ex.summary()),
            &[ex],
        ));
    };
    if let Err(violations) = cx.spec().schemas().validate(SchemaId::Error, json) {
        let list: Vec<String> = violations.iter().take(5).map(ToString::to_string).collect();
        return Err(Finding::fail(
            format!(
                "an error answer ({}) breaks the api_error envelope:\n  {}",
                ex.summary(),
                list.join("\n  ")
            ),
            &[ex],
        ));
    }
    Ok(())
}

/// Every answer, success or error, is `application/json` (`; charset=utf-8` observed).
pub(super) async fn every_response_is_json(cx: Cx) -> CheckResult {
    for ex in tour(&cx).await?.iter() {
        // One Content-Type (RFC 9110 §8.3): with several that differ, clients disagree on
        // which one holds (the first, the last, all joined): the answer has no one media type.
        let all: Vec<&str> = ex
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.as_str())
            .collect();
        // The same value twice (a proxy that adds the header again) is one media type still.
        let norm = |v: &str| v.to_ascii_lowercase().replace(' ', "");
        cx.ensure(
            all.iter().all(|v| norm(v) == norm(all[0])),
            || {
                format!(
                    "{} came with {} different Content-Type headers ({}): an answer has one media type",
                    ex.summary(),
                    all.len(),
                    all.iter()
                        .map(|v| crate::text::json_or(Some(*v), ""))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            &[ex],
        )?;
        let content_type = ex.header("content-type").unwrap_or("").to_owned();
        let shown_type = crate::text::json_or(ex.header("content-type"), "no Content-Type");
        let media = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        cx.ensure(
            media == "application/json",
            || format!("{} came with {shown_type}", ex.summary()),
            &[ex],
        )?;
        cx.observed(
            content_type.to_ascii_lowercase().replace(' ', "") == "application/json;charset=utf-8",
            || {
                format!(
                    "{} came with {shown_type}, observed \"application/json; charset=utf-8\"",
                    ex.summary()
                )
            },
            &[ex],
        )?;
    }
    Ok(())
}

fn header_number(ex: &Exchange, name: &str) -> Option<u64> {
    ex.header(name).and_then(|v| v.trim().parse().ok())
}

/// Every answer carries `X-RateLimit-Limit` and `X-RateLimit-Remaining` (integers, remaining
/// ≤ limit); a 429 carries `X-RateLimit-Reset` > 0: the first 429 the run met before the
/// check ends, and where the limit is small (and the budget allows), the one a fixture
/// token's burst forces once per run ([`RunShared::forced_429`], read by `errors.envelope` too).
pub(super) async fn every_response_carries_rate_limit_headers(cx: Cx) -> CheckResult {
    let exchanges = tour(&cx).await?;
    for ex in exchanges.iter() {
        let limit = header_number(ex, "x-ratelimit-limit");
        let remaining = header_number(ex, "x-ratelimit-remaining");
        cx.ensure(
            limit.is_some() && remaining.is_some(),
            || {
                format!(
                    "{} lacks X-RateLimit-Limit / X-RateLimit-Remaining (got {} / {})",
                    ex.summary(),
                    crate::text::json_or(ex.header("x-ratelimit-limit"), "none"),
                    crate::text::json_or(ex.header("x-ratelimit-remaining"), "none")
                )
            },
            &[ex],
        )?;
        let (limit, remaining) = (limit.unwrap_or(0), remaining.unwrap_or(0));
        cx.ensure(
            remaining <= limit,
            || {
                format!(
                    "{}: X-RateLimit-Remaining {remaining} > limit {limit}",
                    ex.summary()
                )
            },
            &[ex],
        )?;
        cx.observed(
            ex.header("x-ratelimit-reset").is_none() || ex.status == 429,
            || {
                format!(
                    "{} carries X-RateLimit-Reset without being a 429",
                    ex.summary()
                )
            },
            &[ex],
        )?;
    }
    remaining_falls(&cx, &exchanges)?;
    // A 429 any request of the run got so far (under a budget that forces none, the run's
    // own pace meets the limit now and then) is held to the same rule as a forced one.
    if let Some(ex) = cx.client().stats().first_429.get() {
        reset_is_given(&cx, ex)?;
    }
    match cx.shared().forced_429(&cx, &exchanges).await? {
        Some(ex) => reset_is_given(&cx, &ex),
        None => Ok(()),
    }
}

/// A burst of `limit` + 6 calls at once as a fixture token of the caller's own (so the user's
/// token keeps its budget): the first 429 it met, if any.
async fn force_429(cx: &Cx, limit: u64) -> Result<Option<Exchange>, Finding> {
    let role = cx.role("ratelimit", &[]).await?;
    let token = cx.token("ratelimit", &role, Flags::ALL).await?;
    // All at once: sent one after the other on a loaded machine, they may spread over two
    // windows and never meet the limit (a 429 the check then never sees).
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..=limit + 5 {
        let client = cx.client().clone();
        let req = Request::cma(Method::GET, "/site").auth(token.auth());
        burst.spawn(async move { client.send_once(&req).await });
    }
    let (mut limited, mut failed) = (None, None);
    while let Some(joined) = burst.join_next().await {
        match joined {
            Ok(Ok(ex)) if ex.status == 429 => {
                limited.get_or_insert(ex);
            }
            Ok(Ok(_)) | Err(_) => {}
            Ok(Err(err)) => {
                failed.get_or_insert(err);
            }
        }
    }
    match (limited, failed) {
        (Some(ex), _) => Ok(Some(ex)),
        (None, Some(err)) => Err(err.into()),
        (None, None) => Ok(None),
    }
}

/// `X-RateLimit-Remaining` counts down: over the tour's consecutive calls as one caller (the
/// management token), at least one call shows fewer remaining than the call before it. A
/// window that closes between two calls raises it, and other checks calling as the same token
/// meanwhile lower it faster; neither keeps every consecutive pair from falling, which any
/// limiter that counts requests shows. Too few calls with the headers: nothing to say.
fn remaining_falls(cx: &Cx, tour: &Tour) -> CheckResult {
    let seen: Vec<(u64, &Exchange)> = tour
        .as_management()
        .filter(|ex| ex.status != 429)
        .filter_map(|ex| header_number(ex, "x-ratelimit-remaining").map(|r| (r, ex)))
        .collect();
    if seen.len() < 3 {
        return Ok(());
    }
    let falls = seen.windows(2).any(|pair| pair[1].0 < pair[0].0);
    let values: Vec<String> = seen.iter().map(|(r, _)| r.to_string()).collect();
    let evidence: Vec<&Exchange> = seen.iter().rev().take(2).rev().map(|(_, ex)| *ex).collect();
    // Observed, not asserted: a limiter that refills continuously (a token bucket of 60 per
    // 3 s refills one every 50 ms) faster than the tour's calls reach a remote target shows
    // the same Remaining on every call, and the documentation does not say which limiter
    // the API uses. `--profile strict` asserts it.
    cx.observed(
        falls,
        || {
            format!(
                "X-RateLimit-Remaining never fell over {} consecutive calls as one token ({}): \
                 it does not count the requests made",
                seen.len(),
                values.join(", ")
            )
        },
        &evidence,
    )
}

/// A 429 carries `X-RateLimit-Reset`, whole seconds > 0.
fn reset_is_given(cx: &Cx, ex: &Exchange) -> CheckResult {
    let reset = header_number(ex, "x-ratelimit-reset");
    cx.ensure(
        reset.is_some_and(|r| r > 0),
        || {
            format!(
                "a 429 came with X-RateLimit-Reset {} (must be whole seconds > 0)",
                crate::text::json_or(ex.header("x-ratelimit-reset"), "absent")
            )
        },
        &[ex],
    )
}
