//! The `https://` path: the suite against the reference server served over TLS with a
//! generated CA, trusted through `--ca-cert`; refused without it.

use crate::common;

use std::sync::Arc;

use token_conformance::engine::{RunError, Session};
use token_conformance::outcome::Status;
use token_conformance::plan::{Destructive, Plan, TargetKind};
use token_conformance::reference::{ReferenceServer, ServerConfig};

const SECRET: &str = "tls-management-secret-55aa";

async fn tls_server() -> ReferenceServer {
    let config = ServerConfig {
        admin_secret: Some(SECRET.to_owned()),
        rate_limit: None,
        tls: true,
        ..ServerConfig::default()
    };
    ReferenceServer::start(config).await.unwrap()
}

fn options(server: &ReferenceServer, ca: Option<std::path::PathBuf>) -> Plan {
    let mut plan = Plan {
        cases: 4,
        // A server the suite did not start runs destructive clauses only when asked.
        destructive: Destructive::Allow,
        ..common::options_for(server, SECRET, 5)
    };
    if let TargetKind::Remote(remote) = &mut plan.target {
        remote.ca_cert = ca;
    }
    plan
}

#[test]
fn the_suite_passes_over_tls_with_the_private_ca() {
    common::runtime().block_on(async {
        let server = tls_server().await;
        assert!(server.cma_url().starts_with("https://127.0.0.1:"));
        let dir = std::env::temp_dir().join(format!("tc-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, server.tls_ca_pem().unwrap()).unwrap();
        let options = options(&server, Some(ca));
        let session = Arc::new(Session::open(&options).await.unwrap());
        let report = session.run_all(|_, _, _| {}).await;
        assert!(
            report.clauses.iter().all(|c| c.status == Status::Pass),
            "{}",
            report.render(true)
        );
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn without_the_ca_the_certificate_is_refused() {
    common::runtime().block_on(async {
        let server = tls_server().await;
        let err = Session::open(&options(&server, None)).await.unwrap_err();
        assert!(matches!(err, RunError::Unreachable(_)), "{err}");
        assert!(
            err.to_string().to_lowercase().contains("certificate"),
            "{err}"
        );
    });
}

#[test]
fn a_ca_file_that_is_not_pem_is_a_configuration_error() {
    common::runtime().block_on(async {
        let server = tls_server().await;
        let dir = std::env::temp_dir().join(format!("tc-tls-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.pem");
        std::fs::write(&bad, "not a certificate").unwrap();
        let err = Session::open(&options(&server, Some(bad)))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("CA certificate"), "{err}");
        let missing = Session::open(&options(&server, Some(dir.join("missing.pem"))))
            .await
            .unwrap_err();
        assert!(missing.to_string().contains("--ca-cert"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    });
}
