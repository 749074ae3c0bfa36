//! `update.auth` and `update.not_found`: refusals that must change nothing.
//!
//! Over 500 lines on purpose: the forged bearers (each derived from a real secret, each
//! followed by the read that proves nothing changed) belong with the clause they test.

use reqwest::Method;
use serde_json::{Value, json};

use super::{Cx, token_state};
use crate::client::{Action, Auth, Collection, Exchange, Request, ResourceId};
use crate::fixtures::{Flags, TokenFx};
use crate::outcome::{CheckResult, Finding};

/// Without valid credentials (no header, an unknown token, a forged one, an empty bearer, a
/// token without `can_access_cma`) an update is refused and changes nothing; nor may a valid
/// token whose role lacks `can_manage_access_tokens` update anyone, itself included (an
/// update of its own token to a role that has the permission is an escalation), and its
/// refusal must change nothing either (a permission checked after the write refuses an update
/// it has already applied). With valid credentials the same update shows. The codes are
/// observed.
pub(super) async fn requests_without_valid_credentials_are_refused(cx: Cx) -> CheckResult {
    let role = cx.role("auth", &["can_manage_access_tokens"]).await?;
    let plain = cx.role("auth-plain", &[]).await?;
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
    let unprivileged = cx.token("auth-plain", &plain, Flags::ALL).await?;
    let (_, before) = cx.read_token(&subject.id).await?;
    let body = |name: &str| {
        json!({ "data": { "type": "access_token", "id": subject.id, "attributes": {
        "name": name, "can_access_cda": false, "can_access_cda_preview": false,
        "can_access_cma": false } } })
    };
    let cases: [(&str, Auth, Option<&str>); 6] = [
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
        (
            "a token whose role lacks can_manage_access_tokens",
            unprivileged.auth(),
            Some("INSUFFICIENT_PERMISSIONS"),
        ),
    ];
    // Each refused update carries a name of its own, so that one read after them all (under
    // the staging budget) still names the one that changed the token.
    let each = cx.settings().budget.every_forged_probe;
    let mut sent: Vec<(&str, String, Exchange)> = Vec::with_capacity(cases.len());
    for (n, (what, auth, code)) in cases.into_iter().enumerate() {
        let name = cx.fixture_name(&format!("refused-{n}"));
        let ex = refused(&cx, &subject, body(&name), what, auth, code).await?;
        sent.push((what, name, ex));
        if each {
            reads_as_before(&cx, &subject, &before, &sent[sent.len() - 1..]).await?;
        }
    }
    if !each {
        reads_as_before(&cx, &subject, &before, &sent).await?;
    }
    // The same token updating itself: renamed, and moved to the role that may manage tokens.
    let (_, own_before) = cx.read_token(&unprivileged.id).await?;
    let name = cx.fixture_name("escalated");
    let escalation = json!({ "data": { "type": "access_token", "id": unprivileged.id,
        "attributes": { "name": name, "can_access_cda": true,
            "can_access_cda_preview": true, "can_access_cma": true },
        "relationships": { "role": { "data": role.reference() } } } });
    let what = "the token's own secret, its role lacking can_manage_access_tokens (moving itself \
                to a role that has it)";
    let ex = refused(
        &cx,
        &unprivileged,
        escalation,
        what,
        unprivileged.auth(),
        Some("INSUFFICIENT_PERMISSIONS"),
    )
    .await?;
    reads_as_before(&cx, &unprivileged, &own_before, &[(what, name, ex)]).await?;
    // "Changes nothing" means something only where an update can change something: the same
    // update with valid credentials must show on a fresh read (a target that stores nothing
    // passes every refusal above).
    let ex = cx
        .expect_success(
            cx.update_request(
                &subject.id,
                body(&cx.fixture_name("renamed")),
                Auth::Management,
            ),
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

/// An update of `subject` sent with `auth` must be refused (4xx; observed: 401 and `code`).
/// Whether it changed nothing is for a read after it ([`reads_as_before`]).
async fn refused(
    cx: &Cx,
    subject: &TokenFx,
    body: Value,
    what: &str,
    auth: Auth,
    code: Option<&str>,
) -> Result<Exchange, Finding> {
    let ex = cx.send(cx.update_request(&subject.id, body, auth)).await?;
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
                    "an update with {what} answered {}, observed {code}",
                    crate::text::json_or(ex.error_code(), "no error code")
                )
            },
            &[&ex],
        )?;
    }
    Ok(ex)
}

