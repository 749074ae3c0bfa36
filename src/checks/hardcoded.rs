//! `update.hardcoded.*`: factory tokens reject edits, and can still be rotated and deleted.

use reqwest::Method;
use serde_json::{Value, json};

use super::{Cx, token_state};
use crate::client::{Action, Auth, Collection, Request, ResourceId};
use crate::fixtures::listed_unsafe;
use crate::outcome::{CheckResult, Finding};

/// The code the documentation names.
const NON_EDITABLE: &str = "NON_EDITABLE_ACCESS_TOKEN";

/// The factory tokens of the target (`hardcoded_type` non-null and not the docs' `""`).
///
/// The token the run authenticates with is never among them, even when it is a factory
/// token (the legacy "Full-access API token" often is): the run never touches its own token.
/// The `readonly` one comes first, so destructive checks pick it over an `admin` one.
/// A factory token listed with an unsafe id is a failure: no request is built from it. A
/// token that was not a factory token when the run listed the tokens at its start is none.
async fn factory_tokens(cx: &Cx) -> Result<Vec<(ResourceId, Value)>, Finding> {
    let me = cx.send(Request::cma(Method::GET, "/users/me")).await?;
    cx.answered(&me)?;
    let my_id = me
        .data()
        .and_then(|d| d.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            Finding::inconclusive(format!(
                "failed to find which token the run authenticates with: {}",
                me.summary()
            ))
        })?;
    let ex = cx.send(Request::cma(Method::GET, "/access_tokens")).await?;
    cx.answered(&ex)?;
    let tokens: Vec<Value> = ex
        .data()
        .and_then(Value::as_array)
        .ok_or_else(|| {
            Finding::inconclusive(format!("failed to list the tokens: {}", ex.summary()))
        })?
        .iter()
        .filter(|t| {
            t.pointer("/attributes/hardcoded_type")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        })
        .filter(|t| t.get("id").and_then(Value::as_str) != Some(my_id.as_str()))
        .cloned()
        .collect();
    let mut tokens = tokens
        .into_iter()
        .map(|t| match ResourceId::of(&t) {
            Ok(id) => Ok((id, t)),
            Err(err) => Err(Finding::fail(
                listed_unsafe(Collection::AccessTokens, &err),
                &[&ex],
            )),
        })
        .collect::<Result<Vec<_>, Finding>>()?;
    // Only what was a factory token when the run started (when it could list the tokens
    // then): a listing that now calls another token a factory one does not make it a target.
    tokens.retain(|(id, _)| cx.client().factory_at_start(id) != Some(false));
    tokens.sort_by_key(|(_, t)| {
        t.pointer("/attributes/hardcoded_type")
            .and_then(Value::as_str)
            != Some("readonly")
    });
    if tokens.is_empty() {
        return Err(Finding::inconclusive(
            "the target has no factory token (hardcoded_type non-null) to test with",
        ));
    }
    Ok(tokens)
}

/// An update of `token` with its current values but `name`, and its current role sent too:
/// a server that wrongly applies it then changes nothing (without the role it might drop it).
fn body_with(id: &ResourceId, token: &Value, name: &Value) -> Value {
    let attr = |key: &str| {
        token
            .pointer(&format!("/attributes/{key}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let mut body = json!({ "data": { "type": "access_token", "id": id, "attributes": {
        "name": name, "can_access_cda": attr("can_access_cda"),
        "can_access_cda_preview": attr("can_access_cda_preview"), "can_access_cma": attr("can_access_cma") } } });
    if let Some(role) = token
        .pointer("/relationships/role/data")
        .filter(|r| !r.is_null())
    {
        body["data"]["relationships"] = json!({ "role": { "data": role } });
    }
    body
}

