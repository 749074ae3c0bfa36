//! `update.response.schema` and `update.applies`: what a successful update returns and stores.

use serde_json::{Value, json};

use super::{Cx, role_id};
use crate::client::{Auth, ResourceId};
use crate::fixtures::{Flags, TokenFx};
use crate::outcome::{CheckResult, Finding};
use crate::spec::SchemaId;

/// A success returns an `access_token` resource matching the schema, with `id` equal to the
/// path id and `hardcoded_type` null (the docs' `""` is tolerated, but only outside strict).
/// Besides the generated updates, under every budget: an update that changes nothing (the
/// token as created: a no-op is still an update, answered with the resource) and a name of
/// digits (a serializer that types strings by their look answers it as a number).
pub(super) async fn success_matches_the_resource_schema(cx: Cx) -> CheckResult {
    // Generated bodies move the token between two roles; under the staging budget, whose one
    // generated case shows the answer's shape as well with one role, the second role's create
    // and delete pay for the two fixed updates instead.
    let mut roles = vec![cx.role("schema-a", &[]).await?];
    if !cx.settings().budget.staging {
        roles.push(cx.role("schema-b", &[]).await?);
    }
    let token = cx.token("schema", &roles[0], Flags::ALL).await?;
    // The token as created, then renamed to digits. The name has no fixture marker while it
    // is digits: the generated updates that follow rename it, and cleanup deletes the token by
    // the id it was created with.
    for name in [token.name.clone(), digit_name(&token.name)] {
        let body = json!({ "data": { "type": "access_token", "id": token.id, "attributes": {
            "name": name, "can_access_cda": true, "can_access_cda_preview": true, "can_access_cma": true } } });
        answer_matches_the_schema(&cx, &token, body).await?;
    }
    let fixture = token.clone();
    cx.each_valid_update(&token, &roles, move |cx, body| {
        let token = fixture.clone();
        async move { answer_matches_the_schema(&cx, &token, body).await }
    })
    .await
}

/// A name of 18 digits, from `name` (the fixture name, unique to the run), so that two runs
/// on one target do not share it.
fn digit_name(name: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:018}", hash % 1_000_000_000_000_000_000)
}

/// Send `body` as an update of `token`: the answer must be a success with the resource, as
/// the schema describes it.
async fn answer_matches_the_schema(cx: &Cx, token: &TokenFx, body: Value) -> CheckResult {
    let ex = cx
        .expect_success(
            cx.update_request(&token.id, body, Auth::Management),
            "update",
        )
        .await?;
    let Some(json) = ex.json.as_ref() else {
        return Err(Finding::fail("the success body is not JSON", &[&ex]));
    };
    if let Err(violations) = cx.spec().schemas().validate(SchemaId::AccessToken, json) {
        let list: Vec<String> = violations.iter().take(5).map(ToString::to_string).collect();
        return Err(Finding::fail(
            format!(
                "the response does not match the access_token resource schema:\n  {}",
                list.join("\n  ")
            ),
            &[&ex],
        ));
    }
    let id = json
        .pointer("/data/id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    cx.ensure(
        id == token.id,
        || {
            format!(
                "data.id is {}, the path id is {}",
                crate::text::json_str(id),
                crate::text::json_str(&token.id)
            )
        },
        &[&ex],
    )?;
    match json.pointer("/data/attributes/hardcoded_type") {
        Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => cx.observed(
            false,
            || {
                "hardcoded_type is \"\" on a token created through the API (documented: null)"
                    .to_owned()
            },
            &[&ex],
        )?,
        other => cx.ensure(
            false,
            || {
                format!(
                    "hardcoded_type is {} on a token created through the API (documented: null)",
                    other.map_or_else(|| "absent".to_owned(), Value::to_string)
                )
            },
            &[&ex],
        )?,
    }
    cx.observed(
        ex.status == 200,
        || {
            format!(
                "an update answered {} (the documentation shows 200)",
                ex.status
            )
        },
        &[&ex],
    )
}

