//! `update.secret.unchanged` and `update.token.visibility`: the secret survives an update and
//! is shown only to callers whose role manages tokens.

use reqwest::Method;
use serde_json::{Value, json};

use super::Cx;
use crate::client::{Auth, Collection, Request};
use crate::fixtures::{Flags, RoleFx, TokenFx};
use crate::outcome::{CheckResult, Finding};

/// The `token` value is the same before and after any update, in the response and on a read.
pub(super) async fn token_value_is_unchanged_by_an_update(cx: Cx) -> CheckResult {
    let role = cx.role("secret", &[]).await?;
    let token = cx.token("secret", &role, Flags::ALL).await?;
    cx.secret_is_checked(&token, "an unchanged token value shows nothing")
        .await?;
    a_sent_token_value_is_not_stored(&cx, &token).await?;
    let fixture = token.clone();
    cx.each_valid_update(&token, std::slice::from_ref(&role), move |cx, mut body| {
        let token = fixture.clone();
        async move {
            // Every case turns can_access_cma off: a revoke a server may implement as a
            // credential reset. Updates that keep it on are the next check's: its probe with
            // the old secret sees any rotation they make.
            if let Some(flag) = body.pointer_mut("/data/attributes/can_access_cma") {
                *flag = json!(false);
            }
            let ex = cx
                .expect_success(
                    cx.update_request(&token.id, body, Auth::Management),
                    "update",
                )
                .await?;
            let (read, data) = cx.read_token(&token.id).await?;
            for (what, value, evidence) in [
                (
                    "the update's response",
                    ex.json
                        .as_ref()
                        .and_then(|j| j.pointer("/data/attributes/token")),
                    &ex,
                ),
                ("a fresh read", data.pointer("/attributes/token"), &read),
            ] {
                // The management token's role manages tokens, so it sees the secret; without
                // it there is nothing to compare (visibility is another clause's business).
                let Some(Value::String(now)) = value else {
                    return Err(Finding::inconclusive(format!(
                        "{what} shows no token value to compare"
                    )));
                };
                cx.ensure(
                    *now == token.secret,
                    || format!("the token value in {what} changed: the update rotated the secret"),
                    &[&ex, evidence],
                )?;
            }
            Ok(())
        }
    })
    .await
}

/// An update body that also carries a `token` attribute (a value the check picks): the secret
/// is not an attribute an update sets, so the body is refused or the value ignored, and on a
/// fresh read the secret is the one the token had. Its other values are the token's own, so
/// an update that takes them changes nothing else.
async fn a_sent_token_value_is_not_stored(cx: &Cx, token: &TokenFx) -> CheckResult {
    let picked = format!(
        "conformance{:016x}{:016x}",
        cx.seed,
        crate::text::fnv1a(token.secret.as_bytes())
    );
    cx.client()
        .secrets()
        .register(&picked, &format!("$SENT_TOKEN_VALUE_{}", token.id));
    let body = json!({ "data": { "type": "access_token", "id": token.id, "attributes": {
        "name": token.name, "can_access_cda": true, "can_access_cda_preview": true,
        "can_access_cma": true, "token": picked } } });
    let ex = cx
        .send_settled(
            cx.update_request(&token.id, body, Auth::Management),
            "an update carrying a token attribute",
        )
        .await?;
    cx.answered(&ex)?;
    let (read, data) = cx.read_token(&token.id).await?;
    let shown = [
        ex.json
            .as_ref()
            .filter(|_| ex.is_success())
            .and_then(|j| j.pointer("/data/attributes/token")),
        data.pointer("/attributes/token"),
    ];
    let Some(Value::String(now)) = shown[1] else {
        return Err(Finding::inconclusive(
            "a fresh read shows no token value to compare",
        ));
    };
    cx.ensure(
        shown[0].is_none_or(|v| *v != json!(picked)) && *now == token.secret,
        || {
            format!(
                "an update whose body carried a token attribute ({}) changed the secret: {}",
                ex.summary(),
                if *now == picked {
                    "it is now the value sent"
                } else {
                    "it is not the one the token had"
                }
            )
        },
        &[&read, &ex],
    )
}

