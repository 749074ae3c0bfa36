//! `update.effect.*`: a change of the role or of a surface flag holds on the very next call
//! made with the token, and on every call after it, whatever else is in flight.
//!
//! Each check runs in two steps. First a fixed script, cheap and easy to read: warm (the same
//! probes answered right before the change, so a cache holds an answer), flip, then the
//! very next call, a sequential burst and a concurrent burst of probes. Then the main check, a
//! concurrent history: several clients probe the token on a dense schedule (250 probes per
//! change of 160 ms each under the full budget, so that a stale decision lasting a fraction of
//! a millisecond, at any moment of the hold, lands among them) while the permission changes,
//! every call's interval is recorded on one clock, and the linearizability checker
//! ([`crate::model::linearizability`]) decides whether some order of the calls is legal, in
//! which every call that began after an update's answer sees the update (calls that overlap it
//! may see either). A history with no legal order fails the check, shown as the smallest
//! sub-history that cannot be ordered, with its timeline.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::Cx;
use crate::client::{Auth, Collection, Exchange, Request};
use crate::fixtures::{Flags, RoleFx, TokenFx};
use crate::model::linearizability::{
    self as lin, Operation, PermAnswer, PermCall, Permission, PermissionSpec, Perms, ProbeKind,
};
use crate::outcome::{CheckResult, Finding};

/// The GraphQL query the CDA probes send.
pub(super) const CDA_QUERY: &str = "{ _site { locales } }";

/// A call that tells whether the token is allowed something.
#[derive(Clone, Debug)]
enum Probe {
    /// `GET /site` (any CMA token).
    Site,
    /// `GET /users/me` (any CMA token).
    Me,
    /// A CDA query, with or without `X-Include-Drafts: true`.
    Cda { drafts: bool },
    /// `PUT` of a request the role gates, with values that change nothing.
    GatedWrite(Request),
}

impl Probe {
    fn request(&self, auth: Auth) -> Request {
        match self {
            Probe::Site => Request::cma(Method::GET, "/site").auth(auth),
            Probe::Me => Request::cma(Method::GET, "/users/me").auth(auth),
            Probe::Cda { drafts } => {
                let req = Request::cda(CDA_QUERY, auth);
                if *drafts {
                    req.header("X-Include-Drafts", Some("true"))
                } else {
                    req
                }
            }
            Probe::GatedWrite(req) => req.clone().auth(auth),
        }
    }
}

/// Whether the answer grants (2xx with data) or refuses (401/403); anything else means the
/// target could not be tested.
pub(super) fn allowed(ex: &Exchange) -> Result<bool, Finding> {
    match ex.status {
        200..=299 => Ok(ex.json.as_ref().is_some_and(|j| j.get("errors").is_none())),
        401 | 403 => Ok(false),
        _ => Err(Finding::inconclusive(format!(
            "a probe got an answer that is neither a grant nor a refusal: {}",
            ex.summary()
        ))),
    }
}

async fn probe_once(
    cx: &Cx,
    token: &TokenFx,
    probe: &Probe,
    expect: bool,
    change: &str,
    when: &str,
    flip: &Exchange,
) -> CheckResult {
    let ex = cx.send(probe.request(token.auth())).await?;
    let got = allowed(&ex)?;
    let verb = |b: bool| if b { "granted" } else { "refused" };
    cx.ensure(
        got == expect,
        || {
            format!(
                "{when} after {change}, the call was {} (expected {})",
                verb(got),
                verb(expect)
            )
        },
        &[flip, &ex],
    )
}

/// A probe right before `change`, which must see the state before it. Before the first
/// change that state is the one the fixture was created with (a wrong answer there says
/// nothing about updates: inconclusive); after an earlier change a wrong answer is that
/// change not holding (a violation).
async fn warm(
    cx: &Cx,
    token: &TokenFx,
    probe: &Probe,
    expect: bool,
    change: &str,
    first: bool,
) -> CheckResult {
    let ex = cx.send(probe.request(token.auth())).await?;
    let got = allowed(&ex)?;
    if got == expect {
        return Ok(());
    }
    let verb = |b: bool| if b { "granted" } else { "refused" };
    let message = format!(
        "right before {change}, the call was {} (expected {})",
        verb(got),
        verb(expect)
    );
    if first {
        return Err(Finding::inconclusive(format!(
            "{message}: the token does not have the permissions it was created with"
        )));
    }
    Err(Finding::fail(message, &[&ex]))
}

