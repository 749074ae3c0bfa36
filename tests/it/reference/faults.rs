//! The reference server's faults, driven without sockets through `tower::ServiceExt::oneshot`.
//!
//! One test per family: the same short scenario runs against the conformant server and against
//! a server with each fault of the family, and the answers differ exactly as the fault's
//! description says. Time-based faults (caches, lagging replica, stale node) are asserted by
//! their immediate effect only, never by waiting for them to expire.

use axum::http::Method;
use serde_json::{Value, json};
use token_conformance::faults::{Fault, FaultSet};
use token_conformance::reference::{
    ADMIN_ROLE_NAME, READ_ONLY_ROLE_NAME, READ_ONLY_TOKEN_NAME, RateLimit, ServerConfig,
};

use super::harness::{
    ALL, Api, CMA_ONLY, Flags, Resp, bare, put as put_request, update_body, update_with_role,
};

fn role_of(data: &Value) -> Option<&str> {
    data.pointer("/relationships/role/data/id")
        .and_then(Value::as_str)
}

// ---------------------------------------------------------------------------------------------
// Every fault
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_fault_starts_and_serves() {
    for fault in Fault::ALL {
        let api = Api::faulty(&[*fault]);
        assert_eq!(api.site(&api.admin.clone()).await, 200, "{fault}");
        assert_eq!(api.get("/access_tokens").await.status, 200, "{fault}");
    }
}

// ---------------------------------------------------------------------------------------------
// Families
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn role_faults() {
    /// The role after an update that omits relationships, then after one that sends role `a`;
    /// and the ids of `a`, `b` (the token's role), Admin and Read-only.
    async fn scenario(faults: &[Fault]) -> ([Option<String>; 2], [String; 4]) {
        let api = Api::faulty(faults);
        let a = api.create_role("a", &[]).await;
        let b = api.create_role("b", &[]).await;
        let (id, _) = api.create_token("t", &b, ALL).await;
        let omitted = api.put(&id, &update_body(&id, "t", ALL)).await;
        let sent = api.put(&id, &update_with_role(&id, "t", ALL, &a)).await;
        assert_eq!(role_of(&api.token(&id).await), role_of(sent.data()));
        let roles = [
            a,
            b,
            api.role_named(ADMIN_ROLE_NAME).await,
            api.role_named(READ_ONLY_ROLE_NAME).await,
        ];
        let got = [omitted, sent].map(|r| role_of(r.data()).map(str::to_owned));
        (got, roles)
    }
    let ([omitted, sent], [a, b, ..]) = scenario(&[]).await;
    assert_eq!((omitted, sent), (Some(b), Some(a)));

    let ([omitted, sent], [a, ..]) = scenario(&[Fault::RoleDroppedWhenOmitted]).await;
    assert_eq!((omitted, sent), (None, Some(a)));

    let ([omitted, _], [_, _, admin, _]) = scenario(&[Fault::RoleResetWhenOmitted]).await;
    assert_eq!(omitted, Some(admin));

    let ([_, sent], [_, b, ..]) = scenario(&[Fault::RoleIgnoredWhenSent]).await;
    assert_eq!(sent, Some(b));

    // `a` was created right after Read-only.
    let ([_, sent], [_, _, _, read_only]) = scenario(&[Fault::RoleReassignedWrong]).await;
    assert_eq!(sent, Some(read_only));
}

#[tokio::test]
async fn secret_faults() {
    /// Whether the update shows the same secret, and whether that secret still authenticates.
    async fn scenario(faults: &[Fault]) -> (bool, u16) {
        let api = Api::faulty(faults);
        let (id, secret) = api.plain_token("t", ALL).await;
        let updated = api.put(&id, &update_body(&id, "t2", ALL)).await;
        assert_eq!(updated.status, 200);
        let same = updated.data()["attributes"]["token"] == secret.as_str();
        (same, api.site(&secret).await)
    }
    assert_eq!(scenario(&[]).await, (true, 200));
    assert_eq!(
        scenario(&[Fault::SecretRotatedByUpdate]).await,
        (false, 401)
    );
    assert_eq!(
        scenario(&[Fault::OldSecretRefusedAfterUpdate]).await,
        (true, 401)
    );
}

