//! The reference server over real loopback sockets, with reqwest: start, serve, concurrent
//! permission changes, shutdown and drop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use token_conformance::reference::{
    ADMIN_ROLE_NAME, READ_ONLY_TOKEN_NAME, ReferenceServer, ServerConfig, ServerError,
};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn unlimited() -> ReferenceServer {
    ReferenceServer::start(ServerConfig {
        rate_limit: None,
        ..ServerConfig::default()
    })
    .await
    .unwrap()
}

struct Wire {
    http: reqwest::Client,
    cma: String,
    cda: String,
    admin: String,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["data"][0]["attributes"]["code"]
            .as_str()
            .unwrap_or("")
    }
}

impl Wire {
    fn new(server: &ReferenceServer) -> Wire {
        Wire {
            http: client(),
            cma: server.cma_url(),
            cda: server.cda_url(),
            admin: server.admin_secret().to_owned(),
        }
    }

    fn cma_request(
        &self,
        method: reqwest::Method,
        path: &str,
        secret: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.cma))
            .header("accept", "application/json")
            .header("x-api-version", "3")
            .bearer_auth(secret)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "application/json; charset=utf-8");
        assert!(headers.contains_key("x-ratelimit-limit"));
        assert!(headers.contains_key("x-ratelimit-remaining"));
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        if status >= 400 {
            let error = &body["data"][0];
            let key = json!({"code": error["attributes"]["code"], "details": error["attributes"]["details"]});
            let digest = format!("{:x}", md5::compute(key.to_string()));
            assert_eq!(error["id"], digest[..6], "{body}");
            assert_eq!(error["type"], "api_error");
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn admin_token_with_all_flags(&self, name: &str) -> (String, String) {
        let roles = self
            .send(self.cma_request(reqwest::Method::GET, "/roles", &self.admin))
            .await;
        let admin_role = roles.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["attributes"]["name"] == ADMIN_ROLE_NAME)
            .unwrap()["id"]
            .clone();
        let body = json!({"data": {"type": "access_token",
            "attributes": {"name": name, "can_access_cda": true, "can_access_cda_preview": true, "can_access_cma": true},
            "relationships": {"role": {"data": {"type": "role", "id": admin_role}}}}});
        let created = self
            .send(
                self.cma_request(reqwest::Method::POST, "/access_tokens", &self.admin)
                    .header("content-type", "application/vnd.api+json")
                    .body(body.to_string()),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        let data = &created.body["data"];
        (
            data["id"].as_str().unwrap().to_owned(),
            data["attributes"]["token"].as_str().unwrap().to_owned(),
        )
    }

    async fn set_cma_access(&self, id: &str, name: &str, on: bool) -> Answer {
        let body = json!({"data": {"type": "access_token", "id": id,
            "attributes": {"name": name, "can_access_cda": true, "can_access_cda_preview": true, "can_access_cma": on}}});
        self.send(
            self.cma_request(
                reqwest::Method::PUT,
                &format!("/access_tokens/{id}"),
                &self.admin,
            )
            .header("content-type", "application/vnd.api+json")
            .body(body.to_string()),
        )
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_apis_are_served_on_loopback() {
    let server = ReferenceServer::start(ServerConfig::default())
        .await
        .unwrap();
    assert!(server.admin_secret_was_generated());
    for url in [server.cma_url(), server.cda_url()] {
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        assert!(!url.ends_with('/'), "{url}");
    }
    assert_ne!(server.cma_url(), server.cda_url());
    let wire = Wire::new(&server);

    let site = wire
        .send(wire.cma_request(reqwest::Method::GET, "/site", &wire.admin))
        .await;
    assert_eq!(site.status, 200);
    // The documented default limit.
    assert_eq!(site.headers["x-ratelimit-limit"], "60");

    let query = wire
        .http
        .post(format!("{}/", wire.cda))
        .bearer_auth(&wire.admin)
        .header("content-type", "application/json")
        .body(json!({"query": "{ _site { locales } }"}).to_string());
    let answer = wire.send(query).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, json!({"data": {"_site": {"locales": ["en"]}}}));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_update_endpoint_and_its_errors_over_the_wire() {
    let server = unlimited().await;
    let wire = Wire::new(&server);
    let (id, secret) = wire.admin_token_with_all_flags("wired").await;
    let updated = wire.set_cma_access(&id, "wired again", true).await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.body["data"]["attributes"]["name"], "wired again");
    assert_eq!(updated.body["data"]["attributes"]["token"], secret.as_str());

    let tokens = wire
        .send(wire.cma_request(reqwest::Method::GET, "/access_tokens", &wire.admin))
        .await;
    let factory = tokens.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["attributes"]["name"] == READ_ONLY_TOKEN_NAME)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let put = |path: String, secret: &str, body: String| {
        wire.cma_request(reqwest::Method::PUT, &path, secret)
            .header("content-type", "application/json")
            .body(body)
    };
    let valid = |id: &str| {
        json!({"data": {"type": "access_token", "id": id, "attributes": {"name": "n",
            "can_access_cda": true, "can_access_cda_preview": false, "can_access_cma": false}}})
        .to_string()
    };
    let cases = [
        (
            wire.cma_request(reqwest::Method::GET, "/nope", &wire.admin),
            404,
            "INVALID_ENDPOINT",
        ),
        (
            wire.http
                .get(format!("{}/site", wire.cma))
                .header("accept", "text/html")
                .bearer_auth(&wire.admin),
            406,
            "INVALID_ACCEPT_HEADER",
        ),
        (
            wire.cma_request(
                reqwest::Method::PUT,
                &format!("/access_tokens/{id}"),
                &wire.admin,
            )
            .header("content-type", "text/plain")
            .body(valid(&id)),
            415,
            "INVALID_CONTENT_TYPE_HEADER",
        ),
        (
            put(format!("/access_tokens/{id}"), &wire.admin, "{".to_owned()),
            415,
            "INVALID_JSON_BODY",
        ),
        (
            put(format!("/access_tokens/{id}"), "nope", valid(&id)),
            401,
            "INVALID_AUTHORIZATION_HEADER",
        ),
        (
            put(format!("/access_tokens/{id}"), &wire.admin, "{}".to_owned()),
            422,
            "INVALID_FORMAT",
        ),
        (
            put(
                "/access_tokens/424242".to_owned(),
                &wire.admin,
                valid("424242"),
            ),
            404,
            "NOT_FOUND",
        ),
        (
            put(
                format!("/access_tokens/{factory}"),
                &wire.admin,
                valid(&factory),
            ),
            401,
            "NON_EDITABLE_ACCESS_TOKEN",
        ),
    ];
    for (request, status, code) in cases {
        let answer = wire.send(request).await;
        assert_eq!(
            (answer.status, answer.code()),
            (status, code),
            "{}",
            answer.body
        );
    }
    server.shutdown().await;
}

