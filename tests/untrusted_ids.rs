//! Ids from the target are untrusted: a proxy in front of the reference server rewrites its
//! answers (numeric ids, traversal ids in listings, one id for two roles, a listing that
//! names a bystander under a fixture's name) and records every request it forwards; the
//! suite must never build a request from an unsafe id, never write to its own management
//! token, never delete what it did not create, and give the verdict the shape deserves.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use token_conformance::engine::{self, RunOptions, Session};
use token_conformance::outcome::Status;
use token_conformance::reference::{ReferenceServer, ServerConfig};
use token_conformance::report::RunReport;
use token_conformance::client::{Client, Request, Target, TransportError};

const SECRET: &str = "untrusted-ids-management-secret-41b7";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Create answers carry `data.id` as a JSON number.
    NumericIds,
    /// The token listing shows each factory token under `../access_tokens/<management id>`.
    TraversalListing,
    /// Every role created after the first is answered with the first one's id.
    DuplicateRoleIds,
    /// Token creates answer 503 (after the server applied them), and the listing shows every
    /// fixture-named token under a bystander's id.
    ForgedListing,
    /// The token listing gives the bystander a fixture name, and adds a fixture-named entry
    /// whose id climbs to the management token.
    SweepBait,
    /// `/users/me` answers without an id, and the management token is listed and read back
    /// under a fixture name.
    HiddenManagementToken,
    /// The token listing holds 30,000 fixture-named entries, all with one id.
    HugeSweepListing,
}

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    mode: Mode,
    management_id: String,
    bystander_id: Mutex<Option<String>>,
    first_role: Mutex<Option<Value>>,
    log: Mutex<Vec<String>>,
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map_or("/", |pq| pq.as_str())
        .to_owned();
    proxy.log.lock().unwrap().push(format!("{method} {path}"));
    let mut req = proxy
        .http
        .request(method.clone(), format!("{}{path}", proxy.upstream));
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            req = req.header(name, value);
        }
    }
    let Ok(resp) = req.body(body).send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut status = resp.status().as_u16();
    let resp_headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap_or_default();
    let mut json: Option<Value> = serde_json::from_slice(&bytes).ok();
    if let Some(json) = json.as_mut() {
        status = rewrite(&proxy, &method, uri.path(), status, json);
    }
    let body = json.map_or(bytes.to_vec(), |j| j.to_string().into_bytes());
    let mut out = Response::builder().status(status);
    for (name, value) in &resp_headers {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            out = out.header(name, value);
        }
    }
    out.body(axum::body::Body::from(body)).unwrap()
}