#[tokio::test]
async fn immediacy_faults() {
    /// The answer to `GET /site` right after revoking `can_access_cma` (after one call while
    /// it was on).
    async fn cma_after_revoke(faults: &[Fault]) -> u16 {
        let api = Api::faulty(faults);
        let (id, secret) = api.plain_token("t", ALL).await;
        assert_eq!(api.site(&secret).await, 200);
        assert_eq!(
            api.put(&id, &update_body(&id, "t", Flags { cma: false, ..ALL }))
                .await
                .status,
            200
        );
        api.site(&secret).await
    }
    assert_eq!(cma_after_revoke(&[]).await, 401);
    assert_eq!(cma_after_revoke(&[Fault::CmaDecisionCached]).await, 200);
    assert_eq!(cma_after_revoke(&[Fault::CmaFlagIgnored]).await, 200);
    assert_eq!(cma_after_revoke(&[Fault::CmaGrantCached]).await, 200);

    /// A grant-only cache lies only when warm: a token granted after a refused call is let in,
    /// and revoked after a granted call it still is.
    async fn cma_after_grant_then_revoke(faults: &[Fault]) -> (u16, u16, u16) {
        let api = Api::faulty(faults);
        let off = Flags { cma: false, ..ALL };
        let (id, secret) = api.plain_token("t", off).await;
        let refused = api.site(&secret).await;
        assert_eq!(api.put(&id, &update_body(&id, "t", ALL)).await.status, 200);
        let granted = api.site(&secret).await;
        assert_eq!(api.put(&id, &update_body(&id, "t", off)).await.status, 200);
        (refused, granted, api.site(&secret).await)
    }
    assert_eq!(cma_after_grant_then_revoke(&[]).await, (401, 200, 401));
    assert_eq!(
        cma_after_grant_then_revoke(&[Fault::CmaGrantCached]).await,
        (401, 200, 200)
    );

    /// The CDA's answer right after revoking `can_access_cda` (after one call while it was on).
    async fn cda_after_revoke(faults: &[Fault]) -> u16 {
        let api = Api::faulty(faults);
        let (id, secret) = api
            .plain_token(
                "t",
                Flags {
                    preview: false,
                    ..ALL
                },
            )
            .await;
        assert_eq!(api.cda_status(&secret, false).await, 200);
        assert_eq!(
            api.put(&id, &update_body(&id, "t", CMA_ONLY)).await.status,
            200
        );
        api.cda_status(&secret, false).await
    }
    assert_eq!(cda_after_revoke(&[]).await, 401);
    assert_eq!(cda_after_revoke(&[Fault::CdaDecisionCached]).await, 200);
    assert_eq!(cda_after_revoke(&[Fault::CdaGrantCached]).await, 200);

    /// Drafts for a token that reads published content only.
    async fn drafts_without_preview(faults: &[Fault]) -> u16 {
        let api = Api::faulty(faults);
        let (_, secret) = api
            .plain_token(
                "t",
                Flags {
                    preview: false,
                    ..ALL
                },
            )
            .await;
        api.cda_status(&secret, true).await
    }
    assert_eq!(drafts_without_preview(&[]).await, 401);
    assert_eq!(
        drafts_without_preview(&[Fault::PreviewFlagIgnored]).await,
        200
    );

    /// A write gated by `can_manage_access_tokens`, right after the token lost that permission
    /// (after one such write while it had it).
    async fn gated_write_after_demotion(faults: &[Fault]) -> u16 {
        let api = Api::faulty(faults);
        let manager = api
            .create_role("manager", &["can_manage_access_tokens"])
            .await;
        let plain = api.create_role("plain", &[]).await;
        let (id, secret) = api.create_token("t", &manager, ALL).await;
        let (other, _) = api.create_token("other", &plain, ALL).await;
        let write = update_body(&other, "other", ALL);
        let uri = format!("/access_tokens/{other}");
        assert_eq!(
            api.call(Method::PUT, &uri, Some(&secret), Some(&write))
                .await
                .status,
            200
        );
        assert_eq!(
            api.put(&id, &update_with_role(&id, "t", ALL, &plain))
                .await
                .status,
            200
        );
        api.call(Method::PUT, &uri, Some(&secret), Some(&write))
            .await
            .status
    }
    assert_eq!(gated_write_after_demotion(&[]).await, 401);
    assert_eq!(
        gated_write_after_demotion(&[Fault::RolePermissionsCached]).await,
        200
    );

    /// Of three calls right after revoking `can_access_cma`, how many were granted.
    async fn granted_of_three_after_revoke(faults: &[Fault]) -> usize {
        let api = Api::faulty(faults);
        let (id, secret) = api.plain_token("t", ALL).await;
        assert_eq!(
            api.put(&id, &update_body(&id, "t", Flags { cma: false, ..ALL }))
                .await
                .status,
            200
        );
        let mut granted = 0;
        for _ in 0..3 {
            granted += usize::from(api.site(&secret).await == 200);
        }
        granted
    }
    assert_eq!(granted_of_three_after_revoke(&[]).await, 0);
    assert_eq!(granted_of_three_after_revoke(&[Fault::StaleNode]).await, 1);
}