/// Bearers derived from real secrets are all refused, and refused without side effects: the
/// secret with its last character changed, cut by one, extended by one, its first half with
/// another tail, in other letter case, percent-encoded, after a doubled scheme, split in two by
/// a space, and the secret of a deleted token and of a rotated-away one. Each is sent as an
/// update that would change a fixture, which must then read as before, and on `GET /site`.
///
/// A lower-case scheme and extra spaces around a real secret are the same credential by
/// RFC 7235 (the scheme is case-insensitive) and RFC 6750 (`Bearer 1*SP token`); the
/// documentation shows `Bearer <token>` and says nothing either way, so those are recorded (a
/// refusal is a warning), not asserted.
pub(super) async fn bearers_derived_from_real_secrets_are_refused_and_change_nothing(
    cx: Cx,
) -> CheckResult {
    let role = cx.role("forged", &["can_manage_access_tokens"]).await?;
    let caller = cx.token("forged-caller", &role, Flags::ALL).await?;
    let subject = cx.token("forged-subject", &role, Flags::ALL).await?;
    let deleted = cx.token("forged-deleted", &role, Flags::ALL).await?;
    cx.distinct_ids(
        "tokens",
        [caller.id.as_str(), subject.id.as_str(), deleted.id.as_str()],
        "what a forged bearer did to the fixture cannot be told from what was done to its source",
    )?;
    let secret = rotate(&cx, &caller).await?;
    let gone = cx
        .send_settled(
            Request::cma_resource(Method::DELETE, Collection::AccessTokens, &deleted.id, None),
            "deleting a fixture token",
        )
        .await?;
    if !(gone.is_success() || gone.status == 404) {
        return Err(Finding::inconclusive(format!(
            "failed to delete a fixture token, so the secret of a deleted token cannot be tried: {}",
            gone.summary()
        )));
    }
    let mut forged = derived_bearers(&cx, &caller, &secret)?;
    forged.push(Forged {
        what: "the secret of a deleted token",
        auth: deleted.auth(),
        always_on_site: true,
    });
    forged.push(Forged {
        what: "a rotated-away secret (the token's secret before its rotation)",
        auth: caller.auth(),
        always_on_site: true,
    });

    let (_, before) = cx.read_token(&subject.id).await?;
    let each = cx.settings().budget.every_forged_probe;
    let mut sent: Vec<(&str, String, Exchange)> = Vec::with_capacity(forged.len());
    for (n, bearer) in forged.iter().enumerate() {
        let name = cx.fixture_name(&format!("forged-{n}"));
        let ex = cx
            .send(cx.update_request(&subject.id, flags_off(&subject, &name), bearer.auth.clone()))
            .await?;
        cx.answered(&ex)?;
        cx.ensure(
            !ex.is_success(),
            || {
                format!(
                    "an update with {} was accepted ({}): the target takes it for a real credential",
                    bearer.what,
                    ex.summary()
                )
            },
            &[&ex],
        )?;
        cx.observed(
            ex.status == 401 && ex.error_code() == Some("INVALID_AUTHORIZATION_HEADER"),
            || {
                format!(
                    "an update with {} answered {} {}, observed 401 INVALID_AUTHORIZATION_HEADER",
                    bearer.what,
                    ex.status,
                    crate::text::json_or(ex.error_code(), "with no error code")
                )
            },
            &[&ex],
        )?;
        sent.push((bearer.what, name, ex));
        if each {
            reads_as_before(&cx, &subject, &before, &sent[sent.len() - 1..]).await?;
        }
        if each || bearer.always_on_site {
            refused_on_site(&cx, bearer).await?;
        }
    }
    if !each {
        reads_as_before(&cx, &subject, &before, &sent).await?;
    }
    if each {
        record_equivalent_forms(&cx, &secret).await?;
    }

    // The bearers were derived from a secret that works: the same update with it succeeds
    // (else every refusal above shows nothing).
    let control = cx
        .send(cx.update_request(
            &subject.id,
            flags_off(&subject, &cx.fixture_name("forged-control")),
            Auth::Token {
                secret,
                label: rotated_label(&caller),
            },
        ))
        .await?;
    cx.answered(&control)?;
    if !control.is_success() {
        return Err(Finding::inconclusive(format!(
            "the update with the real secret the forged bearers were derived from was refused ({}), so their refusals show nothing",
            control.summary()
        )));
    }
    Ok(())
}

