//! Wire compatibility with the official DatoCMS JavaScript clients (`@datocms/cma-client-node`
//! and `@datocms/cda-client`): `tests/reference_node/check.mjs` drives them against a running
//! reference server.
//!
//! Ignored by default because it needs Node.js and, the first time, the npm registry. Run it with
//! `cargo test --test it reference::node -- --ignored`; it installs the pinned clients into
//! `tests/reference_node/node_modules` (`npm ci`) when they are missing.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use token_conformance::reference::{RateLimit, ReferenceServer, ServerConfig};

#[test]
#[ignore = "needs Node.js and npm; run with: cargo test --test it reference::node -- --ignored"]
fn the_official_javascript_clients_work_against_the_reference_server() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference_node");
    if !dir.join("node_modules/@datocms/cma-client-node").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm must be installed");
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(ReferenceServer::start(ServerConfig::default()))
        .unwrap();
    // A second server with a tiny limit, to see the client wait X-RateLimit-Reset and retry.
    let tiny = RateLimit {
        requests: 2,
        window: Duration::from_secs(1),
    };
    let limited = rt
        .block_on(ReferenceServer::start(ServerConfig {
            rate_limit: Some(tiny),
            ..ServerConfig::default()
        }))
        .unwrap();

    // The servers run on the runtime's workers while this thread waits for Node.
    let output = Command::new("node")
        .arg("check.mjs")
        .current_dir(&dir)
        .env("CMA_URL", server.cma_url())
        .env("CDA_URL", server.cda_url())
        .env("TOKEN", server.admin_secret())
        .env("LIMITED_CMA_URL", limited.cma_url())
        .env("LIMITED_TOKEN", limited.admin_secret())
        .output()
        .expect("node must be installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "check.mjs failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    rt.block_on(async {
        server.shutdown().await;
        limited.shutdown().await;
    });
}