#[tokio::test]
async fn hardcoded_faults() {
    /// An update of the factory token with a new name: (status, code, name afterwards), then
    /// the statuses of rotating and deleting it.
    async fn scenario(faults: &[Fault]) -> (u16, String, String, u16, u16) {
        let api = Api::faulty(faults);
        let tokens = api.get("/access_tokens").await;
        let factory = tokens
            .data()
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["attributes"]["name"] == READ_ONLY_TOKEN_NAME)
            .unwrap()
            .clone();
        let id = factory["id"].as_str().unwrap();
        let updated = api
            .put(
                id,
                &update_body(
                    id,
                    "renamed",
                    Flags {
                        preview: false,
                        cma: false,
                        ..ALL
                    },
                ),
            )
            .await;
        let name = api.token(id).await["attributes"]["name"]
            .as_str()
            .unwrap()
            .to_owned();
        let uri = format!("/access_tokens/{id}");
        let rotated = api
            .call(
                Method::POST,
                &format!("{uri}/regenerate_token"),
                Some(&api.admin),
                None,
            )
            .await;
        let deleted = api.call(Method::DELETE, &uri, Some(&api.admin), None).await;
        (
            updated.status,
            updated.code().to_owned(),
            name,
            rotated.status,
            deleted.status,
        )
    }
    let original = READ_ONLY_TOKEN_NAME.to_owned();
    let non_editable = "NON_EDITABLE_ACCESS_TOKEN".to_owned();
    assert_eq!(
        scenario(&[]).await,
        (401, non_editable.clone(), original.clone(), 200, 200)
    );
    assert_eq!(
        scenario(&[Fault::HardcodedAcceptsUpdates]).await,
        (200, String::new(), "renamed".to_owned(), 200, 200)
    );
    assert_eq!(
        scenario(&[Fault::HardcodedWrongCode]).await,
        (
            401,
            "INSUFFICIENT_PERMISSIONS".to_owned(),
            original.clone(),
            200,
            200
        )
    );
    assert_eq!(
        scenario(&[Fault::HardcodedAppliesName]).await,
        (401, non_editable.clone(), "renamed".to_owned(), 200, 200)
    );
    assert_eq!(
        scenario(&[Fault::HardcodedCannotRotate]).await,
        (401, non_editable.clone(), original.clone(), 401, 200)
    );
    assert_eq!(
        scenario(&[Fault::HardcodedCannotDelete]).await,
        (401, non_editable, original, 200, 401)
    );
}

#[tokio::test]
async fn validation_faults() {
    /// One invalid body, made by `break_it` from a valid one that renames the token to
    /// "renamed": the answer and the token afterwards.
    async fn scenario(faults: &[Fault], break_it: fn(&mut Value)) -> (Resp, Value) {
        let api = Api::faulty(faults);
        let (id, _) = api.plain_token("t", ALL).await;
        let mut body = update_body(&id, "renamed", ALL);
        break_it(&mut body);
        let answer = api.put(&id, &body).await;
        (answer, api.token(&id).await)
    }
    let no_cma: fn(&mut Value) = |b| {
        b["data"]["attributes"]
            .as_object_mut()
            .unwrap()
            .remove("can_access_cma");
    };
    let other_type: fn(&mut Value) = |b| b["data"]["type"] = json!("api_token");
    let text_flag: fn(&mut Value) = |b| b["data"]["attributes"]["can_access_cda"] = json!("false");
    let unknown_member: fn(&mut Value) = |b| b["data"]["attributes"]["x_extra"] = json!(1);
    let no_name: fn(&mut Value) = |b| {
        b["data"]["attributes"]
            .as_object_mut()
            .unwrap()
            .remove("name");
    };

    // The conformant server refuses every one of them and changes nothing.
    for break_it in [no_cma, other_type, text_flag, unknown_member, no_name] {
        let (answer, after) = scenario(&[], break_it).await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "INVALID_FORMAT"),
            "{answer:?}"
        );
        assert_eq!(after["attributes"]["name"], "t");
    }

    let (answer, after) = scenario(&[Fault::MissingFlagDefaultsFalse], no_cma).await;
    assert_eq!(answer.status, 200);
    assert_eq!(after["attributes"]["can_access_cma"], false);

    let (answer, after) = scenario(&[Fault::AnyTypeAccepted], other_type).await;
    assert_eq!(
        (answer.status, &after["attributes"]["name"]),
        (200, &json!("renamed"))
    );

    let plural_type: fn(&mut Value) = |b| b["data"]["type"] = json!("access_tokens");
    let (answer, _) = scenario(&[], plural_type).await;
    assert_eq!(answer.status, 422);
    let (answer, after) = scenario(&[Fault::TypeLooselyMatched], plural_type).await;
    assert_eq!(
        (answer.status, &after["attributes"]["name"]),
        (200, &json!("renamed"))
    );
    // Another type altogether is still refused.
    let (answer, _) = scenario(&[Fault::TypeLooselyMatched], other_type).await;
    assert_eq!(answer.status, 422);

    let (answer, after) = scenario(&[Fault::StringTrueCoerced], text_flag).await;
    assert_eq!(
        (answer.status, &after["attributes"]["can_access_cda"]),
        (200, &json!(false))
    );

    let (answer, after) = scenario(&[Fault::UnknownMembersAccepted], unknown_member).await;
    assert_eq!(answer.status, 200);
    assert_eq!(after["attributes"].get("x_extra"), None);

    let (answer, after) = scenario(&[Fault::InvalidPartlyApplied], other_type).await;
    assert_eq!(
        (answer.status, &after["attributes"]["name"]),
        (422, &json!("renamed"))
    );

    let (answer, after) = scenario(&[Fault::InvalidBody5xx], no_name).await;
    assert_eq!(
        (answer.status, answer.code()),
        (500, "INTERNAL_SERVER_ERROR")
    );
    assert_eq!(after["attributes"]["name"], "t");
    // Only a missing member crashes it.
    let (answer, _) = scenario(&[Fault::InvalidBody5xx], other_type).await;
    assert_eq!(answer.status, 422);
}

