//! Building the two routers over one shared state, and running them on sockets.
//!
//! [`routers`] is the socket-less entry point (tests drive it with `tower::ServiceExt::oneshot`);
//! [`ReferenceServer::start`] binds both listeners and serves them in background tasks until
//! [`ReferenceServer::shutdown`] or until the handle is dropped, each connection under the
//! bounds of `conn`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::config::ServerConfig;
use super::http::Edge;
use super::ratelimit::RateLimiter;
use super::resources::RoleCatalog;
use super::seed::seed;
use super::state::{App, State, random_secret};
use super::{cda, cma};
use crate::spec::Spec;

/// How long [`ReferenceServer::shutdown`] waits for open connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listener could not be bound.
    #[error("failed to bind the {api} listener to {addr}: {source}")]
    Bind {
        /// `CMA` or `CDA`.
        api: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A bound listener has no local address.
    #[error("failed to read the local address of the {api} listener: {source}")]
    LocalAddr {
        /// `CMA` or `CDA`.
        api: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The configured admin secret cannot be sent in an `Authorization` header.
    #[error("invalid admin secret: it must be non-empty visible ASCII without spaces")]
    InvalidAdminSecret,
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
    /// A connection bound is zero (see [`ServerConfig::header_timeout`] and the fields after it).
    #[error("invalid connection limits: {0}")]
    Limits(&'static str),
    /// The embedded spec does not describe role attributes as the server needs.
    #[error("failed to read role attributes from the spec: {0}")]
    Spec(String),
}

/// The CMA and CDA routers over one freshly seeded state, and the admin secret.
pub fn routers(config: &ServerConfig) -> Result<(Router, Router, String), ServerError> {
    let (cma, cda, secret, _generated, _app) = build(config)?;
    Ok((cma, cda, secret))
}

fn build(config: &ServerConfig) -> Result<(Router, Router, String, bool, Arc<App>), ServerError> {
    let (secret, generated) = match &config.admin_secret {
        Some(secret) if is_valid_secret(secret) => (secret.clone(), false),
        Some(_) => return Err(ServerError::InvalidAdminSecret),
        None => (random_secret(), true),
    };
    let spec = Spec::embedded();
    let catalog = RoleCatalog::from_spec(spec).map_err(ServerError::Spec)?;
    let mut state = State::empty();
    seed(&mut state, &catalog, &secret, config.legacy_factory_tokens);
    state.faults = config.faults.clone();
    let app = Arc::new(App::new(spec, catalog, state));
    let limiter = || Arc::new(RateLimiter::new(config.rate_limit, &config.faults));
    let edge = |cma| {
        Arc::new(Edge {
            faults: config.faults.clone(),
            cma,
            flaky: config.flaky,
        })
    };
    let cma = cma::router(app.clone(), limiter(), edge(true));
    let cda = cda::router(app.clone(), limiter(), edge(false));
    Ok((cma, cda, secret, generated, app))
}

fn check_limits(config: &ServerConfig) -> Result<(), ServerError> {
    if config.header_timeout.is_zero() {
        return Err(ServerError::Limits(
            "the header timeout must be longer than zero",
        ));
    }
    if config.idle_timeout.is_zero() {
        return Err(ServerError::Limits(
            "the idle timeout must be longer than zero",
        ));
    }
    if config.max_connections == 0 {
        return Err(ServerError::Limits(
            "at least one connection must be allowed",
        ));
    }
    Ok(())
}

fn is_valid_secret(secret: &str) -> bool {
    !secret.is_empty() && secret.bytes().all(|b| b.is_ascii_graphic())
}

/// A running reference server. Dropping it stops both listeners.
pub struct ReferenceServer {
    cma_addr: SocketAddr,
    cda_addr: SocketAddr,
    admin_secret: String,
    admin_secret_was_generated: bool,
    stop: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
    tls_ca_pem: Option<String>,
    app: Arc<App>,
}

// Hand-written so that the secret never reaches logs or panic messages.
impl fmt::Debug for ReferenceServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReferenceServer")
            .field("cma_url", &self.cma_url())
            .field("cda_url", &self.cda_url())
            .field("admin_secret", &"<redacted>")
            .field(
                "admin_secret_was_generated",
                &self.admin_secret_was_generated,
            )
            .finish_non_exhaustive()
    }
}

impl ReferenceServer {
    /// Bind both listeners and serve them in background tasks of the current runtime.
    pub async fn start(config: ServerConfig) -> Result<ReferenceServer, ServerError> {
        check_limits(&config)?;
        let (cma, cda, admin_secret, admin_secret_was_generated, app) = build(&config)?;
        let tls = if config.tls {
            Some(super::tls::generate()?)
        } else {
            None
        };
        let cma_listener = bind("CMA", config.cma_addr).await?;
        let cda_listener = bind("CDA", config.cda_addr).await?;
        let cma_addr = local_addr("CMA", &cma_listener)?;
        let cda_addr = local_addr("CDA", &cda_listener)?;
        let mut server = ReferenceServer {
            cma_addr,
            cda_addr,
            admin_secret,
            admin_secret_was_generated,
            stop: Vec::new(),
            tasks: Vec::new(),
            tls_ca_pem: tls.as_ref().map(|t| t.ca_pem.clone()),
            app,
        };
        let limits = super::conn::Limits {
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: config.max_connections,
        };
        let acceptor = tls.map(|tls| tls.acceptor);
        for (listener, router) in [(cma_listener, cma), (cda_listener, cda)] {
            // A dropped sender resolves `stopped` too: that is what makes drop stop the server.
            let (stop, stopped) = oneshot::channel::<()>();
            server.stop.push(stop);
            server.tasks.push(tokio::spawn(super::conn::serve(
                listener,
                router,
                acceptor.clone(),
                limits,
                stopped,
            )));
        }
        Ok(server)
    }

    /// The CMA base URL, e.g. `http://127.0.0.1:41235` (no trailing slash; `https` with TLS).
    pub fn cma_url(&self) -> String {
        format!("{}://{}", self.scheme(), self.cma_addr)
    }

    /// The CDA (GraphQL) URL, e.g. `http://127.0.0.1:41236`; queries are POSTed to `/`.
    pub fn cda_url(&self) -> String {
        format!("{}://{}", self.scheme(), self.cda_addr)
    }

    fn scheme(&self) -> &'static str {
        if self.tls_ca_pem.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// With TLS: the generated CA certificate (PEM) that clients must trust.
    pub fn tls_ca_pem(&self) -> Option<&str> {
        self.tls_ca_pem.as_deref()
    }

    /// Every secret the server has handed out (generated at seeding, creation and rotation),
    /// so that tests can search a run's outputs for leaks.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.app.lock().issued_secrets()
    }

    /// The management token's secret.
    pub fn admin_secret(&self) -> &str {
        &self.admin_secret
    }

    /// Whether the secret was generated (and may be printed) rather than configured.
    pub fn admin_secret_was_generated(&self) -> bool {
        self.admin_secret_was_generated
    }

    /// Stop accepting connections, let open requests finish (at most 5 s), then return.
    pub async fn shutdown(mut self) {
        for stop in self.stop.drain(..) {
            let _ = stop.send(());
        }
        for mut task in self.tasks.drain(..) {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }
}

async fn bind(api: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { api, addr, source })
}

fn local_addr(api: &'static str, listener: &TcpListener) -> Result<SocketAddr, ServerError> {
    listener
        .local_addr()
        .map_err(|source| ServerError::LocalAddr { api, source })
}
