//! HTTP plumbing shared by both listeners: the JSON response every answer goes through, and
//! the request checks that come before any state is read (`Accept`, `X-Api-Version`,
//! `Content-Type`, body size, JSON parsing).
//!
//! Nothing here uses axum's extractors for client input: their rejections are plain text, and
//! every answer of this server must be JSON. Every header is read defensively (non-UTF-8 values,
//! duplicates) and the body is read by hand with a hard size limit.

use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::errors::ApiError;
use crate::faults::{Fault, FaultSet};

/// The largest body accepted, in bytes (1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The content type of every response, success or error, CMA or CDA.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A response with a JSON body and [`JSON_CONTENT_TYPE`].
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
    response
}

/// What a listener's answers go through last, after the rate limit has put its headers on:
/// the faults that bend every answer. A pass-through for the conformant server.
#[derive(Debug)]
pub(crate) struct Edge {
    /// The faults of the server.
    pub(crate) faults: FaultSet,
    /// Whether this is the CMA listener (`html-content-type` is a CMA bug).
    pub(crate) cma: bool,
    /// Network trouble: the fraction of requests that fail (see `ServerConfig::flaky`).
    pub(crate) flaky: Option<f64>,
}

/// The middleware of [`Edge`].
pub(crate) async fn edge(State(edge): State<Arc<Edge>>, request: Request, next: Next) -> Response {
    let trouble = match edge.flaky {
        Some(rate) => network_trouble(rate).await,
        None => Trouble::None,
    };
    if trouble == Trouble::Unavailable {
        return ApiError::service_unavailable().into_response();
    }
    // Fault vnd-content-type-echoed: the responder picks the request's media type.
    let echoed = edge.cma
        && edge.faults.has(Fault::VndContentTypeEchoed)
        && request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/vnd.api+json")
            });
    let mut response = next.run(request).await;
    if trouble == Trouble::DropAfter {
        // The request was handled, but its answer never arrives: the body fails mid-way, so
        // hyper closes the connection.
        *response.body_mut() = Body::new(DroppedConnection);
        response.headers_mut().remove(CONTENT_LENGTH);
        return response;
    }
    if edge.faults.is_empty() {
        return response;
    }
    // An error is rendered again with the faults (`errors-under-errors`, see `errors`).
    if let Some(error) = response.extensions().get::<ApiError>() {
        let body = error.to_body(&edge.faults).to_string();
        *response.body_mut() = Body::from(body);
    }
    // Fault throttle-body-not-envelope: the throttling middleware renders its own body.
    if response.status() == StatusCode::TOO_MANY_REQUESTS
        && edge.faults.has(Fault::ThrottleBodyNotEnvelope)
    {
        *response.body_mut() = Body::from(r#"{"error":"Retry later"}"#);
        response.headers_mut().remove(CONTENT_LENGTH);
    }
    if echoed && response.status().is_success() {
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/vnd.api+json"),
        );
    }
    let is_error = response.status().is_client_error() || response.status().is_server_error();
    let content_type = if edge.cma && is_error && edge.faults.has(Fault::HtmlContentType) {
        // Fault html-content-type: errors go through the web framework's HTML error pages,
        // which set their own content type (the body stays JSON).
        Some("text/html; charset=utf-8")
    } else if edge.faults.has(Fault::NoCharset) {
        // Fault no-charset: the serializer's bare media type.
        Some("application/json")
    } else {
        None
    };
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if edge.cma && is_error && edge.faults.has(Fault::ContentTypeAppended) {
        // Fault content-type-appended: an error middleware appends its own content type
        // after the one the handler set (`append` where `insert` was meant).
        response
            .headers_mut()
            .append(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    }
    response
}

/// The CMA's header checks between routing and credentials, in order: `Accept`, then
/// `X-Api-Version`. Every endpoint runs them.
pub(crate) fn check_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    check_accept(headers)?;
    check_api_version(headers)
}

/// The CMA's body checks, after [`check_headers`] and before credentials, for endpoints that
/// take a body: `Content-Type`, size, then JSON. Other endpoints never read their body.
pub(crate) async fn json_body(headers: &HeaderMap, body: Body) -> Result<Value, ApiError> {
    check_content_type(headers)?;
    let bytes = read_body(headers, body).await?;
    parse_json(&bytes).map_err(|message| ApiError::invalid_json_body(&message))
}

/// `Accept` is fine when absent, empty, or when any of its media ranges is JSON-compatible.
fn check_accept(headers: &HeaderMap) -> Result<(), ApiError> {
    let mut named_any = false;
    for value in headers.get_all(ACCEPT) {
        let text = value
            .to_str()
            .map_err(|_| ApiError::invalid_accept_header())?;
        for range in text.split(',') {
            let media = media_type(range);
            if media.is_empty() {
                continue;
            }
            named_any = true;
            if matches!(
                media.as_str(),
                "application/json" | "application/vnd.api+json" | "*/*" | "application/*"
            ) {
                return Ok(());
            }
        }
    }
    if named_any {
        Err(ApiError::invalid_accept_header())
    } else {
        Ok(())
    }
}

