//! The role endpoints, one handler each: list, create, retrieve, update, delete.
//!
//! Roles exist here so that the suite can give a token a role and take it away again. Writing
//! roles needs `can_manage_users`; reading them is open to every CMA token. Attributes the
//! request leaves out take the spec's defaults on create and stay as they were on update.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value};

use super::auth::{self, Action};
use super::cma::{PathId, path_id, success};
use super::errors::ApiError;
use super::http::check_headers;
use super::resources::{Role, RoleInput, is_blank, read_input};
use super::state::{App, State as Data};
use crate::spec::SchemaId;

/// `GET /roles`.
pub(crate) async fn list(
    State(app): State<Arc<App>>,
    request: Request,
) -> Result<Response, ApiError> {
    check_headers(request.headers())?;
    let (state, _caller) = auth::admit(&app, request.headers(), Action::ListRoles)?;
    let roles: Vec<Value> = state.roles.iter().map(Role::to_resource).collect();
    Ok(success(StatusCode::OK, Value::Array(roles)))
}

/// `POST /roles`: 201 with the new role. Only `name` is required.
pub(crate) async fn create(
    State(app): State<Arc<App>>,
    request: Request,
) -> Result<Response, ApiError> {
    let auth::Admitted {
        mut state,
        caller: _,
        body,
        schema,
    } = auth::admit_with_body(
        &app,
        request,
        SchemaId::RoleCreateRequest,
        Action::CreateRole,
    )
    .await?;
    schema.map_err(|v| ApiError::invalid_format(&v))?;
    let input: RoleInput = read_input(&body).map_err(|v| ApiError::invalid_format(&v))?;
    validate_name(&input.attributes, true)?;
    let id = state.next_role_id();
    let role = app.roles.new_role(id, &input.attributes);
    let resource = role.to_resource();
    state.roles.push(role);
    Ok(success(StatusCode::CREATED, resource))
}

/// `GET /roles/{id}`.
pub(crate) async fn retrieve(
    State(app): State<Arc<App>>,
    id: PathId,
    request: Request,
) -> Result<Response, ApiError> {
    check_headers(request.headers())?;
    let (state, _caller) = auth::admit(&app, request.headers(), Action::ReadRole)?;
    let role = lookup(&state, path_id(id))?;
    Ok(success(StatusCode::OK, role.to_resource()))
}

/// `PUT /roles/{id}`: the attributes sent replace the stored ones; the rest stay.
pub(crate) async fn update(
    State(app): State<Arc<App>>,
    id: PathId,
    request: Request,
) -> Result<Response, ApiError> {
    let auth::Admitted {
        mut state,
        caller: _,
        body,
        schema,
    } = auth::admit_with_body(
        &app,
        request,
        SchemaId::RoleUpdateRequest,
        Action::UpdateRole,
    )
    .await?;
    schema.map_err(|v| ApiError::invalid_format(&v))?;
    let input: RoleInput = read_input(&body).map_err(|v| ApiError::invalid_format(&v))?;
    let role_id = lookup(&state, path_id(id))?.id.clone();
    if input.id.as_ref().is_some_and(|id| *id != role_id) {
        return Err(ApiError::invalid_field("id", "VALIDATION_INVALID"));
    }
    validate_name(&input.attributes, false)?;
    let Some(role) = state.role_mut(&role_id) else {
        return Err(ApiError::not_found());
    };
    app.roles.apply(role, &input.attributes);
    Ok(success(StatusCode::OK, role.to_resource()))
}

/// `DELETE /roles/{id}`: 200 with the deleted role; refused while a token still has it.
pub(crate) async fn delete(
    State(app): State<Arc<App>>,
    id: PathId,
    request: Request,
) -> Result<Response, ApiError> {
    check_headers(request.headers())?;
    let (mut state, _caller) = auth::admit(&app, request.headers(), Action::DeleteRole)?;
    let role = lookup(&state, path_id(id))?;
    if state
        .tokens
        .iter()
        .any(|t| t.role.as_deref() == Some(role.id.as_str()))
    {
        return Err(ApiError::invalid_field("role", "VALIDATION_IN_USE"));
    }
    let resource = role.to_resource();
    let role_id = role.id.clone();
    state.roles.retain(|r| r.id != role_id);
    Ok(success(StatusCode::OK, resource))
}

fn lookup(state: &Data, id: Option<String>) -> Result<&Role, ApiError> {
    id.as_deref()
        .and_then(|id| state.role(id))
        .ok_or_else(ApiError::not_found)
}

/// `name`, when sent (always on create), must not be blank; the schema only asks for one
/// character, which a space satisfies.
fn validate_name(attributes: &Map<String, Value>, required: bool) -> Result<(), ApiError> {
    let blank = match attributes.get("name") {
        Some(name) => name.as_str().is_none_or(is_blank),
        None => required,
    };
    if blank {
        Err(ApiError::invalid_field("name", "VALIDATION_REQUIRED"))
    } else {
        Ok(())
    }
}
