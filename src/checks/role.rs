//! `update.role.preserved` and `update.role.reassigned`.

use serde_json::json;

use super::{Cx, role_id};
use crate::client::Auth;
use crate::fixtures::{Flags, TokenFx};
use crate::generate::{self, Binding};
use crate::outcome::CheckResult;
use crate::text::json_str;

/// What a role check says when its roles cannot be told apart.
const ROLES_ALIKE: &str = "a role change cannot be observed";

/// Arbitrary sequences of updates, with and without `relationships`: after each, the role
/// (in the response and on a fresh read) is the last one explicitly sent.
///
/// A covering case comes first: an update without `relationships` on a token moved to a
/// role that is not its creation role, then a read.
///
/// Each case starts by moving the token to a role that is not its creation role: a target
/// that stores nothing (and answers with the role the token was created with) cannot then
/// fake "preserved".
pub(super) async fn role_is_preserved_when_relationships_are_omitted(cx: Cx) -> CheckResult {
    let roles = [
        cx.role("keep-a", &[]).await?,
        cx.role("keep-b", &[]).await?,
        cx.role("keep-c", &[]).await?,
    ];
    cx.distinct_ids("roles", roles.iter().map(|r| r.id.as_str()), ROLES_ALIKE)?;
    let token = cx.token("keep", &roles[0], Flags::ALL).await?;
    // The covering case, first under every budget: moved off its creation role (one the
    // fixtures made, not the project's default), then updated without `relationships`; the
    // generated sequences may omit them rarely when cases are few.
    move_off_creation_role(&cx, &token, &roles[0].id, &roles[1].id, "move the role").await?;
    let omitted = json!({ "data": { "type": "access_token", "id": token.id, "attributes": {
        "name": token.name, "can_access_cda": true, "can_access_cda_preview": false, "can_access_cma": true } } });
    let ex = cx
        .expect_success(
            cx.update_request(&token.id, omitted, Auth::Management),
            "update without relationships",
        )
        .await?;
    let got = ex.data().and_then(role_id).map(str::to_owned);
    cx.ensure(
        got.as_deref() == Some(roles[1].id.as_str()),
        || {
            format!(
                "an update without relationships on a token of role {} answered {}",
                json_str(roles[1].id.as_str()),
                shown_role(got.as_deref())
            )
        },
        &[&ex],
    )?;
    let (read, data) = cx.read_token(&token.id).await?;
    let got = role_id(&data).map(str::to_owned);
    cx.ensure(
        got.as_deref() == Some(roles[1].id.as_str()),
        || {
            format!(
                "after an update without relationships on a token of role {}, a fresh read shows {}",
                json_str(roles[1].id.as_str()),
                shown_role(got.as_deref())
            )
        },
        &[&ex, &read],
    )?;
    let role_ids: Vec<String> = roles.iter().map(|r| r.id.to_string()).collect();
    let marker = cx.fixture_name("n");
    let c = cx.clone();
    let max_steps = cx.settings().budget.max_steps.max(1);
    cx.property(
        move || {
            proptest::collection::vec(
                generate::valid_update(crate::spec::Spec::embedded()),
                1..=max_steps,
            )
        },
        move |steps| {
            let (cx, token, role_ids, marker) =
                (c.clone(), token.clone(), role_ids.clone(), marker.clone());
            async move {
                let binding = Binding {
                    path_id: &token.id,
                    roles: &role_ids,
                    marker: &marker,
                };
                // Every case starts from a known role, sent explicitly, and not the creation role.
                move_off_creation_role(&cx, &token, &role_ids[0], &role_ids[1], "reset the role")
                    .await?;
                let mut expected = role_ids[1].clone();
                let mut history = Vec::new();
                for template in steps {
                    let body = template.bind(&binding);
                    let sent = body
                        .pointer("/data/relationships/role/data/id")
                        .and_then(|v| v.as_str())
                        .map(str::to_owned);
                    history.push(
                        sent.clone()
                            .map_or("(relationships omitted)".to_owned(), |r| {
                                format!("role {r}")
                            }),
                    );
                    if let Some(sent) = sent {
                        expected = sent;
                    }
                    let ex = cx
                        .expect_success(
                            cx.update_request(&token.id, body, Auth::Management),
                            "update",
                        )
                        .await?;
                    let got = ex.data().and_then(role_id).map(str::to_owned);
                    cx.ensure(
                        got.as_deref() == Some(expected.as_str()),
                        || {
                            format!(
                                "after the updates [{}], the response shows {}, expected role {}",
                                history.join(", "),
                                shown_role(got.as_deref()),
                                json_str(&expected)
                            )
                        },
                        &[&ex],
                    )?;
                    let (read, data) = cx.read_token(&token.id).await?;
                    let got = role_id(&data).map(str::to_owned);
                    cx.ensure(
                        got.as_deref() == Some(expected.as_str()),
                        || {
                            format!(
                                "after the updates [{}], a fresh read shows {}, expected role {}",
                                history.join(", "),
                                shown_role(got.as_deref()),
                                json_str(&expected)
                            )
                        },
                        &[&ex, &read],
                    )?;
                }
                Ok(())
            }
        },
    )
    .await
}