/// After an update the token's old secret still authenticates (`GET /site`).
pub(super) async fn old_secret_still_authenticates_after_an_update(cx: Cx) -> CheckResult {
    let role = cx.role("oldsecret", &[]).await?;
    let token = cx.token("oldsecret", &role, Flags::ALL).await?;
    cx.secret_is_checked(&token, "a secret that still authenticates shows nothing")
        .await?;
    let fixture = token.clone();
    cx.each_valid_update(&token, std::slice::from_ref(&role), move |cx, mut body| {
        let token = fixture.clone();
        async move {
            // The probe is a CMA call, so the token keeps CMA access.
            if let Some(flag) = body.pointer_mut("/data/attributes/can_access_cma") {
                *flag = json!(true);
            }
            let ex = cx
                .expect_success(
                    cx.update_request(&token.id, body, Auth::Management),
                    "update",
                )
                .await?;
            let probe = cx
                .send(Request::cma(Method::GET, "/site").auth(token.auth()))
                .await?;
            cx.answered(&probe)?;
            cx.ensure(
                probe.is_success(),
                || {
                    format!(
                        "the token's secret no longer authenticates after an update: {}",
                        probe.summary()
                    )
                },
                &[&ex, &probe],
            )
        }
    })
    .await
}

/// `token` is the secret for callers whose role has `can_manage_access_tokens`, `null` for
/// every other caller, in update responses and reads alike.
pub(super) async fn token_is_shown_only_to_token_managers(cx: Cx) -> CheckResult {
    let manager_role = cx
        .role("vis-manager", &["can_manage_access_tokens"])
        .await?;
    let plain_role = cx.role("vis-plain", &[]).await?;
    let manager = cx.token("vis-manager", &manager_role, Flags::ALL).await?;
    let plain = cx.token("vis-plain", &plain_role, Flags::ALL).await?;
    let subject = cx.token("vis-subject", &plain_role, Flags::ALL).await?;
    // Who sees the secret depends on who calls: the callers must be told apart.
    cx.distinct_ids(
        "roles",
        [manager_role.id.as_str(), plain_role.id.as_str()],
        "a caller with can_manage_access_tokens cannot be told from one without",
    )?;
    cx.distinct_ids(
        "tokens",
        [manager.id.as_str(), plain.id.as_str(), subject.id.as_str()],
        "the caller cannot be told from the token it reads",
    )?;
    cx.secret_is_checked(
        &plain,
        "what a caller without can_manage_access_tokens is shown cannot be told from what anyone is shown",
    )
    .await?;
    let body = |name: &str| {
        json!({ "data": { "type": "access_token", "id": subject.id, "attributes": {
            "name": name, "can_access_cda": true, "can_access_cda_preview": true, "can_access_cma": true } } })
    };

    // A manager's update response carries the secret.
    let ex = cx
        .expect_success(
            cx.update_request(&subject.id, body(&subject.name), manager.auth()),
            "update by a token manager",
        )
        .await?;
    let shown = ex
        .json
        .as_ref()
        .and_then(|j| j.pointer("/data/attributes/token"));
    cx.ensure(
        shown == Some(&json!(subject.secret)),
        || {
            format!(
                "a caller with can_manage_access_tokens got token = {} (expected the secret)",
                redacted_kind(shown)
            )
        },
        &[&ex],
    )?;

    // Someone else reads it: null.
    let read = cx
        .send(
            Request::cma_resource(Method::GET, Collection::AccessTokens, &subject.id, None)
                .auth(plain.auth()),
        )
        .await?;
    cx.answered(&read)?;
    // A target may refuse the read outright: then it shows nothing, which keeps the promise;
    // reading is open to any CMA token only as observed behaviour.
    cx.observed(
        read.is_success(),
        || {
            format!(
                "reading a token was refused to a CMA token ({}), observed open",
                read.summary()
            )
        },
        &[&read],
    )?;
    let shown = read
        .json
        .as_ref()
        .and_then(|j| j.pointer("/data/attributes/token"));
    cx.ensure(
        matches!(shown, Some(Value::Null) | None),
        || {
            format!(
                "a caller without can_manage_access_tokens got token = {}",
                redacted_kind(shown)
            )
        },
        &[&read],
    )?;
    cx.observed(
        shown.is_some() || !read.is_success(),
        || {
            "token is absent instead of null for a caller without can_manage_access_tokens"
                .to_owned()
        },
        &[&read],
    )?;

    // And in the list.
    let list = cx
        .send(Request::cma(Method::GET, "/access_tokens").auth(plain.auth()))
        .await?;
    cx.answered(&list)?;
    let leaked = list
        .data()
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter(|t| t.pointer("/attributes/token").is_some_and(|v| !v.is_null()))
                .count()
        })
        .unwrap_or(0);
    cx.ensure(
        leaked == 0,
        || {
            format!(
                "the token list shows {leaked} secrets to a caller without can_manage_access_tokens"
            )
        },
        &[&list],
    )?;

    // Its own update attempt is refused and shows no secret.
    let refused = cx
        .send(cx.update_request(&subject.id, body(&subject.name), plain.auth()))
        .await?;
    cx.answered(&refused)?;
    cx.ensure(
        !refused.is_success()
            || refused
                .json
                .as_ref()
                .and_then(|j| j.pointer("/data/attributes/token"))
                .is_none_or(Value::is_null),
        || "an update by a caller without can_manage_access_tokens returned the secret".to_owned(),
        &[&refused],
    )?;
    self_demotion_follows_the_new_role(&cx, &manager, &plain_role).await
}