#[tokio::test]
async fn name_and_flag_faults() {
    /// The stored name and flags after an update with `name` and cda on, preview off.
    async fn scenario(faults: &[Fault], name: &str) -> (u16, Value) {
        let api = Api::faulty(faults);
        let (id, _) = api.plain_token("t", ALL).await;
        let answer = api
            .put(
                &id,
                &update_body(
                    &id,
                    name,
                    Flags {
                        preview: false,
                        ..ALL
                    },
                ),
            )
            .await;
        (answer.status, api.token(&id).await["attributes"].clone())
    }
    let long = "é".repeat(70);
    let (status, stored) = scenario(&[], &long).await;
    assert_eq!(
        (status, stored["name"].as_str().unwrap()),
        (200, long.as_str())
    );
    let (_, stored) = scenario(&[Fault::NameTruncated64], &long).await;
    assert_eq!(stored["name"].as_str().unwrap(), "é".repeat(64));

    let (status, stored) = scenario(&[Fault::NonAsciiName500], "café").await;
    assert_eq!((status, &stored["name"]), (500, &json!("t")));
    let (status, _) = scenario(&[Fault::NonAsciiName500], "cafe").await;
    assert_eq!(status, 200);

    let (_, stored) = scenario(&[], "  spaced \u{3000}").await;
    assert_eq!(stored["name"], "  spaced \u{3000}");
    let (_, stored) = scenario(&[Fault::NameTrimmed], "  spaced \u{3000}").await;
    assert_eq!(stored["name"], "spaced");

    let (_, stored) = scenario(&[], "x").await;
    assert_eq!(
        (&stored["can_access_cda"], &stored["can_access_cda_preview"]),
        (&json!(true), &json!(false))
    );
    let (_, stored) = scenario(&[Fault::FlagsSwapped], "x").await;
    assert_eq!(
        (&stored["can_access_cda"], &stored["can_access_cda_preview"]),
        (&json!(false), &json!(true))
    );
}

#[tokio::test]
async fn update_response_faults() {
    /// The update's `data`, and the same token as a read shows it.
    async fn scenario(faults: &[Fault]) -> (String, Value, Value) {
        let api = Api::faulty(faults);
        let (id, _) = api.plain_token("t", ALL).await;
        let answer = api.put(&id, &update_body(&id, "t2", ALL)).await;
        assert_eq!(answer.status, 200);
        (id.clone(), answer.data().clone(), api.token(&id).await)
    }
    let (id, data, read) = scenario(&[]).await;
    assert_eq!(
        (&data["id"], &data["type"]),
        (&json!(id), &json!("access_token"))
    );
    assert_eq!(data["attributes"]["last_cda_access"], "never");
    assert_eq!(data["attributes"]["can_access_cma"], true);
    assert_eq!(data, read);

    let (_, data, read) = scenario(&[Fault::AttributeMissing]).await;
    assert_eq!(data["attributes"].get("last_cda_access"), None);
    assert_eq!(read["attributes"]["last_cda_access"], "never");

    let (_, data, read) = scenario(&[Fault::BooleanAsString]).await;
    assert_eq!(data["attributes"]["can_access_cma"], "true");
    assert_eq!(read["attributes"]["can_access_cma"], true);

    let (id, data, read) = scenario(&[Fault::DifferentId]).await;
    assert_eq!(data["id"], format!("{id}0"));
    assert_eq!(read["id"], id);

    let (_, data, read) = scenario(&[Fault::WrongResourceType]).await;
    assert_eq!(data["type"], "api_token");
    assert_eq!(read["type"], "access_token");
}