/// When the trailing probes go, after the probes right after a change.
const TRAILING_AFTER: std::time::Duration = std::time::Duration::from_millis(90);

/// Warm, flip, probe: before each change of `set`, the probes once (a warm start for any
/// cache), then the change, then the very next call, a
/// sequential burst, a concurrent burst. `expect(on, probe index)` says what each probe
/// must see. Revoking comes first and granting after it, so a target that answers every
/// probe the same way (a stateless one) fails one direction or the other.
async fn holds_on_the_next_call(
    cx: &Cx,
    token: &TokenFx,
    what: &str,
    set: impl Fn(bool) -> Request,
    probes: &[Probe],
    expect: impl Fn(bool, usize) -> bool,
    trailing: usize,
) -> CheckResult {
    let budget = cx.settings().budget;
    // Revoke then grant: both directions, `rounds` times.
    let directions = [false, true].repeat(budget.rounds.max(1));
    for (n, on) in directions.into_iter().enumerate() {
        let change = format!("{} {what}", if on { "granting" } else { "revoking" });
        // Warm: the same probes right before the change, answered as the state before it.
        // A cache shows itself only when it holds an answer; this one is fresh.
        for (i, probe) in probes.iter().enumerate() {
            warm(cx, token, probe, expect(!on, i), &change, n == 0).await?;
        }
        let flip = cx.expect_success(set(on), &change).await?;
        for (i, probe) in probes.iter().enumerate() {
            let when = if i == 0 {
                "on the very next call"
            } else {
                "on a call right"
            };
            probe_once(cx, token, probe, expect(on, i), &change, when, &flip).await?;
        }
        // Trailing probes: the first probe again, several at once a tenth of a second after
        // the change, where a decision cache refilled from the old row (or a lagging node
        // among several) still answers as before: the cheap cover for what the bursts find
        // under a full budget.
        if trailing > 0 {
            tokio::time::sleep(TRAILING_AFTER).await;
            let mut calls = tokio::task::JoinSet::new();
            for _ in 0..trailing {
                let (cx, token, flip, change) =
                    (cx.clone(), token.clone(), flip.clone(), change.clone());
                let Some(probe) = probes.first().cloned() else {
                    break;
                };
                let want = expect(on, 0);
                calls.spawn(async move {
                    let when = "a tenth of a second after the change";
                    probe_once(&cx, &token, &probe, want, &change, when, &flip).await
                });
            }
            let mut first_problem: Option<Finding> = None;
            while let Some(joined) = calls.join_next().await {
                let result = joined.unwrap_or_else(|err| {
                    Err(Finding::inconclusive(format!("a probe task failed: {err}")))
                });
                if let Err(finding) = result
                    && (first_problem.is_none() || matches!(finding, Finding::Fail(_)))
                {
                    first_problem = Some(finding);
                }
            }
            if let Some(finding) = first_problem {
                return Err(finding);
            }
        }
        for _ in 0..budget.sequential_burst {
            for (i, probe) in probes.iter().enumerate() {
                probe_once(
                    cx,
                    token,
                    probe,
                    expect(on, i),
                    &change,
                    "in a sequential burst",
                    &flip,
                )
                .await?;
            }
        }
        let mut set_of_calls = tokio::task::JoinSet::new();
        for _ in 0..budget.concurrent_burst {
            for (i, probe) in probes.iter().enumerate() {
                let (cx, token, probe, flip, change) = (
                    cx.clone(),
                    token.clone(),
                    probe.clone(),
                    flip.clone(),
                    change.clone(),
                );
                let want = expect(on, i);
                set_of_calls.spawn(async move {
                    probe_once(
                        &cx,
                        &token,
                        &probe,
                        want,
                        &change,
                        "in a concurrent burst",
                        &flip,
                    )
                    .await
                });
            }
        }
        let mut first_problem: Option<Finding> = None;
        while let Some(joined) = set_of_calls.join_next().await {
            let result = joined.unwrap_or_else(|err| {
                Err(Finding::inconclusive(format!("a probe task failed: {err}")))
            });
            if let Err(finding) = result {
                // A violation outranks an inconclusive probe.
                if first_problem.is_none() || matches!(finding, Finding::Fail(_)) {
                    first_problem = Some(finding);
                }
            }
        }
        if let Some(finding) = first_problem {
            return Err(finding);
        }
    }
    Ok(())
}