/// Sending `relationships.role` moves the token to that role, back and forth.
pub(super) async fn role_is_reassigned_when_sent(cx: Cx) -> CheckResult {
    // The second role holds a permission the first lacks, so the moves go both ways in
    // privilege: an upgrade (a guard that compares the new role with the token's current
    // one, not with the caller's, refuses it) and a downgrade.
    let roles = [
        cx.role("move-a", &[]).await?,
        cx.role("move-b", &[crate::model::machine::GATE]).await?,
    ];
    cx.distinct_ids("roles", roles.iter().map(|r| r.id.as_str()), ROLES_ALIKE)?;
    let token = cx.token("move", &roles[0], Flags::ALL).await?;
    for target in [&roles[1], &roles[0], &roles[1]] {
        let body = json!({ "data": { "type": "access_token", "id": token.id, "attributes": {
            "name": token.name, "can_access_cda": true, "can_access_cda_preview": true, "can_access_cma": true },
            "relationships": { "role": { "data": target.reference() } } } });
        let ex = cx
            .expect_success(
                cx.update_request(&token.id, body, Auth::Management),
                "reassign",
            )
            .await?;
        let got = ex.data().and_then(role_id).map(str::to_owned);
        cx.ensure(
            got.as_deref() == Some(target.id.as_str()),
            || {
                format!(
                    "sent role {}, the response shows {}",
                    json_str(&target.id),
                    shown_role(got.as_deref())
                )
            },
            &[&ex],
        )?;
        let (read, data) = cx.read_token(&token.id).await?;
        let got = role_id(&data).map(str::to_owned);
        cx.ensure(
            got.as_deref() == Some(target.id.as_str()),
            || {
                format!(
                    "sent role {}, a fresh read shows {}",
                    json_str(&target.id),
                    shown_role(got.as_deref())
                )
            },
            &[&ex, &read],
        )?;
    }
    Ok(())
}

/// Move `token` from its creation role `from` to `to`, and require the answer to show the move:
/// a target that stores nothing (and answers with the creation role) cannot then fake
/// "preserved".
async fn move_off_creation_role(
    cx: &Cx,
    token: &TokenFx,
    from: &str,
    to: &str,
    what: &str,
) -> CheckResult {
    let body = json!({ "data": { "type": "access_token", "id": token.id, "attributes": {
        "name": token.name, "can_access_cda": true, "can_access_cda_preview": true, "can_access_cma": true },
        "relationships": { "role": { "data": { "type": "role", "id": to } } } } });
    let reset = cx
        .expect_success(cx.update_request(&token.id, body, Auth::Management), what)
        .await?;
    let got = reset.data().and_then(role_id).map(str::to_owned);
    cx.ensure(
        got.as_deref() == Some(to),
        || {
            format!(
                "moving the token from its creation role {} to role {} answered {}",
                json_str(from),
                json_str(to),
                shown_role(got.as_deref())
            )
        },
        &[&reset],
    )
}

/// A role as a message shows it: `role "12"`, or "no role".
fn shown_role(role: Option<&str>) -> String {
    role.map_or_else(|| "no role".to_owned(), |r| format!("role {}", json_str(r)))
}