#[tokio::test]
async fn header_and_envelope_faults() {
    /// A success and an error of the CMA, and an error of the CDA.
    async fn scenario(faults: &[Fault]) -> [Resp; 3] {
        let api = Api::faulty(faults);
        let success = api.get("/site").await;
        let error = api.call(Method::GET, "/site", None, None).await;
        let cda_error = api
            .cda(bare(Method::POST, "/").plain_json(&json!({})))
            .await;
        [success, error, cda_error]
    }
    let content_types = |r: &[Resp; 3]| {
        r.each_ref()
            .map(|r| r.header("content-type").unwrap().to_owned())
    };
    let json_utf8 = "application/json; charset=utf-8";

    let conformant = scenario(&[]).await;
    assert_eq!(content_types(&conformant), [json_utf8; 3]);
    assert!(conformant[1].body["data"][0]["attributes"]["code"] == "INVALID_SITE");
    for r in &conformant {
        assert!(
            r.header("x-ratelimit-limit").is_some() && r.header("x-ratelimit-remaining").is_some()
        );
    }

    let html = scenario(&[Fault::HtmlContentType]).await;
    assert_eq!(
        content_types(&html),
        [json_utf8, "text/html; charset=utf-8", json_utf8]
    );
    assert_eq!(html[1].body, conformant[1].body);

    let bare = scenario(&[Fault::NoCharset]).await;
    assert_eq!(content_types(&bare), ["application/json"; 3]);

    let under_errors = scenario(&[Fault::ErrorsUnderErrors]).await;
    assert_eq!(
        under_errors[1].body,
        json!({"errors": conformant[1].body["data"]})
    );
    assert_eq!(under_errors[0].body, conformant[0].body);

    // Only validation and permission errors go wrong: other errors keep the envelope.
    let api = Api::faulty(&[Fault::FieldErrorsUnderErrors]);
    let (id, _) = api.plain_token("t", ALL).await;
    let blank = api.put(&id, &update_body(&id, " ", ALL)).await;
    assert_eq!(blank.status, 422);
    assert_eq!(
        blank.body["errors"][0]["attributes"]["code"],
        "INVALID_FIELD"
    );
    assert!(blank.body.get("data").is_none());
    let other = api.call(Method::GET, "/site", None, None).await;
    assert_eq!(other.body["data"][0]["attributes"]["code"], "INVALID_SITE");

    let no_headers = scenario(&[Fault::NoRateLimitHeaders]).await;
    assert_eq!(no_headers[0].header("x-ratelimit-limit"), None);
    assert_eq!(no_headers[0].header("x-ratelimit-remaining"), None);
    assert!(no_headers[1].header("x-ratelimit-limit").is_some());

    let conformant = limited(&[]).await;
    assert_eq!(
        (conformant.status, conformant.header("x-ratelimit-reset")),
        (429, Some("60"))
    );
    let without_reset = limited(&[Fault::RateLimitWithoutReset]).await;
    assert_eq!(
        (
            without_reset.status,
            without_reset.header("x-ratelimit-reset")
        ),
        (429, None)
    );
    assert_eq!(without_reset.header("x-ratelimit-remaining"), Some("0"));
}

#[tokio::test]
async fn credential_and_lookup_faults() {
    /// An update without credentials: the answer and the token's name afterwards.
    async fn anonymous_update(faults: &[Fault]) -> (u16, String, Value) {
        let api = Api::faulty(faults);
        let (id, _) = api.plain_token("t", ALL).await;
        let body = update_body(&id, "renamed", ALL);
        let answer = api
            .call(
                Method::PUT,
                &format!("/access_tokens/{id}"),
                None,
                Some(&body),
            )
            .await;
        (
            answer.status,
            answer.code().to_owned(),
            api.token(&id).await["attributes"]["name"].clone(),
        )
    }
    assert_eq!(
        anonymous_update(&[]).await,
        (401, "INVALID_SITE".to_owned(), json!("t"))
    );
    assert_eq!(
        anonymous_update(&[Fault::AuthWrongStatus]).await,
        (403, "INVALID_SITE".to_owned(), json!("t"))
    );
    let (status, _, name) = anonymous_update(&[Fault::NoCredentialsAccepted]).await;
    assert_eq!((status, name), (200, json!("renamed")));

    /// An update of an id no token has.
    async fn unknown_id(faults: &[Fault]) -> Resp {
        let api = Api::faulty(faults);
        api.put("9999", &update_body("9999", "x", ALL)).await
    }
    let answer = unknown_id(&[]).await;
    assert_eq!((answer.status, answer.code()), (404, "NOT_FOUND"));
    let answer = unknown_id(&[Fault::UnknownId500]).await;
    assert_eq!(
        (answer.status, answer.code()),
        (500, "INTERNAL_SERVER_ERROR")
    );
    let answer = unknown_id(&[Fault::UnknownIdWrongCode]).await;
    assert_eq!((answer.status, answer.code()), (400, "INVALID_FIELD"));
    assert_eq!(
        answer.body["data"][0]["attributes"]["details"],
        json!({"field": "id", "code": "VALIDATION_INVALID"})
    );

    /// The `token` attribute a caller without `can_manage_access_tokens` reads.
    async fn shown_to_plain_caller(faults: &[Fault]) -> Value {
        let api = Api::faulty(faults);
        let (id, secret) = api.plain_token("t", ALL).await;
        let read = api
            .call(
                Method::GET,
                &format!("/access_tokens/{id}"),
                Some(&secret),
                None,
            )
            .await;
        read.data()["attributes"]["token"].clone()
    }
    assert_eq!(shown_to_plain_caller(&[]).await, Value::Null);
    assert!(
        shown_to_plain_caller(&[Fault::TokenShownToEveryone])
            .await
            .is_string()
    );
}