/// A token manager moves itself to a role without `can_manage_access_tokens`: what it is
/// shown from then on follows the new role, starting with the update's own response (the
/// caller's role is the one the update leaves it with), and (under the full budget) a
/// listing it makes next.
async fn self_demotion_follows_the_new_role(
    cx: &Cx,
    manager: &TokenFx,
    plain_role: &RoleFx,
) -> CheckResult {
    let body = json!({ "data": { "type": "access_token", "id": manager.id, "attributes": {
        "name": manager.name, "can_access_cda": true, "can_access_cda_preview": true,
        "can_access_cma": true },
        "relationships": { "role": { "data": plain_role.reference() } } } });
    let ex = cx
        .expect_success(
            cx.update_request(&manager.id, body, manager.auth()),
            "a token manager's update of itself to a role without can_manage_access_tokens",
        )
        .await?;
    let moved = ex
        .data()
        .and_then(super::role_id)
        .is_some_and(|r| r == plain_role.id.as_str());
    if !moved {
        return Err(Finding::inconclusive(format!(
            "the update that moves a token manager to a plain role does not show that role ({}): \
             whose role decides what it is shown cannot be told",
            ex.summary()
        )));
    }
    let shown = ex
        .json
        .as_ref()
        .and_then(|j| j.pointer("/data/attributes/token"));
    cx.ensure(
        matches!(shown, Some(Value::Null) | None),
        || {
            format!(
                "a token that moved itself to a role without can_manage_access_tokens got token = {} \
                 in the update's response (its role before the update decided)",
                redacted_kind(shown)
            )
        },
        &[&ex],
    )?;
    if cx.settings().budget.staging {
        return Ok(());
    }
    let list = cx
        .send(Request::cma(Method::GET, "/access_tokens").auth(manager.auth()))
        .await?;
    cx.answered(&list)?;
    let leaked = list.data().and_then(Value::as_array).map_or(0, |items| {
        items
            .iter()
            .filter(|t| t.pointer("/attributes/token").is_some_and(|v| !v.is_null()))
            .count()
    });
    cx.ensure(
        leaked == 0,
        || {
            format!(
                "after moving itself to a role without can_manage_access_tokens, a token's listing shows {leaked} secrets"
            )
        },
        &[&ex, &list],
    )
}

fn redacted_kind(value: Option<&Value>) -> &'static str {
    match value {
        None => "(absent)",
        Some(Value::Null) => "null",
        Some(Value::String(_)) => "a secret string",
        Some(_) => "a non-string value",
    }
}
