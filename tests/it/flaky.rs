//! A flaky target: 10% of requests get a transient 503 or a dropped connection (sometimes
//! after the request was applied), with added latency. The run must end with no false
//! failure (every clause passes or is inconclusive) and no fixture left behind.

use crate::common;

use std::sync::Arc;

use serde_json::Value;
use token_conformance::engine::Session;
use token_conformance::fixtures;
use token_conformance::outcome::Status;
use token_conformance::plan::Plan;
use token_conformance::reference::{ReferenceServer, ServerConfig};

const SECRET: &str = "flaky-management-secret-9e1d";

#[test]
fn a_flaky_network_gives_no_false_failure_and_leaves_nothing_behind() {
    let rt = common::runtime();
    rt.block_on(async {
        let config = ServerConfig {
            admin_secret: Some(SECRET.to_owned()),
            rate_limit: None,
            flaky: Some(0.1),
            ..ServerConfig::default()
        };
        let server = ReferenceServer::start(config).await.unwrap();
        let options = Plan {
            cases: 8,
            ..common::options_for(&server, SECRET, 21)
        };
        let session = Arc::new(Session::open(&options).await.unwrap());
        let report = session.run_all(|_, _, _| {}).await;
        for clause in &report.clauses {
            assert!(
                clause.status != Status::Fail,
                "a false failure on a flaky network: {}\n{}",
                report.render(false),
                clause
                    .checks
                    .iter()
                    .map(|k| k.message.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        assert!(
            session
                .client()
                .stats()
                .retries
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0,
            "the network was flaky"
        );

        // Nothing left: list everything on a quiet connection (retrying past the flakiness).
        let client = session.client();
        for path in ["/access_tokens", "/roles"] {
            let list = client
                .send(&token_conformance::client::Request::cma(
                    reqwest::Method::GET,
                    path,
                ))
                .await
                .unwrap();
            let names: Vec<&str> = list
                .data()
                .and_then(Value::as_array)
                .unwrap()
                .iter()
                .filter_map(|item| item.pointer("/attributes/name").and_then(Value::as_str))
                .filter(|name| fixtures::is_fixture_name(name))
                .collect();
            assert!(names.is_empty(), "left behind under {path}: {names:?}");
        }
    });
}