/// 32 clients call `GET /site` with one token while another task flips its `can_access_cma`.
/// A request sent after a flip's response arrived, and answered before the next flip was
/// sent, must be answered under that flip's decision: 200 when on, 401 when off. Timestamps
/// are taken conservatively (send time before sending, answer time after receiving).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_request_sent_after_a_flip_is_answered_with_the_old_decision() {
    const CLIENTS: usize = 32;
    const FLIPS: usize = 10;
    const MAX_REQUESTS_PER_CLIENT: usize = 400;

    let server = unlimited().await;
    let wire = Arc::new(Wire::new(&server));
    let (id, secret) = wire.admin_token_with_all_flags("flipped").await;
    let stop = Arc::new(AtomicBool::new(false));
    let completed = Arc::new(AtomicU64::new(0));

    let run = async {
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let (wire, secret, stop, completed) = (
                wire.clone(),
                secret.clone(),
                stop.clone(),
                completed.clone(),
            );
            clients.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                while !stop.load(Ordering::SeqCst) && seen.len() < MAX_REQUESTS_PER_CLIENT {
                    let sent = Instant::now();
                    let request = wire.cma_request(reqwest::Method::GET, "/site", &secret);
                    let answer = wire.send(request).await;
                    let answered = Instant::now();
                    completed.fetch_add(1, Ordering::SeqCst);
                    seen.push((sent, answered, answer.status, answer.code().to_owned()));
                }
                seen
            }));
        }

        // Flip k: (sent, answered, new value). Flip 0 is the token's creation (on).
        let mut flips = vec![(Instant::now(), Instant::now(), true)];
        let mut on = true;
        for _ in 0..FLIPS {
            // Let at least two rounds of every client complete under the current decision.
            let target = completed.load(Ordering::SeqCst) + 2 * CLIENTS as u64;
            while completed.load(Ordering::SeqCst) < target {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            on = !on;
            let sent = Instant::now();
            let answer = wire.set_cma_access(&id, "flipped", on).await;
            let answered = Instant::now();
            assert_eq!(answer.status, 200, "{}", answer.body);
            flips.push((sent, answered, on));
        }
        let target = completed.load(Ordering::SeqCst) + 2 * CLIENTS as u64;
        while completed.load(Ordering::SeqCst) < target {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        stop.store(true, Ordering::SeqCst);
        let mut requests = Vec::new();
        for client in clients {
            requests.extend(client.await.unwrap());
        }
        (flips, requests)
    };
    let (flips, requests) = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap();

    let mut determinate = [0usize; 2];
    for (sent, answered, status, code) in &requests {
        // Every answer is one of the two decisions.
        assert!(
            (*status, code.as_str()) == (200, "")
                || (*status, code.as_str()) == (401, "INVALID_AUTHORIZATION_HEADER"),
            "{status} {code}"
        );
        // The last flip whose answer arrived before this request was sent...
        let Some(k) = flips
            .iter()
            .rposition(|(_, flip_answered, _)| flip_answered < sent)
        else {
            continue;
        };
        // ...decides it, unless the next flip was sent before this request was answered.
        if flips
            .get(k + 1)
            .is_some_and(|(next_sent, _, _)| next_sent < answered)
        {
            continue;
        }
        let on = flips[k].2;
        let expected = if on { 200 } else { 401 };
        assert_eq!(
            *status, expected,
            "a request sent after flip {k} (on = {on}) got the old decision"
        );
        determinate[usize::from(on)] += 1;
    }
    // The test is not vacuous: both decisions were checked many times.
    assert!(
        determinate[0] >= CLIENTS && determinate[1] >= CLIENTS,
        "{determinate:?}"
    );
    server.shutdown().await;
}