/// A missing `X-Api-Version` means version 3; anything but a single `3` is refused.
fn check_api_version(headers: &HeaderMap) -> Result<(), ApiError> {
    let mut values = headers.get_all("x-api-version").iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(()),
        (Some(value), None) if value.as_bytes().trim_ascii() == b"3" => Ok(()),
        _ => Err(ApiError::invalid_api_version_header()),
    }
}

/// Exactly one `Content-Type`, whose media type is JSON; parameters such as `charset` are fine.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::invalid_content_type_header());
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::invalid_content_type_header())?;
    match media_type(text).as_str() {
        "application/json" | "application/vnd.api+json" => Ok(()),
        _ => Err(ApiError::invalid_content_type_header()),
    }
}

/// The lowercased media type of a header item, without parameters.
fn media_type(item: &str) -> String {
    item.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The whole body, refused with 413 as soon as it is known to exceed [`MAX_BODY_BYTES`]
/// (from `Content-Length` or while reading), and never buffered past that.
pub(crate) async fn read_body(headers: &HeaderMap, mut body: Body) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::request_too_large(MAX_BODY_BYTES);
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64)
        || body.size_hint().lower() > MAX_BODY_BYTES as u64
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => return Ok(bytes),
            Some(Err(_)) => {
                return Err(ApiError::invalid_json_body(
                    "the request body could not be read",
                ));
            }
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    if bytes.len() + data.len() > MAX_BODY_BYTES {
                        return Err(too_large());
                    }
                    bytes.extend_from_slice(&data);
                }
            }
        }
    }
}

/// The body as JSON. serde_json refuses invalid UTF-8, nesting deeper than 128 levels and
/// numbers outside `f64`, which is exactly what must not get further.
pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|err| format!("the body is not valid JSON: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                *name,
                HeaderValue::from_bytes(value).expect("valid header bytes"),
            );
        }
        map
    }

    #[test]
    fn accept_allows_json_wildcards_and_absence() {
        for ok in [
            &[][..],
            &[("accept", &b"application/json"[..])],
            &[("accept", &b"text/html, application/vnd.api+json;q=0.9"[..])],
            &[("accept", &b"*/*"[..])],
            &[("accept", &b"APPLICATION/*"[..])],
            &[("accept", &b""[..])],
        ] {
            assert!(check_accept(&headers(ok)).is_ok(), "{ok:?}");
        }
        for bad in [
            &[("accept", &b"text/html"[..])][..],
            &[("accept", &b"application/xml, text/*"[..])],
            &[("accept", &b"\xff\xfe"[..])],
        ] {
            assert!(check_accept(&headers(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn api_version_must_be_a_single_three() {
        assert!(check_api_version(&headers(&[])).is_ok());
        assert!(check_api_version(&headers(&[("x-api-version", b"3")])).is_ok());
        assert!(check_api_version(&headers(&[("x-api-version", b"2")])).is_err());
        assert!(
            check_api_version(&headers(&[
                ("x-api-version", b"3"),
                ("x-api-version", b"3")
            ]))
            .is_err()
        );
    }

    #[test]
    fn content_type_must_be_one_json_type() {
        assert!(
            check_content_type(&headers(&[(
                "content-type",
                b"application/json; charset=utf-8"
            )]))
            .is_ok()
        );
        assert!(
            check_content_type(&headers(&[("content-type", b"application/vnd.api+json")])).is_ok()
        );
        assert!(check_content_type(&headers(&[])).is_err());
        assert!(check_content_type(&headers(&[("content-type", b"text/plain")])).is_err());
        assert!(
            check_content_type(&headers(&[
                ("content-type", b"application/json"),
                ("content-type", b"application/json"),
            ]))
            .is_err()
        );
    }

    #[test]
    fn json_parsing_refuses_what_must_not_get_further() {
        assert!(parse_json(b"{\"a\": 1}").is_ok());
        assert!(parse_json(b"\"\xff\"").is_err());
        assert!(parse_json(b"1e999999").is_err());
        assert!(parse_json(&[b'['; 10_000]).is_err());
        assert!(parse_json(b"").is_err());
    }
}

/// What the flaky network does to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trouble {
    None,
    /// A transient 503 before the request is handled.
    Unavailable,
    /// The connection is dropped after the request was handled.
    DropAfter,
}

/// Up to 20 ms of latency, then with probability `rate` one kind of trouble (half each).
async fn network_trouble(rate: f64) -> Trouble {
    use rand::Rng;
    let (delay_ms, roll, before) = {
        let mut rng = rand::rng();
        (
            rng.random_range(0..20u64),
            rng.random::<f64>(),
            rng.random::<bool>(),
        )
    };
    tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
    match (roll < rate, before) {
        (false, _) => Trouble::None,
        (true, true) => Trouble::Unavailable,
        (true, false) => Trouble::DropAfter,
    }
}

/// A response body that fails at once: the connection breaks after the headers.
struct DroppedConnection;

impl http_body::Body for DroppedConnection {
    type Data = axum::body::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "flaky network: connection dropped",
        ))))
    }
}
