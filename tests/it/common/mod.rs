//! Helpers shared by the integration tests: running the suite against a reference server
//! (in-process or a `token-conformance serve` child) and reading its tokens and roles as the
//! management token.
// Each test binary uses a part of this module.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;
use token_conformance::engine::Session;
use token_conformance::plan::{Plan, Remote, TargetKind};
use token_conformance::reference::ReferenceServer;
use token_conformance::report::RunReport;

/// A two-thread runtime, with rustls' ring provider installed (the client needs one).
/// The third blind review's faults whose classes gained a check (written without reading the
/// checks), but `throttle-body-not-envelope`: held by the reference fault tests and, under the
/// staging profile, by the mutation tests.
pub(crate) const THIRD_BLIND_REVIEW: [token_conformance::faults::Fault; 9] = {
    use token_conformance::faults::Fault;
    [
        Fault::FalseFlagsCompacted,
        Fault::PreviewScopeStale,
        Fault::CmaRegrantIgnored,
        Fault::HardcodedRoleReassignable,
        Fault::VisibilityFromUpdatedTokenRole,
        Fault::RoleUpgradeRefused,
        Fault::VndContentTypeEchoed,
        Fault::NoOpUpdate204,
        Fault::NumericNameAsNumber,
    ]
};

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A plan for the suite against `server` as a remote target, as its management token.
pub(crate) fn options_for(server: &ReferenceServer, secret: &str, seed: u64) -> Plan {
    Plan {
        target: TargetKind::Remote(
            Remote::new(server.cma_url(), secret).with_cda(server.cda_url()),
        ),
        seed,
        ..Plan::default()
    }
}

/// Open a session with `plan`, run every selected clause, and close the session (its
/// embedded server, if any) before handing back the report.
pub(crate) async fn run_suite(plan: &Plan) -> RunReport {
    let session = Arc::new(Session::open(plan).await.unwrap());
    let report = session.run_all(|_, _, _| {}).await;
    if let Ok(session) = Arc::try_unwrap(session) {
        session.close().await;
    }
    report
}

/// The `data` of a CMA listing at `path` (`/access_tokens`, `/roles`), read as `secret`.
pub(crate) async fn list(base: &str, secret: &str, path: &str) -> Vec<Value> {
    let text = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(secret)
        .header("X-Api-Version", "3")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&text).unwrap();
    body["data"].as_array().unwrap().clone()
}

/// Drop the last-access dates of a listed item: reading the target changes them.
pub(crate) fn without_access_dates(mut item: Value) -> Value {
    if let Some(attrs) = item.get_mut("attributes").and_then(Value::as_object_mut) {
        attrs.remove("last_cma_access");
        attrs.remove("last_cda_access");
    }
    item
}

/// Every token and role, keyed `token ID` / `role ID`, as `secret` sees them, without their
/// last-access dates.
pub(crate) async fn everything(base: &str, secret: &str) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    for (kind, path) in [("token", "/access_tokens"), ("role", "/roles")] {
        for item in list(base, secret, path).await {
            let item = without_access_dates(item);
            all.insert(format!("{kind} {}", item["id"].as_str().unwrap()), item);
        }
    }
    all
}

/// A `token-conformance serve` child on free loopback ports, killed (by its own handle) when
/// dropped.
pub(crate) struct Serve {
    pub(crate) child: Child,
    /// The CMA and CDA URLs it printed.
    pub(crate) cma: String,
    pub(crate) cda: String,
    /// Every line of its banner, up to its `Ctrl-C` line.
    pub(crate) banner: Vec<String>,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `token-conformance serve` on free loopback ports with `extra` arguments and `secret`
/// as its management token, and wait (30 s at most) for its banner.
pub(crate) fn serve(secret: &str, extra: &[&str]) -> Serve {
    let child = Command::new(env!("CARGO_BIN_EXE_token-conformance"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--cda-addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env("CONFORMANCE_API_TOKEN", secret)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Owned by `serve` from here on, so that a failed wait below still kills the child.
    let mut serve = Serve {
        child,
        cma: String::new(),
        cda: String::new(),
        banner: Vec::new(),
    };
    let stdout = serve.child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // The banner is a handful of lines; bounded in case it changes.
        for line in BufReader::new(stdout).lines().take(20) {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("serve printed its banner within 30 s");
        if let Some(url) = line.strip_prefix("CMA: ") {
            serve.cma = url.trim().to_owned();
        }
        if let Some(url) = line.strip_prefix("CDA: ") {
            serve.cda = url.trim().to_owned();
        }
        let last = line.starts_with("Ctrl-C");
        serve.banner.push(line);
        if last {
            break;
        }
    }
    assert!(!serve.cma.is_empty(), "no CMA line: {:?}", serve.banner);
    assert!(!serve.cda.is_empty(), "no CDA line: {:?}", serve.banner);
    serve
}
