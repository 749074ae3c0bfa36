//! Bad input never hurts the reference server: thousands of generated malformed requests
//! (random bytes, invalid UTF-8, deep nesting, out-of-range numbers, JSON of the wrong shape,
//! mutated valid bodies, oversized bodies, odd and repeated headers, random methods and paths).
//!
//! Whatever comes in, the answer is never a 5xx and never a panic, always JSON, and every 4xx is
//! the documented `api_error` envelope. Driven by proptest's `TestRunner` with a fixed seed, so
//! a failure is reproducible and shrinks to a small request; each case gets a fresh server, so
//! shrinking replays it exactly. One more run sends a long seeded session to a single server, so
//! that state built up by earlier requests is exercised too.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{Value, json};
use token_conformance::reference::{MAX_BODY_BYTES, ServerConfig, routers};
use token_conformance::spec::{SchemaId, Spec};
use tower::ServiceExt;

const ADMIN: &str = "robustness-admin-secret";

#[derive(Debug, Clone)]
enum Listener {
    Cma,
    Cda,
}

#[derive(Debug, Clone)]
enum Auth {
    None,
    Admin,
    Raw(Vec<u8>),
}

/// One generated request.
#[derive(Debug, Clone)]
struct Case {
    listener: Listener,
    method: Method,
    path: String,
    /// Send the usual good `Accept`, `X-Api-Version` and `Content-Type` first, so that most
    /// cases get past the header checks and reach the deeper ones.
    usual_headers: bool,
    auth: Auth,
    headers: Vec<(String, Vec<u8>)>,
    body: Payload,
}

/// A body, with oversized ones kept symbolic so that shrinking output stays readable.
#[derive(Clone)]
enum Payload {
    Bytes(Vec<u8>),
    Oversized { extra: usize, json_prefix: bool },
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payload::Bytes(bytes) => write!(f, "{:?}", String::from_utf8_lossy(bytes)),
            Payload::Oversized { extra, json_prefix } => {
                write!(
                    f,
                    "Oversized {{ extra: {extra}, json_prefix: {json_prefix} }}"
                )
            }
        }
    }
}

impl Payload {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Payload::Bytes(bytes) => bytes.clone(),
            Payload::Oversized { extra, json_prefix } => {
                let mut bytes = if *json_prefix {
                    b"{\"data\": ".to_vec()
                } else {
                    Vec::new()
                };
                bytes.resize(MAX_BODY_BYTES + extra, b' ');
                bytes
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        3 => Just(Method::GET),
        3 => Just(Method::PUT),
        3 => Just(Method::POST),
        2 => Just(Method::DELETE),
        1 => Just(Method::PATCH),
        1 => Just(Method::HEAD),
        1 => Just(Method::OPTIONS),
        1 => "[A-Z]{1,10}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
    ]
}

fn percent_encoded() -> impl Strategy<Value = String> {
    vec(any::<u8>(), 0..12).prop_map(|bytes| bytes.iter().map(|b| format!("%{b:02X}")).collect())
}

fn id_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop_oneof![Just("100"), Just("101"), Just("1"), Just("2"), Just("0"), Just("-1")]
            .prop_map(str::to_owned),
        2 => "[0-9]{1,30}",
        2 => percent_encoded(),
        2 => "[a-zA-Z0-9._~!$&'()*+,;=:@-]{0,40}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    let known = prop_oneof![
        Just("/access_tokens".to_owned()),
        id_segment().prop_map(|id| format!("/access_tokens/{id}")),
        id_segment().prop_map(|id| format!("/access_tokens/{id}/regenerate_token")),
        Just("/roles".to_owned()),
        id_segment().prop_map(|id| format!("/roles/{id}")),
        Just("/site".to_owned()),
        Just("/users/me".to_owned()),
        Just("/".to_owned()),
    ];
    let garbage = vec(
        prop_oneof!["[a-zA-Z0-9._~-]{0,12}", percent_encoded()],
        0..6,
    )
    .prop_map(|segments| format!("/{}", segments.join("/")));
    let query = proptest::option::of("[a-zA-Z0-9=&%._-]{0,30}");
    (prop_oneof![6 => known, 1 => garbage], query).prop_map(|(path, query)| match query {
        Some(query) => format!("{path}?{query}"),
        None => path,
    })
}