#[tokio::test]
async fn stale_read_fault() {
    /// The name in the update's answer, then in a read and in the list right after it.
    async fn scenario(faults: &[Fault]) -> [Value; 3] {
        let api = Api::faulty(faults);
        let (id, _) = api.plain_token("t", ALL).await;
        let answer = api.put(&id, &update_body(&id, "renamed", ALL)).await;
        let read = api.token(&id).await;
        let list = api.get("/access_tokens").await;
        let listed = list
            .data()
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id.as_str())
            .unwrap()
            .clone();
        [answer.data(), &read, &listed].map(|d| d["attributes"]["name"].clone())
    }
    assert_eq!(
        scenario(&[]).await,
        [json!("renamed"), json!("renamed"), json!("renamed")]
    );
    assert_eq!(
        scenario(&[Fault::StaleRead]).await,
        [json!("renamed"), json!("t"), json!("t")]
    );
}

#[tokio::test]
async fn forged_bearer_faults() {
    /// `GET /site` with a real secret and with bearers derived from real ones: the names of
    /// those accepted.
    async fn accepted(faults: &[Fault]) -> Vec<&'static str> {
        let api = Api::faulty(faults);
        let (id, old) = api.plain_token("t", ALL).await;
        let (doomed, doomed_secret) = api.plain_token("d", ALL).await;
        let deleted = api
            .call(
                Method::DELETE,
                &format!("/access_tokens/{doomed}"),
                Some(&api.admin),
                None,
            )
            .await;
        assert_eq!(deleted.status, 200, "{deleted:?}");
        let rotated = api
            .call(
                Method::POST,
                &format!("/access_tokens/{id}/regenerate_token"),
                Some(&api.admin),
                None,
            )
            .await;
        let secret = rotated.data()["attributes"]["token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(secret, old);
        let percent: String = secret.bytes().map(|b| format!("%{b:02X}")).collect();
        let bearers = [
            ("real", format!("Bearer {secret}")),
            ("prefix", format!("Bearer {}zzzz", &secret[..8])),
            ("case", format!("Bearer {}", secret.to_ascii_uppercase())),
            ("extended", format!("Bearer {secret}0")),
            ("percent", format!("Bearer {percent}")),
            ("doubled", format!("Bearer Bearer {secret}")),
            (
                "split",
                format!("Bearer {} {}", &secret[..15], &secret[15..]),
            ),
            ("deleted", format!("Bearer {doomed_secret}")),
            ("rotated", format!("Bearer {old}")),
        ];
        let mut accepted = Vec::new();
        for (name, header) in bearers {
            let answer = api
                .cma(bare(Method::GET, "/site").header("authorization", &header))
                .await;
            if answer.status == 200 {
                accepted.push(name);
            } else {
                assert_eq!(
                    (answer.status, answer.code()),
                    (401, "INVALID_AUTHORIZATION_HEADER"),
                    "{name}"
                );
            }
        }
        accepted
    }
    assert_eq!(accepted(&[]).await, ["real"]);
    // An upper-cased secret shares the first 8 characters when they are all digits.
    let mut prefix = accepted(&[Fault::ForgedBearerPrefix]).await;
    prefix.retain(|name| *name != "case");
    assert_eq!(prefix, ["real", "prefix", "extended"]);
    assert_eq!(accepted(&[Fault::ForgedBearerCase]).await, ["real", "case"]);
    assert_eq!(
        accepted(&[Fault::ForgedBearerExtended]).await,
        ["real", "extended"]
    );
    assert_eq!(
        accepted(&[Fault::ForgedBearerPercentDecoded]).await,
        ["real", "percent"]
    );
    assert_eq!(
        accepted(&[Fault::ForgedBearerSchemeStripped]).await,
        ["real", "doubled", "split"]
    );
    assert_eq!(
        accepted(&[Fault::DeletedTokenStillAuthenticates]).await,
        ["real", "deleted"]
    );
    assert_eq!(
        accepted(&[Fault::RotatedSecretStillValid]).await,
        ["real", "rotated"]
    );
}

#[tokio::test]
async fn stale_decision_window_lags_on_one_node_in_three_and_only_within_its_window() {
    /// Three calls right after revoking `can_access_cma` (or `None` if they took so long that
    /// the window may have begun), three at 100 ms (inside it), three at 400 ms (after it):
    /// how many of each were granted.
    async fn granted_after_revoke(faults: &[Fault]) -> (Option<usize>, usize, usize) {
        let api = Api::faulty(faults);
        let (id, secret) = api.plain_token("t", ALL).await;
        let revoked = std::time::Instant::now();
        assert_eq!(
            api.put(&id, &update_body(&id, "t", Flags { cma: false, ..ALL }))
                .await
                .status,
            200
        );
        let three = async || {
            let mut granted = 0;
            for _ in 0..3 {
                granted += usize::from(api.site(&secret).await == 200);
            }
            granted
        };
        let at_once = three().await;
        let at_once = (revoked.elapsed() < std::time::Duration::from_millis(40)).then_some(at_once);
        tokio::time::sleep_until((revoked + std::time::Duration::from_millis(100)).into()).await;
        let inside = three().await;
        tokio::time::sleep_until((revoked + std::time::Duration::from_millis(400)).into()).await;
        (at_once, inside, three().await)
    }
    let (at_once, inside, after) = granted_after_revoke(&[]).await;
    assert!(at_once.is_none_or(|n| n == 0));
    assert_eq!((inside, after), (0, 0));
    let (at_once, inside, after) = granted_after_revoke(&[Fault::StaleDecisionWindow]).await;
    assert!(at_once.is_none_or(|n| n == 0), "{at_once:?}");
    assert_eq!((inside, after), (1, 0));
}

