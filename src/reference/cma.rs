//! The Content Management API listener: its routes, and the two small endpoints every CMA
//! token may call (`GET /site`, `GET /users/me`), which the suite uses as permission probes.
//!
//! Every handler follows the same order of checks, which is part of the documented behaviour:
//! routing (`INVALID_ENDPOINT`), `Accept`, `X-Api-Version`, `Content-Type`, body size, JSON,
//! credentials, role permission, body schema, lookup, hardcoded token, validation. The rate
//! limit is decided before all of them, by the layer around the router.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::auth::{self, Action};
use super::errors::ApiError;
use super::http::{self, Edge, check_headers, json_response};
use super::ratelimit::{self, RateLimiter};
use super::state::App;
use super::{roles, tokens};

/// The CMA's routes, with the rate limit around all of them (fallbacks included), and the
/// edge (where faults bend every answer) around that.
pub(crate) fn router(app: Arc<App>, limiter: Arc<RateLimiter>, edge: Arc<Edge>) -> Router {
    Router::new()
        .route("/access_tokens", get(tokens::list).post(tokens::create))
        .route(
            "/access_tokens/{id}",
            get(tokens::retrieve)
                .put(tokens::update)
                .delete(tokens::delete),
        )
        .route("/access_tokens/{id}/regenerate_token", post(tokens::rotate))
        .route("/roles", get(roles::list).post(roles::create))
        .route(
            "/roles/{id}",
            get(roles::retrieve)
                .put(roles::update)
                .delete(roles::delete),
        )
        .route("/site", get(site))
        .route("/users/me", get(current_token))
        .fallback(invalid_endpoint)
        .method_not_allowed_fallback(invalid_endpoint)
        .with_state(app)
        .layer(middleware::from_fn_with_state(limiter, ratelimit::enforce))
        .layer(middleware::from_fn_with_state(edge, http::edge))
}

/// An id from the path. An id that cannot be decoded (invalid percent-encoded UTF-8) is one
/// that no resource has, so it ends as `NOT_FOUND` at the lookup step, not as a plain-text
/// rejection.
pub(crate) type PathId = Result<Path<String>, PathRejection>;

pub(crate) fn path_id(id: PathId) -> Option<String> {
    id.ok().map(|Path(id)| id)
}

/// A success: `{"data": data}`.
pub(crate) fn success(status: StatusCode, data: Value) -> Response {
    json_response(status, &json!({ "data": data }))
}

/// Unknown path, or a known path with another method.
pub(crate) async fn invalid_endpoint() -> ApiError {
    ApiError::invalid_endpoint()
}

/// `GET /site`: a minimal site resource.
async fn site(State(app): State<Arc<App>>, request: Request) -> Result<Response, ApiError> {
    check_headers(request.headers())?;
    let _admitted = auth::admit(&app, request.headers(), Action::ReadSite)?;
    Ok(success(
        StatusCode::OK,
        json!({
            "type": "site",
            "id": "1",
            "attributes": {
                "name": "Conformance reference site",
                "locales": ["en"],
                "timezone": "UTC",
            },
        }),
    ))
}

/// `GET /users/me`: the calling token, as an `access_token` resource.
async fn current_token(
    State(app): State<Arc<App>>,
    request: Request,
) -> Result<Response, ApiError> {
    check_headers(request.headers())?;
    let (state, caller) = auth::admit(&app, request.headers(), Action::ReadCurrentToken)?;
    let show = auth::sees_secrets(&state, &caller);
    let token = state
        .token(&caller.token_id)
        .ok_or_else(ApiError::not_found)?;
    Ok(success(StatusCode::OK, token.to_resource(show)))
}