/// A prober stops when the answers say fewer calls than this are left in the rate-limit
/// window: the history is cut short rather than the token's budget exhausted.
const HISTORY_RATE_RESERVE: u64 = 10;

/// Probes per change at the sparse pace: while an update is in flight (calls that overlap it
/// may see either side, so they say little, and each one adds to the checker's work), and on
/// a target whose announced rate limit would not last through the dense pace.
const SPARSE_PROBES: usize = 8;

/// A target that announces fewer requests than this per window is probed at the sparse pace.
const DENSE_LIMIT: u64 = 10_000;

/// The most body bytes a history keeps of its probes' answers (for the evidence of a
/// violation); past it a probe's answer is kept without its body. A documented answer to a
/// probe is a small document, but a target may send bodies up to the client's cap.
const HISTORY_BODY_BYTES: usize = 8 << 20;

/// A prober stops after this many probes in a row got no answer (the target is down, or
/// every call times out): the history is cut short rather than the run kept waiting.
const LOST_IN_A_ROW: usize = 3;

/// One recorded call of a history.
#[derive(Debug, Clone)]
struct Recorded {
    op: Operation<PermCall, PermAnswer>,
    exchange: Exchange,
    /// What the timeline calls it.
    label: String,
}

/// A probe and what it asks of the permissions.
#[derive(Debug, Clone)]
struct Probing {
    probe: Probe,
    kind: ProbeKind,
    label: String,
}

impl Probing {
    fn new(probe: Probe, kind: ProbeKind, label: impl Into<String>) -> Probing {
        Probing {
            probe,
            kind,
            label: label.into(),
        }
    }
}

/// The history check: `budget.history_clients` clients probe the token with `probes` while
/// updates made with `set` alternate revoking and granting (`perms` says what each direction
/// allows). It starts with a grant of its own, which anchors the history's state; the probers
/// start after its answer. Under the full budget one revoke races a concurrent grant, so the
/// checker also has to order two updates.
async fn history_holds(
    cx: &Cx,
    token: &TokenFx,
    what: &str,
    set: impl Fn(bool) -> Request,
    perms: impl Fn(bool) -> Perms,
    probes: &[Probing],
) -> CheckResult {
    let budget = cx.settings().budget;
    let clients = budget.history_clients.max(1);
    let rounds = budget.history_rounds.max(1);
    let schedule = Schedule::new(&budget);
    let epoch = Instant::now();
    let mut calls = vec![timed_update(cx, &set, &perms, true, what, epoch, 0).await?];
    let shared = Arc::new(Shared::default());
    let mut probers = tokio::task::JoinSet::new();
    for client in 1..=clients {
        probers.spawn(prober(
            cx.clone(),
            token.auth(),
            probes.to_vec(),
            epoch,
            schedule,
            shared.clone(),
            client,
        ));
    }
    let mut problem: Option<Finding> = None;
    for round in 0..rounds {
        let on = round % 2 == 1;
        // A seeded lead, so that runs differ in where the change falls among the probes.
        let lead = schedule
            .sparse
            .mul_f64((cx.seed.rotate_left(round as u32) % 97) as f64 / 97.0);
        tokio::time::sleep(lead).await;
        let contended = rounds > 3 && round == 2;
        shared.in_flight.store(true, Ordering::Relaxed);
        let result = if contended {
            let (a, b) = tokio::join!(
                timed_update(cx, &set, &perms, on, what, epoch, 0),
                timed_update(cx, &set, &perms, !on, what, epoch, clients + 1)
            );
            a.and_then(|a| b.map(|b| vec![a, b]))
        } else {
            timed_update(cx, &set, &perms, on, what, epoch, 0)
                .await
                .map(|a| vec![a])
        };
        shared.in_flight.store(false, Ordering::Relaxed);
        match result {
            Ok(mut done) => calls.append(&mut done),
            Err(finding) => {
                problem = Some(finding);
                break;
            }
        }
        tokio::time::sleep(budget.history_hold).await;
    }
    shared.done.store(true, Ordering::Relaxed);
    let mut unanswered: Option<Finding> = None;
    while let Some(joined) = probers.join_next().await {
        match joined {
            Ok((mut recorded, note)) => {
                calls.append(&mut recorded);
                unanswered = unanswered.or(note);
            }
            Err(err) => {
                unanswered = Some(Finding::inconclusive(format!("a prober failed: {err}")));
            }
        }
    }
    if let Some(finding) = problem {
        return Err(finding);
    }
    if !calls
        .iter()
        .any(|c| matches!(c.op.call, PermCall::Probe(_)))
    {
        return Err(unanswered.unwrap_or_else(|| {
            Finding::inconclusive("the history has no probe with an answer".to_owned())
        }));
    }
    calls.sort_by_key(|c| (c.op.start, c.op.end));
    judge(calls, perms(true), clients, what).await
}

