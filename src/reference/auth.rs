//! The one place where the server decides who is calling and what they may do.
//!
//! A token's effective capabilities are the intersection of its role and its three surface
//! flags (documented): the flags decide whether it may call an API at all
//! ([`authenticate_cma`], [`authenticate_cda`]), the role decides which actions it may take
//! there ([`authorize`]) and whether it sees secrets ([`sees_secrets`]). Every function reads
//! the locked state as it is now; nothing is remembered between requests, except by the
//! faults that model a permission cache or a lagging node.
//!
//! Over 500 lines on purpose: authentication, the permission decisions and the faults that
//! corrupt them (caches, lagging nodes, forged bearers accepted) must be read together.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::MutexGuard;
use std::time::Instant;

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};

use super::errors::ApiError;
use super::resources::{LastAccess, Role, Token};
use super::state::{App, CACHE_TTL, NODES, STALE_WINDOW, State, fresh};
use crate::faults::{Fault, FaultSet};

/// The authenticated caller of a CMA request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The id of the calling token.
    pub(crate) token_id: String,
}

/// Everything a CMA request can do, one variant per endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    ListTokens,
    ReadToken,
    CreateToken,
    UpdateToken,
    RotateToken,
    DeleteToken,
    ListRoles,
    ReadRole,
    CreateRole,
    UpdateRole,
    DeleteRole,
    ReadSite,
    ReadCurrentToken,
}

impl Action {
    /// The role permission the action needs; `None` means any CMA token may do it.
    pub(crate) fn required_permission(self) -> Option<&'static str> {
        match self {
            Action::CreateToken
            | Action::UpdateToken
            | Action::RotateToken
            | Action::DeleteToken => Some(MANAGE_ACCESS_TOKENS),
            Action::CreateRole | Action::UpdateRole | Action::DeleteRole => Some(MANAGE_USERS),
            Action::ListTokens
            | Action::ReadToken
            | Action::ListRoles
            | Action::ReadRole
            | Action::ReadSite
            | Action::ReadCurrentToken => None,
        }
    }
}

const MANAGE_ACCESS_TOKENS: &str = "can_manage_access_tokens";
const MANAGE_USERS: &str = "can_manage_users";

/// What a body endpoint has once its checks up to the schema have run.
pub(crate) struct Admitted<'a> {
    /// The locked state.
    pub(crate) state: MutexGuard<'a, State>,
    /// Who is calling.
    pub(crate) caller: Caller,
    /// The parsed body.
    pub(crate) body: serde_json::Value,
    /// The body against its schema; checked after the permission, per the documented order.
    pub(crate) schema: Result<(), Vec<crate::spec::Violation>>,
}

/// The checks every CMA endpoint with a body starts with, in the documented order: headers,
/// content type and JSON, credentials, then the role's permission for `action`. The schema
/// result is returned rather than raised: it comes after the permission, and some faults
/// overlook parts of it.
pub(crate) async fn admit_with_body(
    app: &App,
    request: axum::extract::Request,
    schema: crate::spec::SchemaId,
    action: Action,
) -> Result<Admitted<'_>, ApiError> {
    let (parts, body) = request.into_parts();
    super::http::check_headers(&parts.headers)?;
    let body = super::http::json_body(&parts.headers, body).await?;
    let schema = app.spec.schemas().validate(schema, &body);
    let (state, caller) = admit(app, &parts.headers, action)?;
    Ok(Admitted {
        state,
        caller,
        body,
        schema,
    })
}

/// Credentials, then the role's permission for `action`, on the locked state: the common
/// tail of every CMA endpoint's checks (after its header and body checks). Returns the guard
/// and the caller.
pub(crate) fn admit<'a>(
    app: &'a App,
    headers: &HeaderMap,
    action: Action,
) -> Result<(MutexGuard<'a, State>, Caller), ApiError> {
    let mut state = app.lock();
    // Fault cma-flag-only-on-reads: the write path has an authentication of its own, which
    // never reads can_access_cma.
    let writes =
        action.required_permission().is_some() && state.faults.has(Fault::CmaFlagOnlyOnReads);
    let caller = authenticate_cma(&mut state, headers, writes)?;
    // Faults self-update-unguarded and permission-checked-after-write: the update handler
    // decides the permission itself (see `tokens::update`).
    let deferred = action == Action::UpdateToken
        && (state.faults.has(Fault::SelfUpdateUnguarded)
            || state.faults.has(Fault::PermissionCheckedAfterWrite));
    if !deferred {
        authorize(&state, &caller, action)?;
    }
    Ok((state, caller))
}

