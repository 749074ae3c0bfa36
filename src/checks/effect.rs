//! `update.effect.*`: a change of the role or of a surface flag holds on the very next call
//! made with the token, and on every call of a burst after it, sequential and concurrent.

use reqwest::Method;
use serde_json::{Value, json};

use super::Cx;
use crate::fixtures::{Flags, RoleFx, TokenFx};
use crate::outcome::{CheckResult, Finding};
use crate::target::{Auth, Collection, Exchange, Request};

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
fn allowed(ex: &Exchange) -> Result<bool, Finding> {
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

/// Apply each direction of a change with `set`, then probe: the very next call, a
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
) -> CheckResult {
    let budget = cx.settings().budget;
    // Revoke then grant: both directions, `rounds` times.
    let directions = [false, true].repeat(budget.rounds.max(1));
    for on in directions {
        let change = format!("{} {what}", if on { "granting" } else { "revoking" });
        let flip = cx.expect_success(set(on), &change).await?;
        for (i, probe) in probes.iter().enumerate() {
            let when = if i == 0 {
                "on the very next call"
            } else {
                "on a call right"
            };
            probe_once(cx, token, probe, expect(on, i), &change, when, &flip).await?;
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
    let (_, token) = plain_token(&cx, "effect-cma", Flags::ALL).await?;
    let set = |on: bool| {
        let body = flags_body(
            &token,
            Flags {
                cma: on,
                ..Flags::ALL
            },
        );
        cx.update_request(&token.id, body, Auth::Management)
    };
    holds_on_the_next_call(
        &cx,
        &token,
        "can_access_cma",
        set,
        &[Probe::Site, Probe::Me],
        |on, _| on,
    )
    .await
}

/// `can_access_cda`: a published-content CDA query follows the flag at once.
pub(super) async fn cda_flag_change_holds_on_the_next_call(cx: Cx) -> CheckResult {
    let base = Flags {
        cda: true,
        cda_preview: false,
        cma: true,
    };
    let (_, token) = plain_token(&cx, "effect-cda", base).await?;
    let set = |on: bool| {
        cx.update_request(
            &token.id,
            flags_body(&token, Flags { cda: on, ..base }),
            Auth::Management,
        )
    };
    holds_on_the_next_call(
        &cx,
        &token,
        "can_access_cda",
        set,
        &[Probe::Cda { drafts: false }],
        |on, _| on,
    )
    .await
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
        set,
        &probes,
        |on, i| i == 1 || on,
    )
    .await
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
    let probes = [
        Probe::GatedWrite(role_write),
        Probe::GatedWrite(token_write),
    ];
    holds_on_the_next_call(&cx, &token, "the role", set, &probes, |on, _| on).await
}
