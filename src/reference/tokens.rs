//! The access-token endpoints, one handler each: list, create, retrieve, update, rotate,
//! delete.
//!
//! Each handler reads like the endpoint's documentation: the shared checks (see [`super::cma`])
//! in their fixed order, then what is particular to the endpoint. The `token` attribute of
//! every token returned follows the caller's role as it is after the request's own change.
//!
//! Over 500 lines on purpose: the six token endpoints and their documented check order read
//! best in one place, with each fault's branch next to the rule it breaks.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::auth::{self, Action, Caller};
use super::cma::{PathId, path_id, success};
use super::errors::ApiError;
use super::http::check_headers;
use super::names;
use super::resources::{
    LastAccess, Reference, Token, TokenAttributes, TokenInput, is_blank, read_input,
};
use super::state::{App, REPLICA_LAG, State as Data, fresh};
use super::violations::{self, Class};
use crate::faults::{Fault, FaultSet};
use crate::spec::{SchemaId, Violation};

/// `GET /access_tokens`: every token, factory tokens included.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    request: Request,
) -> Result<Response, ApiError> {
    check_headers(request.headers())?;
    let (state, caller) = auth::admit(&app, request.headers(), Action::ListTokens)?;
    let show = auth::sees_secrets(&state, &caller);
    let tokens: Vec<Value> = state
        .tokens
        .iter()
        .map(|t| as_read(&state, t).to_resource(show))
        .collect();
    Ok(success(StatusCode::OK, Value::Array(tokens)))
}

/// `POST /access_tokens`: 201 with the new token.
pub(crate) async fn create(
    State(app): State<Arc<App>>,
    request: Request,
) -> Result<Response, ApiError> {
    let auth::Admitted {
        mut state,
        caller,
        body,
        schema,
    } = auth::admit_with_body(&app, request, SchemaId::CreateRequest, Action::CreateToken).await?;
    schema.map_err(|v| ApiError::invalid_format(&v))?;
    let input: TokenInput = read_input(&body).map_err(|v| ApiError::invalid_format(&v))?;

    validate_name(&state, &input.attributes.name, None)?;
    let role = match input.relationships {
        Some(relationships) => validate_role(&state, relationships.role.data.as_ref())?,
        None => None,
    };

    let token = Token {
        id: state.next_token_id(),
        name: input.attributes.name,
        secret: state.new_secret(),
        can_access_cda: input.attributes.can_access_cda,
        can_access_cda_preview: input.attributes.can_access_cda_preview,
        can_access_cma: input.attributes.can_access_cma,
        hardcoded_type: None,
        role,
        last_cma_access: LastAccess::Never,
        last_cda_access: LastAccess::Never,
    };
    let resource = token.to_resource(auth::sees_secrets(&state, &caller));
    state.tokens.push(token);
    Ok(success(StatusCode::CREATED, resource))
}

/// `GET /access_tokens/{id}`.
pub(crate) async fn retrieve(
    State(app): State<Arc<App>>,
    id: PathId,
    request: Request,
) -> Result<Response, ApiError> {
    check_headers(request.headers())?;
    let (state, caller) = auth::admit(&app, request.headers(), Action::ReadToken)?;
    let token = as_read(&state, lookup(&state, path_id(id))?);
    Ok(success(
        StatusCode::OK,
        token.to_resource(auth::sees_secrets(&state, &caller)),
    ))
}

