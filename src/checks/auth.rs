//! `update.auth` and `update.not_found`: refusals that must change nothing.

use reqwest::Method;
use serde_json::json;

use super::{Cx, token_state};
use crate::fixtures::Flags;
use crate::outcome::{CheckResult, Finding};
use crate::target::{Auth, Collection, Request, ResourceId};

/// Without valid credentials (no header, an unknown token, a forged one, an empty bearer, a
/// token without `can_access_cma`) an update is refused and changes nothing; with valid ones
/// the same update shows. The codes are observed.
pub(super) async fn requests_without_valid_credentials_are_refused(cx: Cx) -> CheckResult {
    let role = cx.role("auth", &["can_manage_access_tokens"]).await?;
    let subject = cx.token("auth-subject", &role, Flags::ALL).await?;
    let no_cma = cx
        .token(
            "auth-nocma",
            &role,
            Flags {
                cma: false,
                ..Flags::ALL
            },
        )
        .await?;
    let (_, before) = cx.read_token(&subject.id).await?;
    let body = json!({ "data": { "type": "access_token", "id": subject.id, "attributes": {
        "name": cx.fixture_name("renamed"), "can_access_cda": false, "can_access_cda_preview": false,
        "can_access_cma": false } } });
    let cases: [(&str, Auth, Option<&str>); 5] = [
        ("no Authorization header", Auth::None, Some("INVALID_SITE")),
        (
            "an unknown token",
            Auth::Raw("Bearer conformance-not-a-token-0000".to_owned()),
            Some("INVALID_AUTHORIZATION_HEADER"),
        ),
        (
            "a forged token (a real secret with its last character changed)",
            cx.forged_auth(&subject),
            Some("INVALID_AUTHORIZATION_HEADER"),
        ),
        ("an empty bearer", Auth::Raw("Bearer ".to_owned()), None),
        (
            "a token without can_access_cma",
            no_cma.auth(),
            Some("INVALID_AUTHORIZATION_HEADER"),
        ),
    ];
    for (what, auth, code) in cases {
        let ex = cx
            .send(cx.update_request(&subject.id, body.clone(), auth))
            .await?;
        let (read, after) = cx.read_token(&subject.id).await?;
        cx.ensure(
            token_state(&after) == token_state(&before),
            || {
                format!(
                    "an update with {what} changed the token: before {}, after {}",
                    token_state(&before),
                    token_state(&after)
                )
            },
            &[&ex, &read],
        )?;
        cx.answered(&ex)?;
        cx.ensure(
            !ex.is_success(),
            || format!("an update with {what} was accepted ({})", ex.summary()),
            &[&ex],
        )?;
        cx.observed(
            ex.status == 401,
            || format!("an update with {what} answered {}, observed 401", ex.status),
            &[&ex],
        )?;
        if let Some(code) = code {
            cx.observed(
                ex.error_code() == Some(code),
                || {
                    format!(
                        "an update with {what} answered code {:?}, observed {code}",
                        ex.error_code()
                    )
                },
                &[&ex],
            )?;
        }
    }
    // "Changes nothing" means something only where an update can change something: the same
    // update with valid credentials must show on a fresh read (a target that stores nothing
    // passes every refusal above).
    let ex = cx
        .expect_success(
            cx.update_request(&subject.id, body, Auth::Management),
            "the same update with valid credentials",
        )
        .await?;
    let (read, after) = cx.read_token(&subject.id).await?;
    cx.ensure(
        token_state(&after) != token_state(&before),
        || {
            "the same update with valid credentials succeeded but a fresh read shows the token unchanged: \
             the target does not store updates, so that refused updates changed nothing shows nothing"
                .to_owned()
        },
        &[&ex, &read],
    )
}

/// An unknown id: never a success, never a server error; 404 `NOT_FOUND` (observed).
pub(super) async fn unknown_id_is_not_found(cx: Cx) -> CheckResult {
    let mut id = None;
    for n in 0..5u64 {
        let candidate = ResourceId::parse(&format!(
            "9{}",
            (cx.settings().seed.wrapping_add(n) % 1_000_000_000) + 8_000_000_000
        ))
        .map_err(|err| Finding::inconclusive(format!("a bug in token-conformance: {err}")))?;
        let probe = cx
            .send(Request::cma_resource(
                Method::GET,
                Collection::AccessTokens,
                &candidate,
                None,
            ))
            .await?;
        if !probe.is_success() {
            id = Some(candidate);
            break;
        }
    }
    let id = id.ok_or_else(|| Finding::inconclusive("failed to find an id that no token has"))?;
    let body = json!({ "data": { "type": "access_token", "id": id, "attributes": {
        "name": cx.fixture_name("missing"), "can_access_cda": true, "can_access_cda_preview": true, "can_access_cma": true } } });
    let req = cx.update_request(&id, body, Auth::Management);
    let ex = cx.send_settled(req, "an unknown id").await?;
    cx.ensure(
        !ex.is_success(),
        || format!("updating an unknown id succeeded ({})", ex.summary()),
        &[&ex],
    )?;
    cx.ensure(
        ex.status < 500,
        || {
            format!(
                "an unknown id gets a server error, 3 times out of 3 ({})",
                ex.summary()
            )
        },
        &[&ex],
    )?;
    cx.observed(
        ex.status == 404 && ex.error_code() == Some("NOT_FOUND"),
        || {
            format!(
                "an unknown id answered {} {:?}, observed 404 NOT_FOUND",
                ex.status,
                ex.error_code()
            )
        },
        &[&ex],
    )
}