/// The CMA caller: no `Authorization` is `INVALID_SITE`; a malformed header, an unknown secret
/// or a token without `can_access_cma` is `INVALID_AUTHORIZATION_HEADER`. A token that gets
/// through has now been used on the CMA.
/// With `skip_cma_flag` (fault cma-flag-only-on-reads) the token's `can_access_cma` is not read.
pub(crate) fn authenticate_cma(
    state: &mut State,
    headers: &HeaderMap,
    skip_cma_flag: bool,
) -> Result<Caller, ApiError> {
    let now = Instant::now();
    let token_id = match bearer_secret(headers, &state.faults) {
        // Fault no-credentials-accepted: a development shortcut left on in production.
        Credential::Missing if state.faults.has(Fault::NoCredentialsAccepted) => state
            .management_token_id
            .clone()
            .ok_or_else(ApiError::invalid_site)?,
        Credential::Missing => return Err(missing_credentials(state)),
        Credential::Malformed => return Err(malformed()),
        Credential::Secret(secret) => token_with_secret(state, &secret)?,
    };
    let surfaces = surfaces_seen(state, &token_id).ok_or_else(unknown)?;
    let can_access_cma = if state.faults.has(Fault::CmaFlagIgnored) || skip_cma_flag {
        // Fault cma-flag-ignored: the flag is stored, but nothing here reads it.
        true
    } else if state.faults.has(Fault::CmaDecisionCached) {
        // Fault cma-decision-cached: the decision is remembered per token for 2 s.
        cached(
            &mut state.memory.cma_decisions,
            &token_id,
            now,
            surfaces.cma,
        )
    } else if state.faults.has(Fault::CmaGrantCached) {
        // Fault cma-grant-cached: only grants are remembered, so only a warm cache lies.
        cached_grant(
            &mut state.memory.cma_decisions,
            &token_id,
            now,
            surfaces.cma,
        )
    } else if state.faults.has(Fault::CmaDecisionStaleOnce) {
        // Fault cma-decision-stale-once: the answer is the cached decision, refreshed after.
        stale_while_revalidate(
            &mut state.memory.cma_decisions,
            &token_id,
            now,
            surfaces.cma,
        )
    } else if state.faults.has(Fault::StaleDecisionWindow) {
        stale_within_the_window(state, &token_id, now, surfaces.cma)
    } else {
        surfaces.cma
    };
    // Fault cma-regrant-ignored: the gateway's deny list is read before the flag.
    let denied =
        state.faults.has(Fault::CmaRegrantIgnored) && state.memory.cma_denied.contains(&token_id);
    if !can_access_cma || denied {
        return Err(ApiError::invalid_authorization_header(
            "this API token cannot access the Content Management API",
        ));
    }
    // Fault role-permissions-cached: the caller's role is loaded here, once per 2 s, and
    // `role_allows` decides with that copy.
    if state.faults.has(Fault::RolePermissionsCached)
        && fresh(state.memory.role_permissions.get(&token_id), now, CACHE_TTL).is_none()
    {
        let role = live_role(state, &token_id).cloned();
        state
            .memory
            .role_permissions
            .insert(token_id.clone(), (now, role));
    }
    if let Some(token) = state.token_mut(&token_id) {
        token.last_cma_access = LastAccess::Today;
    }
    Ok(Caller { token_id })
}

/// Whether the caller's role allows `action`; `INSUFFICIENT_PERMISSIONS` (401) if not.
pub(crate) fn authorize(state: &State, caller: &Caller, action: Action) -> Result<(), ApiError> {
    match action.required_permission() {
        None => Ok(()),
        Some(permission) if role_allows(state, &caller.token_id, permission) => Ok(()),
        Some(permission) => Err(ApiError::insufficient_permissions(permission)),
    }
}

/// Whether `token` attributes show secrets to this caller: only if its role may manage tokens.
pub(crate) fn sees_secrets(state: &State, caller: &Caller) -> bool {
    // Fault token-shown-to-everyone: the serializer forgot the role check.
    state.faults.has(Fault::TokenShownToEveryone)
        || role_allows(state, &caller.token_id, MANAGE_ACCESS_TOKENS)
}