/// A bearer derived from a real one, and whether `GET /site` is tried with it under every
/// budget (the deleted and rotated-away secrets: a target may authenticate them and only
/// fail to authorize the update).
struct Forged {
    what: &'static str,
    auth: Auth,
    always_on_site: bool,
}

/// An update of `token` to `name` with every surface flag off: anything it applies shows.
fn flags_off(token: &TokenFx, name: &str) -> Value {
    json!({ "data": { "type": "access_token", "id": token.id, "attributes": {
        "name": name, "can_access_cda": false, "can_access_cda_preview": false,
        "can_access_cma": false } } })
}

fn rotated_label(token: &TokenFx) -> String {
    format!("$FIXTURE_TOKEN_{}_ROTATED", token.id)
}

/// Rotate `token` (a fixture of this check), and return its new secret, registered for
/// redaction. Its old secret is now a rotated-away one.
async fn rotate(cx: &Cx, token: &TokenFx) -> Result<String, Finding> {
    let rotated = cx
        .send_settled(
            Request::cma_resource(
                Method::POST,
                Collection::AccessTokens,
                &token.id,
                Some(Action::RegenerateToken),
            ),
            "rotating a fixture token",
        )
        .await?;
    cx.answered(&rotated)?;
    let secret = rotated
        .json
        .as_ref()
        .filter(|_| rotated.is_success())
        .and_then(|j| j.pointer("/data/attributes/token"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            Finding::inconclusive(format!(
                "rotating a fixture token gave no new secret, so a rotated-away secret cannot be tried: {}",
                rotated.summary()
            ))
        })?;
    cx.client()
        .secrets()
        .register_always(&secret, &rotated_label(token));
    if secret == token.secret {
        return Err(Finding::inconclusive(
            "rotating a fixture token gave back the same secret, so a rotated-away secret cannot be tried",
        ));
    }
    Ok(secret)
}

/// The shortest secret bearers are derived from: shorter ones leave too little to vary.
const MIN_DERIVED_FROM: usize = 8;

