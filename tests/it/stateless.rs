//! A check passes only if it really exercised its promise: against a target that stores
//! nothing and accepts any bearer (what a mock serving the API's OpenAPI document is), no
//! clause about state, roles, secrets or authentication passes, and each says why in words.
//! And a 4xx marked `transient` is retried once, then taken as the answer.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use token_conformance::engine::Session;
use token_conformance::outcome::Status;
use token_conformance::plan::{Limits, Plan, Remote, TargetKind};
use token_conformance::report::RunReport;
use token_conformance::spec::{SchemaId, Spec};

/// How the stateless target hands out ids in create answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ids {
    /// Every role and every token has the id `"string"` (what Prism answers).
    Same,
    /// Creates answer with a fresh id each time (a counter, nothing else is kept); reads
    /// and updates answer the canned resource under the id asked for.
    Counted,
}

/// What the target does with `PUT /access_tokens/:id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Put {
    /// 200 with the canned token.
    Canned,
    /// 422 `INVALID_FORMAT` marked `transient: true`.
    Transient422,
    /// 422 `INVALID_FORMAT`, a plain refusal of every update.
    Refuse422,
}

struct Mock {
    ids: Ids,
    put: Put,
    counter: AtomicU64,
    requests: AtomicU64,
    puts: AtomicU64,
}

const SECRET: &str = "string";

fn canned_role(id: &str) -> Value {
    let mut attributes = serde_json::Map::new();
    attributes.insert("name".to_owned(), json!("string"));
    for permission in Spec::embedded().role_permissions() {
        attributes.insert(permission.clone(), json!(true));
    }
    attributes.insert("environments_access".to_owned(), json!("all"));
    json!({ "type": "role", "id": id, "attributes": attributes })
}

fn canned_token(id: &str, hardcoded: Option<&str>) -> Value {
    json!({ "type": "access_token", "id": id, "attributes": {
        "name": "string", "token": SECRET, "can_access_cda": true, "can_access_cda_preview": true,
        "can_access_cma": true, "hardcoded_type": hardcoded,
        "last_cma_access": "today", "last_cda_access": "today" },
        "relationships": { "role": { "data": { "type": "role", "id": "string" } } } })
}

fn answer(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(State(mock): State<Arc<Mock>>, request: Request) -> Response {
    mock.requests.fetch_add(1, Ordering::Relaxed);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let fresh = |prefix: &str| match mock.ids {
        Ids::Same => "string".to_owned(),
        Ids::Counted => format!("{prefix}{}", mock.counter.fetch_add(1, Ordering::Relaxed)),
    };
    let ok = |data: Value| answer(StatusCode::OK, &json!({ "data": data }));
    match (&method, segments.as_slice()) {
        (_, ["cda", ..]) => ok(json!({ "_site": { "locales": ["en"] } })),
        (&Method::GET, ["site"]) => ok(json!({ "type": "site", "id": "string",
            "attributes": { "name": "string", "locales": ["en"], "timezone": "UTC" } })),
        (&Method::GET, ["users", "me"]) => ok(canned_token("string", None)),
        (&Method::GET, ["access_tokens"]) => ok(json!([
            canned_token("string", None),
            canned_token("factory", Some("readonly"))
        ])),
        (&Method::POST, ["access_tokens"]) => answer(
            StatusCode::CREATED,
            &json!({ "data": canned_token(&fresh("t"), None) }),
        ),
        (&Method::PUT, ["access_tokens", id]) => {
            mock.puts.fetch_add(1, Ordering::Relaxed);
            match mock.put {
                Put::Canned => ok(canned_token(id, None)),
                Put::Transient422 | Put::Refuse422 => answer(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!({ "data": [{ "type": "api_error", "id": "string", "attributes": {
                        "code": "INVALID_FORMAT", "transient": mock.put == Put::Transient422,
                        "details": {} } }] }),
                ),
            }
        }
        (_, ["access_tokens", id, ..]) => ok(canned_token(id, None)),
        (&Method::GET, ["roles"]) => ok(json!([canned_role("string")])),
        (&Method::POST, ["roles"]) => answer(
            StatusCode::CREATED,
            &json!({ "data": canned_role(&fresh("r")) }),
        ),
        (_, ["roles", id]) => ok(canned_role(id)),
        _ => answer(
            StatusCode::NOT_FOUND,
            &json!({ "data": [{ "type": "api_error", "id": "string", "attributes": {
                "code": "NOT_FOUND", "transient": false, "details": {} } }] }),
        ),
    }
}

/// Start the mock on 127.0.0.1:0; the server task ends with the test's runtime.
async fn start(ids: Ids, put: Put) -> (String, Arc<Mock>) {
    let mock = Arc::new(Mock {
        ids,
        put,
        counter: AtomicU64::new(1),
        requests: AtomicU64::new(0),
        puts: AtomicU64::new(0),
    });
    let app = Router::new().fallback(handle).with_state(Arc::clone(&mock));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), mock)
}

