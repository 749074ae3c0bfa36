//! `update.request.validation`: invalid bodies are refused with a 4xx and change nothing.
//!
//! Requests go to coverage first: one invalid body per documented constraint of the request
//! schema ([`generate::covering_mutations`]) under every budget, every mutation under the
//! full one, and only then generated bodies.

use super::{Cx, token_state};
use crate::fixtures::Flags;
use serde_json::{Value, json};

use crate::client::{Auth, Collection, ResourceId};
use crate::generate::{self, Binding, Invalid, Mutation, MutationKind};
use crate::outcome::CheckResult;
use crate::spec::{SchemaId, Spec};

/// Role ids no role has (fixed, out of range): the first one the target did not list at
/// session start is sent (a run creates roles with ids of its target's own sequence).
const NO_SUCH_ROLES: [&str; 3] = ["98000000002", "98000000003", "97999999999"];

/// Each mutation of a valid body (a required member removed, a wrong JSON type, another
/// `type`, `data` not an object, a malformed role reference, `role.data: null`, a blank name,
/// a role reference naming no role)
/// is refused with a 4xx, never a 2xx or a 5xx, and the token reads back exactly as before
/// (after a valid update has shown that the token can change at all).
pub(super) async fn invalid_bodies_are_refused_and_change_nothing(cx: Cx) -> CheckResult {
    refused_and_unchanged(cx, false).await
}

/// `--profile strict` only (declared strict-only in the check table): unknown members are
/// refused too, as the 2022 hyper-schema's `additionalProperties: false` says (observed).
pub(super) async fn unknown_members_are_refused(cx: Cx) -> CheckResult {
    refused_and_unchanged(cx, true).await
}

async fn refused_and_unchanged(cx: Cx, unknown_members: bool) -> CheckResult {
    let roles = [
        cx.role("invalid-a", &[]).await?,
        cx.role("invalid-b", &[]).await?,
    ];
    let token = cx.token("invalid", &roles[0], Flags::ALL).await?;
    let role_ids: Vec<String> = roles.iter().map(|r| r.id.to_string()).collect();
    let marker = cx.fixture_name("n");
    // "Changes nothing" means something only where an update can change something: first a
    // valid update, which a fresh read must show (a target that stores nothing, or refuses
    // every body, would pass every refusal below).
    let renamed = cx.fixture_name("valid");
    let valid = json!({ "data": { "type": "access_token", "id": token.id, "attributes": {
        "name": renamed, "can_access_cda": true, "can_access_cda_preview": false, "can_access_cma": true } } });
    let ex = cx
        .expect_success(
            cx.update_request(&token.id, valid, Auth::Management),
            "a valid update",
        )
        .await?;
    let (read, before) = cx.read_token(&token.id).await?;
    cx.ensure(
        before.pointer("/attributes/name") == Some(&json!(renamed)),
        || {
            "a valid update succeeded but a fresh read does not show it: the target does not store \
             updates, so that invalid ones change nothing shows nothing"
                .to_owned()
        },
        &[&ex, &read],
    )?;
    let before = token_state(&before);
    let strict = cx.strict();

    // First the covering set, under every budget: one invalid body per constraint the schema
    // documents, so that a rule only one mutation reveals ("type must be exactly
    // access_token") is tested whatever the seed and however few the cases.
    let wanted = |m: &Mutation| (m.kind == MutationKind::UnknownMember) == unknown_members;
    // Besides the schema's shape, what it describes: a role reference must name a role.
    let no_such_role = NO_SUCH_ROLES
        .iter()
        .find(|id| {
            ResourceId::parse(id)
                .is_ok_and(|id| !cx.client().existed_before(Collection::Roles, &id))
        })
        .copied();
    let dangling = no_such_role
        .filter(|_| !unknown_members)
        .map(|id| Mutation {
            pointer: "/data/relationships/role/data/id".to_owned(),
            kind: MutationKind::UnknownReference,
            text: id.to_owned(),
        });
    if !cx.settings().budget.every_mutation {
        let covering: Vec<Mutation> =
            generate::covering_mutations(Spec::embedded(), SchemaId::UpdateRequest)
                .into_iter()
                .filter(wanted)
                .chain(dangling.clone())
                .collect();
        covering_set_refused(&cx, &token.id, &roles[1].reference(), &covering, &before).await?;
    }

    // Under the full budget every mutation the schema allows, once each, on one valid body
    // (every wrong type of every member, not one of them), each followed by a read.
    if cx.settings().budget.every_mutation {
        let base = json!({ "data": { "type": "access_token", "id": token.id, "attributes": {
            "name": cx.fixture_name("sweep"), "can_access_cda": true, "can_access_cda_preview": false,
            "can_access_cma": true }, "relationships": { "role": { "data": roles[1].reference() } } } });
        for mutation in generate::mutations(Spec::embedded(), SchemaId::UpdateRequest)
            .into_iter()
            .filter(wanted)
            .chain(dangling)
        {
            let mut body = base.clone();
            mutation.apply(&mut body);
            refused_and_unchanging(&cx, &token.id, body, &mutation, &before).await?;
        }
    }

    // Then generated bodies, each with one mutation: variety in everything else.
    let strategy = move || {
        let spec = Spec::embedded();
        if unknown_members {
            generate::with_unknown_member(spec)
        } else {
            generate::invalid_update(spec, strict)
        }
    };
    let c = cx.clone();
    cx.property(strategy, move |invalid: Invalid| {
        let (cx, token, role_ids, marker, before) = (
            c.clone(),
            token.clone(),
            role_ids.clone(),
            marker.clone(),
            before.clone(),
        );
        async move {
            let body = invalid.bind(&Binding {
                path_id: &token.id,
                roles: &role_ids,
                marker: &marker,
            });
            refused_and_unchanging(&cx, &token.id, body, &invalid.mutation, &before).await
        }
    })
    .await
}