/// Check a history; a violation is shrunk to its smallest sub-history and shown.
async fn judge(calls: Vec<Recorded>, initial: Perms, clients: usize, what: &str) -> CheckResult {
    let ops: Vec<_> = calls.iter().map(|c| c.op.clone()).collect();
    let spec = PermissionSpec { initial };
    let verdict = tokio::task::spawn_blocking(move || match lin::check(&spec, &ops) {
        Ok(Some(_)) => Ok(None),
        Ok(None) => lin::minimal_violation(&spec, &ops)
            .map(|keep| Some(keep.unwrap_or_else(|| (0..ops.len()).collect()))),
        Err(err) => Err(err),
    })
    .await
    .map_err(|err| Finding::inconclusive(format!("the checker's thread failed: {err}")))?
    .map_err(|err| Finding::inconclusive(format!("the history could not be checked: {err}")))?;
    let Some(keep) = verdict else {
        return Ok(());
    };
    // A write sent again after an attempt that got no answer may have been applied twice (once
    // on either side of a concurrent write): such a history says nothing about the target.
    if let Some(retried) = calls
        .iter()
        .find(|c| matches!(c.op.call, PermCall::Update(_)) && c.exchange.attempts > 1)
    {
        return Err(Finding::inconclusive(format!(
            "the history cannot be ordered, but {} was sent {} times (an earlier attempt got no \
             answer and may have been applied too), so it cannot be judged",
            retried.label, retried.exchange.attempts
        )));
    }
    let updates = calls
        .iter()
        .filter(|c| matches!(c.op.call, PermCall::Update(_)))
        .count();
    let shown: Vec<&Recorded> = keep.iter().map(|&i| &calls[i]).collect();
    let message = format!(
        "a history of {} calls ({clients} clients probing while {updates} updates changed {what}) \
         has no order in which every call that began after an update's answer sees the update \
         (calls that overlap it may see either); the smallest sub-history that cannot be \
         ordered ({} calls):\n{}",
        calls.len(),
        shown.len(),
        timeline(&shown)
    );
    let evidence: Vec<&Exchange> = shown.iter().map(|c| &c.exchange).collect();
    Err(Finding::fail(message, &evidence))
}

/// The calls one per line: client, start and end on the run's clock, call, answer.
fn timeline(calls: &[&Recorded]) -> String {
    let mut lines = vec![format!(
        "  {:<7} {:>9} {:>9}  call → answer",
        "client", "start ms", "end ms"
    )];
    for c in calls {
        let answer = match c.op.answer {
            PermAnswer::Updated => "updated",
            PermAnswer::Probe(true) => "granted",
            PermAnswer::Probe(false) => "refused",
        };
        lines.push(format!(
            "  {:<7} {:>9.1} {:>9.1}  {} → {answer} ({})",
            c.op.client,
            c.op.start.as_secs_f64() * 1000.0,
            c.op.end.as_secs_f64() * 1000.0,
            c.label,
            c.exchange.status
        ));
    }
    lines.join("\n")
}