/// Bytes a header value may hold (no CR, LF, NUL or other controls but tab).
fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..80).prop_map(|bytes| {
        bytes
            .into_iter()
            .map(|b| {
                if (b < 0x20 && b != b'\t') || b == 0x7f {
                    b'x'
                } else {
                    b
                }
            })
            .collect()
    })
}

fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
    let name = prop_oneof![
        Just("accept".to_owned()),
        Just("content-type".to_owned()),
        Just("authorization".to_owned()),
        Just("x-api-version".to_owned()),
        Just("x-include-drafts".to_owned()),
        Just("content-length".to_owned()),
        Just("x-environment".to_owned()),
        "x-[a-z]{1,12}",
    ];
    let value = prop_oneof![
        3 => prop_oneof![
            Just("application/json"), Just("application/vnd.api+json; charset=utf-8"),
            Just("*/*"), Just("text/html"), Just(""), Just("3"), Just("2"), Just("true"),
            Just("false"), Just("Bearer"), Just("Bearer robustness-admin-secret"),
            Just("99999999999999999999"), Just("-1"), Just("0"),
        ]
        .prop_map(|v| v.as_bytes().to_vec()),
        2 => header_bytes(),
    ];
    (name, value)
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop_oneof![
            Just("data"), Just("type"), Just("id"), Just("attributes"), Just("relationships"),
            Just("role"), Just("name"), Just("can_access_cda"), Just("can_access_cda_preview"),
            Just("can_access_cma"), Just("token"), Just("query"), Just("can_manage_users"),
            Just("environments_access"), Just("positive_upload_permissions"),
        ]
        .prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,30}".prop_map(Value::from),
        prop_oneof![
            Just("access_token"),
            Just("role"),
            Just("100"),
            Just("101"),
            Just("1"),
            Just(""),
            Just(" "),
            Just("\u{3000}"),
            Just("Read-only API token"),
            Just("all"),
            Just("{ _site { locales } }"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn valid_bodies() -> Vec<Value> {
    let attributes = json!({"name": "n", "can_access_cda": true, "can_access_cda_preview": false, "can_access_cma": true});
    let role = json!({"role": {"data": {"type": "role", "id": "1"}}});
    vec![
        json!({"data": {"type": "access_token", "id": "101", "attributes": attributes}}),
        json!({"data": {"type": "access_token", "id": "100", "attributes": attributes, "relationships": role}}),
        json!({"data": {"type": "access_token", "attributes": attributes, "relationships": role}}),
        json!({"data": {"type": "role", "attributes": {"name": "r", "can_manage_users": true}}}),
        json!({"data": {"type": "role", "id": "2", "attributes": {"positive_upload_permissions": []}}}),
        json!({"query": "{ _site { locales } }"}),
    ]
}

/// Every JSON pointer inside `value`.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let child = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(child.clone());
                pointers(v, child, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let child = format!("{at}/{i}");
                out.push(child.clone());
                pointers(v, child, out);
            }
        }
        _ => {}
    }
}

/// A valid body with a few members replaced by random JSON or removed.
fn mutated_body() -> impl Strategy<Value = Vec<u8>> {
    let bodies = valid_bodies();
    let count = bodies.len();
    (
        0..count,
        vec((any::<usize>(), proptest::option::of(json_value())), 0..4),
    )
        .prop_map(move |(which, mutations)| {
            let mut body = bodies[which].clone();
            for (index, replacement) in mutations {
                let mut all = Vec::new();
                pointers(&body, String::new(), &mut all);
                if all.is_empty() {
                    break;
                }
                let pointer = &all[index % all.len()];
                let (parent, last) = pointer.rsplit_once('/').unwrap();
                let last = last.replace("~1", "/").replace("~0", "~");
                match (body.pointer_mut(parent), replacement) {
                    (Some(Value::Object(map)), Some(value)) => {
                        map.insert(last, value);
                    }
                    (Some(Value::Object(map)), None) => {
                        map.remove(&last);
                    }
                    (Some(Value::Array(items)), value) => {
                        if let Ok(i) = last.parse::<usize>() {
                            items[i] = value.unwrap_or(Value::Null);
                        }
                    }
                    _ => {}
                }
            }
            body.to_string().into_bytes()
        })
}