/// `PUT /access_tokens/{id}`: the endpoint under test. Name and flags are replaced; the role
/// only when `relationships` is sent (omitted means kept); the secret never changes. Factory
/// tokens refuse with `NON_EDITABLE_ACCESS_TOKEN` and stay exactly as they were.
pub(crate) async fn update(
    State(app): State<Arc<App>>,
    id: PathId,
    request: Request,
) -> Result<Response, ApiError> {
    let auth::Admitted {
        mut state,
        caller,
        mut body,
        schema,
    } = auth::admit_with_body(&app, request, SchemaId::UpdateRequest, Action::UpdateToken).await?;
    let path_id = path_id(id);
    // Fault visibility-from-role-before-update: the caller's permissions as loaded at
    // authentication, before the update changes its own role.
    let visibility_before = state
        .faults
        .has(Fault::VisibilityFromRoleBeforeUpdate)
        .then(|| auth::sees_secrets(&state, &caller));
    let schema = numeric_id_tolerated(&state.faults, &mut body, path_id.as_deref(), schema);
    let mass_assigned = mass_assigned_secret(&state.faults, &body);
    if let Err(violations) = tolerate(&state.faults, &mut body, schema) {
        // A factory token refuses before its body is looked at.
        if factory_guard_first(&state, path_id.as_deref()) {
            return Err(factory_refusal(&state.faults));
        }
        partly_apply(&mut state, path_id.as_deref(), &body);
        return Err(invalid_body(&state.faults, &violations));
    }
    let input: TokenInput = read_input(&body).map_err(|v| ApiError::invalid_format(&v))?;
    if let Some(response) = update_soft_deleted(&mut state, &caller, path_id.as_deref(), &input) {
        return response;
    }
    // Fault body-id-selects-token: the record to update is loaded by the payload's id.
    let selected = match &input.id {
        Some(body_id) if state.faults.has(Fault::BodyIdSelectsToken) => Some(body_id.clone()),
        _ => path_id,
    };
    let token = lookup_for_update(&state, selected)?;
    let token_id = token.id.clone();
    // Fault self-update-unguarded: the permission is checked only for other tokens.
    // (Without this fault or the next, `auth::admit` has checked it already.)
    let late_permission = state.faults.has(Fault::PermissionCheckedAfterWrite);
    if state.faults.has(Fault::SelfUpdateUnguarded)
        && !late_permission
        && caller.token_id != token_id
    {
        auth::authorize(&state, &caller, Action::UpdateToken)?;
    }
    // Fault hardcoded-role-reassignable: a body with relationships.role takes the
    // role-reassignment path, which has no factory-token guard.
    if token.hardcoded_type.is_some()
        && state.faults.has(Fault::HardcodedRoleReassignable)
        && let Some(relationships) = &input.relationships
    {
        let role = validate_role(&state, relationships.role.data.as_ref())?;
        if let Some(token) = state.token_mut(&token_id) {
            token.role = role;
        }
        return respond_with(&state, &caller, &token_id);
    }
    // Fault hardcoded-accepts-updates: the factory-token guard is missing.
    let guarded = !state.faults.has(Fault::HardcodedAcceptsUpdates);
    if token.hardcoded_type.is_some() && guarded {
        return Err(refuse_factory_token(
            &mut state,
            &token_id,
            input.attributes,
        ));
    }

    let new_role = match validate_update(&state, &input, &token_id) {
        Ok(new_role) => new_role,
        Err(error) => {
            partly_apply(&mut state, Some(&token_id), &body);
            return Err(error);
        }
    };
    let name = stored_name(&state.faults, input.attributes.name)?;
    let mut flags = [
        input.attributes.can_access_cda,
        input.attributes.can_access_cda_preview,
        input.attributes.can_access_cma,
    ];
    // Fault preview-implies-cda: a "helpful" normalisation of the flags.
    if state.faults.has(Fault::PreviewImpliesCda) {
        flags[0] |= flags[1];
    }
    let before = state.token(&token_id).cloned();
    // Fault false-flags-compacted: `compact_blank` drops the flags sent as false, so they keep
    // their stored value.
    if state.faults.has(Fault::FalseFlagsCompacted)
        && let Some(stored) = &before
    {
        let kept = [
            stored.can_access_cda,
            stored.can_access_cda_preview,
            stored.can_access_cma,
        ];
        for (flag, kept) in flags.iter_mut().zip(kept) {
            *flag |= kept;
        }
    }
    // Fault no-op-update-204: an update that changes nothing is answered "No Content".
    if state.faults.has(Fault::NoOpUpdate204)
        && before
            .as_ref()
            .is_some_and(|t| changes_nothing(t, &name, flags, new_role.as_ref()))
    {
        let mut response = Response::new(axum::body::Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        return Ok(response);
    }
    remember_surface_columns(&mut state, before.as_ref(), flags);
    let omitted = new_role.is_none();
    let view = View {
        omitted,
        visibility: visibility_before,
    };
    if skipped_as_no_op(&state, before.as_ref(), flags, new_role.as_ref()) {
        return update_response(&state, &caller, &token_id, None, view);
    }
    remember_before_write(&mut state, &token_id, true);
    remember_cma_change(&mut state, &token_id, input.attributes.can_access_cma);
    store_update(&mut state, &token_id, name, flags, new_role);
    if let Some(secret) = mass_assigned
        && let Some(token) = state.token_mut(&token_id)
    {
        token.secret = secret;
    }
    // Fault permission-checked-after-write: the permission is checked once the row is written.
    if late_permission {
        auth::authorize(&state, &caller, Action::UpdateToken)?;
    }
    // Fault response-shows-previous-values: the response renders the row loaded before the write.
    let shown = before.filter(|_| state.faults.has(Fault::ResponseShowsPreviousValues));
    update_response(&state, &caller, &token_id, shown.as_ref(), view)
}

/// How an update's response renders the token: `omitted`, the request had no
/// `relationships`; `visibility`, whether the caller sees secrets, when a fault decided it
/// before the update (`None`: as the state is after it).
#[derive(Debug, Clone, Copy)]
struct View {
    omitted: bool,
    visibility: Option<bool>,
}

/// Fault token-mass-assigned: the attributes are assigned to the row as a whole, `token`
/// included; the schema's refusal of that one member is not enforced (see [`tolerate`]).
fn mass_assigned_secret(faults: &FaultSet, body: &Value) -> Option<String> {
    if !faults.has(Fault::TokenMassAssigned) {
        return None;
    }
    body.pointer("/data/attributes/token")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Whether the attributes' only unknown member is `token` (fault token-mass-assigned lets it
/// through).
fn only_token_is_unknown(body: &Value) -> bool {
    let Some(attributes) = body.pointer("/data/attributes").and_then(Value::as_object) else {
        return false;
    };
    let unknown: Vec<&String> = attributes
        .keys()
        .filter(|k| k.as_str() != "name" && !violations::FLAGS.contains(&k.as_str()))
        .collect();
    unknown.len() == 1 && unknown[0] == "token"
}

/// Whether an update of `path_id` is refused as a factory token's before its body is
/// validated (the documented order; fault hardcoded-guard-after-validation validates first).
fn factory_guard_first(state: &Data, path_id: Option<&str>) -> bool {
    let faults = &state.faults;
    !faults.has(Fault::HardcodedGuardAfterValidation)
        && !faults.has(Fault::HardcodedAcceptsUpdates)
        && path_id
            .and_then(|id| state.token(id))
            .is_some_and(|t| t.hardcoded_type.is_some())
}

/// Fault deleted-token-updatable: an update of a soft-deleted row is written to that row and
/// answered 200, as if the token still existed. `None` when the fault is off or the path
/// names no deleted token.
fn update_soft_deleted(
    state: &mut Data,
    caller: &Caller,
    path_id: Option<&str>,
    input: &TokenInput,
) -> Option<Result<Response, ApiError>> {
    let id = path_id?;
    if !state.faults.has(Fault::DeletedTokenUpdatable) || state.token(id).is_some() {
        return None;
    }
    let show = auth::sees_secrets(state, caller);
    let row = state.memory.soft_deleted.iter_mut().find(|t| t.id == id)?;
    row.name = input.attributes.name.clone();
    row.can_access_cda = input.attributes.can_access_cda;
    row.can_access_cda_preview = input.attributes.can_access_cda_preview;
    row.can_access_cma = input.attributes.can_access_cma;
    Some(Ok(success(StatusCode::OK, row.to_resource(show))))
}

/// Whether an update to `name`, `[cda, cda_preview, cma]` and `new_role` (when sent) leaves
/// `token` as it is (fault no-op-update-204).
fn changes_nothing(
    token: &Token,
    name: &str,
    [cda, cda_preview, cma]: [bool; 3],
    new_role: Option<&Option<String>>,
) -> bool {
    token.name == name
        && [
            token.can_access_cda,
            token.can_access_cda_preview,
            token.can_access_cma,
        ] == [cda, cda_preview, cma]
        && new_role.is_none_or(|role| *role == token.role)
}

/// What the denormalised columns of two faults keep when an update writes `[cda, cda_preview,
/// cma]` over `before`: the draft scope, recomputed only when `can_access_cda` changes
/// (preview-scope-stale), and the gateway's CMA deny list, added to on a revoke and never
/// taken off by a grant (cma-regrant-ignored).
fn remember_surface_columns(state: &mut Data, before: Option<&Token>, [cda, _, cma]: [bool; 3]) {
    let Some(before) = before else {
        return;
    };
    if state.faults.has(Fault::PreviewScopeStale) {
        if before.can_access_cda == cda {
            state
                .memory
                .draft_scopes
                .entry(before.id.clone())
                .or_insert(before.can_access_cda_preview);
        } else {
            state.memory.draft_scopes.remove(&before.id);
        }
    }
    if state.faults.has(Fault::CmaRegrantIgnored) && before.can_access_cma && !cma {
        state.memory.cma_denied.insert(before.id.clone());
    }
}

/// Fault rename-skipped-when-flags-unchanged: a dirty check that looks at the flags and the
/// role only, so an update that changes nothing else is skipped, name included.
fn skipped_as_no_op(
    state: &Data,
    before: Option<&Token>,
    [cda, cda_preview, cma]: [bool; 3],
    new_role: Option<&Option<String>>,
) -> bool {
    let Some(token) = before.filter(|_| state.faults.has(Fault::RenameSkippedWhenFlagsUnchanged))
    else {
        return false;
    };
    [
        token.can_access_cda,
        token.can_access_cda_preview,
        token.can_access_cma,
    ] == [cda, cda_preview, cma]
        && new_role.is_none_or(|role| *role == token.role)
}

/// Fault numeric-body-id-accepted: a numeric `data.id` is read as "an id", and the comparison
/// with the path id is skipped for it; the body then reads as if it carried the path id.
fn numeric_id_tolerated(
    faults: &FaultSet,
    body: &mut Value,
    path_id: Option<&str>,
    verdict: Result<(), Vec<Violation>>,
) -> Result<(), Vec<Violation>> {
    let numeric = body.pointer("/data/id").is_some_and(Value::is_number);
    let (Err(violations), true, Some(path_id)) = (
        &verdict,
        numeric && faults.has(Fault::NumericBodyIdAccepted),
        path_id,
    ) else {
        return verdict;
    };
    let kept: Vec<Violation> = violations
        .iter()
        .filter(|v| v.instance_path != "/data/id")
        .cloned()
        .collect();
    if let Some(id) = body.pointer_mut("/data/id") {
        *id = Value::from(path_id);
    }
    if kept.is_empty() { Ok(()) } else { Err(kept) }
}

/// Write a validated update: name, `[cda, cda_preview, cma]` flags, and the role when sent.
fn store_update(
    state: &mut Data,
    token_id: &str,
    name: String,
    [cda, cda_preview, cma]: [bool; 3],
    new_role: Option<Option<String>>,
) {
    let faults = state.faults.clone();
    // Fault secret-rotated-by-update: the update path shares the create path's secret generator.
    let new_secret = faults
        .has(Fault::SecretRotatedByUpdate)
        .then(|| state.new_secret());
    // Fault old-secret-refused-after-update: the update re-issues the credential the secret is
    // checked against (see `auth`), but keeps the `token` attribute.
    if faults.has(Fault::OldSecretRefusedAfterUpdate) {
        state.memory.broken_secrets.insert(token_id.to_owned());
    }
    let admin_role = state.admin_role_id.clone();
    let Some((old_role, old_cma)) = state
        .token(token_id)
        .map(|t| (t.role.clone(), t.can_access_cma))
    else {
        return;
    };
    // Fault secret-rotated-on-cma-revoke: a revoke of the CMA is implemented as a credential
    // reset.
    let new_secret = new_secret.or_else(|| {
        (faults.has(Fault::SecretRotatedOnCmaRevoke) && old_cma && !cma).then(|| state.new_secret())
    });
    // Fault role-sent-skips-attributes: the role-reassignment path writes the role and returns.
    if faults.has(Fault::RoleSentSkipsAttributes)
        && let Some(role) = &new_role
    {
        if let Some(token) = state.token_mut(token_id) {
            token.role = role.clone();
        }
        return;
    }
    // Fault rename-spills-to-role: the token row and its role row are saved as one join.
    if faults.has(Fault::RenameSpillsToRole)
        && let Some(role) = old_role.as_deref().and_then(|id| state.role_mut(id))
    {
        role.attributes
            .insert("name".to_owned(), Value::from(name.clone()));
    }
    // Fault role-change-half-applied: decisions are made from a copy of the role taken at the
    // first role change, which nothing refreshes.
    if faults.has(Fault::RoleChangeHalfApplied)
        && new_role.as_ref().is_some_and(|role| *role != old_role)
    {
        state
            .memory
            .decision_roles
            .entry(token_id.to_owned())
            .or_insert_with(|| old_role.clone());
    }
    // Fault write-spills-to-role-siblings: the flags are written with a query keyed by the
    // role instead of the id.
    if faults.has(Fault::WriteSpillsToRoleSiblings) && old_role.is_some() {
        for sibling in state.tokens.iter_mut() {
            if sibling.id != token_id
                && sibling.role == old_role
                && sibling.hardcoded_type.is_none()
            {
                (
                    sibling.can_access_cda,
                    sibling.can_access_cda_preview,
                    sibling.can_access_cma,
                ) = (cda, cda_preview, cma);
            }
        }
    }
    let Some(token) = state.token_mut(token_id) else {
        return;
    };
    token.name = name;
    if faults.has(Fault::FlagsSwapped) {
        // Fault flags-swapped: the two CDA columns are mapped the wrong way round.
        (token.can_access_cda, token.can_access_cda_preview) = (cda_preview, cda);
    } else {
        (token.can_access_cda, token.can_access_cda_preview) = (cda, cda_preview);
    }
    token.can_access_cma = cma;
    match new_role {
        // Fault role-ignored-when-sent: the role is validated, then forgotten.
        Some(_) if faults.has(Fault::RoleIgnoredWhenSent) => {}
        Some(role) => token.role = role,
        // Fault role-dropped-when-omitted: an omitted relationship is read as `null`.
        None if faults.has(Fault::RoleDroppedWhenOmitted) => token.role = None,
        // Fault role-reset-when-omitted: an omitted relationship takes the default role.
        None if faults.has(Fault::RoleResetWhenOmitted) => token.role = admin_role,
        None => {}
    }
    if let Some(secret) = new_secret {
        token.secret = secret;
    }
}

/// `POST /access_tokens/{id}/regenerate_token`: a new secret; the old one stops working at
/// once. Role and flags are kept. Factory tokens may be rotated.
pub(crate) async fn rotate(
    State(app): State<Arc<App>>,
    id: PathId,
    request: Request,
) -> Result<Response, ApiError> {
    check_headers(request.headers())?;
    let (mut state, caller) = auth::admit(&app, request.headers(), Action::RotateToken)?;
    let token = lookup(&state, path_id(id))?;
    // Fault hardcoded-cannot-rotate: the update's factory-token guard was copied here.
    if token.hardcoded_type.is_some() && state.faults.has(Fault::HardcodedCannotRotate) {
        return Err(ApiError::non_editable_access_token());
    }
    let token_id = token.id.clone();
    remember_before_write(&mut state, &token_id, false);
    let secret = state.new_secret();
    let old = state
        .token_mut(&token_id)
        .map(|token| std::mem::replace(&mut token.secret, secret));
    // Fault rotated-secret-still-valid: the old credential is never revoked.
    if let Some(old) = old.filter(|_| state.faults.has(Fault::RotatedSecretStillValid)) {
        state.memory.rotated_away.insert(old, token_id.clone());
    }
    // The new secret authenticates again (fault old-secret-refused-after-update).
    state.memory.broken_secrets.remove(&token_id);
    // A rotation re-saves the token's credential row: its draft scope is recomputed (fault
    // preview-scope-stale) and it leaves the CMA deny list (fault cma-regrant-ignored).
    state.memory.draft_scopes.remove(&token_id);
    state.memory.cma_denied.remove(&token_id);
    respond_with(&state, &caller, &token_id)
}

/// `DELETE /access_tokens/{id}`: 200 with the deleted token. A token cannot delete itself.
/// Factory tokens may be deleted.
pub(crate) async fn delete(
    State(app): State<Arc<App>>,
    id: PathId,
    request: Request,
) -> Result<Response, ApiError> {
    check_headers(request.headers())?;
    let (mut state, caller) = auth::admit(&app, request.headers(), Action::DeleteToken)?;
    let token = lookup(&state, path_id(id))?;
    if token.id == caller.token_id {
        return Err(ApiError::cannot_destroy_current_user());
    }
    // Fault hardcoded-cannot-delete: the update's factory-token guard was copied here.
    if token.hardcoded_type.is_some() && state.faults.has(Fault::HardcodedCannotDelete) {
        return Err(ApiError::non_editable_access_token());
    }
    let resource = token.to_resource(auth::sees_secrets(&state, &caller));
    let token_id = token.id.clone();
    let gone = token.clone();
    // Fault deleted-token-updatable: the row is only marked deleted.
    if state.faults.has(Fault::DeletedTokenUpdatable) {
        state.memory.soft_deleted.push(gone.clone());
    }
    // Fault deleted-token-still-authenticates: the authentication cache keeps the token.
    if state.faults.has(Fault::DeletedTokenStillAuthenticates) {
        state.memory.deleted_tokens.push(gone);
    }
    state.tokens.retain(|t| t.id != token_id);
    state.memory.before_last_write.remove(&token_id);
    Ok(success(StatusCode::OK, resource))
}

fn lookup(state: &Data, id: Option<String>) -> Result<&Token, ApiError> {
    id.as_deref()
        .and_then(|id| state.token(id))
        .ok_or_else(ApiError::not_found)
}

/// 200 with token `token_id`, rendered for `caller` as the state is now.
fn respond_with(state: &Data, caller: &Caller, token_id: &str) -> Result<Response, ApiError> {
    let show = auth::sees_secrets(state, caller);
    let token = lookup(state, Some(token_id.to_owned()))?;
    Ok(success(StatusCode::OK, token.to_resource(show)))
}

/// The token of a read (retrieve, list).
fn as_read<'s>(state: &'s Data, token: &'s Token) -> &'s Token {
    // Fault stale-read: reads are served by a replica that lags 1 s behind writes.
    if state.faults.has(Fault::StaleRead)
        && let Some(before) = fresh(
            state.memory.before_last_write.get(&token.id),
            Instant::now(),
            REPLICA_LAG,
        )
    {
        return before;
    }
    token
}

/// Keep the copies of token `token_id` that lagging parts of a faulty server still see:
/// before every write (`stale-read`), and before every update (`stale-node`).
fn remember_before_write(state: &mut Data, token_id: &str, is_update: bool) {
    let (stale_read, stale_node) = (
        state.faults.has(Fault::StaleRead),
        is_update && state.faults.has(Fault::StaleNode),
    );
    if !(stale_read || stale_node) {
        return;
    }
    let Some(before) = state.token(token_id).cloned() else {
        return;
    };
    if stale_read {
        let entry = (Instant::now(), before.clone());
        state
            .memory
            .before_last_write
            .insert(token_id.to_owned(), entry);
    }
    if stale_node {
        state
            .memory
            .before_last_update
            .insert(token_id.to_owned(), before);
    }
}

/// Fault stale-decision-window: note when `can_access_cma` changes, and its value before.
fn remember_cma_change(state: &mut Data, token_id: &str, cma: bool) {
    if !state.faults.has(Fault::StaleDecisionWindow) {
        return;
    }
    let Some(before) = state.token(token_id).map(|t| t.can_access_cma) else {
        return;
    };
    if before != cma {
        let entry = (Instant::now(), before);
        state.memory.cma_changes.insert(token_id.to_owned(), entry);
    }
}

/// The token an update names; an unknown id is `NOT_FOUND`.
fn lookup_for_update(state: &Data, id: Option<String>) -> Result<&Token, ApiError> {
    lookup(state, id).map_err(|not_found| {
        if state.faults.has(Fault::UnknownId500) {
            // Fault unknown-id-500: the missing row is dereferenced.
            ApiError::internal_server_error()
        } else if state.faults.has(Fault::UnknownIdWrongCode) {
            // Fault unknown-id-wrong-code: the path id is validated like a body field.
            ApiError::invalid_field("id", "VALIDATION_INVALID").with_status(StatusCode::BAD_REQUEST)
        } else {
            not_found
        }
    })
}

/// The refusal of an update of a factory token, which must change nothing.
fn refuse_factory_token(state: &mut Data, token_id: &str, attributes: TokenAttributes) -> ApiError {
    let (names, flags) = (
        state.faults.has(Fault::HardcodedAppliesName),
        state.faults.has(Fault::HardcodedAppliesFlags),
    );
    if let Some(token) = state.token_mut(token_id) {
        // Fault hardcoded-applies-name: the name is saved before the guard runs.
        if names {
            token.name = attributes.name;
        }
        // Fault hardcoded-applies-flags: so are the surface flags.
        if flags {
            token.can_access_cda = attributes.can_access_cda;
            token.can_access_cda_preview = attributes.can_access_cda_preview;
            token.can_access_cma = attributes.can_access_cma;
        }
    }
    factory_refusal(&state.faults)
}

/// The error a factory token's update gets.
fn factory_refusal(faults: &FaultSet) -> ApiError {
    if faults.has(Fault::HardcodedWrongCode) {
        // Fault hardcoded-wrong-code: the guard reuses the permission error.
        ApiError::insufficient_permissions("can_manage_access_tokens")
    } else {
        ApiError::non_editable_access_token()
    }
}

/// The checks of an update body past the schema: the body id is the path id, the name is
/// valid, the role (when sent) exists. `Ok` holds the new role, `None` when not sent.
fn validate_update(
    state: &Data,
    input: &TokenInput,
    token_id: &str,
) -> Result<Option<Option<String>>, ApiError> {
    if input.id.as_deref() != Some(token_id) {
        return Err(ApiError::invalid_field("id", "VALIDATION_INVALID"));
    }
    validate_name(state, &input.attributes.name, Some(token_id))?;
    let Some(relationships) = &input.relationships else {
        return Ok(None);
    };
    let role = validate_role(state, relationships.role.data.as_ref())?;
    // Fault role-upgrade-refused: the escalation guard measures the new role against the
    // edited token's role, not the caller's.
    if state.faults.has(Fault::RoleUpgradeRefused)
        && let Some(permission) = role
            .as_deref()
            .and_then(|id| gained_permission(state, token_id, id))
    {
        return Err(ApiError::insufficient_permissions(&permission));
    }
    // Fault role-reassigned-wrong: an off-by-one in the role lookup.
    if state.faults.has(Fault::RoleReassignedWrong) {
        return Ok(Some(role.map(|id| neighbour_role(state, id))));
    }
    Ok(Some(role))
}

/// A permission role `new_role` has and the current role of token `token_id` lacks (fault
/// role-upgrade-refused); a token without a role lacks them all.
fn gained_permission(state: &Data, token_id: &str, new_role: &str) -> Option<String> {
    let new_role = state.role(new_role)?;
    let current = state
        .token(token_id)
        .and_then(|t| t.role.as_deref())
        .and_then(|id| state.role(id));
    new_role
        .attributes
        .iter()
        .filter(|(_, value)| value.as_bool() == Some(true))
        .map(|(permission, _)| permission)
        .find(|permission| !current.is_some_and(|role| role.allows(permission)))
        .cloned()
}

/// The role created just before `id` (the next one for the first role).
fn neighbour_role(state: &Data, id: String) -> String {
    let Some(index) = state.roles.iter().position(|r| r.id == id) else {
        return id;
    };
    let neighbour = match index {
        0 => state.roles.get(1),
        _ => state.roles.get(index - 1),
    };
    neighbour.map_or(id, |role| role.id.clone())
}

/// The name as it is written to the store.
fn stored_name(faults: &FaultSet, name: String) -> Result<String, ApiError> {
    // Fault non-ascii-name-500: a legacy encoding step crashes on anything but ASCII.
    if faults.has(Fault::NonAsciiName500) && !name.is_ascii() {
        return Err(ApiError::internal_server_error());
    }
    // Fault name-trimmed: the input layer trims every string.
    let name = if faults.has(Fault::NameTrimmed) {
        name.trim().to_owned()
    } else {
        name
    };
    // Fault name-whitespace-collapsed: the input layer squeezes inner whitespace.
    let name = if faults.has(Fault::NameWhitespaceCollapsed) {
        collapse_whitespace(&name)
    } else {
        name
    };
    // Fault name-lowercased: names are stored folded, for a case-insensitive uniqueness.
    let name = if faults.has(Fault::NameLowercased) {
        name.to_lowercase()
    } else {
        name
    };
    // Fault name-nfc-normalised: the input layer normalises text to NFC.
    let name = if faults.has(Fault::NameNfcNormalised) {
        names::compose_nfc(&name)
    } else {
        name
    };
    // Fault name-html-escaped: the input layer escapes HTML (an XSS "fix" done on input).
    let name = if faults.has(Fault::NameHtmlEscaped) {
        names::html_escape(&name)
    } else {
        name
    };
    // Fault name-truncated-64: the column holds 64 characters.
    if faults.has(Fault::NameTruncated64) {
        return Ok(name.chars().take(64).collect());
    }
    Ok(name)
}

/// Every run of whitespace inside `name` as one space; its edges kept (fault
/// name-whitespace-collapsed).
fn collapse_whitespace(name: &str) -> String {
    let start = name.len() - name.trim_start().len();
    let end = name.trim_end().len().max(start);
    let inner: Vec<&str> = name[start..end].split_whitespace().collect();
    format!("{}{}{}", &name[..start], inner.join(" "), &name[end..])
}

/// 200 with the updated token (or `shown`, a copy of it, under a fault), rendered as `view`
/// says.
fn update_response(
    state: &Data,
    caller: &Caller,
    token_id: &str,
    shown: Option<&Token>,
    view: View,
) -> Result<Response, ApiError> {
    let View {
        omitted,
        visibility,
    } = view;
    let faults = &state.faults;
    let show = if faults.has(Fault::VisibilityFromUpdatedTokenRole) {
        // Fault visibility-from-updated-token-role: the serializer asks the record's role.
        faults.has(Fault::TokenShownToEveryone) || auth::token_role_manages_tokens(state, token_id)
    } else {
        visibility.unwrap_or_else(|| auth::sees_secrets(state, caller))
    };
    let token = match shown {
        Some(token) => token,
        None => lookup(state, Some(token_id.to_owned()))?,
    };
    let mut resource = token.to_resource(show);
    // Fault response-role-from-request: the serializer takes relationships from the request.
    if omitted
        && faults.has(Fault::ResponseRoleFromRequest)
        && let Some(role) = resource.pointer_mut("/relationships/role/data")
    {
        *role = Value::Null;
    }
    if let Some(data) = resource.as_object_mut() {
        // Fault different-id: the id is formatted from the wrong variable.
        if faults.has(Fault::DifferentId) {
            data.insert("id".to_owned(), Value::from(format!("{token_id}0")));
        }
        // Fault wrong-resource-type: the serializer of the older resource name.
        if faults.has(Fault::WrongResourceType) {
            data.insert("type".to_owned(), Value::from("api_token"));
        }
    }
    if let Some(attributes) = resource
        .get_mut("attributes")
        .and_then(Value::as_object_mut)
    {
        // Fault attribute-missing: the update serializer leaves one attribute out.
        if faults.has(Fault::AttributeMissing) {
            attributes.remove("last_cda_access");
        }
        // Fault numeric-name-as-number: the serializer's numeric check.
        if faults.has(Fault::NumericNameAsNumber)
            && let Some(number) = attributes
                .get("name")
                .and_then(Value::as_str)
                .and_then(numeric)
        {
            attributes.insert("name".to_owned(), number);
        }
        // Fault boolean-as-string: one flag is serialized from its text column.
        if faults.has(Fault::BooleanAsString)
            && let Some(flag) = attributes.get_mut("can_access_cma")
        {
            *flag = Value::from(flag.to_string());
        }
    }
    Ok(success(StatusCode::OK, resource))
}

/// `text` as a JSON number when it reads as one, as PHP's `JSON_NUMERIC_CHECK` does (fault
/// numeric-name-as-number): digits, with an optional sign, fraction and exponent.
fn numeric(text: &str) -> Option<Value> {
    let looks_numeric = text.chars().any(|c| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'));
    if !looks_numeric {
        return None;
    }
    if let Ok(integer) = text.parse::<i64>() {
        return Some(Value::from(integer));
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Value::Number)
}

/// The schema's verdict on an update body, minus the violations that faults let through; what
/// they let through is made readable (a missing flag becomes `false`, `"true"` becomes `true`;
/// unknown members need nothing, reading ignores them).
fn tolerate(
    faults: &FaultSet,
    body: &mut Value,
    verdict: Result<(), Vec<Violation>>,
) -> Result<(), Vec<Violation>> {
    let Err(violations) = verdict else {
        return Ok(());
    };
    if faults.is_empty() {
        return Err(violations);
    }
    let mut fixes: Vec<(String, bool)> = Vec::new();
    let mut kept = Vec::new();
    for violation in violations {
        let at = violation.instance_path.as_str();
        let class = violations::classify(&violation);
        let text_flag = body
            .pointer(at)
            .and_then(Value::as_str)
            .and_then(|text| text.parse::<bool>().ok());
        if faults.has(Fault::AnyTypeAccepted) && class == Class::ResourceType {
            // Fault any-type-accepted: data.type is never looked at (wrong or missing).
        } else if faults.has(Fault::TypeLooselyMatched)
            && class == Class::ResourceType
            && at == "/data/type"
            && body
                .pointer(at)
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .is_some_and(|t| t == "access_token" || t == "access_tokens")
        {
            // Fault type-loosely-matched: the type is compared with the collection's name in
            // mind, case-insensitively.
        } else if faults.has(Fault::RoleNullAccepted)
            && at == "/data/relationships/role/data"
            && body.pointer(at).is_some_and(Value::is_null)
        {
            // Fault role-null-accepted: the older schema's nullable role is still accepted.
        } else if faults.has(Fault::TokenMassAssigned)
            && class == Class::UnknownMember
            && at == "/data/attributes"
            && only_token_is_unknown(body)
        {
            // Fault token-mass-assigned: `token` is a permitted parameter of the update.
        } else if faults.has(Fault::UnknownMembersAccepted) && class == Class::UnknownMember {
            // Fault unknown-members-accepted: the schema's closed objects are not enforced.
        } else if let (true, Class::MissingFlag(flag)) =
            (faults.has(Fault::MissingFlagDefaultsFalse), class)
        {
            // Fault missing-flag-defaults-false: the flags are read with a default.
            fixes.push((format!("{at}/{flag}"), false));
        } else if let (true, Class::FlagType(_), Some(value)) =
            (faults.has(Fault::StringTrueCoerced), class, text_flag)
        {
            // Fault string-true-coerced: the flags go through a lenient boolean parser.
            fixes.push((at.to_owned(), value));
        } else {
            kept.push(violation);
        }
    }
    if !kept.is_empty() {
        return Err(kept);
    }
    for (pointer, value) in fixes {
        if let Some((parent, member)) = pointer.rsplit_once('/')
            && let Some(Value::Object(object)) = body.pointer_mut(parent)
        {
            object.insert(member.to_owned(), Value::Bool(value));
        }
    }
    Ok(())
}

/// The refusal of a body the schema does not accept: `INVALID_FORMAT`.
fn invalid_body(faults: &FaultSet, violations: &[Violation]) -> ApiError {
    // Fault invalid-body-5xx: the handler reads the members before validating them, and
    // crashes on a missing one.
    if faults.has(Fault::InvalidBody5xx) && violations.iter().any(violations::is_missing_member) {
        return ApiError::internal_server_error();
    }
    ApiError::invalid_format(violations)
}

/// Fault invalid-partly-applied: the handler assigns the name before it validates the body,
/// so a refused body still renames the token.
fn partly_apply(state: &mut Data, token_id: Option<&str>, body: &Value) {
    if !state.faults.has(Fault::InvalidPartlyApplied) {
        return;
    }
    let name = body
        .pointer("/data/attributes/name")
        .and_then(Value::as_str);
    if let (Some(id), Some(name)) = (token_id, name)
        && let Some(token) = state.token_mut(id)
    {
        token.name = name.to_owned();
    }
}

/// A name must not be blank and no other token may have it (exact comparison).
fn validate_name(state: &Data, name: &str, this_token: Option<&str>) -> Result<(), ApiError> {
    if is_blank(name) {
        return Err(ApiError::invalid_field("name", "VALIDATION_REQUIRED"));
    }
    let taken = state
        .tokens
        .iter()
        .any(|t| t.name == name && Some(t.id.as_str()) != this_token);
    if taken {
        return Err(ApiError::invalid_field("name", "VALIDATION_UNIQUENESS"));
    }
    Ok(())
}

/// A role reference must name an existing role; `null` (allowed by older schemas) means none.
fn validate_role(state: &Data, reference: Option<&Reference>) -> Result<Option<String>, ApiError> {
    match reference {
        None => Ok(None),
        Some(Reference { id }) if state.role(id).is_some() => Ok(Some(id.clone())),
        // Fault role-reference-unchecked: the role id is stored without a lookup.
        Some(Reference { id }) if state.faults.has(Fault::RoleReferenceUnchecked) => {
            Ok(Some(id.clone()))
        }
        Some(_) => Err(ApiError::invalid_field("role", "VALIDATION_INVALID")),
    }
}