/// The covering set, cheaply: each body is refused with a 4xx, and one read after them all
/// shows the token unchanged. Every body carries a name of its own and flags the token does
/// not have, so an applied body shows which one it was.
async fn covering_set_refused(
    cx: &Cx,
    id: &ResourceId,
    role: &Value,
    covering: &[Mutation],
    before: &Value,
) -> CheckResult {
    let mut sent = Vec::with_capacity(covering.len());
    for mutation in covering {
        let name = cx.fixture_name("cover");
        let mut body = json!({ "data": { "type": "access_token", "id": id, "attributes": {
            "name": name, "can_access_cda": false, "can_access_cda_preview": true,
            "can_access_cma": false }, "relationships": { "role": { "data": role } } } });
        mutation.apply(&mut body);
        let ex = cx
            .send_settled(
                cx.update_request(id, body, Auth::Management),
                "an invalid body",
            )
            .await?;
        cx.ensure(
            ex.is_client_error(),
            || {
                format!(
                    "a body with {mutation} was answered {} (expected a 4xx)",
                    ex.status
                )
            },
            &[&ex],
        )?;
        sent.push((name, mutation, ex));
    }
    let (read, after) = cx.read_token(id).await?;
    let after_state = token_state(&after);
    let applied = sent
        .iter()
        .find(|(name, _, _)| after.pointer("/attributes/name") == Some(&json!(name)));
    cx.ensure(
        after_state == *before,
        || match applied {
            Some((_, mutation, ex)) => format!(
                "a body with {mutation} changed the token ({}): before {before}, after {after_state}",
                ex.summary()
            ),
            None => format!(
                "one of {} invalid bodies (the schema's covering set) changed the token: before \
                 {before}, after {after_state}",
                sent.len()
            ),
        },
        &applied.map_or_else(|| vec![&read], |(_, _, ex)| vec![ex, &read]),
    )
}

/// Send one invalid body: it must get a 4xx (a non-transient 5xx that repeats is a
/// violation too) and the token must read back exactly as `before`.
async fn refused_and_unchanging(
    cx: &Cx,
    id: &ResourceId,
    body: Value,
    mutation: &Mutation,
    before: &Value,
) -> CheckResult {
    let req = cx.update_request(id, body, Auth::Management);
    let ex = cx.send_settled(req, "an invalid body").await?;
    let (read, after) = cx.read_token(id).await?;
    let after = token_state(&after);
    cx.ensure(
        after == *before,
        || {
            format!(
                "a body with {mutation} changed the token ({}): before {before}, after {after}",
                ex.summary()
            )
        },
        &[&ex, &read],
    )?;
    cx.ensure(
        ex.is_client_error(),
        || {
            format!(
                "a body with {mutation} was answered {} (expected a 4xx)",
                ex.status
            )
        },
        &[&ex],
    )
}