async fn timed_update(
    cx: &Cx,
    set: &impl Fn(bool) -> Request,
    perms: &impl Fn(bool) -> Perms,
    on: bool,
    what: &str,
    epoch: Instant,
    client: usize,
) -> Result<Recorded, Finding> {
    let req = set(on);
    let label = format!(
        "{} {}: {} {what}",
        req.method,
        req.path,
        if on { "grant" } else { "revoke" }
    );
    let start = epoch.elapsed();
    let exchange = cx.expect_success(req, &label).await?;
    let end = epoch.elapsed();
    Ok(Recorded {
        op: Operation {
            client,
            start,
            end,
            call: PermCall::Update(perms(on)),
            answer: PermAnswer::Updated,
        },
        exchange,
        label,
    })
}

/// What a history's clients share with its updater.
#[derive(Debug, Default)]
struct Shared {
    /// An update is in flight.
    in_flight: AtomicBool,
    /// The updates and their holds are over.
    done: AtomicBool,
    /// Body bytes the history keeps so far.
    kept: AtomicUsize,
}

/// When a history's clients probe.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    /// The dense pace: `history_probes` per change, each client.
    dense: Duration,
    /// The sparse pace: [`SPARSE_PROBES`] per change (or `history_probes` if fewer).
    sparse: Duration,
    /// How many probes each client makes at the dense pace.
    dense_count: usize,
    /// How many at the sparse pace, once the target's rate limit asks for it.
    sparse_count: usize,
}

impl Schedule {
    fn new(budget: &super::Budget) -> Schedule {
        let rounds = budget.history_rounds.max(1);
        let per_round = budget.history_probes.max(1);
        let sparse_per_round = per_round.min(SPARSE_PROBES);
        let pace = |n: usize| budget.history_hold / u32::try_from(n).unwrap_or(u32::MAX);
        // Room for every update (at most two a round, and the anchor) within the checker's cap.
        let room = lin::MAX_OPS.saturating_sub(2 * rounds + 1) / budget.history_clients.max(1);
        Schedule {
            dense: pace(per_round),
            sparse: pace(sparse_per_round),
            dense_count: (rounds * per_round).min(room),
            sparse_count: (rounds * sparse_per_round).min(room),
        }
    }
}