async fn run(base: &str, filter: Option<&str>) -> RunReport {
    let options = Plan {
        target: TargetKind::Remote(
            Remote::new(base, "conformance-stateless-management-secret")
                .with_cda(format!("{base}/cda")),
        ),
        seed: 7,
        cases: 4,
        limits: Limits {
            max_requests: Some(5_000),
            ..Limits::default()
        },
        filter: filter.map(str::to_owned),
        ..Plan::default()
    };
    let session = Arc::new(Session::open(&options).await.unwrap());
    session.run_all(|_, _, _| {}).await
}

/// The clauses whose promise is about state, roles, secrets or authentication.
const STATEFUL: [&str; 12] = [
    "update.applies",
    "update.isolation",
    "update.secret.unchanged",
    "update.role.preserved",
    "update.role.reassigned",
    "update.effect.cma",
    "update.effect.cda",
    "update.effect.cda_preview",
    "update.effect.role",
    "update.hardcoded.rejected",
    "update.token.visibility",
    "update.auth",
];

/// Every check of `clause` that did not pass, with its reason.
fn reasons(report: &RunReport, clause: &str) -> String {
    let clause = report
        .clauses
        .iter()
        .find(|c| c.id == clause)
        .unwrap_or_else(|| panic!("no clause {clause} in the report"));
    clause
        .checks
        .iter()
        .filter(|c| c.status != Status::Pass)
        .map(|c| format!("{} [{}]: {}", c.name, c.status, c.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the fixtures layer says when a target gives two live resources one id, or gives a new
/// fixture the id it listed before the run. Or, when the one id is also the management
/// token's (its `/users/me`), the write guard.
const DISTINCT: &str = "distinct resources must have distinct ids|existed before the run|would reach the management token";
/// The secret checks meet the forged bearer first, unless another check's fixture got the one
/// id before theirs did.
const FORGED_OR_DISTINCT: &str = "forged bearer|distinct resources must have distinct ids|existed before the run|would reach the management token";

fn assert_nothing_stateful_passes(report: &RunReport, expect: &[(&str, &[&str])]) {
    for id in STATEFUL {
        let clause = report.clauses.iter().find(|c| c.id == id).unwrap();
        assert!(
            matches!(clause.status, Status::Fail | Status::Inconclusive),
            "{id} is {} against a stateless target: {:#?}",
            clause.status,
            clause.checks
        );
    }
    for (id, phrases) in expect {
        let text = reasons(report, id);
        for phrase in *phrases {
            // `a|b`: either reason will do (which check meets the shared id first depends on
            // how the concurrent checks interleave).
            assert!(
                phrase.split('|').any(|p| text.contains(p)),
                "{id}: no {phrase:?} in the reasons:\n{text}"
            );
        }
    }
}

#[test]
fn the_canned_resources_have_the_documented_shapes() {
    // So that what makes the checks below fail is the missing state, never the shape.
    let schemas = Spec::embedded().schemas();
    for (id, doc) in [
        (
            SchemaId::AccessToken,
            json!({ "data": canned_token("string", None) }),
        ),
        (
            SchemaId::AccessTokenList,
            json!({ "data": [canned_token("string", None), canned_token("factory", Some("readonly"))] }),
        ),
        (SchemaId::Role, json!({ "data": canned_role("string") })),
        (
            SchemaId::RoleList,
            json!({ "data": [canned_role("string")] }),
        ),
    ] {
        if let Err(violations) = schemas.validate(id, &doc) {
            panic!("{id:?}: {violations:?}");
        }
    }
}

#[test]
fn a_stateless_target_giving_every_resource_one_id_passes_nothing_about_state() {
    common::runtime().block_on(async {
        let (base, mock) = start(Ids::Same, Put::Canned).await;
        let started = Instant::now();
        let report = run(&base, None).await;
        assert!(started.elapsed() < Duration::from_secs(120));
        assert_nothing_stateful_passes(
            &report,
            &[
                // Every check that needs two fixtures of a kind meets the one id first.
                ("update.applies", &[DISTINCT]),
                ("update.secret.unchanged", &[FORGED_OR_DISTINCT]),
                ("update.role.preserved", &[DISTINCT]),
                ("update.role.reassigned", &[DISTINCT]),
                ("update.effect.cma", &[DISTINCT]),
                ("update.effect.cda", &[DISTINCT]),
                ("update.effect.cda_preview", &[DISTINCT]),
                ("update.effect.role", &[DISTINCT]),
                ("update.hardcoded.rejected", &["accepted an update"]),
                ("update.token.visibility", &[DISTINCT]),
                ("update.auth", &[DISTINCT]),
            ],
        );
        assert!(mock.requests.load(Ordering::Relaxed) < 5_000);
    });
}

#[test]
fn a_stateless_target_with_fresh_ids_passes_nothing_about_state() {
    common::runtime().block_on(async {
        let (base, _mock) = start(Ids::Counted, Put::Canned).await;
        let report = run(&base, None).await;
        assert_nothing_stateful_passes(
            &report,
            &[
                ("update.secret.unchanged", &["forged bearer"]),
                // The first move away from the creation role already does not show.
                ("update.role.preserved", &["from its creation role"]),
                ("update.role.reassigned", &["the response shows"]),
                ("update.effect.role", &["was granted (expected refused)"]),
                ("update.token.visibility", &["forged bearer"]),
                ("update.auth", &["was accepted"]),
            ],
        );
        // Failures, not "could not be tested": the target contradicts the documentation.
        for id in [
            "update.role.preserved",
            "update.role.reassigned",
            "update.secret.unchanged",
        ] {
            let clause = report.clauses.iter().find(|c| c.id == id).unwrap();
            assert_eq!(clause.status, Status::Fail, "{id}: {:#?}", clause.checks);
        }
    });
}

#[test]
fn a_4xx_marked_transient_is_retried_once_then_taken_as_the_answer() {
    common::runtime().block_on(async {
        let (base, mock) = start(Ids::Counted, Put::Transient422).await;
        let started = Instant::now();
        let report = run(&base, Some("update.applies")).await;
        let clause = report
            .clauses
            .iter()
            .find(|c| c.id == "update.applies")
            .unwrap();
        let check = &clause.checks[0];
        assert_eq!(check.status, Status::Fail, "{check:#?}");
        assert!(
            check.message.contains("refused a valid request"),
            "{}",
            check.message
        );
        assert!(
            check
                .warnings
                .iter()
                .any(|w| w.contains("the target marked a 422 INVALID_FORMAT as transient")),
            "{:?}",
            check.warnings
        );
        // The first update, and one retry of it: then the refusal stands.
        assert_eq!(mock.puts.load(Ordering::Relaxed), 2);
        assert!(started.elapsed() < Duration::from_secs(60));
    });
}

#[test]
fn a_target_that_refuses_every_update_passes_no_clause_about_refusals() {
    // Refusing invalid bodies and bad credentials "and changing nothing" shows nothing when
    // nothing can change: each such check first sees a valid update go through.
    common::runtime().block_on(async {
        let (base, _mock) = start(Ids::Counted, Put::Refuse422).await;
        let report = run(&base, None).await;
        for id in ["update.request.validation", "update.auth"] {
            let clause = report.clauses.iter().find(|c| c.id == id).unwrap();
            assert_eq!(clause.status, Status::Fail, "{id}: {:#?}", clause.checks);
            let text = reasons(&report, id);
            assert!(text.contains("refused a valid request"), "{id}: {text}");
        }
    });
}