/// Whether the role of token `token_id` itself may manage tokens (fault
/// visibility-from-updated-token-role takes this for the caller's).
pub(crate) fn token_role_manages_tokens(state: &State, token_id: &str) -> bool {
    live_role(state, token_id).is_some_and(|role| role.allows(MANAGE_ACCESS_TOKENS))
}

/// A CDA request: any token with `can_access_cda` or `can_access_cda_preview` reads published
/// content; drafts need `can_access_cda_preview`. The CDA ignores roles: it only reads. Every
/// refusal is `INVALID_AUTHORIZATION_HEADER` with a `details.message`.
pub(crate) fn authenticate_cda(
    state: &mut State,
    headers: &HeaderMap,
    include_drafts: bool,
) -> Result<(), ApiError> {
    let now = Instant::now();
    let token_id = match bearer_secret(headers, &state.faults) {
        Credential::Missing => {
            return Err(ApiError::invalid_authorization_header(
                "missing Authorization header",
            ));
        }
        Credential::Malformed => return Err(malformed()),
        Credential::Secret(secret) => token_with_secret(state, &secret)?,
    };
    let surfaces = surfaces_seen(state, &token_id).ok_or_else(unknown)?;
    let published = surfaces.cda || surfaces.cda_preview;
    let allowed = if include_drafts {
        // Fault preview-flag-ignored: drafts are decided like published content.
        if state.faults.has(Fault::PreviewFlagIgnored) {
            published
        } else if state.faults.has(Fault::PreviewRequiresCda) {
            // Fault preview-requires-cda: drafts are taken as published content plus more, so
            // the published-content flag is required first.
            surfaces.cda && surfaces.cda_preview
        } else if state.faults.has(Fault::PreviewScopeStale) {
            // Fault preview-scope-stale: drafts are decided from the scope column, which an
            // update recomputes only when can_access_cda changes.
            state
                .memory
                .draft_scopes
                .get(&token_id)
                .copied()
                .unwrap_or(surfaces.cda_preview)
        } else {
            surfaces.cda_preview
        }
    } else if state.faults.has(Fault::CdaDecisionCached) {
        // Fault cda-decision-cached: the published-content decision is remembered for 2 s.
        cached(&mut state.memory.cda_decisions, &token_id, now, published)
    } else if state.faults.has(Fault::CdaGrantCached) {
        // Fault cda-grant-cached: only grants are remembered.
        cached_grant(&mut state.memory.cda_decisions, &token_id, now, published)
    } else {
        published
    };
    if !allowed {
        return Err(ApiError::invalid_authorization_header(if include_drafts {
            "this API token cannot access draft content (can_access_cda_preview is off)"
        } else {
            "this API token cannot access the Content Delivery API"
        }));
    }
    if let Some(token) = state.token_mut(&token_id) {
        token.last_cda_access = LastAccess::Today;
    }
    Ok(())
}

/// Whether the role of token `token_id` has `permission`. A token without a role, or whose
/// role is gone, has no permissions.
fn role_allows(state: &State, token_id: &str, permission: &str) -> bool {
    // Fault role-permissions-cached: the copy loaded at authentication (`authenticate_cma`).
    if state.faults.has(Fault::RolePermissionsCached)
        && let Some((_, role)) = state.memory.role_permissions.get(token_id)
    {
        return role.as_ref().is_some_and(|role| role.allows(permission));
    }
    // Fault role-change-half-applied: the role before the change still decides.
    if state.faults.has(Fault::RoleChangeHalfApplied)
        && let Some(role) = state.memory.decision_roles.get(token_id)
    {
        return role
            .as_deref()
            .and_then(|id| state.role(id))
            .is_some_and(|role| role.allows(permission));
    }
    live_role(state, token_id).is_some_and(|role| role.allows(permission))
}

/// The role token `token_id` has now.
fn live_role<'s>(state: &'s State, token_id: &str) -> Option<&'s Role> {
    caller_token(state, token_id)
        .and_then(|token: &Token| token.role.as_deref())
        .and_then(|role_id| state.role(role_id))
}