/// Bearers derived from `secret`, `token`'s current one. Each is registered for redaction:
/// most show all of the secret but a character or two.
fn derived_bearers(cx: &Cx, token: &TokenFx, secret: &str) -> Result<Vec<Forged>, Finding> {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < MIN_DERIVED_FROM {
        return Err(Finding::inconclusive(format!(
            "the target's secrets are shorter than {MIN_DERIVED_FROM} characters: too short to derive bearers from"
        )));
    }
    let half = chars.len() / 2;
    let head: String = chars[..half].iter().collect();
    let tail: String = chars[half..].iter().collect();
    let with = |f: &dyn Fn(usize, char) -> char| -> String {
        chars.iter().enumerate().map(|(i, c)| f(i, *c)).collect()
    };
    let last = chars.len() - 1;
    let variants: [(&'static str, &str, String); 6] = [
        (
            "the secret with its last character changed",
            "LAST",
            with(&|i, c| if i == last { other_char(c) } else { c }),
        ),
        (
            "the secret without its last character",
            "TRUNCATED",
            chars[..last].iter().collect(),
        ),
        (
            "the secret with one character added",
            "EXTENDED",
            format!("{secret}{}", chars[0]),
        ),
        (
            "the secret's first half with another tail",
            "PREFIX",
            with(&|i, c| if i >= half { other_char(c) } else { c }),
        ),
        (
            "the secret in other letter case",
            "CASE",
            with(&|_, c| {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            }),
        ),
        (
            "the secret percent-encoded",
            "PERCENT",
            secret.bytes().map(|b| format!("%{b:02X}")).collect(),
        ),
    ];
    let secrets = cx.client().secrets();
    let mut out = Vec::with_capacity(variants.len() + 2);
    for (what, suffix, forged) in variants {
        // A secret without letters has no other case.
        if forged == secret {
            continue;
        }
        let label = format!("$FORGED_FIXTURE_TOKEN_{}_{suffix}", token.id);
        secrets.register_always(&forged, &label);
        out.push(Forged {
            what,
            auth: Auth::Token {
                secret: forged,
                label,
            },
            always_on_site: false,
        });
    }
    // Whole header values: shown through the redaction of the secret, and of its halves.
    secrets.register_always(&head, &format!("$FIXTURE_TOKEN_{}_HEAD", token.id));
    secrets.register_always(&tail, &format!("$FIXTURE_TOKEN_{}_TAIL", token.id));
    out.push(Forged {
        what: "a doubled scheme (Bearer Bearer <secret>)",
        auth: Auth::Raw(format!("Bearer Bearer {secret}")),
        always_on_site: false,
    });
    out.push(Forged {
        what: "the secret split in two by a space",
        auth: Auth::Raw(format!("Bearer {head} {tail}")),
        always_on_site: false,
    });
    Ok(out)
}

/// Another character of the same kind (digit, hex letter, letter, same case), so that the
/// forged bearer still looks like a secret to a target that checks the format first.
fn other_char(c: char) -> char {
    let next_in = |first: char, last: char| {
        if c == last {
            first
        } else {
            char::from_u32(u32::from(c) + 1).unwrap_or(first)
        }
    };
    match c {
        '0'..='9' => next_in('0', '9'),
        'a'..='f' => next_in('a', 'f'),
        'A'..='F' => next_in('A', 'F'),
        'g'..='z' => next_in('g', 'z'),
        'G'..='Z' => next_in('G', 'Z'),
        _ => 'x',
    }
}

/// A fresh read of `subject` equals `before`; else the update (of those `sent`) whose name it
/// now carries changed it.
async fn reads_as_before(
    cx: &Cx,
    subject: &TokenFx,
    before: &Value,
    sent: &[(&str, String, Exchange)],
) -> CheckResult {
    let (read, after) = cx.read_token(&subject.id).await?;
    if token_state(&after) == token_state(before) {
        return Ok(());
    }
    let name = after.pointer("/attributes/name").and_then(Value::as_str);
    let culprit = sent
        .iter()
        .find(|(_, sent_name, _)| Some(sent_name.as_str()) == name)
        .or(if sent.len() == 1 { sent.first() } else { None });
    let what = culprit.map_or_else(
        || "one of the refused updates".to_owned(),
        |(what, _, _)| format!("an update with {what}"),
    );
    let mut exchanges: Vec<&Exchange> = culprit.map(|(_, _, ex)| ex).into_iter().collect();
    exchanges.push(&read);
    Err(Finding::fail(
        format!(
            "{what} was refused but changed the token: before {}, after {}",
            token_state(before),
            token_state(&after)
        ),
        &exchanges,
    ))
}

/// `GET /site` with a forged bearer is refused.
async fn refused_on_site(cx: &Cx, bearer: &Forged) -> CheckResult {
    let probe = cx
        .send(Request::cma(Method::GET, "/site").auth(bearer.auth.clone()))
        .await?;
    cx.answered(&probe)?;
    cx.ensure(
        !probe.is_success(),
        || {
            format!(
                "GET /site with {} was accepted ({}): the target takes it for a real credential",
                bearer.what,
                probe.summary()
            )
        },
        &[&probe],
    )
}

/// A real secret in forms RFC 7235 and RFC 6750 make equivalent to `Bearer <secret>`: the
/// documentation is silent, so a refusal is recorded as a warning and nothing is asserted.
async fn record_equivalent_forms(cx: &Cx, secret: &str) -> CheckResult {
    for (what, header) in [
        (
            "a lower-case scheme (bearer <secret>)",
            format!("bearer {secret}"),
        ),
        (
            "extra spaces around the secret",
            format!("Bearer   {secret}  "),
        ),
    ] {
        let probe = cx
            .send(Request::cma(Method::GET, "/site").auth(Auth::Raw(header)))
            .await?;
        cx.answered(&probe)?;
        if !probe.is_success() {
            cx.warn(format!(
                "recorded, not asserted: GET /site with a valid secret and {what} was refused ({}); \
                 RFC 7235 makes the scheme case-insensitive and RFC 6750 allows several spaces, \
                 the documentation shows only `Bearer <token>`",
                probe.summary()
            ));
        }
    }
    Ok(())
}

/// An unknown id: never a success, never a server error; 404 `NOT_FOUND` (observed). Both an
/// id no token ever had and the id of a token deleted just before.
pub(super) async fn unknown_id_is_not_found(cx: Cx) -> CheckResult {
    // Under the staging budget the deleted token's id is the unknown id: no token has it.
    if cx.settings().budget.staging {
        return a_deleted_token_is_not_found(&cx).await;
    }
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
    is_not_found(&cx, &ex, "an unknown id", &[])?;
    a_deleted_token_is_not_found(&cx).await
}

/// A token that existed and was deleted (`DELETE /access_tokens/:id`) is unknown from then
/// on: an update of its id is not found either, however the target keeps deleted rows.
async fn a_deleted_token_is_not_found(cx: &Cx) -> CheckResult {
    let role = cx.role("notfound", &[]).await?;
    let token = cx.token("notfound-deleted", &role, Flags::ALL).await?;
    let delete = cx
        .send_settled(
            Request::cma_resource(Method::DELETE, Collection::AccessTokens, &token.id, None),
            "delete a fixture token",
        )
        .await?;
    cx.answered(&delete)?;
    // A DELETE sent again after an attempt that got no answer finds the token gone already.
    let gone = delete.is_success() || (delete.status == 404 && delete.attempts > 1);
    if !gone {
        return Err(Finding::inconclusive(format!(
            "failed to delete a fixture token: {}",
            delete.summary()
        )));
    }
    let body = json!({ "data": { "type": "access_token", "id": token.id, "attributes": {
        "name": token.name, "can_access_cda": true, "can_access_cda_preview": true, "can_access_cma": true } } });
    let req = cx.update_request(&token.id, body, Auth::Management);
    let ex = cx.send_settled(req, "a deleted token's id").await?;
    is_not_found(cx, &ex, "the id of a token deleted just before", &[&delete])
}

/// An update of `what` (an id no token has) is neither a success nor a server error; 404
/// `NOT_FOUND` is observed. `before`: the exchanges that made the id unknown.
fn is_not_found(cx: &Cx, ex: &Exchange, what: &str, before: &[&Exchange]) -> CheckResult {
    let evidence: Vec<&Exchange> = before.iter().copied().chain([ex]).collect();
    cx.ensure(
        !ex.is_success(),
        || format!("updating {what} succeeded ({})", ex.summary()),
        &evidence,
    )?;
    cx.ensure(
        ex.status < 500,
        || {
            format!(
                "updating {what} gets a server error, 3 times out of 3 ({})",
                ex.summary()
            )
        },
        &evidence,
    )?;
    cx.observed(
        ex.status == 404 && ex.error_code() == Some("NOT_FOUND"),
        || {
            format!(
                "updating {what} answered {} {}, observed 404 NOT_FOUND",
                ex.status,
                crate::text::json_or(ex.error_code(), "with no error code")
            )
        },
        &evidence,
    )
}