fn body() -> impl Strategy<Value = Payload> {
    let bytes = prop_oneof![
        2 => Just(Vec::new()),
        3 => vec(any::<u8>(), 0..300),
        2 => (".{0,20}", vec(128u8..=255, 1..8)).prop_map(|(s, bad)| {
            let mut out = format!("{{\"data\": \"{s}").into_bytes();
            out.extend(bad);
            out.extend_from_slice(b"\"}");
            out
        }),
        1 => (1usize..5000).prop_map(|depth| format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        1 => (1usize..5000).prop_map(|depth| format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth)).into_bytes()),
        2 => prop_oneof![
            Just("1e999999"), Just("-1e400"), Just("123456789012345678901234567890123456789"),
            Just("1.7976931348623157e309"), Just("[1e-99999]"), Just("{\"data\": 1E+999}"),
            Just("{\"data\": {\"id\": 18446744073709551616}}"), Just("-0"), Just("NaN"),
        ]
        .prop_map(|s| s.as_bytes().to_vec()),
        5 => json_value().prop_map(|v| v.to_string().into_bytes()),
        8 => mutated_body(),
    ];
    prop_oneof![
        40 => bytes.prop_map(Payload::Bytes),
        1 => (1usize..4096, any::<bool>()).prop_map(|(extra, json_prefix)| Payload::Oversized { extra, json_prefix }),
    ]
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        6 => Just(Auth::Admin),
        1 => Just(Auth::None),
        2 => header_bytes().prop_map(Auth::Raw),
    ]
}