/// The token a caller authenticated as: a live one (and, under fault
/// deleted-token-still-authenticates, a deleted one the authentication cache still holds).
fn caller_token<'s>(state: &'s State, token_id: &str) -> Option<&'s Token> {
    state.token(token_id).or_else(|| {
        state
            .faults
            .has(Fault::DeletedTokenStillAuthenticates)
            .then(|| {
                state
                    .memory
                    .deleted_tokens
                    .iter()
                    .find(|t| t.id == token_id)
            })
            .flatten()
    })
}

/// The id of the token whose secret this is; an unknown secret is refused.
fn token_with_secret(state: &State, presented: &str) -> Result<String, ApiError> {
    let token_id = presented_token(state, presented).ok_or_else(unknown)?;
    // Fault old-secret-refused-after-update: the update re-issued the credential the secret is
    // checked against, while the token attribute still shows the old value.
    if state.faults.has(Fault::OldSecretRefusedAfterUpdate)
        && state.memory.broken_secrets.contains(&token_id)
    {
        return Err(unknown());
    }
    Ok(token_id)
}

/// The token a presented bearer is taken for: the one whose secret it is, exactly. The faults
/// below are the ways a lookup is known to go wrong.
fn presented_token(state: &State, presented: &str) -> Option<String> {
    let faults = &state.faults;
    // Fault forged-bearer-percent-decoded: the header is decoded like a query parameter.
    let decoded = if faults.has(Fault::ForgedBearerPercentDecoded) {
        percent_decoded(presented)
    } else {
        Cow::Borrowed(presented)
    };
    if let Some(token) = state
        .tokens
        .iter()
        .find(|t| secret_matches(faults, &t.secret, &decoded))
    {
        return Some(token.id.clone());
    }
    // Fault rotated-secret-still-valid: the old secret still names its token.
    if faults.has(Fault::RotatedSecretStillValid)
        && let Some(id) = state.memory.rotated_away.get(presented)
        && state.token(id).is_some()
    {
        return Some(id.clone());
    }
    // Fault deleted-token-still-authenticates: the cache still knows the secret.
    if faults.has(Fault::DeletedTokenStillAuthenticates) {
        return state
            .memory
            .deleted_tokens
            .iter()
            .find(|t| t.secret == presented)
            .map(|t| t.id.clone());
    }
    None
}

/// How many leading characters fault forged-bearer-prefix compares.
const FORGED_PREFIX_LEN: usize = 8;

/// Whether `presented` is taken for the stored `secret`: exactly equal, on the conformant server.
fn secret_matches(faults: &FaultSet, secret: &str, presented: &str) -> bool {
    if faults.has(Fault::ForgedBearerPrefix) {
        // Fault forged-bearer-prefix: the lookup prefix is taken for the whole secret.
        return match (
            secret.get(..FORGED_PREFIX_LEN),
            presented.get(..FORGED_PREFIX_LEN),
        ) {
            (Some(stored), Some(given)) => stored == given,
            _ => secret == presented,
        };
    }
    if faults.has(Fault::ForgedBearerCase) {
        // Fault forged-bearer-case: a case-insensitive column collation.
        return secret.eq_ignore_ascii_case(presented);
    }
    if faults.has(Fault::ForgedBearerExtended) {
        // Fault forged-bearer-extended: the comparison runs over the stored secret's length.
        return !secret.is_empty() && presented.starts_with(secret);
    }
    secret == presented
}