/// Each factory token, sent its own current values, answers `NON_EDITABLE_ACCESS_TOKEN` and
/// stays exactly as it was. Where destructive clauses are allowed, a changed name with a
/// flipped `can_access_cda` is tried too (and put back if a non-conformant target applied it).
pub(super) async fn factory_tokens_reject_an_unchanged_update(cx: Cx) -> CheckResult {
    for (id, _) in factory_tokens(&cx).await? {
        let (_, before) = cx.read_token(&id).await?;
        let name = before
            .pointer("/attributes/name")
            .cloned()
            .unwrap_or(Value::Null);
        let mut attempts = vec![body_with(&id, &before, &name)];
        // The same values in a body the schema refuses (no data.type): the factory-token
        // guard answers whatever the body, so this too is NON_EDITABLE_ACCESS_TOKEN, not a
        // validation error; a server that ignored the type would still change nothing.
        let mut invalid = body_with(&id, &before, &name);
        if let Some(data) = invalid.get_mut("data").and_then(Value::as_object_mut) {
            data.remove("type");
        }
        attempts.push(invalid);
        // A changed name and a flipped flag would stay if the target wrongly applied them:
        // destructive. Both, since a guard may run after one column is written and before
        // the other.
        if cx.settings().destructive {
            let changed = format!("{} (conformance probe)", name.as_str().unwrap_or_default());
            let mut body = body_with(&id, &before, &json!(changed));
            if let Some(Value::Bool(flag)) = body.pointer_mut("/data/attributes/can_access_cda") {
                *flag = !*flag;
            }
            attempts.push(body);
        }
        for body in attempts {
            let ex = cx
                .send_settled(
                    cx.update_request(&id, body, Auth::Management),
                    "a factory token's update",
                )
                .await?;
            let (read, after) = cx.read_token(&id).await?;
            if token_state(&after) != token_state(&before) {
                // Put it back before reporting: only what the check changed is touched.
                let _ = cx
                    .send(cx.update_request(&id, body_with(&id, &before, &name), Auth::Management))
                    .await;
                return Err(Finding::fail(
                    format!(
                        "the factory token {id} changed after an update: before {}, after {}",
                        token_state(&before),
                        token_state(&after)
                    ),
                    // The update last: the reproducer is the last exchange, and it is the
                    // update that broke the promise (the read only shows it).
                    &[&read, &ex],
                ));
            }
            cx.ensure(
                !ex.is_success(),
                || {
                    format!(
                        "the factory token {id} accepted an update ({})",
                        ex.summary()
                    )
                },
                &[&ex],
            )?;
            cx.ensure(
                ex.error_code() == Some(NON_EDITABLE),
                || {
                    format!(
                        "the factory token {id} was refused with {}, not {NON_EDITABLE}",
                        crate::text::json_or(ex.error_code(), "no error code")
                    )
                },
                &[&ex],
            )?;
            cx.observed(
                ex.is_client_error(),
                || format!("{NON_EDITABLE} came with status {}, not a 4xx", ex.status),
                &[&ex],
            )?;
        }
    }
    Ok(())
}

/// A factory token can still be rotated (a new secret) and deleted (then it is gone).
/// Destructive (the catalog says so of its clause): the engine runs it only on the embedded
/// server the suite starts itself, or with `--destructive` (a server someone else runs, even
/// on loopback, keeps its factory tokens).
pub(super) async fn factory_token_can_be_rotated_and_deleted(cx: Cx) -> CheckResult {
    let tokens = factory_tokens(&cx).await?;
    let Some((id, _)) = tokens.into_iter().next() else {
        return Err(Finding::inconclusive("the target has no factory token"));
    };
    let (_, before) = cx.read_token(&id).await?;
    let rotate = Request::cma_resource(
        Method::POST,
        Collection::AccessTokens,
        &id,
        Some(Action::RegenerateToken),
    );
    let rotated = cx
        .expect_success(rotate, "rotating a factory token")
        .await?;
    let old = before.pointer("/attributes/token");
    let new = rotated
        .json
        .as_ref()
        .and_then(|j| j.pointer("/data/attributes/token"));
    cx.ensure(
        new.is_some_and(Value::is_string) && new != old,
        || "rotating a factory token did not return a new secret".to_owned(),
        &[&rotated],
    )?;
    let delete = Request::cma_resource(Method::DELETE, Collection::AccessTokens, &id, None);
    // A 404 can be a retried DELETE whose first attempt was applied: the read below decides.
    let deleted = cx.send_settled(delete, "deleting a factory token").await?;
    cx.ensure(
        deleted.is_success() || deleted.status == 404,
        || {
            format!(
                "deleting a factory token was refused: {}",
                deleted.summary()
            )
        },
        &[&deleted],
    )?;
    let gone = cx
        .send(Request::cma_resource(
            Method::GET,
            Collection::AccessTokens,
            &id,
            None,
        ))
        .await?;
    cx.answered(&gone)?;
    cx.ensure(
        gone.status == 404,
        || {
            format!(
                "a deleted factory token can still be read: {}",
                gone.summary()
            )
        },
        &[&deleted, &gone],
    )
}