#[tokio::test]
async fn update_semantics_faults_show_only_when_on() {
    /// Whether `fault`'s effect shows in a short scenario against a server with `faults`.
    async fn shows(faults: &[Fault], fault: Fault) -> bool {
        let api = Api::faulty(faults);
        let a = api.create_role("a", &["can_manage_access_tokens"]).await;
        let b = api.create_role("b", &[]).await;
        let (id, secret) = api.create_token("t", &a, ALL).await;
        let name_of = |data: &Value| data["attributes"]["name"].as_str().map(str::to_owned);
        let renamed = update_body(&id, "renamed", ALL);
        match fault {
            Fault::NumericBodyIdAccepted => {
                let mut body = renamed;
                body["data"]["id"] = json!(7);
                api.put(&id, &body).await.status == 200
            }
            Fault::RoleNullAccepted => {
                let mut body = update_with_role(&id, "t", ALL, &b);
                body["data"]["relationships"]["role"]["data"] = Value::Null;
                api.put(&id, &body).await.status == 200
            }
            Fault::NameWhitespaceCollapsed | Fault::NameLowercased => {
                api.put(&id, &update_body(&id, "A  b", ALL)).await.ok(200);
                let expected = if fault == Fault::NameLowercased {
                    "a  b"
                } else {
                    "A b"
                };
                name_of(&api.token(&id).await).as_deref() == Some(expected)
            }
            Fault::PreviewImpliesCda => {
                let flags = Flags { cda: false, ..ALL };
                api.put(&id, &update_body(&id, "t", flags)).await.ok(200);
                api.token(&id).await["attributes"]["can_access_cda"] == true
            }
            Fault::RenameSkippedWhenFlagsUnchanged => {
                api.put(&id, &renamed).await.ok(200);
                name_of(&api.token(&id).await).as_deref() == Some("t")
            }
            Fault::ResponseShowsPreviousValues => {
                let answer = api.put(&id, &renamed).await;
                name_of(answer.data()).as_deref() == Some("t")
                    && name_of(&api.token(&id).await).as_deref() == Some("renamed")
            }
            Fault::RoleSentSkipsAttributes => {
                api.put(&id, &update_with_role(&id, "renamed", ALL, &b))
                    .await
                    .ok(200);
                name_of(&api.token(&id).await).as_deref() == Some("t")
            }
            Fault::ResponseRoleFromRequest => {
                let answer = api.put(&id, &renamed).await;
                role_of(answer.data()).is_none()
                    && role_of(&api.token(&id).await) == Some(a.as_str())
            }
            Fault::CmaFlagOnlyOnReads => {
                let no_cma = Flags { cma: false, ..ALL };
                let (_, writer) = api.create_token("w", &a, no_cma).await;
                let uri = format!("/access_tokens/{id}");
                let answer = api
                    .call(Method::PUT, &uri, Some(&writer), Some(&renamed))
                    .await;
                answer.status == 200
            }
            Fault::CmaDecisionStaleOnce => {
                assert_eq!(api.site(&secret).await, 200);
                api.put(&id, &update_body(&id, "t", Flags { cma: false, ..ALL }))
                    .await
                    .ok(200);
                api.site(&secret).await == 200
            }
            Fault::HardcodedAppliesFlags => {
                let factory = api.token_named(READ_ONLY_TOKEN_NAME).await;
                let factory_id = factory["id"].as_str().unwrap_or_default().to_owned();
                let cda = factory["attributes"]["can_access_cda"] == true;
                let mut body = update_body(&factory_id, READ_ONLY_TOKEN_NAME, ALL);
                body["data"]["attributes"]["can_access_cda"] = json!(!cda);
                assert_eq!(api.put(&factory_id, &body).await.status, 401);
                (api.token(&factory_id).await["attributes"]["can_access_cda"] == true) != cda
            }
            Fault::RenameSpillsToRole => {
                api.put(&id, &renamed).await.ok(200);
                let role = api.get(&format!("/roles/{a}")).await;
                name_of(role.data()).as_deref() == Some("renamed")
            }
            Fault::SecretRotatedOnCmaRevoke => {
                api.put(&id, &update_body(&id, "t", Flags { cma: false, ..ALL }))
                    .await
                    .ok(200);
                api.token(&id).await["attributes"]["token"] != json!(secret)
            }
            other => panic!("no scenario for {other}"),
        }
    }
    for fault in [
        Fault::NumericBodyIdAccepted,
        Fault::RoleNullAccepted,
        Fault::NameWhitespaceCollapsed,
        Fault::NameLowercased,
        Fault::PreviewImpliesCda,
        Fault::RenameSkippedWhenFlagsUnchanged,
        Fault::ResponseShowsPreviousValues,
        Fault::RoleSentSkipsAttributes,
        Fault::ResponseRoleFromRequest,
        Fault::CmaFlagOnlyOnReads,
        Fault::CmaDecisionStaleOnce,
        Fault::HardcodedAppliesFlags,
        Fault::RenameSpillsToRole,
        Fault::SecretRotatedOnCmaRevoke,
    ] {
        assert!(!shows(&[], fault).await, "{fault} shows without the fault");
        assert!(shows(&[fault], fault).await, "{fault} does not show");
    }
}

