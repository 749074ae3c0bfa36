//! The Content Delivery API listener: one GraphQL endpoint, `POST /`, with a fixed, tiny
//! schema.
//!
//! It exists so that the suite can see a change of `can_access_cda` / `can_access_cda_preview`
//! take effect on the API those flags govern. Checks, in order: rate limit (the layer), route
//! (`INVALID_ENDPOINT`), `X-Include-Drafts` value (400), credentials and surface flags (401),
//! body (413 / 400). The only query answered is `{ _site { locales } }`; anything else is a
//! GraphQL error, which GraphQL reports with 200 and `errors[]`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use super::auth;
use super::cma::invalid_endpoint;
use super::errors::ApiError;
use super::http::{self, Edge, json_response, parse_json, read_body};
use super::ratelimit::{self, RateLimiter};
use super::state::App;

/// The CDA's single route, with its own rate limit.
pub(crate) fn router(app: Arc<App>, limiter: Arc<RateLimiter>, edge: Arc<Edge>) -> Router {
    Router::new()
        .route("/", post(graphql))
        .fallback(invalid_endpoint)
        .method_not_allowed_fallback(invalid_endpoint)
        .with_state(app)
        .layer(middleware::from_fn_with_state(limiter, ratelimit::enforce))
        .layer(middleware::from_fn_with_state(edge, http::edge))
}

async fn graphql(State(app): State<Arc<App>>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let include_drafts = include_drafts(&parts.headers)?;
    {
        let mut state = app.lock();
        auth::authenticate_cda(&mut state, &parts.headers, include_drafts)?;
    }
    let bytes = read_body(&parts.headers, body).await?;
    let document =
        parse_json(&bytes).map_err(|message| ApiError::invalid_request_body(&message))?;
    let Some(query) = document.get("query").and_then(Value::as_str) else {
        return Err(ApiError::invalid_request_body(
            "the body must be a JSON object with a string query",
        ));
    };
    Ok(json_response(StatusCode::OK, &answer(query)))
}

/// `X-Include-Drafts`: absent or `false` is published content, `true` is drafts; anything
/// else (another value, several headers, non-UTF-8) is refused.
fn include_drafts(headers: &HeaderMap) -> Result<bool, ApiError> {
    let mut values = headers.get_all("x-include-drafts").iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(false),
        (Some(value), None) if value.as_bytes() == b"true" => Ok(true),
        (Some(value), None) if value.as_bytes() == b"false" => Ok(false),
        _ => Err(ApiError::invalid_x_include_drafts_header()),
    }
}

/// The GraphQL answer to `query`.
fn answer(query: &str) -> Value {
    if is_site_locales_query(query) {
        json!({"data": {"_site": {"locales": ["en"]}}})
    } else {
        json!({"errors": [{
            "message": "this reference server answers only the query { _site { locales } }",
        }]})
    }
}

/// `{ _site { locales } }`, optionally as `query` or `query Name`; whitespace and commas (both
/// insignificant in GraphQL) are ignored.
fn is_site_locales_query(query: &str) -> bool {
    let mut rest = query.trim_start_matches(is_ignored);
    if let Some(after) = rest.strip_prefix("query") {
        if after.starts_with(is_name_char) {
            return false;
        }
        rest = after.trim_start_matches(is_ignored);
        rest = rest.trim_start_matches(is_name_char);
    }
    let compact: String = rest.chars().filter(|c| !is_ignored(*c)).collect();
    compact == "{_site{locales}}"
}

fn is_ignored(c: char) -> bool {
    c.is_whitespace() || c == ',' || c == '\u{feff}'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_site_locales_query_in_its_spellings() {
        for query in [
            "{ _site { locales } }",
            "{_site{locales}}",
            "query { _site { locales } }",
            "query Locales {\n  _site {\n    locales\n  }\n}",
            "  query  {_site,{locales}}",
        ] {
            assert!(is_site_locales_query(query), "{query}");
        }
        for query in [
            "",
            "{ _site { name } }",
            "queryX { _site { locales } }",
            "mutation { _site { locales } }",
            "{ _site { locales } } }",
        ] {
            assert!(!is_site_locales_query(query), "{query}");
        }
    }
}