/// Name and flags (and the role, when sent) are stored exactly as sent: in the response and
/// on a fresh read.
pub(super) async fn attributes_are_stored_as_sent(cx: Cx) -> CheckResult {
    let roles = [
        cx.role("applies-a", &[]).await?,
        cx.role("applies-b", &[]).await?,
    ];
    let token = cx.token("applies", &roles[0], Flags::ALL).await?;
    // A long name first, under every budget (generated names are rarely long when cases are
    // few): past the 64 and 100 characters a narrow column would hold, with letters outside
    // ASCII and the BMP, capitals (a name folded to lower case) and two spaces in a row (inner
    // whitespace collapsed), a letter with a combining mark (a name normalised to NFC), the
    // HTML metacharacters (a name escaped on input), ending in a space (a name trimmed). No
    // maximum length is documented.
    for (label, fill) in [("long", "Abc  Été日本語🙂ß e\u{301}&<>\"' ")] {
        let mut long = cx.fixture_name(label);
        while long.chars().count() < 130 {
            long.push_str(fill);
        }
        let body = json!({ "data": { "type": "access_token", "id": token.id, "attributes": {
            "name": long, "can_access_cda": true, "can_access_cda_preview": true,
            "can_access_cma": true } } });
        stored_as_sent(&cx, &token.id, body).await?;
    }
    // ...then every combination of the three flags once, each with a role sent and without...
    let name = cx.fixture_name("flags");
    for combination in 0..8u8 {
        let flag = |bit: u8| combination & bit != 0;
        let mut body = json!({ "data": { "type": "access_token", "id": token.id, "attributes": {
            "name": name, "can_access_cda": flag(1), "can_access_cda_preview": flag(2),
            "can_access_cma": flag(4) } } });
        if combination % 2 == 1 {
            body["data"]["relationships"] = json!({ "role": { "data": roles[1].reference() } });
        }
        stored_as_sent(&cx, &token.id, body).await?;
    }
    // ...then generated bodies: names from all of Unicode, roles or none.
    let fixture = token.clone();
    cx.each_valid_update(&token, &roles, move |cx, body| {
        let token = fixture.clone();
        async move { stored_as_sent(&cx, &token.id, body).await }
    })
    .await
}

/// Send `body` as an update of `id`: every attribute (and the role, when sent) must come
/// back as sent, in the response and on a fresh read.
async fn stored_as_sent(cx: &Cx, id: &ResourceId, body: Value) -> CheckResult {
    let ex = cx
        .expect_success(
            cx.update_request(id, body.clone(), Auth::Management),
            "update",
        )
        .await?;
    let (read, data) = cx.read_token(id).await?;
    for (what, resource, evidence) in [
        ("the response", ex.data(), &ex),
        ("a fresh read", Some(&data), &read),
    ] {
        let Some(resource) = resource else {
            return Err(Finding::fail(format!("{what} has no data"), &[&ex]));
        };
        for attr in [
            "name",
            "can_access_cda",
            "can_access_cda_preview",
            "can_access_cma",
        ] {
            let sent = body.pointer(&format!("/data/attributes/{attr}"));
            let got = resource.pointer(&format!("/attributes/{attr}"));
            cx.ensure(
                sent == got,
                || format!("{attr} in {what} is {}, sent {}", show(got), show(sent)),
                &[&ex, evidence],
            )?;
        }
        if let Some(sent_role) = body
            .pointer("/data/relationships/role/data/id")
            .and_then(Value::as_str)
        {
            let got = role_id(resource);
            cx.ensure(
                got == Some(sent_role),
                || {
                    format!(
                        "the role in {what} is {}, sent {}",
                        crate::text::json_or(got, "absent"),
                        crate::text::json_str(sent_role)
                    )
                },
                &[&ex, evidence],
            )?;
        }
    }
    Ok(())
}

/// A JSON value for messages (`(absent)` when missing).
pub(super) fn show(value: Option<&Value>) -> String {
    value.map_or_else(|| "(absent)".to_owned(), Value::to_string)
}
