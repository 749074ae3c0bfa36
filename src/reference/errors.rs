//! The one place where the reference server's errors are built.
//!
//! Every error code, its HTTP status and its `details` come from here, so the table in the
//! README and the server cannot drift apart, and a later fault that changes an error has one
//! place to do it. The envelope follows the documented `api_error` shape; the `id` is the
//! observed formula (first 6 hex digits of the MD5 of `{"code":..,"details":..}`), so the same
//! error always has the same id.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::http::json_response;
use crate::faults::{Fault, FaultSet};
use crate::spec::Violation;

/// The base of every error's `doc_url`; the code is appended as the fragment.
pub const DOC_URL_BASE: &str = "https://www.datocms.com/docs/content-management-api/errors";

/// At most this many schema violations are reported in one `INVALID_FORMAT`.
const MAX_VIOLATIONS: usize = 20;

/// At most this many characters of one message or path are sent back, so a huge body is
/// never echoed.
pub const MAX_ECHO_CHARS: usize = 200;

/// Every error code the reference server answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// No route for this path and method.
    InvalidEndpoint,
    /// `Accept` names no JSON media type.
    InvalidAcceptHeader,
    /// `X-Api-Version` is present and not `3`.
    InvalidApiVersionHeader,
    /// The body's `Content-Type` is not JSON.
    InvalidContentTypeHeader,
    /// The body is over 1 MiB.
    RequestTooLarge,
    /// The body is not JSON (or not UTF-8, or nested too deeply, or has out-of-range numbers).
    InvalidJsonBody,
    /// No `Authorization` header.
    InvalidSite,
    /// A malformed or unknown token, or a token that lacks the API surface's flag.
    InvalidAuthorizationHeader,
    /// The caller's role does not allow the action.
    InsufficientPermissions,
    /// The body does not match the request schema.
    InvalidFormat,
    /// No resource with this id.
    NotFound,
    /// A factory (hardcoded) token cannot be updated.
    NonEditableAccessToken,
    /// A field fails validation (blank, duplicate, unknown reference, in use, ...).
    InvalidField,
    /// A token tried to delete itself.
    CannotDestroyCurrentUser,
    /// Too many requests for this token in the current window.
    RateLimitExceeded,
    /// CDA: `X-Include-Drafts` is neither `true` nor `false`.
    InvalidXIncludeDraftsHeader,
    /// CDA: the body is not JSON with a string `query`.
    InvalidRequestBody,
    /// The handler crashed. The conformant server never answers it: only faults do
    /// (`invalid-body-5xx`, `non-ascii-name-500`, `unknown-id-500`).
    InternalServerError,
    /// Network trouble (`ServerConfig::flaky`): try again later. The only transient code.
    ServiceUnavailable,
}

impl ErrorCode {
    /// Every code, in the order of the checks that produce them.
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::RateLimitExceeded,
        ErrorCode::InvalidEndpoint,
        ErrorCode::InvalidAcceptHeader,
        ErrorCode::InvalidApiVersionHeader,
        ErrorCode::InvalidContentTypeHeader,
        ErrorCode::RequestTooLarge,
        ErrorCode::InvalidJsonBody,
        ErrorCode::InvalidSite,
        ErrorCode::InvalidAuthorizationHeader,
        ErrorCode::InsufficientPermissions,
        ErrorCode::InvalidFormat,
        ErrorCode::NotFound,
        ErrorCode::NonEditableAccessToken,
        ErrorCode::InvalidField,
        ErrorCode::CannotDestroyCurrentUser,
        ErrorCode::InvalidXIncludeDraftsHeader,
        ErrorCode::InvalidRequestBody,
        ErrorCode::InternalServerError,
        ErrorCode::ServiceUnavailable,
    ];

    /// The code as it appears in `attributes.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidEndpoint => "INVALID_ENDPOINT",
            ErrorCode::InvalidAcceptHeader => "INVALID_ACCEPT_HEADER",
            ErrorCode::InvalidApiVersionHeader => "INVALID_API_VERSION_HEADER",
            ErrorCode::InvalidContentTypeHeader => "INVALID_CONTENT_TYPE_HEADER",
            ErrorCode::RequestTooLarge => "REQUEST_TOO_LARGE",
            ErrorCode::InvalidJsonBody => "INVALID_JSON_BODY",
            ErrorCode::InvalidSite => "INVALID_SITE",
            ErrorCode::InvalidAuthorizationHeader => "INVALID_AUTHORIZATION_HEADER",
            ErrorCode::InsufficientPermissions => "INSUFFICIENT_PERMISSIONS",
            ErrorCode::InvalidFormat => "INVALID_FORMAT",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::NonEditableAccessToken => "NON_EDITABLE_ACCESS_TOKEN",
            ErrorCode::InvalidField => "INVALID_FIELD",
            ErrorCode::CannotDestroyCurrentUser => "CANNOT_DESTROY_CURRENT_USER",
            ErrorCode::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            ErrorCode::InvalidXIncludeDraftsHeader => "INVALID_X_INCLUDE_DRAFTS_HEADER",
            ErrorCode::InvalidRequestBody => "INVALID_REQUEST_BODY",
            ErrorCode::InternalServerError => "INTERNAL_SERVER_ERROR",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }

    /// The HTTP status the reference server answers this code with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidEndpoint | ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::InvalidAcceptHeader => StatusCode::NOT_ACCEPTABLE,
            ErrorCode::InvalidApiVersionHeader
            | ErrorCode::InvalidXIncludeDraftsHeader
            | ErrorCode::InvalidRequestBody => StatusCode::BAD_REQUEST,
            ErrorCode::InvalidContentTypeHeader | ErrorCode::InvalidJsonBody => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ErrorCode::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            // 401 for a refused factory-token update follows the one older implementation
            // known; the real status is undocumented.
            ErrorCode::InvalidSite
            | ErrorCode::InvalidAuthorizationHeader
            | ErrorCode::InsufficientPermissions
            | ErrorCode::NonEditableAccessToken => StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidFormat
            | ErrorCode::InvalidField
            | ErrorCode::CannotDestroyCurrentUser => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The deterministic `id` of an error: the first 6 hex digits of the MD5 of the compact JSON