async fn refuses_connections(addr: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handle_stops_both_listeners() {
    let server = unlimited().await;
    let wire = Wire::new(&server);
    assert_eq!(
        wire.send(wire.cma_request(reqwest::Method::GET, "/site", &wire.admin))
            .await
            .status,
        200
    );
    let cma = server.cma_url().trim_start_matches("http://").to_owned();
    let cda = server.cda_url().trim_start_matches("http://").to_owned();
    drop(server);
    assert!(refuses_connections(&cma).await, "CMA still listening");
    assert!(refuses_connections(&cda).await, "CDA still listening");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_both_listeners_before_returning() {
    let server = unlimited().await;
    let wire = Wire::new(&server);
    // Leave a keep-alive connection in the client's pool: shutdown must not wait on it.
    assert_eq!(
        wire.send(wire.cma_request(reqwest::Method::GET, "/site", &wire.admin))
            .await
            .status,
        200
    );
    let cma = server.cma_url().trim_start_matches("http://").to_owned();
    let cda = server.cda_url().trim_start_matches("http://").to_owned();
    let started = Instant::now();
    server.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(tokio::net::TcpStream::connect(&cma).await.is_err());
    assert!(tokio::net::TcpStream::connect(&cda).await.is_err());
}

#[tokio::test]
async fn a_taken_address_is_a_bind_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = ServerConfig {
        cma_addr: addr,
        ..ServerConfig::default()
    };
    let err = ReferenceServer::start(config).await.unwrap_err();
    assert!(
        matches!(err, ServerError::Bind { api: "CMA", .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("failed to bind the CMA listener to 127.0.0.1:"),
        "{err}"
    );
}

#[tokio::test]
async fn debug_output_never_shows_the_secret() {
    let config = ServerConfig {
        admin_secret: Some("do-not-print-me".to_owned()),
        ..ServerConfig::default()
    };
    let server = ReferenceServer::start(config.clone()).await.unwrap();
    assert!(!server.admin_secret_was_generated());
    assert_eq!(server.admin_secret(), "do-not-print-me");
    for shown in [format!("{server:?}"), format!("{config:?}")] {
        assert!(!shown.contains("do-not-print-me"), "{shown}");
    }
    server.shutdown().await;
}