/// `text` with every `%XX` decoded (fault forged-bearer-percent-decoded).
fn percent_decoded(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// A token's three surface flags, as the node serving the request sees them.
#[derive(Debug, Clone, Copy)]
struct Surfaces {
    cma: bool,
    cda: bool,
    cda_preview: bool,
}

impl Surfaces {
    fn of(token: &Token) -> Surfaces {
        Surfaces {
            cma: token.can_access_cma,
            cda: token.can_access_cda,
            cda_preview: token.can_access_cda_preview,
        }
    }
}

fn surfaces_seen(state: &mut State, token_id: &str) -> Option<Surfaces> {
    let now = Surfaces::of(caller_token(state, token_id)?);
    if !state.faults.has(Fault::StaleNode) {
        return Some(now);
    }
    // Fault stale-node: one authenticated request in three is served by a node that still has
    // the token as it was before its last update.
    state.memory.authenticated_requests += 1;
    if state.memory.authenticated_requests.is_multiple_of(3)
        && let Some(before) = state.memory.before_last_update.get(token_id)
    {
        return Some(Surfaces::of(before));
    }
    Some(now)
}

/// Fault stale-decision-window: requests go round-robin to [`NODES`] nodes; one of them, within
/// [`STALE_WINDOW`] after a change of the token's `can_access_cma`, decides with the value from
/// before it. Outside the window, or on the other nodes, the decision is `value`. Unlike
/// `stale-node` (stale until the next update) and `cma-decision-cached` (every node, 2 s), the
/// node is right at first and right again after 200 ms: only calls spread over that window see it.
fn stale_within_the_window(state: &mut State, token_id: &str, now: Instant, value: bool) -> bool {
    state.memory.cma_turns += 1;
    if !state.memory.cma_turns.is_multiple_of(NODES) {
        return value;
    }
    match state.memory.cma_changes.get(token_id) {
        Some((at, before)) if STALE_WINDOW.contains(&now.saturating_duration_since(*at)) => *before,
        _ => value,
    }
}

/// `value`, unless a decision made less than [`CACHE_TTL`] ago is remembered for `token_id`.
fn cached(
    cache: &mut HashMap<String, (Instant, bool)>,
    token_id: &str,
    now: Instant,
    value: bool,
) -> bool {
    if let Some(remembered) = fresh(cache.get(token_id), now, CACHE_TTL) {
        return *remembered;
    }
    cache.insert(token_id.to_owned(), (now, value));
    value
}

/// A stale-while-revalidate cache: the decision remembered for `token_id` (whatever its age)
/// is the answer, and `value` is remembered for the next call.
fn stale_while_revalidate(
    cache: &mut HashMap<String, (Instant, bool)>,
    token_id: &str,
    now: Instant,
    value: bool,
) -> bool {
    cache
        .insert(token_id.to_owned(), (now, value))
        .map_or(value, |(_, previous)| previous)
}

/// A decision cache that stores grants only: a grant still fresh wins, a refusal is decided
/// anew every time.
fn cached_grant(
    cache: &mut HashMap<String, (Instant, bool)>,
    token_id: &str,
    now: Instant,
    value: bool,
) -> bool {
    if fresh(cache.get(token_id), now, CACHE_TTL).is_some_and(|granted| *granted) {
        return true;
    }
    if value {
        cache.insert(token_id.to_owned(), (now, true));
    }
    value
}

/// No `Authorization` on the CMA: `INVALID_SITE`, 401.
fn missing_credentials(state: &State) -> ApiError {
    let error = ApiError::invalid_site();
    // Fault auth-wrong-status: "not authenticated" answered as "forbidden".
    if state.faults.has(Fault::AuthWrongStatus) {
        error.with_status(StatusCode::FORBIDDEN)
    } else {
        error
    }
}

enum Credential<'h> {
    Missing,
    Malformed,
    Secret(Cow<'h, str>),
}

/// `Authorization: Bearer <secret>`, exactly one header, scheme case-insensitive.
fn bearer_secret<'h>(headers: &'h HeaderMap, faults: &FaultSet) -> Credential<'h> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Credential::Missing,
        (Some(value), None) => value,
        (Some(_), Some(_)) => return Credential::Malformed,
    };
    let Ok(text) = value.to_str() else {
        return Credential::Malformed;
    };
    if faults.has(Fault::ForgedBearerSchemeStripped) {
        // Fault forged-bearer-scheme-stripped: "drop the Bearer, keep the rest" taken literally.
        let rest: String = text
            .split_ascii_whitespace()
            .filter(|part| !part.eq_ignore_ascii_case("bearer"))
            .collect();
        return if rest.is_empty() {
            Credential::Malformed
        } else {
            Credential::Secret(Cow::Owned(rest))
        };
    }
    let mut parts = text.split_ascii_whitespace();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(scheme), Some(secret), None) if scheme.eq_ignore_ascii_case("bearer") => {
            Credential::Secret(Cow::Borrowed(secret))
        }
        _ => Credential::Malformed,
    }
}

fn malformed() -> ApiError {
    ApiError::invalid_authorization_header("the Authorization header must be: Bearer <API token>")
}

fn unknown() -> ApiError {
    ApiError::invalid_authorization_header("unknown API token")
}

#[cfg(test)]
mod tests;