/// `{"code":<code>,"details":<details>}`, keys in that order and `details` as sent.
pub fn error_id(code: &str, details: &Value) -> String {
    let mut key = Map::new();
    key.insert("code".to_owned(), Value::from(code));
    key.insert("details".to_owned(), details.clone());
    let digest = md5::compute(Value::Object(key).to_string());
    let mut hex = format!("{digest:x}");
    hex.truncate(6);
    hex
}

/// One error, ready to become a response.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    code: ErrorCode,
    details: Value,
    status: StatusCode,
}

impl ApiError {
    fn new(code: ErrorCode, details: Value) -> ApiError {
        ApiError {
            code,
            details,
            status: code.status(),
        }
    }

    /// The same error with another HTTP status than its code's. Only faults use it.
    pub(crate) fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    pub(crate) fn invalid_endpoint() -> ApiError {
        ApiError::new(ErrorCode::InvalidEndpoint, json!({}))
    }

    pub(crate) fn invalid_accept_header() -> ApiError {
        ApiError::new(
            ErrorCode::InvalidAcceptHeader,
            json!({"message": "Accept must allow application/json"}),
        )
    }

    pub(crate) fn invalid_api_version_header() -> ApiError {
        ApiError::new(
            ErrorCode::InvalidApiVersionHeader,
            json!({"message": "X-Api-Version must be 3 when present"}),
        )
    }

    pub(crate) fn invalid_content_type_header() -> ApiError {
        ApiError::new(
            ErrorCode::InvalidContentTypeHeader,
            json!({"message": "Content-Type must be application/json or application/vnd.api+json"}),
        )
    }

    pub(crate) fn request_too_large(limit_bytes: usize) -> ApiError {
        ApiError::new(
            ErrorCode::RequestTooLarge,
            json!({"limit_bytes": limit_bytes}),
        )
    }

    /// `message` says what the parser found; it is capped, and serde_json never quotes the
    /// input in its messages anyway.
    pub(crate) fn invalid_json_body(message: &str) -> ApiError {
        ApiError::new(ErrorCode::InvalidJsonBody, json!({"message": cap(message)}))
    }

    pub(crate) fn invalid_site() -> ApiError {
        ApiError::new(
            ErrorCode::InvalidSite,
            json!({"message": "missing Authorization header"}),
        )
    }

    pub(crate) fn invalid_authorization_header(message: &'static str) -> ApiError {
        ApiError::new(
            ErrorCode::InvalidAuthorizationHeader,
            json!({"message": message}),
        )
    }

    pub(crate) fn insufficient_permissions(permission: &str) -> ApiError {
        ApiError::new(
            ErrorCode::InsufficientPermissions,
            json!({"permission": permission}),
        )
    }

    /// Details name every failing JSON path (at most [`MAX_VIOLATIONS`]), each message capped
    /// at [`MAX_ECHO_CHARS`] because validator messages quote the offending value.
    pub(crate) fn invalid_format(violations: &[Violation]) -> ApiError {
        let shown = &violations[..violations.len().min(MAX_VIOLATIONS)];
        let messages: Vec<Value> = shown
            .iter()
            .map(|v| {
                let at = if v.instance_path.is_empty() {
                    "(root)"
                } else {
                    &v.instance_path
                };
                Value::from(cap(&format!("{at}: {}", v.message)))
            })
            .collect();
        let errors: Vec<Value> = shown
            .iter()
            .map(|v| json!({"path": cap(&v.instance_path), "schema_path": cap(&v.schema_path)}))
            .collect();
        ApiError::new(
            ErrorCode::InvalidFormat,
            json!({"messages": messages, "errors": errors}),
        )
    }