fn rewrite(proxy: &Proxy, method: &Method, path: &str, status: u16, json: &mut Value) -> u16 {
    let created = *method == Method::POST && (200..300).contains(&status);
    match proxy.mode {
        Mode::NumericIds if created && (path == "/roles" || path == "/access_tokens") => {
            let id: u64 = json["data"]["id"].as_str().unwrap().parse().unwrap();
            json["data"]["id"] = json!(id);
        }
        Mode::TraversalListing if *method == Method::GET && path == "/access_tokens" => {
            for item in json["data"].as_array_mut().unwrap() {
                if !item["attributes"]["hardcoded_type"].is_null() {
                    item["id"] = json!(format!("../access_tokens/{}", proxy.management_id));
                }
            }
        }
        Mode::DuplicateRoleIds if created && path == "/roles" => {
            let mut first = proxy.first_role.lock().unwrap();
            match &*first {
                Some(id) => json["data"]["id"] = id.clone(),
                None => *first = Some(json["data"]["id"].clone()),
            }
        }
        Mode::ForgedListing if created && path == "/access_tokens" => {
            *json = json!({ "data": [{ "type": "api_error", "id": "e1",
                "attributes": { "code": "INTERNAL_ERROR", "details": {} } }] });
            return 503;
        }
        Mode::ForgedListing if *method == Method::GET && path == "/access_tokens" => {
            let bystander = proxy.bystander_id.lock().unwrap().clone().unwrap();
            for item in json["data"].as_array_mut().unwrap() {
                let name = item["attributes"]["name"].as_str().unwrap_or_default();
                if engine::is_fixture_name(name) {
                    item["id"] = json!(bystander);
                }
            }
        }
        Mode::SweepBait if *method == Method::GET && path == "/access_tokens" => {
            let bystander = proxy.bystander_id.lock().unwrap().clone().unwrap();
            let items = json["data"].as_array_mut().unwrap();
            for item in items.iter_mut() {
                if item["id"] == json!(bystander) {
                    item["attributes"]["name"] = json!("conformance-0a1b2c3d-1-0-bait");
                }
            }
            let mut trap = items[0].clone();
            trap["id"] = json!(format!("../access_tokens/{}", proxy.management_id));
            trap["attributes"]["name"] = json!("conformance-0a1b2c3d-1-1-trap");
            items.push(trap);
        }
        Mode::HiddenManagementToken if *method == Method::GET && path == "/users/me" => {
            json["data"]["id"] = Value::Null;
        }
        Mode::HiddenManagementToken
            if *method == Method::GET
                && (path == "/access_tokens"
                    || path == format!("/access_tokens/{}", proxy.management_id)) =>
        {
            let rename = |item: &mut Value| {
                if item["id"] == json!(proxy.management_id) {
                    item["attributes"]["name"] = json!("conformance-0a1b2c3d-1-0-me");
                }
            };
            match json["data"].as_array_mut() {
                Some(items) => items.iter_mut().for_each(rename),
                None => rename(&mut json["data"]),
            }
        }
        Mode::HugeSweepListing if *method == Method::GET && path == "/access_tokens" => {
            let items = json["data"].as_array_mut().unwrap();
            // Small entries, so that the listing stays under the 4 MiB body cap.
            let mut bait = json!({"type": "access_token", "id": "424242", "attributes": {}});
            for n in 0..30_000 {
                bait["attributes"]["name"] = json!(format!("conformance-0a1b2c3d-{n}-0-x"));
                items.push(bait.clone());
            }
        }
        _ => {}
    }
    status
}

struct Setup {
    server: ReferenceServer,
    proxy: Arc<Proxy>,
    proxy_url: String,
}

