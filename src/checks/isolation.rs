//! `update.isolation`: an update changes only the addressed token. After each successful
//! update, every token the run knows (the addressed one, a bystander sharing its role, one
//! with another role, the factory tokens it read) reads as the model predicts; after them the
//! roles involved read as created.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use super::Cx;
use crate::client::{Exchange, Request};
use crate::fixtures::{Flags, RoleFx, TokenFx};
use crate::model::{Model, Role, Secret, Surfaces, Token, Update};
use crate::outcome::{CheckResult, Finding};

/// `GET /access_tokens` as the management token: the exchange and its entries.
pub(super) async fn list_tokens(cx: &Cx) -> Result<(Exchange, Vec<Value>), Finding> {
    let ex = cx.send(Request::cma(Method::GET, "/access_tokens")).await?;
    cx.answered(&ex)?;
    let entries = ex
        .data()
        .and_then(Value::as_array)
        .filter(|_| ex.is_success())
        .cloned()
        .ok_or_else(|| {
            Finding::inconclusive(format!("failed to list the tokens: {}", ex.summary()))
        })?;
    Ok((ex, entries))
}

/// The entry of token `id` in a list.
pub(super) fn entry<'a>(entries: &'a [Value], id: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|e| e.get("id").and_then(Value::as_str) == Some(id))
}

/// The model of a fixture token as created.
pub(super) fn fixture_model(token: &TokenFx, role: &RoleFx) -> Token {
    Token {
        name: token.name.clone(),
        surfaces: surfaces(token.flags),
        role: Some(role.id.to_string()),
        secret: Secret::Known,
        hardcoded: None,
    }
}

/// The model's flags from the fixtures'.
pub(super) fn surfaces(flags: Flags) -> Surfaces {
    Surfaces {
        cda: flags.cda,
        cda_preview: flags.cda_preview,
        cma: flags.cma,
    }
}

/// The JSON body of a model update of token `id`.
pub(super) fn update_body(id: &str, update: &Update) -> Value {
    let mut body = json!({ "data": { "type": "access_token", "id": id, "attributes": {
        "name": update.name,
        "can_access_cda": update.surfaces.cda,
        "can_access_cda_preview": update.surfaces.cda_preview,
        "can_access_cma": update.surfaces.cma } } });
    if let Some(role) = &update.role {
        body["data"]["relationships"] =
            json!({ "role": { "data": { "type": "role", "id": role } } });
    }
    body
}

/// Creates three tokens over two roles and updates one of them twice (once keeping its role,
/// once moving it): after each update the list shows every token the run knows as the model
/// says. The bystander that shares the addressed token's role is the one a write keyed by
/// role instead of by id would reach.
pub(super) async fn an_update_changes_only_the_addressed_token(cx: Cx) -> CheckResult {
    let shared = cx.role("iso-shared", &[]).await?;
    let other_role = cx.role("iso-other", &[]).await?;
    cx.distinct_ids(
        "roles",
        [shared.id.as_str(), other_role.id.as_str()],
        "a write reaching another role's token cannot be told apart",
    )?;
    let target = cx.token("iso-target", &shared, Flags::ALL).await?;
    let sibling = cx.token("iso-sibling", &shared, Flags::ALL).await?;
    let bystander = cx.token("iso-bystander", &other_role, Flags::ALL).await?;
    let fixtures = [
        (&target, &shared),
        (&sibling, &shared),
        (&bystander, &other_role),
    ];
    cx.distinct_ids(
        "tokens",
        fixtures.iter().map(|(t, _)| t.id.as_str()),
        "a write reaching a second token cannot be told apart",
    )?;
    let mut model = Model::new();
    for role in [&shared, &other_role] {
        model.add_role(role.id.as_str(), Role::default());
    }
    let mut held = BTreeMap::new();
    let mut labels = BTreeMap::new();
    for ((token, role), label) in fixtures.iter().zip([
        "the updated token",
        "a bystander of its role",
        "a bystander of another role",
    ]) {
        model.add_token(token.id.as_str(), fixture_model(token, role));
        held.insert(token.id.to_string(), token.secret.clone());
        labels.insert(token.id.to_string(), label.to_owned());
    }
    // The factory tokens, as the run first reads them.
    let (first, entries) = list_tokens(&cx).await?;
    for e in &entries {
        let id = e.get("id").and_then(Value::as_str).unwrap_or_default();
        if let Some(token) = Model::token_from_resource(e).filter(|t| t.hardcoded.is_some())
            && model.token(id).is_none()
        {
            labels.insert(id.to_owned(), format!("the factory token {id}"));
            model.add_token(id, token);
        }
    }
    compare(
        &cx,
        &model,
        &held,
        &labels,
        &entries,
        "after creating them",
        &[&first],
        None,
    )?;
    let updates = [
        Update {
            name: format!("{}-2", target.name),
            surfaces: Surfaces {
                cda: false,
                cda_preview: false,
                cma: true,
            },
            role: None,
        },
        Update {
            name: format!("{}-3", target.name),
            surfaces: Surfaces {
                cda: true,
                cda_preview: false,
                cma: false,
            },
            role: Some(other_role.id.to_string()),
        },
    ];
    for update in &updates {
        let expect = model.update(target.id.as_str(), update);
        let body = update_body(target.id.as_str(), update);
        let ex = cx
            .expect_success(
                cx.update_request(&target.id, body, crate::client::Auth::Management),
                "update the token",
            )
            .await?;
        cx.ensure(
            expect.admits(ex.status),
            || {
                format!(
                    "the model expects {expect}, the update got {}",
                    ex.summary()
                )
            },
            &[&ex],
        )?;
        let what = format!(
            "after an update of token {} ({})",
            target.id,
            if update.role.is_some() {
                "relationships.role sent"
            } else {
                "relationships omitted"
            }
        );
        let (read, entries) = list_tokens(&cx).await?;
        compare(
            &cx,
            &model,
            &held,
            &labels,
            &entries,
            &what,
            &[&ex, &read],
            None,
        )?;
    }
    body_naming_another_token(&cx, &model, &held, &labels, &target, &bystander).await?;
    roles_read_as_created(&cx, &[&shared, &other_role]).await
}