    pub(crate) fn not_found() -> ApiError {
        ApiError::new(ErrorCode::NotFound, json!({}))
    }

    pub(crate) fn non_editable_access_token() -> ApiError {
        ApiError::new(ErrorCode::NonEditableAccessToken, json!({}))
    }

    pub(crate) fn invalid_field(field: &str, code: &str) -> ApiError {
        ApiError::new(
            ErrorCode::InvalidField,
            json!({"field": field, "code": code}),
        )
    }

    pub(crate) fn cannot_destroy_current_user() -> ApiError {
        ApiError::new(ErrorCode::CannotDestroyCurrentUser, json!({}))
    }

    pub(crate) fn rate_limit_exceeded(limit: u32) -> ApiError {
        ApiError::new(ErrorCode::RateLimitExceeded, json!({"limit": limit}))
    }

    pub(crate) fn invalid_x_include_drafts_header() -> ApiError {
        ApiError::new(
            ErrorCode::InvalidXIncludeDraftsHeader,
            json!({"message": "X-Include-Drafts must be true or false"}),
        )
    }

    pub(crate) fn invalid_request_body(message: &str) -> ApiError {
        ApiError::new(
            ErrorCode::InvalidRequestBody,
            json!({"message": cap(message)}),
        )
    }

    /// A crash of the handler (only faults answer it).
    pub(crate) fn internal_server_error() -> ApiError {
        ApiError::new(ErrorCode::InternalServerError, json!({}))
    }

    /// Network trouble: a transient 503 (only `ServerConfig::flaky` answers it).
    pub(crate) fn service_unavailable() -> ApiError {
        ApiError::new(
            ErrorCode::ServiceUnavailable,
            json!({"message": "try again"}),
        )
    }

    /// The documented envelope: `{"data": [api_error]}`.
    pub(crate) fn to_body(&self, faults: &FaultSet) -> Value {
        let code = self.code.as_str();
        let errors = json!([{
            "id": error_id(code, &self.details),
            "type": "api_error",
            "attributes": {
                "code": code,
                "details": self.details,
                "doc_url": format!("{DOC_URL_BASE}#{code}"),
                // Only network trouble gets better by retrying the same request; rate limits
                // included, clients wait X-RateLimit-Reset instead.
                "transient": self.code == ErrorCode::ServiceUnavailable,
            },
        }]);
        // Fault errors-under-errors: the api_error objects go under the wrong member.
        // Fault field-errors-under-errors: so do validation and permission errors only.
        let field_error = matches!(
            self.code,
            ErrorCode::InvalidField | ErrorCode::InsufficientPermissions
        );
        let member = if faults.has(Fault::ErrorsUnderErrors)
            || (field_error && faults.has(Fault::FieldErrorsUnderErrors))
        {
            "errors"
        } else {
            "data"
        };
        let mut body = Map::new();
        body.insert(member.to_owned(), errors);
        Value::Object(body)
    }
}

/// The conformant rendering. The error also rides along in the response's extensions, so that
/// the listener's edge ([`super::http::edge`]) can render it again the way the faults say.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_response(self.status, &self.to_body(&FaultSet::none()));
        response.extensions_mut().insert(self);
        response
    }
}

/// At most [`MAX_ECHO_CHARS`] characters of `text`, cut on a character boundary.
fn cap(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHO_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_the_md5_prefix_of_code_then_details() {
        let details = json!({"field": "name", "code": "VALIDATION_UNIQUENESS"});
        let compact =
            r#"{"code":"INVALID_FIELD","details":{"field":"name","code":"VALIDATION_UNIQUENESS"}}"#;
        let expected = format!("{:x}", md5::compute(compact));
        assert_eq!(error_id("INVALID_FIELD", &details), expected[..6]);
    }

    #[test]
    fn every_code_but_the_crash_and_network_trouble_is_a_4xx() {
        for code in ErrorCode::ALL {
            if matches!(
                code,
                ErrorCode::InternalServerError | ErrorCode::ServiceUnavailable
            ) {
                assert!(code.status().is_server_error());
            } else {
                assert!(code.status().is_client_error(), "{code}");
            }
        }
    }

    #[test]
    fn long_messages_are_capped_on_a_char_boundary() {
        let long = "é".repeat(10_000);
        let capped = cap(&long);
        assert_eq!(capped.chars().count(), MAX_ECHO_CHARS + 1);
    }

    #[test]
    fn the_envelope_has_the_documented_shape() {
        let body = ApiError::not_found().to_body(&FaultSet::none());
        let error = &body["data"][0];
        assert_eq!(error["type"], "api_error");
        assert_eq!(error["attributes"]["code"], "NOT_FOUND");
        assert_eq!(
            error["attributes"]["doc_url"],
            "https://www.datocms.com/docs/content-management-api/errors#NOT_FOUND"
        );
        assert_eq!(error["attributes"]["transient"], false);
        assert_eq!(error["id"].as_str().map(str::len), Some(6));
    }
}