/// One client of a history.
///
/// At the dense pace it probes on a schedule (the n-th due `n` paces after the first; one that
/// falls behind catches up without pause); the count is a cap, and the client stops when the
/// last hold ends, so that a slow target or a loaded machine gets fewer probes, not a longer
/// run. While an update is in flight it keeps to the sparse pace, and resumes the dense one
/// (catching up at once) when the update's answer is in: the calls right after a change are the
/// ones that show a stale decision.
///
/// At the sparse pace (a staging budget, or a target whose rate limit would not last the dense
/// one: it switches on the first answer that says so) it waits a pace after each answer and
/// makes a count of probes, so that a seed always sends the same requests and the count
/// outlasts the updates however long each call takes. Either way it stops if the rate limit
/// runs low.
///
/// Answers that are neither a grant nor a refusal, and probes that got no answer, are left out
/// of the history (a probe changes nothing, so the rest can still be ordered), and the first
/// is returned as a note.
async fn prober(
    cx: Cx,
    auth: Auth,
    probes: Vec<Probing>,
    epoch: Instant,
    schedule: Schedule,
    shared: Arc<Shared>,
    client: usize,
) -> (Vec<Recorded>, Option<Finding>) {
    let mut recorded = Vec::new();
    let mut note = None;
    if probes.is_empty() {
        return (recorded, note);
    }
    let (mut pace, mut count) = (schedule.dense, schedule.dense_count);
    let mut due = tokio::time::Instant::now();
    let mut last: Option<Instant> = None;
    let (mut n, mut lost) = (0, 0);
    // At the dense pace the count is a cap and the holds the bound: a client that cannot keep
    // up (a slow target, a loaded machine) stops with the last hold rather than run on.
    while n < count && !(pace < schedule.sparse && shared.done.load(Ordering::Relaxed)) {
        if shared.in_flight.load(Ordering::Relaxed)
            && last.is_some_and(|t| t.elapsed() < schedule.sparse)
        {
            tokio::time::sleep(schedule.dense).await;
            continue;
        }
        let probing = &probes[(n + client) % probes.len()];
        n += 1;
        let start = epoch.elapsed();
        last = Some(Instant::now());
        // Sent once: a probe lost to the network is left out of the history (it changes
        // nothing), rather than retried at the expense of the run's retry budget.
        let exchange = match cx
            .send(probing.probe.request(auth.clone()).sent_once())
            .await
        {
            Ok(exchange) => exchange,
            Err(finding) => {
                note = note.or(Some(finding));
                lost += 1;
                if lost >= LOST_IN_A_ROW {
                    break;
                }
                wait_for_next(&mut due, pace, schedule.sparse).await;
                continue;
            }
        };
        lost = 0;
        let end = epoch.elapsed();
        let header = |name: &str| {
            exchange
                .header(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let (remaining, limit) = (header("x-ratelimit-remaining"), header("x-ratelimit-limit"));
        let verdict = allowed(&exchange);
        let size = exchange.body_len();
        let exchange = if shared.kept.fetch_add(size, Ordering::Relaxed) + size > HISTORY_BODY_BYTES
        {
            exchange.without_body(&format!(
                "the history keeps at most {} MiB of its probes' bodies",
                HISTORY_BODY_BYTES >> 20
            ))
        } else {
            exchange
        };
        match verdict {
            Ok(granted) => recorded.push(Recorded {
                op: Operation {
                    client,
                    start,
                    end,
                    call: PermCall::Probe(probing.kind),
                    answer: PermAnswer::Probe(granted),
                },
                label: probing.label.clone(),
                exchange,
            }),
            Err(finding) => note = note.or(Some(finding)),
        }
        if remaining.is_some_and(|r| r <= HISTORY_RATE_RESERVE) {
            break;
        }
        if pace < schedule.sparse && limit.is_some_and(|l| l < DENSE_LIMIT) {
            // A fresh sparse count from here, so that the probes still outlast the updates.
            (pace, count) = (schedule.sparse, n + schedule.sparse_count);
        }
        wait_for_next(&mut due, pace, schedule.sparse).await;
    }
    (recorded, note)
}

/// Wait for the next probe. At the dense pace on the schedule (`due`, one pace later; a client
/// behind it goes at once); at the sparse pace one pace after the answer, as a count of sparse
/// probes must outlast the updates however long each call takes (a distant or rate-limited
/// target): a schedule would end before the last change is probed.
async fn wait_for_next(due: &mut tokio::time::Instant, pace: Duration, sparse: Duration) {
    *due += pace;
    if pace < sparse {
        tokio::time::sleep_until(*due).await;
    } else {
        tokio::time::sleep(pace).await;
    }
}

fn flags_body(token: &TokenFx, flags: Flags) -> Value {
    json!({ "data": { "type": "access_token", "id": token.id, "attributes": {
        "name": token.name, "can_access_cda": flags.cda, "can_access_cda_preview": flags.cda_preview,
        "can_access_cma": flags.cma } } })
}

async fn plain_token(cx: &Cx, label: &str, flags: Flags) -> Result<(RoleFx, TokenFx), Finding> {
    let role = cx.role(label, &[]).await?;
    let token = cx.token(label, &role, flags).await?;
    Ok((role, token))
}

/// `can_access_cma`: `GET /site` and `GET /users/me` follow the flag at once.
pub(super) async fn cma_flag_change_holds_on_the_next_call(cx: Cx) -> CheckResult {
    // As for the CDA flag, the changes are made by a token manager of the check's own (with
    // a bucket of its own, so no wait on the management token's comes between the warm probe
    // and the change); it shares the probed token's role, so it costs one token more.
    let role = cx.role("effect-cma", &["can_manage_access_tokens"]).await?;
    let token = cx.token("effect-cma", &role, Flags::ALL).await?;
    let manager = cx.token("effect-cma-manager", &role, Flags::ALL).await?;
    let set = |on: bool| {
        let body = flags_body(
            &token,
            Flags {
                cma: on,
                ..Flags::ALL
            },
        );
        cx.update_request(&token.id, body, manager.auth())
    };
    holds_on_the_next_call(
        &cx,
        &token,
        "can_access_cma",
        &set,
        &[Probe::Site, Probe::Me],
        |on, _| on,
        cx.settings().budget.trailing_probes,
    )
    .await?;
    let perms = |on: bool| Perms {
        cma: on,
        manage_access_tokens: true,
        ..perms_of(Flags::ALL, false)
    };
    let probes = [
        Probing::new(Probe::Site, ProbeKind::CmaRead, "GET /site"),
        Probing::new(Probe::Me, ProbeKind::CmaRead, "GET /users/me"),
    ];
    history_holds(&cx, &token, "can_access_cma", &set, perms, &probes).await
}

/// `can_access_cda`: a published-content CDA query follows the flag at once.
pub(super) async fn cda_flag_change_holds_on_the_next_call(cx: Cx) -> CheckResult {
    let base = Flags {
        cda: true,
        cda_preview: false,
        cma: true,
    };
    let (_, token) = plain_token(&cx, "effect-cda", base).await?;
    // The changes are made by a token manager of the check's own: its rate-limit bucket is
    // its own, so no wait on the management token's (shared by every check) can come
    // between the warm probe and the change and let a short-lived cache expire unseen.
    let manager_role = cx
        .role("effect-cda-manager", &["can_manage_access_tokens"])
        .await?;
    let manager = cx
        .token("effect-cda-manager", &manager_role, Flags::ALL)
        .await?;
    let set = |on: bool| {
        cx.update_request(
            &token.id,
            flags_body(&token, Flags { cda: on, ..base }),
            manager.auth(),
        )
    };
    holds_on_the_next_call(
        &cx,
        &token,
        "can_access_cda",
        &set,
        &[Probe::Cda { drafts: false }],
        |on, _| on,
        0,
    )
    .await?;
    let perms = |on: bool| perms_of(Flags { cda: on, ..base }, false);
    let probes = [Probing::new(
        Probe::Cda { drafts: false },
        ProbeKind::Cda,
        "CDA query",
    )];
    history_holds(&cx, &token, "can_access_cda", &set, perms, &probes).await
}

/// `can_access_cda_preview`: a CDA query with `X-Include-Drafts: true` follows the flag at
/// once, while published content stays available.
pub(super) async fn cda_preview_flag_change_holds_on_the_next_call(cx: Cx) -> CheckResult {
    let base = Flags {
        cda: true,
        cda_preview: true,
        cma: true,
    };
    let (_, token) = plain_token(&cx, "effect-preview", base).await?;
    let set = |on: bool| {
        cx.update_request(
            &token.id,
            flags_body(
                &token,
                Flags {
                    cda_preview: on,
                    ..base
                },
            ),
            Auth::Management,
        )
    };
    let probes = [Probe::Cda { drafts: true }, Probe::Cda { drafts: false }];
    holds_on_the_next_call(
        &cx,
        &token,
        "can_access_cda_preview",
        &set,
        &probes,
        |on, i| i == 1 || on,
        0,
    )
    .await?;
    let perms = |on: bool| {
        perms_of(
            Flags {
                cda_preview: on,
                ..base
            },
            false,
        )
    };
    let probes = [
        Probing::new(
            Probe::Cda { drafts: true },
            ProbeKind::CdaDrafts,
            "CDA query with X-Include-Drafts: true",
        ),
        Probing::new(Probe::Cda { drafts: false }, ProbeKind::Cda, "CDA query"),
    ];
    history_holds(&cx, &token, "can_access_cda_preview", &set, perms, &probes).await?;
    preview_without_cda(&cx, &token, base).await
}

/// The combinations with `can_access_cda` off: `can_access_cda_preview` says by itself
/// whether the token "can call the Content Delivery API with the X-Include-Drafts: true
/// header", so with it on drafts are granted on the very next call, and with it off too
/// (under the full budget) refused. Published content with the preview flag alone is what
/// the documentation leaves open: not probed.
async fn preview_without_cda(cx: &Cx, token: &TokenFx, base: Flags) -> CheckResult {
    let mut combinations = vec![true];
    if !cx.settings().budget.staging {
        combinations.push(false);
    }
    for preview in combinations {
        let flags = Flags {
            cda: false,
            cda_preview: preview,
            ..base
        };
        let change = format!("setting can_access_cda false and can_access_cda_preview {preview}");
        let flip = cx
            .expect_success(
                cx.update_request(&token.id, flags_body(token, flags), Auth::Management),
                &change,
            )
            .await?;
        let drafts = Probe::Cda { drafts: true };
        probe_once(
            cx,
            token,
            &drafts,
            preview,
            &change,
            "on the very next call (a drafts query)",
            &flip,
        )
        .await?;
    }
    Ok(())
}

/// The role: a write the old role allowed is refused at once after moving to a role without
/// it, and allowed again at once after moving back. The probes are writes that change
/// nothing: a role update with the role's own name (gated by `can_manage_users`) and a token
/// update with the token's own values (gated by `can_manage_access_tokens`).
pub(super) async fn role_change_holds_on_the_next_call(cx: Cx) -> CheckResult {
    let powerful = cx
        .role(
            "effect-role-on",
            &["can_manage_users", "can_manage_access_tokens"],
        )
        .await?;
    let plain = cx.role("effect-role-off", &[]).await?;
    cx.distinct_ids(
        "roles",
        [powerful.id.as_str(), plain.id.as_str()],
        "a role change cannot be observed",
    )?;
    let token = cx.token("effect-role", &powerful, Flags::ALL).await?;
    let bystander = cx
        .token("effect-role-bystander", &plain, Flags::ALL)
        .await?;
    let role_write = Request::cma_resource(Method::PUT, Collection::Roles, &plain.id, None)
        .json(json!({ "data": {
        "type": "role", "id": plain.id, "attributes": { "name": plain.name } } }));
    let token_write = cx.update_request(
        &bystander.id,
        flags_body(&bystander, Flags::ALL),
        Auth::Management,
    );
    let set = |on: bool| {
        let role = if on { &powerful } else { &plain };
        let mut body = flags_body(&token, Flags::ALL);
        body["data"]["relationships"] = json!({ "role": { "data": role.reference() } });
        cx.update_request(&token.id, body, Auth::Management)
    };
    let role_label = format!("PUT {} (needs can_manage_users)", role_write.path);
    let token_label = format!("PUT {} (needs can_manage_access_tokens)", token_write.path);
    let probes = [
        Probe::GatedWrite(role_write),
        Probe::GatedWrite(token_write),
    ];
    holds_on_the_next_call(&cx, &token, "the role", &set, &probes, |on, _| on, 0).await?;
    let [role_write, token_write] = probes;
    let probes = [
        Probing::new(
            role_write,
            ProbeKind::CmaWrite(Permission::ManageUsers),
            role_label,
        ),
        Probing::new(
            token_write,
            ProbeKind::CmaWrite(Permission::ManageAccessTokens),
            token_label,
        ),
    ];
    let perms = |on: bool| perms_of(Flags::ALL, on);
    history_holds(&cx, &token, "the role", &set, perms, &probes).await
}

/// The permissions of a token with `flags` and a role that has both gated permissions
/// (`powerful`) or none.
fn perms_of(flags: Flags, powerful: bool) -> Perms {
    Perms {
        cma: flags.cma,
        cda: flags.cda,
        cda_preview: flags.cda_preview,
        manage_users: powerful,
        manage_access_tokens: powerful,
    }
}
