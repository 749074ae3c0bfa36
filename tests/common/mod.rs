//! Helpers shared by the integration tests that run the suite against an in-process
//! reference server.
// Each test binary uses a part of this module.
#![allow(dead_code, clippy::unwrap_used)]

use token_conformance::engine::RunOptions;
use token_conformance::reference::ReferenceServer;

/// A two-thread runtime, with rustls' ring provider installed (the client needs one).
pub(crate) fn runtime() -> tokio::runtime::Runtime {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Run options for the suite against `server` as a remote target, as its management token.
pub(crate) fn options_for(server: &ReferenceServer, secret: &str, seed: u64) -> RunOptions {
    RunOptions {
        base_url: Some(server.cma_url()),
        cda_url: Some(server.cda_url()),
        secret: Some(secret.to_owned()),
        seed,
        ..RunOptions::default()
    }
}