#[tokio::test]
async fn blind_faults_show_only_when_on() {
    /// Whether `fault`'s effect shows in a short scenario against a server with `faults`.
    async fn shows(faults: &[Fault], fault: Fault) -> bool {
        let api = Api::faulty(faults);
        let a = api.create_role("a", &["can_manage_access_tokens"]).await;
        let b = api.create_role("b", &[]).await;
        let (id, secret) = api.create_token("t", &a, ALL).await;
        let renamed = update_body(&id, "renamed", ALL);
        match fault {
            Fault::FalseFlagsCompacted => {
                let off = Flags { cma: false, ..ALL };
                api.put(&id, &update_body(&id, "t", off)).await.ok(200);
                api.token(&id).await["attributes"]["can_access_cma"] == true
            }
            Fault::PreviewScopeStale => {
                assert_eq!(api.cda_status(&secret, true).await, 200);
                let no_preview = Flags {
                    preview: false,
                    ..ALL
                };
                api.put(&id, &update_body(&id, "t", no_preview))
                    .await
                    .ok(200);
                api.cda_status(&secret, true).await == 200
            }
            Fault::CmaRegrantIgnored => {
                let off = Flags { cma: false, ..ALL };
                api.put(&id, &update_body(&id, "t", off)).await.ok(200);
                assert_eq!(api.site(&secret).await, 401);
                api.put(&id, &update_body(&id, "t", ALL)).await.ok(200);
                api.site(&secret).await == 401
            }
            Fault::HardcodedRoleReassignable => {
                let factory = api.token_named(READ_ONLY_TOKEN_NAME).await;
                let factory_id = factory["id"].as_str().unwrap_or_default().to_owned();
                let flags = Flags {
                    cda: true,
                    preview: false,
                    cma: false,
                };
                let body = update_with_role(&factory_id, READ_ONLY_TOKEN_NAME, flags, &b);
                let answer = api.put(&factory_id, &body).await;
                answer.status == 200 && role_of(&api.token(&factory_id).await) == Some(b.as_str())
            }
            Fault::VisibilityFromUpdatedTokenRole => {
                let (plain, plain_secret) = api.create_token("p", &b, ALL).await;
                let answer = api.put(&plain, &update_body(&plain, "p2", ALL)).await;
                answer.ok(200)["attributes"]["token"] != json!(plain_secret)
            }
            Fault::RoleUpgradeRefused => {
                let (plain, _) = api.create_token("p", &b, ALL).await;
                let answer = api
                    .put(&plain, &update_with_role(&plain, "p", ALL, &a))
                    .await;
                answer.status == 401 && answer.code() == "INSUFFICIENT_PERMISSIONS"
            }
            Fault::VndContentTypeEchoed => {
                let uri = format!("/access_tokens/{id}");
                let answer = api.admin(put_request(&uri).json(&renamed)).await;
                answer.status == 200
                    && answer.header("content-type") == Some("application/vnd.api+json")
            }
            Fault::NoOpUpdate204 => {
                let answer = api.put(&id, &update_body(&id, "t", ALL)).await;
                answer.status == 204 && answer.body == Value::Null
            }
            Fault::NumericNameAsNumber => {
                let answer = api.put(&id, &update_body(&id, "2024", ALL)).await;
                answer.ok(200)["attributes"]["name"] == json!(2024)
            }
            other => panic!("no scenario for {other}"),
        }
    }
    for fault in crate::common::THIRD_BLIND_REVIEW {
        assert!(!shows(&[], fault).await, "{fault} shows without the fault");
        assert!(shows(&[fault], fault).await, "{fault} does not show");
    }

    assert_eq!(limited(&[]).await.code(), "RATE_LIMIT_EXCEEDED");
    let throttled = limited(&[Fault::ThrottleBodyNotEnvelope]).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.body, json!({"error": "Retry later"}));
}

/// The second request in a window of one (a 429), on a server with `faults`.
async fn limited(faults: &[Fault]) -> Resp {
    let api = Api::with(ServerConfig {
        rate_limit: Some(RateLimit {
            requests: 1,
            window: std::time::Duration::from_secs(60),
        }),
        faults: FaultSet::of(faults.iter().copied()),
        ..ServerConfig::default()
    });
    assert_eq!(api.get("/site").await.status, 200);
    api.get("/site").await
}