/// An update of `target` whose body's `data.id` names `bystander`: the path names the token
/// updated, so the bystander reads as before, whatever the answer (a refusal for the
/// mismatch, or an update of the path's token). Whether the path's token was updated is
/// `update.applies`'s business: after a success it is not compared.
async fn body_naming_another_token(
    cx: &Cx,
    model: &Model,
    held: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
    target: &TokenFx,
    bystander: &TokenFx,
) -> CheckResult {
    let update = Update {
        name: format!("{}-4", target.name),
        surfaces: Surfaces {
            cda: false,
            cda_preview: true,
            cma: false,
        },
        role: None,
    };
    let mut body = update_body(target.id.as_str(), &update);
    body["data"]["id"] = json!(bystander.id);
    let ex = cx
        .send_settled(
            cx.update_request(&target.id, body, crate::client::Auth::Management),
            "an update whose body names another token",
        )
        .await?;
    cx.answered(&ex)?;
    let skip = ex.is_success().then_some(target.id.as_str());
    let what = format!(
        "after an update of token {} whose body's data.id names token {} ({})",
        target.id,
        bystander.id,
        ex.summary()
    );
    let (read, entries) = list_tokens(cx).await?;
    compare(
        cx,
        model,
        held,
        labels,
        &entries,
        &what,
        &[&ex, &read],
        skip,
    )
}

/// After the updates, the roles involved read as they were created: a token update is not
/// a role update (a write of the token's join with its role would rename the role).
async fn roles_read_as_created(cx: &Cx, roles: &[&RoleFx]) -> CheckResult {
    let ex = cx.send(Request::cma(Method::GET, "/roles")).await?;
    cx.answered(&ex)?;
    let entries = ex
        .data()
        .and_then(Value::as_array)
        .filter(|_| ex.is_success())
        .ok_or_else(|| {
            Finding::inconclusive(format!("failed to list the roles: {}", ex.summary()))
        })?;
    let mut problems = Vec::new();
    for role in roles {
        let Some(listed) = entry(entries, role.id.as_str()) else {
            problems.push(format!("role {} is missing from the list", role.id));
            continue;
        };
        for (name, sent) in role.attributes.as_object().into_iter().flatten() {
            let got = listed.pointer(&format!("/attributes/{name}"));
            if got != Some(sent) {
                problems.push(format!(
                    "role {} has {name} = {}, created with {sent}",
                    role.id,
                    got.map_or_else(|| "(absent)".to_owned(), Value::to_string)
                ));
            }
        }
    }
    cx.ensure(
        problems.is_empty(),
        || {
            format!(
                "after updates of token fields only, roles changed (an update changes only the addressed token): {}",
                problems.join("; ")
            )
        },
        &[&ex],
    )
}

/// Every token of the model (but `skip`) against a list. Factory tokens are compared without
/// their secret (the destructive clause may rotate one meanwhile); one gone from the list is
/// a violation unless destructive clauses run beside this check (one of them deletes it).
#[allow(clippy::too_many_arguments)]
fn compare(
    cx: &Cx,
    model: &Model,
    held: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
    entries: &[Value],
    when: &str,
    evidence: &[&Exchange],
    skip: Option<&str>,
) -> CheckResult {
    let mut problems = Vec::new();
    for id in model.token_ids().filter(|id| Some(*id) != skip) {
        let label = labels.get(id).map_or(id, String::as_str);
        let factory = model.token(id).is_some_and(|t| t.hardcoded.is_some());
        match entry(entries, id) {
            None if factory && cx.settings().destructive => {}
            None => problems.push(format!("{label} ({id}) is missing from the list")),
            Some(data) => {
                let mismatches = model.mismatches(id, data, held.get(id).map(String::as_str));
                if !mismatches.is_empty() {
                    problems.push(format!("{label} ({id}): {}", mismatches.join(", ")));
                }
            }
        }
    }
    cx.ensure(
        problems.is_empty(),
        || {
            format!(
                "{when}, tokens do not read as the model predicts (an update changes only the addressed token): {}",
                problems.join("; ")
            )
        },
        evidence,
    )
}
