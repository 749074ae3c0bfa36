//! The access-token endpoints, one handler each: list, create, retrieve, update, rotate,
//! delete.
//!
//! Each handler reads like the endpoint's documentation: the shared checks (see [`super::cma`])
//! in their fixed order, then what is particular to the endpoint. The `token` attribute of
//! every token returned follows the caller's role as it is after the request's own change.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::auth::{self, Action, Caller};
use super::cma::{PathId, path_id, success};
use super::errors::ApiError;
use super::http::{check_headers, json_body};
use super::resources::{LastAccess, Reference, Token, TokenInput, is_blank, read_input};
use super::state::{App, State as Data};
use crate::spec::SchemaId;

/// `GET /access_tokens`: every token, factory tokens included.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    request: Request,
) -> Result<Response, ApiError> {
    check_headers(request.headers())?;
    let mut state = app.lock();
    let caller = auth::authenticate_cma(&mut state, request.headers())?;
    auth::authorize(&state, &caller, Action::ListTokens)?;
    let show = auth::sees_secrets(&state, &caller);
    let tokens: Vec<Value> = state.tokens.iter().map(|t| t.to_resource(show)).collect();
    Ok(success(StatusCode::OK, Value::Array(tokens)))
}

/// `POST /access_tokens`: 201 with the new token.
pub(crate) async fn create(
    State(app): State<Arc<App>>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    check_headers(&parts.headers)?;
    let body = json_body(&parts.headers, body).await?;
    let schema = app.spec.schemas().validate(SchemaId::CreateRequest, &body);
    let mut state = app.lock();
    let caller = auth::authenticate_cma(&mut state, &parts.headers)?;
    auth::authorize(&state, &caller, Action::CreateToken)?;
    schema.map_err(|v| ApiError::invalid_format(&v))?;
    let input: TokenInput = read_input(&body).map_err(|v| ApiError::invalid_format(&v))?;

    validate_name(&state, &input.attributes.name, None)?;
    let role = match input.relationships {
        Some(relationships) => validate_role(&state, relationships.role.data)?,
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
    let mut state = app.lock();
    let caller = auth::authenticate_cma(&mut state, request.headers())?;
    auth::authorize(&state, &caller, Action::ReadToken)?;
    let token = lookup(&state, path_id(id))?;
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
    let (parts, body) = request.into_parts();
    check_headers(&parts.headers)?;
    let body = json_body(&parts.headers, body).await?;
    let schema = app.spec.schemas().validate(SchemaId::UpdateRequest, &body);
    let mut state = app.lock();
    let caller = auth::authenticate_cma(&mut state, &parts.headers)?;
    auth::authorize(&state, &caller, Action::UpdateToken)?;
    schema.map_err(|v| ApiError::invalid_format(&v))?;
    let input: TokenInput = read_input(&body).map_err(|v| ApiError::invalid_format(&v))?;
    let token = lookup(&state, path_id(id))?;
    if token.hardcoded_type.is_some() {
        return Err(ApiError::non_editable_access_token());
    }
    let token_id = token.id.clone();

    if input.id.as_deref() != Some(token_id.as_str()) {
        return Err(ApiError::invalid_field("id", "VALIDATION_INVALID"));
    }
    validate_name(&state, &input.attributes.name, Some(&token_id))?;
    let new_role = match input.relationships {
        Some(relationships) => Some(validate_role(&state, relationships.role.data)?),
        None => None,
    };

    let Some(token) = state.token_mut(&token_id) else {
        return Err(ApiError::not_found());
    };
    token.name = input.attributes.name;
    token.can_access_cda = input.attributes.can_access_cda;
    token.can_access_cda_preview = input.attributes.can_access_cda_preview;
    token.can_access_cma = input.attributes.can_access_cma;
    if let Some(role) = new_role {
        token.role = role;
    }
    respond_with(&state, &caller, &token_id)
}

/// `POST /access_tokens/{id}/regenerate_token`: a new secret; the old one stops working at
/// once. Role and flags are kept. Factory tokens may be rotated.
pub(crate) async fn rotate(
    State(app): State<Arc<App>>,
    id: PathId,
    request: Request,
) -> Result<Response, ApiError> {
    check_headers(request.headers())?;
    let mut state = app.lock();
    let caller = auth::authenticate_cma(&mut state, request.headers())?;
    auth::authorize(&state, &caller, Action::RotateToken)?;
    let token_id = lookup(&state, path_id(id))?.id.clone();
    let secret = state.new_secret();
    if let Some(token) = state.token_mut(&token_id) {
        token.secret = secret;
    }
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
    let mut state = app.lock();
    let caller = auth::authenticate_cma(&mut state, request.headers())?;
    auth::authorize(&state, &caller, Action::DeleteToken)?;
    let token = lookup(&state, path_id(id))?;
    if token.id == caller.token_id {
        return Err(ApiError::cannot_destroy_current_user());
    }
    let resource = token.to_resource(auth::sees_secrets(&state, &caller));
    let token_id = token.id.clone();
    state.tokens.retain(|t| t.id != token_id);
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
fn validate_role(state: &Data, reference: Option<Reference>) -> Result<Option<String>, ApiError> {
    match reference {
        None => Ok(None),
        Some(Reference { id }) if state.role(&id).is_some() => Ok(Some(id)),
        Some(_) => Err(ApiError::invalid_field("role", "VALIDATION_INVALID")),
    }
}