/// Mostly a real endpoint (so that the deeper checks are reached), sometimes anything.
fn route() -> impl Strategy<Value = (Listener, Method, String)> {
    let id = || id_segment();
    let endpoint = prop_oneof![
        Just((Method::GET, "/access_tokens".to_owned())),
        Just((Method::POST, "/access_tokens".to_owned())),
        (
            prop_oneof![Just(Method::GET), Just(Method::PUT), Just(Method::DELETE)],
            id()
        )
            .prop_map(|(m, id)| (m, format!("/access_tokens/{id}"))),
        id().prop_map(|id| (
            Method::POST,
            format!("/access_tokens/{id}/regenerate_token")
        )),
        Just((Method::GET, "/roles".to_owned())),
        Just((Method::POST, "/roles".to_owned())),
        (
            prop_oneof![Just(Method::GET), Just(Method::PUT), Just(Method::DELETE)],
            id()
        )
            .prop_map(|(m, id)| (m, format!("/roles/{id}"))),
        Just((Method::GET, "/site".to_owned())),
        Just((Method::GET, "/users/me".to_owned())),
    ];
    prop_oneof![
        6 => endpoint.prop_map(|(m, p)| (Listener::Cma, m, p)),
        2 => Just((Listener::Cda, Method::POST, "/".to_owned())),
        3 => (prop_oneof![4 => Just(Listener::Cma), 1 => Just(Listener::Cda)], method(), path())
            .prop_map(|(l, m, p)| (l, m, p)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        route(),
        prop::bool::weighted(0.8),
        auth(),
        vec(header(), 0..5),
        body(),
    )
        .prop_map(
            |((listener, method, path), usual_headers, auth, headers, body)| Case {
                listener,
                method,
                path,
                usual_headers,
                auth,
                headers,
                body,
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------------

fn config() -> ServerConfig {
    ServerConfig {
        admin_secret: Some(ADMIN.to_owned()),
        rate_limit: None,
        ..ServerConfig::default()
    }
}

fn build(case: &Case) -> Option<Request<Body>> {
    let mut builder = Request::builder()
        .method(case.method.clone())
        .uri(case.path.as_str());
    if case.usual_headers {
        builder = builder
            .header("accept", "application/json")
            .header("x-api-version", "3")
            .header("content-type", "application/vnd.api+json");
    }
    match &case.auth {
        Auth::None => {}
        Auth::Admin => builder = builder.header("authorization", format!("Bearer {ADMIN}")),
        Auth::Raw(bytes) => {
            builder = builder.header("authorization", HeaderValue::from_bytes(bytes).ok()?)
        }
    }
    for (name, value) in &case.headers {
        builder = builder.header(name.as_str(), HeaderValue::from_bytes(value).ok()?);
    }
    builder.body(Body::from(case.body.bytes())).ok()
}

/// Send `case` and check every invariant. Answers the status and error code (empty for a
/// success), or `None` when the case is not a valid HTTP request at all (nothing to send).
async fn check(
    cma: &Router,
    cda: &Router,
    case: &Case,
) -> Result<Option<(u16, String)>, TestCaseError> {
    let Some(request) = build(case) else {
        return Ok(None);
    };
    let router = match case.listener {
        Listener::Cma => cma.clone(),
        Listener::Cda => cda.clone(),
    };
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    prop_assert!(!status.is_server_error(), "5xx: {status}");
    prop_assert!(
        status.is_success() || status.is_client_error(),
        "odd status {status}"
    );
    prop_assert_eq!(
        response.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/json; charset=utf-8"[..])
    );
    prop_assert!(response.headers().contains_key("x-ratelimit-limit"));
    prop_assert!(response.headers().contains_key("x-ratelimit-remaining"));
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    if case.method == Method::HEAD {
        return Ok(Some((status.as_u16(), String::new())));
    }
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|err| TestCaseError::fail(format!("body is not JSON: {err}")))?;
    if status.is_client_error() {
        let valid = Spec::embedded().schemas().validate(SchemaId::Error, &body);
        prop_assert!(valid.is_ok(), "not an api_error envelope: {body}");
        let error = &body["data"][0];
        let key =
            json!({"code": error["attributes"]["code"], "details": error["attributes"]["details"]});
        let digest = format!("{:x}", md5::compute(key.to_string()));
        prop_assert_eq!(&error["id"], &Value::from(&digest[..6]));
        // Never echo more than a bounded amount of client input.
        prop_assert!(
            bytes.len() < 16 * 1024,
            "error body of {} bytes",
            bytes.len()
        );
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        prop_assert!(case.body.bytes().len() > MAX_BODY_BYTES);
    }
    let code = body["data"][0]["attributes"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok(Some((status.as_u16(), code)))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Each case on a fresh server: exactly reproducible, so proptest can shrink a failure.
#[test]
fn thousands_of_malformed_requests_never_hurt_a_fresh_server() {
    let rt = runtime();
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        rng_seed: RngSeed::Fixed(0x7e57_0ca5e),
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    });
    let result = runner.run(&case(), |case| {
        rt.block_on(async {
            let (cma, cda, _) = routers(&config()).unwrap();
            check(&cma, &cda, &case).await.map(|_| ())
        })
    });
    if let Err(err) = result {
        panic!("{err}");
    }
}

/// Long seeded sessions against one server each, whose state drifts as the requests succeed
/// (tokens created, renamed, rotated, deleted; roles changed).
#[test]
fn long_sessions_of_malformed_requests_never_hurt_a_server() {
    let rt = runtime();
    let mut runner = TestRunner::new(Config {
        rng_seed: RngSeed::Fixed(0x5e55_1011),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = case();
    let mut seen = std::collections::BTreeMap::new();
    rt.block_on(async {
        let (mut cma, mut cda, _) = routers(&config()).unwrap();
        for i in 0..2000 {
            // A session can lock its own admin out (rotate, drop can_access_cma); a fresh
            // server now and then keeps the deeper checks reachable.
            if i % 250 == 0 {
                (cma, cda, _) = routers(&config()).unwrap();
            }
            let case = strategy.new_tree(&mut runner).unwrap().current();
            match check(&cma, &cda, &case).await {
                Ok(Some(answer)) => *seen.entry(answer).or_insert(0) += 1,
                Ok(None) => {}
                Err(err) => panic!("request {i} of the session: {err}\n{case:#?}"),
            }
        }
    });
    // The generator is not vacuous: it reaches every layer of checks, and successes.
    for expected in [
        (200, ""),
        (404, "INVALID_ENDPOINT"),
        (406, "INVALID_ACCEPT_HEADER"),
        (400, "INVALID_API_VERSION_HEADER"),
        (415, "INVALID_CONTENT_TYPE_HEADER"),
        (413, "REQUEST_TOO_LARGE"),
        (415, "INVALID_JSON_BODY"),
        (401, "INVALID_SITE"),
        (401, "INVALID_AUTHORIZATION_HEADER"),
        (422, "INVALID_FORMAT"),
        (404, "NOT_FOUND"),
        (400, "INVALID_REQUEST_BODY"),
    ] {
        let key = (expected.0, expected.1.to_owned());
        assert!(
            seen.contains_key(&key),
            "never saw {expected:?}; saw {seen:?}"
        );
    }
}