async fn send_json(method: reqwest::Method, url: String, body: Option<Value>) -> Value {
    let mut req = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(SECRET)
        .header("X-Api-Version", "3");
    if let Some(body) = body {
        req = req
            .header("Content-Type", "application/vnd.api+json")
            .body(body.to_string());
    }
    let text = req.send().await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn setup(mode: Mode) -> Setup {
    let server = ReferenceServer::start(ServerConfig {
        admin_secret: Some(SECRET.to_owned()),
        rate_limit: None,
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    let me = send_json(
        reqwest::Method::GET,
        format!("{}/users/me", server.cma_url()),
        None,
    )
    .await;
    let proxy = Arc::new(Proxy {
        upstream: server.cma_url(),
        http: reqwest::Client::new(),
        mode,
        management_id: me["data"]["id"].as_str().unwrap().to_owned(),
        bystander_id: Mutex::new(None),
        first_role: Mutex::new(None),
        log: Mutex::new(Vec::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(Arc::clone(&proxy));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Setup {
        server,
        proxy,
        proxy_url,
    }
}

/// Every token and role on the reference server itself, by id (last-access dates left out).
async fn everything(base: &str) -> BTreeMap<String, Value> {
    common::everything(base, SECRET).await
}

/// A token (with its own role) that is no fixture of the run, created on the reference server
/// itself; the proxy is told its id, for the modes that point a forged listing at it.
async fn bystander(setup: &Setup) -> String {
    let base = setup.server.cma_url();
    let role = send_json(
        reqwest::Method::POST,
        format!("{base}/roles"),
        Some(json!({"data": {"type": "role", "attributes": {"name": "bystander"}}})),
    )
    .await;
    let token = send_json(reqwest::Method::POST, format!("{base}/access_tokens"), Some(json!({"data": {"type": "access_token", "attributes": {
        "name": "bystander token", "can_access_cda": true, "can_access_cda_preview": false, "can_access_cma": true},
        "relationships": {"role": {"data": {"type": "role", "id": role["data"]["id"]}}}}}))).await;
    let bystander = token["data"]["id"].as_str().unwrap().to_owned();
    *setup.proxy.bystander_id.lock().unwrap() = Some(bystander.clone());
    bystander
}

fn fixtures_left(all: &BTreeMap<String, Value>) -> Vec<String> {
    all.values()
        .filter_map(|v| v["attributes"]["name"].as_str())
        .filter(|n| engine::is_fixture_name(n))
        .map(str::to_owned)
        .collect()
}

/// The run left no fixture behind on the reference server and changed nothing there.
async fn assert_left_as_it_was(setup: &Setup, before: &BTreeMap<String, Value>) {
    let after = everything(&setup.server.cma_url()).await;
    assert!(
        fixtures_left(&after).is_empty(),
        "{:?}",
        fixtures_left(&after)
    );
    assert_eq!(*before, after);
}

async fn run(setup: &Setup, filter: Option<&str>, destructive: bool) -> RunReport {
    let options = RunOptions {
        base_url: Some(setup.proxy_url.clone()),
        cda_url: Some(setup.server.cda_url()),
        secret: Some(SECRET.to_owned()),
        seed: 3,
        cases: 2,
        destructive,
        filter: filter.map(str::to_owned),
        ..RunOptions::default()
    };
    let session = Arc::new(Session::open(&options).await.unwrap());
    session.run_all(&options, |_, _, _| {}).await
}

fn clause<'a>(report: &'a RunReport, id: &str) -> &'a token_conformance::report::ClauseReport {
    report.clauses.iter().find(|c| c.id == id).unwrap()
}

fn messages(report: &RunReport, id: &str) -> String {
    clause(report, id)
        .checks
        .iter()
        .map(|c| c.message.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_write_to_the_management_token_is_refused_however_its_path_is_spelled() {
    common::runtime().block_on(async {
        let setup = setup(Mode::NumericIds).await;
        let before = everything(&setup.server.cma_url()).await;
        let client = Client::new(Target {
            base_url: setup.server.cma_url(),
            cda_url: None,
            environment: None,
            secret: SECRET.to_owned(),
            name: "t".to_owned(),
            embedded: false,
            ca_pem: None,
        })
        .unwrap();
        client.learn_management_id().await;
        let me = setup.proxy.management_id.clone();
        assert_eq!(client.management_id().unwrap().as_str(), me);
        let sent_before = client
            .stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed);
        let body = json!({ "data": { "type": "access_token", "id": me, "attributes": {
            "name": "pwned", "can_access_cda": false, "can_access_cda_preview": false, "can_access_cma": false } } });
        for (method, path) in [
            (reqwest::Method::PUT, format!("/access_tokens/{me}")),
            (reqwest::Method::PUT, format!("/roles/../access_tokens/{me}")),
            (
                reqwest::Method::PUT,
                format!("/access_tokens/1/%2e%2e/{me}"),
            ),
            (
                reqwest::Method::POST,
                format!("/roles/..%2Faccess_tokens%2F{me}/regenerate_token"),
            ),
            (reqwest::Method::DELETE, format!("//ACCESS_TOKENS/./{me}")),
            (reqwest::Method::DELETE, format!("/access_tokens/{me}/")),
        ] {
            let req = Request::cma(method.clone(), path.clone()).json(body.clone());
            let err = client.send(&req).await.unwrap_err();
            assert!(
                matches!(err, TransportError::Refused { .. }),
                "{method} {path}: {err}"
            );
        }
        assert_eq!(
            client
                .stats()
                .requests
                .load(std::sync::atomic::Ordering::Relaxed),
            sent_before,
            "a refused write is never sent"
        );
        // Reads, and writes elsewhere, still go out.
        let read = Request::cma(reqwest::Method::GET, format!("/access_tokens/{me}"));
        assert!(client.send(&read).await.unwrap().is_success());
        assert_eq!(everything(&setup.server.cma_url()).await, before);
    });
}

#[test]
fn numeric_ids_fail_the_schema_clause_and_every_other_clause_is_still_tested() {
    common::runtime().block_on(async {
        let setup = setup(Mode::NumericIds).await;
        let before = everything(&setup.server.cma_url()).await;
        let report = run(&setup, None, false).await;
        let schema = clause(&report, "update.response.schema");
        assert_eq!(schema.status, Status::Fail, "{}", report.render(false));
        let why = messages(&report, "update.response.schema");
        assert!(why.contains("JSON number"), "{why}");
        for c in &report.clauses {
            if c.id == "update.response.schema" || c.id == "update.hardcoded.still_deletable" {
                continue;
            }
            assert_eq!(c.status, Status::Pass, "{}: {:#?}", c.id, c.checks);
        }
        // The other checks say why in a warning.
        let warned = report
            .clauses
            .iter()
            .flat_map(|c| &c.checks)
            .flat_map(|c| &c.warnings)
            .any(|w| w.contains("JSON number") && w.contains("update.response.schema"));
        assert!(warned, "{}", report.render(false));
        assert_left_as_it_was(&setup, &before).await;
    });
}

#[test]
fn a_traversal_id_in_a_listing_is_a_finding_and_never_a_request() {
    common::runtime().block_on(async {
        let setup = setup(Mode::TraversalListing).await;
        let before = everything(&setup.server.cma_url()).await;
        let report = run(&setup, Some("update.hardcoded"), true).await;
        for id in [
            "update.hardcoded.rejected",
            "update.hardcoded.still_deletable",
        ] {
            assert_eq!(clause(&report, id).status, Status::Fail, "{id}");
            let why = messages(&report, id);
            assert!(
                why.contains("the target listed a token whose id")
                    && why.contains("is not a safe id"),
                "{why}"
            );
        }
        for line in setup.proxy.log.lock().unwrap().iter() {
            let lower = line.to_ascii_lowercase();
            assert!(
                !lower.contains("..") && !lower.contains("%2e"),
                "sent {line}"
            );
            if !line.starts_with("GET ") {
                assert!(
                    !line.contains(&format!("/access_tokens/{}", setup.proxy.management_id)),
                    "wrote to the management token: {line}"
                );
            }
        }
        // Nothing changed: the management token (its secret) and the factory token alike.
        assert_eq!(everything(&setup.server.cma_url()).await, before);
    });
}

#[test]
fn two_roles_with_one_id_are_a_failure_and_both_are_cleaned_up() {
    common::runtime().block_on(async {
        let setup = setup(Mode::DuplicateRoleIds).await;
        let before = everything(&setup.server.cma_url()).await;
        let report = run(&setup, Some("update.role.reassigned"), false).await;
        let c = clause(&report, "update.role.reassigned");
        assert_eq!(c.status, Status::Fail, "{:#?}", c.checks);
        let why = messages(&report, "update.role.reassigned");
        assert!(
            why.contains("distinct resources must have distinct ids"),
            "{why}"
        );
        assert_left_as_it_was(&setup, &before).await;
    });
}

#[test]
fn cleanup_by_name_never_deletes_a_bystander_a_forged_listing_points_at() {
    common::runtime().block_on(async {
        let setup = setup(Mode::ForgedListing).await;
        let base = setup.server.cma_url();
        let bystander = bystander(&setup).await;
        let report = run(&setup, Some("update.auth"), false).await;
        assert_ne!(clause(&report, "update.auth").status, Status::Pass);
        let after = everything(&base).await;
        assert!(
            after.contains_key(&format!("token {bystander}")),
            "the bystander token was deleted"
        );
        for line in setup.proxy.log.lock().unwrap().iter() {
            assert!(
                !(line.starts_with("DELETE ") && line.ends_with(&format!("/{bystander}"))),
                "sent {line}"
            );
        }
        // What could not be confirmed is reported as possibly left behind.
        let warnings: Vec<&String> = report
            .clauses
            .iter()
            .flat_map(|c| &c.checks)
            .flat_map(|c| &c.warnings)
            .collect();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("does not read back with this name")),
            "{warnings:?}"
        );
    });
}

#[test]
fn sweep_deletes_only_what_reads_back_as_a_fixture_with_a_safe_id() {
    common::runtime().block_on(async {
        let setup = setup(Mode::SweepBait).await;
        let base = setup.server.cma_url();
        bystander(&setup).await;
        let before = everything(&base).await;
        let options = RunOptions {
            base_url: Some(setup.proxy_url.clone()),
            secret: Some(SECRET.to_owned()),
            ..RunOptions::default()
        };
        let client = engine::sweep_client(&options).unwrap();
        let report = engine::sweep(&client).await.unwrap();
        assert!(report.removed.is_empty(), "{:?}", report.removed);
        let failed = report.failed.join("\n");
        assert!(
            failed.contains("the target listed a token whose id"),
            "{failed}"
        );
        assert!(
            failed.contains("reads back as another resource"),
            "{failed}"
        );
        assert!(!failed.contains('\u{1b}'));
        assert_eq!(everything(&base).await, before, "sweep touched something");
        for line in setup.proxy.log.lock().unwrap().iter() {
            assert!(line.starts_with("GET "), "sweep sent {line}");
            assert!(!line.contains(".."), "sweep sent {line}");
        }
    });
}

/// A target that hides which token `/users/me` is cannot make `sweep` delete it by giving it
/// a fixture name: with its own token unknown, `sweep` deletes no token at all.
#[test]
fn sweep_deletes_no_token_when_it_cannot_tell_its_own() {
    common::runtime().block_on(async {
        let setup = setup(Mode::HiddenManagementToken).await;
        let base = setup.server.cma_url();
        let before = everything(&base).await;
        let options = RunOptions {
            base_url: Some(setup.proxy_url.clone()),
            secret: Some(SECRET.to_owned()),
            ..RunOptions::default()
        };
        let client = engine::sweep_client(&options).unwrap();
        let report = engine::sweep(&client).await.unwrap();
        assert!(report.removed.is_empty(), "{:?}", report.removed);
        let failed = report.failed.join("\n");
        assert!(failed.contains("/users/me"), "{failed}");
        assert_eq!(everything(&base).await, before, "sweep touched something");
        for line in setup.proxy.log.lock().unwrap().iter() {
            assert!(line.starts_with("GET "), "sweep sent {line}");
        }
    });
}

/// 30,000 fixture-named entries sharing one id: refused quickly (not one comparison per pair).
#[test]
fn sweep_of_a_huge_listing_is_not_quadratic() {
    common::runtime().block_on(async {
        let setup = setup(Mode::HugeSweepListing).await;
        let base = setup.server.cma_url();
        let before = everything(&base).await;
        let options = RunOptions {
            base_url: Some(setup.proxy_url.clone()),
            secret: Some(SECRET.to_owned()),
            ..RunOptions::default()
        };
        let client = engine::sweep_client(&options).unwrap();
        let started = std::time::Instant::now();
        let report = tokio::time::timeout(Duration::from_secs(60), engine::sweep(&client))
            .await
            .expect("sweep took over 60 s")
            .unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(20), "sweep took {took:?}");
        assert!(report.removed.is_empty(), "{:?}", report.removed);
        assert_eq!(everything(&base).await, before, "sweep touched something");
    });
}
